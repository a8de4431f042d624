"""Errors of the client and of capability functions.

Broker replies: ``BrokerError`` and its kinds, one per HTTP status family.

Capability functions, like ASE calculators, have a small family of their own:

- ``InputError``: the parameters are valid for the schema but cannot be served (outside the
  model's domain, an unknown parameter set, an unparseable SMILES). The request fails with
  ``kind = "input_error"``; retrying cannot help.
- ``CalculationFailed``: the calculation ran and failed (no SCF convergence, a solver
  error). The request fails with ``kind = "calculation_failed"`` and the message.
- Any other exception is reported like ``CalculationFailed``, with its type in the message.
- A crash of the whole tenant is a lease that expires: the request returns to the queue.
"""

from __future__ import annotations

from typing import Any


class BrokerError(Exception):
    """The broker answered with an error status."""

    def __init__(self, status_code: int, detail: Any, method: str = "", url: str = "") -> None:
        self.status_code = status_code
        self.detail = detail
        self.method = method
        self.url = url
        super().__init__(f"{status_code} from {method} {url}: {self.message}")

    @property
    def message(self) -> str:
        if isinstance(self.detail, list):
            return "; ".join(
                f"{d.get('path', d.get('loc'))}: {d.get('msg')}"
                for d in self.detail
                if isinstance(d, dict)
            )
        return str(self.detail)


class AuthError(BrokerError):
    """401 or 403: no valid token, or not allowed."""


class NotFoundError(BrokerError):
    """404: no such object."""


class ConflictError(BrokerError):
    """409: the object is in another state (already claimed, already resolved, ...)."""


class ValidationFailed(BrokerError):
    """422: the input breaks a schema or a rule; ``detail`` lists each offending path."""


class RateLimited(BrokerError):
    """429: too many attempts (failed logins); ``retry_after`` is the seconds to wait."""

    retry_after: float | None = None


class BrokerUnavailable(Exception):
    """The broker could not be reached (after retries)."""


class RequestFailed(Exception):
    """A request this client waited for failed or was retracted."""


class TenantError(Exception):
    """Base of the errors a capability function raises on purpose."""

    kind = "calculation_failed"


class InputError(TenantError):
    kind = "input_error"


class CalculationFailed(TenantError):
    kind = "calculation_failed"


def error_for(status_code: int, detail: Any, method: str, url: str) -> BrokerError:
    cls = {
        401: AuthError,
        403: AuthError,
        404: NotFoundError,
        409: ConflictError,
        422: ValidationFailed,
        429: RateLimited,
    }.get(status_code, BrokerError)
    return cls(status_code, detail, method, url)
