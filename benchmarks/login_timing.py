"""Login timing: does a failed login's time tell whether the user name exists?

    .venv/bin/python benchmarks/login_timing.py [--rounds 15] [--postgres]

Against a live ``bigmap serve`` (SQLite, or PostgreSQL with ``--postgres``), alternates
failed logins for a known user and for unknown names (allowances raised so the back-off does
not interfere) and prints the median time of each and their ratio (1.0 = no difference).
The baseline, measured in the same run: the cost of the Argon2 check itself (one
``verify_password`` against a real hash, in this process), which a server that skipped it for
unknown names (bigmap before issue 12: 32 ms against 197 ms) would save on exactly those.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
import uuid

import httpx

from bigmap.embedded import LocalBroker, temporary_postgres_database
from bigmap.store.security import hash_password, verify_password

PASSWORD = "correct horse battery staple"


def timed_login(url: str, user: str) -> float:
    t = time.perf_counter()
    r = httpx.post(
        f"{url}/api/v1/auth/token",
        data={"username": user, "password": "a wrong guess"},
        timeout=120,
    )
    elapsed = time.perf_counter() - t
    assert r.status_code == 401, r.text
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--postgres", action="store_true")
    args = ap.parse_args()
    env = {
        "BIGMAP_LOGIN_FREE_FAILURES": "1000000",
        "BIGMAP_LOGIN_ADDRESS_FREE_FAILURES": "1000000",
    }
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(temporary_postgres_database()) if args.postgres else None
        server = stack.enter_context(LocalBroker(url, env=env))
        server.user("known-user", password=PASSWORD)
        known, unknown = [], []
        timed_login(server.url, "known-user")  # warm up
        for _ in range(args.rounds):
            known.append(timed_login(server.url, "known-user"))
            unknown.append(timed_login(server.url, f"nobody-{uuid.uuid4().hex[:8]}"))
        real = hash_password(PASSWORD)
        checks = []
        for _ in range(args.rounds):
            t = time.perf_counter()
            verify_password(real, "a wrong guess")
            checks.append(time.perf_counter() - t)
    k, u, c = (statistics.median(x) for x in (known, unknown, checks))
    print(f"database: {'PostgreSQL' if args.postgres else 'SQLite'}, {args.rounds} rounds")
    print(f"failed login, known user:    median {k * 1000:7.1f} ms")
    print(f"failed login, unknown user:  median {u * 1000:7.1f} ms")
    print(f"ratio unknown/known:         {u / k:7.2f}  (1.00 = indistinguishable)")
    print(f"baseline, one Argon2 check:  median {c * 1000:7.1f} ms  ({c / k:.0%} of a login)")
    print(
        f"without the dummy hash an unknown name would answer in about {(u - c) * 1000:.0f} ms: "
        f"ratio {(u - c) / k:.2f}"
    )


if __name__ == "__main__":
    main()
