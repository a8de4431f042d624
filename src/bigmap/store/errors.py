"""The broker's error family; the server turns each into its HTTP status."""

from __future__ import annotations

from bigmap.schemas.validation import ErrorDetail, error


class BrokerError(Exception):
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(BrokerError):
    status_code = 404


class Conflict(BrokerError):
    status_code = 409


class Forbidden(BrokerError):
    status_code = 403


class Unauthorized(BrokerError):
    status_code = 401


class TooManyRequests(BrokerError):
    """Too many failed attempts: 429, with the seconds to wait (the Retry-After header)."""

    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


class Invalid(BrokerError):
    """Input that breaks a schema or a rule: 422 with the JSON path of each offending field."""

    status_code = 422

    def __init__(
        self, details: list[ErrorDetail] | str, loc: list[str | int] | None = None
    ) -> None:
        if isinstance(details, str):
            details = [error(loc or [], details)]
        self.details = details
        super().__init__("; ".join(f"{d.path}: {d.msg}" for d in details))
