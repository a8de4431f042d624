"""Server-side configuration from ``BIGMAP_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from platformdirs import user_data_dir
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    return Path(user_data_dir("bigmap", appauthor=False))


def default_database_url() -> str:
    return f"sqlite:///{default_data_dir() / 'bigmap.db'}"


class Settings(BaseSettings):
    """Everything has a working default: SQLite in the user data directory, port 8000."""

    model_config = SettingsConfigDict(env_prefix="BIGMAP_", extra="ignore")

    database_url: str = Field(default_factory=default_database_url)
    host: str = "127.0.0.1"
    port: int = 8000
    # Signing secret for tokens. When empty, one is generated once and kept in the database.
    secret: str = ""
    # Default lease of a claim, seconds; a tenant renews it on long jobs.
    lease_seconds: float = 60.0
    # Tokens made by logging in with a password (``POST /api/v1/auth/token``, FINALES
    # ``/user_management/authenticate``) expire after this many hours.
    login_token_hours: float = 24.0
    # Tokens made otherwise (``bigmap token create``, ``POST /api/v1/tokens``) expire after
    # this many days unless a shorter or longer life is asked for; ``POST /api/v1/tokens``
    # may ask for at most ``token_max_days``. Every token expires.
    token_days: float = 90.0
    token_max_days: float = 366.0
    # Password policy: at least this many characters (never fewer than 8, NIST SP 800-63B
    # rev. 3 section 5.1.1.2), not one of the 19,640 common passwords bigmap ships
    # (data/common_passwords), not the user's name.
    password_min_length: int = 12
    # Login back-off: after ``login_free_failures`` failed logins for one user name (or
    # ``login_address_free_failures`` from one client address), each further attempt must
    # wait ``login_backoff_seconds``, doubling with each failure up to
    # ``login_backoff_max_seconds`` (429 with Retry-After). A success resets the user's count;
    # counts are forgotten after ``login_failure_window_seconds`` without a failure.
    login_free_failures: int = 5
    login_address_free_failures: int = 20
    login_backoff_seconds: float = 1.0
    login_backoff_max_seconds: float = 900.0
    login_failure_window_seconds: float = 86400.0
    # SQLite durability. NORMAL (with WAL): a committed transaction survives a crash of the
    # process (SIGKILL included); the last ones may roll back on a power loss or OS crash.
    # FULL fsyncs every commit and survives those too, at a cost in throughput.
    sqlite_synchronous: str = "NORMAL"
    # A tenant counts as alive for this long after its last heartbeat or claim.
    heartbeat_seconds: float = 120.0
    # Background sweep that returns expired leases to the queue.
    sweep_seconds: float = 2.0
    # SPARQL: a query stops after this many seconds (408), answers at most this many rows or
    # triples (the rest cut, marked truncated), and may be at most this long (bytes; 413).
    sparql_timeout_seconds: float = 30.0
    sparql_max_rows: int = 10000
    sparql_max_query_bytes: int = 65536
    # Archive import (an untrusted input): at most this many bytes once unpacked, no member
    # larger than 1 MiB compressed more than this ratio (zip bombs), at most this many files.
    import_max_bytes: int = 512 * 1024 * 1024
    import_max_ratio: float = 100.0
    import_max_members: int = 100000
    # Bounded resources (docs/security.md). A JSON or form body may be at most this long
    # (413 beyond); a raw file streamed to PUT /api/v1/results/{id}/files at most this long.
    max_body_bytes: int = 16 * 1024 * 1024
    max_upload_bytes: int = 1024 * 1024 * 1024
    # JSON bodies nested deeper than this are a 422.
    max_json_depth: int = 64
    # A capability's schema: at most this many bytes (compact JSON) and this deep.
    schema_max_bytes: int = 256 * 1024
    schema_max_depth: int = 48
    # Lists: a page has this many items unless ``limit`` asks for fewer (at most
    # ``page_size_max``); the next page is in the ``Link`` header. FINALES lists (which have no
    # pages in FINALES) answer at most ``finales_max_items`` (the next ones by ``offset``).
    page_size: int = 100
    page_size_max: int = 1000
    finales_max_items: int = 1000
    # Server-sent event streams open at once, per user and in total (429 beyond).
    sse_per_user: int = 4
    sse_total: int = 64
    # A connection must send a complete request head within this many seconds; an idle
    # keep-alive connection is closed after ``idle_timeout_seconds``.
    header_timeout_seconds: float = 10.0
    idle_timeout_seconds: float = 5.0
    # Password hashes (Argon2, ~64 MiB each) computed at once; the others wait.
    hash_concurrency: int = 2


@lru_cache
def get_settings() -> Settings:
    return Settings()
