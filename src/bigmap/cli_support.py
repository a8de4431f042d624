"""What every ``bigmap`` command shares: one place that turns an error into one clear line
(the traceback only with ``--debug`` or ``BIGMAP_DEBUG=1``), the database given as a URL or
a plain path, and the broker client of a command.

Commands raise ``CliError(message, code)`` for a refusal of their own; any other exception
that reaches :class:`App` is printed as ``error: ...`` on one line (a multi-line message,
such as a campaign specification's list of problems, keeps its lines) with exit code 1 or 2.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup

DEBUG_ENV = "BIGMAP_DEBUG"


class CliError(Exception):
    """A refusal of a command: printed as ``error: message``, exit ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "").lower() in ("1", "true", "yes")


def explain(exc: BaseException) -> tuple[str, int] | None:
    """(one-line message, exit code) for the errors a user can cause; None for a bug."""
    from bigmap.client.errors import BrokerError as ClientBrokerError
    from bigmap.client.errors import BrokerUnavailable, RequestFailed

    if isinstance(exc, CliError):
        return exc.message, exc.code
    if isinstance(exc, ClientBrokerError):
        code = 2 if 400 <= exc.status_code < 500 else 1
        return f"{exc.message} ({exc.status_code} from {exc.method} {exc.url})", code
    if isinstance(exc, BrokerUnavailable | RequestFailed):
        return str(exc), 1
    try:  # the server side, when it is installed
        from sqlalchemy.exc import ArgumentError, OperationalError

        from bigmap.store.db import DatabaseError
        from bigmap.store.errors import BrokerError, Invalid
    except ImportError:
        pass
    else:
        if isinstance(exc, Invalid):
            return "; ".join(f"{d.path}: {d.msg}" for d in exc.details), 2
        if isinstance(exc, BrokerError | DatabaseError):
            return str(exc), 2
        if isinstance(exc, ArgumentError):
            return (
                f"not a database URL or path: {exc} (give a file path, "
                "sqlite:///PATH or postgresql+psycopg://USER@HOST/DB)",
                2,
            )
        if isinstance(exc, OperationalError):
            return f"cannot use the database: {' '.join(str(exc.orig).split())}", 2
    from bigmap.planner.spec import SpecError

    if isinstance(exc, SpecError | ValueError):
        return str(exc), 2
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        return f"{exc.strerror or exc}{where}", 2
    return None


def print_error(message: str) -> None:
    """``error: message`` on stderr, never wrapped or styled by the terminal's width."""
    lines = message.rstrip().split("\n")
    red = sys.stderr.isatty() and not os.environ.get("NO_COLOR")
    head = "\x1b[31merror:\x1b[0m" if red else "error:"
    sys.stderr.write(f"{head} {lines[0]}\n" + "".join(f"{line}\n" for line in lines[1:]))
    sys.stderr.flush()


def one_line(exc: Exception) -> typer.Exit:
    """The ``typer.Exit`` of an error, its message printed as one line (``CliError``, the
    broker's answers, the database's, a campaign specification's, a file's), or a short note
    for a bug; the traceback only when debugging (then the error itself is raised)."""
    if debugging():
        raise exc
    known = explain(exc)
    if known is None:
        print_error(
            f"unexpected {type(exc).__name__}: {exc} "
            "(run again with --debug for the traceback, and please report it)"
        )
        return typer.Exit(1)
    print_error(known[0])
    return typer.Exit(known[1])


class Group(TyperGroup):
    """The root command group: every error of a command becomes one line (also when the
    command runs in-process, as ``typer.testing.CliRunner`` runs it)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if hasattr(exc, "exit_code"):  # click's own (usage errors, exits): click prints them
                raise
            raise one_line(exc) from None


class App(typer.Typer):
    """A ``typer.Typer`` whose errors are one clear line; ``--debug`` anywhere on the command
    line (or ``BIGMAP_DEBUG=1``) shows the traceback instead."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", Group)
        super().__init__(**kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if "--debug" in sys.argv[1:]:
            sys.argv.remove("--debug")
            os.environ[DEBUG_ENV] = "1"
        try:
            return super().__call__(*args, **kwargs)
        except KeyboardInterrupt:
            print_error("interrupted")
            sys.exit(130)
        except Exception as exc:  # raised outside a command (the callback, typer itself)
            if hasattr(exc, "exit_code"):
                raise
            raise SystemExit(one_line(exc).exit_code) from None


def quiet_http_logs(level: str) -> None:
    """Log at ``level``, without a line per HTTP call (httpx logs each at INFO) unless
    ``level`` is debug."""
    import logging

    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if level.lower() != "debug":
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)


def database_url(db: str | None) -> str:
    """The database of a command: ``--db`` (a URL or a plain file path), else
    ``BIGMAP_DATABASE_URL``, else SQLite in the user data dir."""
    from bigmap.config import get_settings
    from bigmap.store.db import normalize_url

    return normalize_url(db or get_settings().database_url)


def broker_client(url: str | None, token: str | None, *, retries: int = 5):
    """A client of the broker at ``url`` (default ``BIGMAP_BROKER_URL``) with a token."""
    from bigmap.client import BrokerClient

    client = BrokerClient(url, token, retries=retries)
    if not client.token:
        raise CliError("no token: pass --token or set BIGMAP_TOKEN (bigmap token create NAME)", 2)
    return client


def dashboard_url(client: Any, path: str) -> str:
    """The dashboard page of ``path`` (``campaigns/ID``) on the client's broker."""
    return f"{client.url}/ui/{path.lstrip('/')}"


def resolve_campaign(client: Any, text: str) -> str:
    """The full id of the campaign that ``text`` names: a full id, an unambiguous prefix of
    one, or a piece of a name that only one campaign has."""
    import uuid

    text = text.strip()
    try:
        return str(uuid.UUID(text))
    except ValueError:
        pass
    camps = client.campaigns()
    hits = [c for c in camps if str(c["id"]).startswith(text.lower())]
    if not hits:
        hits = [c for c in camps if text.lower() in str(c["name"]).lower()]
    if len(hits) == 1:
        return str(hits[0]["id"])
    if not hits:
        raise CliError(
            f"no campaign {text!r}: no id starts with it and no name holds it "
            "(bigmap campaign list shows them)",
            2,
        )
    listed = "; ".join(f"{c['id']} {c['name']!r}" for c in hits[:5])
    more = f" and {len(hits) - 5} more" if len(hits) > 5 else ""
    raise CliError(f"{text!r} is ambiguous: {len(hits)} campaigns match ({listed}{more})", 2)


def default_campaign_name(spec_name: str) -> str:
    """A spec's name with the date and time and a short run tag, so that runs differ."""
    import uuid
    from datetime import UTC, datetime

    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    return f"{spec_name} ({when} UTC, run {uuid.uuid4().hex[:6]})"[:200]
