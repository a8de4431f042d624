"""Identity as an attacker tries it (issue 12, item 4): login back-off per user name and per
client address (429 with Retry-After, kept in the database), the same hashing work for
unknown and known users, the password policy, tokens that expire, can be listed and
revoked, users that can be disabled, and an owner-only database file.

Through real servers on SQLite and PostgreSQL. Client addresses are set the way a reverse
proxy on the server's host sets them (``X-Forwarded-For``, which uvicorn trusts from
127.0.0.1 only): each test uses addresses of its own from the documentation prefix
2001:db8::/32 (RFC 3849), so that no test's failures count against another's.
"""

from __future__ import annotations

import concurrent.futures
import os
import stat
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from sqlalchemy import select

from bigmap.client import AuthError, BrokerClient, RateLimited, ValidationFailed
from bigmap.embedded import LocalBroker, temporary_postgres_database
from bigmap.schemas.common import utcnow
from bigmap.store import models as m
from bigmap.store import security
from bigmap.store.broker import Broker
from bigmap.store.db import Database, upgrade
from bigmap.store.errors import Invalid, TooManyRequests, Unauthorized
from bigmap.store.services.identity import IdentityConfig
from tests.conftest import Live, _require_postgres

GOOD = "correct horse battery staple"

# live brokers of its own (``strict``) and databases: every test here is integration
pytestmark = pytest.mark.integration


def _address() -> str:
    """A client address of its own (IPv6 documentation prefix, RFC 3849)."""
    return f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"


def _name(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _login(url: str, user: str, password: str, address: str) -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/auth/token",
        data={"username": user, "password": password},
        headers={"X-Forwarded-For": address},
        timeout=60,
    )


def _me(url: str, token: str) -> httpx.Response:
    return httpx.get(
        f"{url}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}, timeout=60
    )


def _new_user(live: Live, name: str | None = None, password: str = GOOD) -> str:
    name = name or _name()
    with live.client("admin") as admin:
        admin.add_user(name, password)
    return name


# ----------------------------------------------------------------------------- back-off


def test_brute_force_gets_429_that_grows_and_a_success_resets(strict: Live):
    user, addr = _new_user(strict), _address()
    for _ in range(3):  # BIGMAP_LOGIN_FREE_FAILURES of the strict server
        assert _login(strict.url, user, "wrong guess", addr).status_code == 401
    locked = _login(strict.url, user, "wrong guess", addr)
    assert locked.status_code == 429, locked.text
    first_wait = int(locked.headers["Retry-After"])
    assert 1 <= first_wait <= 5 and "try again in" in locked.json()["detail"]
    # while locked, even the right password is not checked
    assert _login(strict.url, user, GOOD, addr).status_code == 429
    # from another address too: the user's count is the user's, wherever guesses come from
    assert _login(strict.url, user, GOOD, _address()).status_code == 429
    time.sleep(first_wait + 0.2)
    assert _login(strict.url, user, "wrong guess", addr).status_code == 401  # the 4th failure
    second = _login(strict.url, user, "wrong guess", addr)
    assert second.status_code == 429
    assert int(second.headers["Retry-After"]) > 5, "the wait must grow (5 s, then 10 s)"
    time.sleep(int(second.headers["Retry-After"]) + 0.2)
    ok = _login(strict.url, user, GOOD, addr)
    assert ok.status_code == 200, ok.text
    assert _me(strict.url, ok.json()["access_token"]).json()["name"] == user
    # the success reset the user's count: three failures are free again (from an address
    # of their own: this one has four failures of the six it may have)
    other = _address()
    for _ in range(3):
        assert _login(strict.url, user, "wrong again", other).status_code == 401
    assert _login(strict.url, user, "wrong again", other).status_code == 429


def test_finales_login_path_has_the_same_back_off(strict: Live):
    user, addr = _new_user(strict), _address()
    codes = [
        httpx.post(
            f"{strict.url}/user_management/authenticate",
            data={"username": user, "password": "nope-nope-nope"},
            headers={"X-Forwarded-For": addr},
            timeout=60,
        ).status_code
        for _ in range(4)
    ]
    assert codes == [401] * 3 + [429]


def test_concurrent_guesses_are_counted_before_they_are_checked(strict: Live):
    """Ten guesses at once: every attempt is counted in the database before its password
    is hashed, so no more than the free three are checked."""
    user, addr = _new_user(strict), _address()
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        codes = list(
            pool.map(lambda _: _login(strict.url, user, "guess", addr).status_code, range(10))
        )
    assert sorted(codes) == [401] * 3 + [429] * 7, codes


def test_unknown_users_are_throttled_like_known_ones(strict: Live):
    ghost, addr = _name("ghost"), _address()
    codes = [_login(strict.url, ghost, "whatever-it-is", addr).status_code for _ in range(4)]
    assert codes == [401] * 3 + [429]
    assert _login(strict.url, ghost, "x", addr).json()["detail"].startswith("too many failed")


def test_unstorable_user_names_are_a_4xx_not_a_500(live: Live):
    # over HTTP the server's input bounds refuse a NUL in any JSON body first (422, by path);
    # the store refuses the names a database cannot hold with a 401 like any unknown user
    r = _login(live.url, "nul\x00name", "whatever it is", _address())
    assert r.status_code == 422 and "NUL" in r.text, r.text
    broker = _broker(live.server.db_url)  # the same database, in this process
    for name in ("a\x00b", "lone \ud800 surrogate", "x" * 5000):
        with pytest.raises(Unauthorized):
            broker.authenticate(name, "whatever it is", _address())
    broker.db.dispose()


def test_default_allowance_is_five_failures(live: Live):
    """The defaults (5 free failures per user) on the shared test server; only the count of
    401s is checked here, the timing of the lock on the strict server."""
    user, addr = _new_user(live), _address()
    for _ in range(5):
        assert _login(live.url, user, "wrong guess", addr).status_code == 401
    with live.client("admin") as admin:
        assert user in {u["name"] for u in admin.users()}


def test_both_login_paths_call_the_hasher(fresh_db_url, monkeypatch):
    """Known user, unknown user, imported (foreign) identity, disabled user: each failed
    login verifies one Argon2 hash, so their times tell nothing apart."""
    broker = _broker(fresh_db_url)
    broker.create_user("known", GOOD)
    broker.create_user("sleeper", GOOD)
    broker.set_user("sleeper", disabled=True)
    with broker.db.write() as s:
        s.add(
            m.User(
                name="alien@elsewhere", password_hash="!imported", role="tenant", imported_from="x"
            )
        )
    calls: list[str] = []
    real = security._hasher

    class Counting:
        def __getattr__(self, name):
            return getattr(real, name)

        def verify(self, hash_, password):
            calls.append(hash_)
            return real.verify(hash_, password)

    monkeypatch.setattr(security, "_hasher", Counting())
    for name in ("known", "nobody", "alien@elsewhere", "sleeper"):
        calls.clear()
        with pytest.raises(Unauthorized):
            broker.authenticate(name, "not the password")
        assert len(calls) == 1, name
    dummy = security.dummy_hash()
    calls.clear()
    with pytest.raises(Unauthorized):
        broker.authenticate("nobody", "not the password")
    assert calls == [dummy]
    calls.clear()
    with pytest.raises(Unauthorized, match="disabled"):
        broker.authenticate("sleeper", GOOD)  # the right password of a disabled user
    assert len(calls) == 1 and calls[0] != dummy
    broker.db.dispose()


def _broker(url: str, **config) -> Broker:
    upgrade(url)
    return Broker(Database(url), identity=IdentityConfig(**config))


@pytest.mark.parametrize("fresh_db_url", ["sqlite", "postgresql"], indirect=True)
def test_back_off_state_is_in_the_database(fresh_db_url):
    """Two brokers on one database (as two server processes or a restart): a lock made by
    one holds in the other; a success in the other resets it."""
    one = _broker(fresh_db_url, login_free_failures=2, login_backoff_seconds=3.0)
    two = _broker(fresh_db_url, login_free_failures=2, login_backoff_seconds=3.0)
    one.create_user("carol", GOOD)
    for _ in range(2):
        with pytest.raises(Unauthorized):
            one.authenticate("carol", "bad", "198.51.100.7")
    with pytest.raises(TooManyRequests) as exc:
        two.authenticate("carol", GOOD, "198.51.100.8")
    assert exc.value.retry_after >= 1
    time.sleep(exc.value.retry_after + 0.1)
    assert two.authenticate("carol", GOOD, "198.51.100.8").name == "carol"
    with pytest.raises(Unauthorized):  # reset: free failures again, not a 429
        one.authenticate("carol", "bad", "198.51.100.7")
    one.db.dispose()
    two.db.dispose()


@pytest.mark.parametrize("fresh_db_url", ["sqlite", "postgresql"], indirect=True)
def test_old_failures_are_forgotten(fresh_db_url):
    """Counts older than the window without a failure are dropped (by the next login)."""
    broker = _broker(fresh_db_url, login_failure_window_seconds=3600)
    long_ago = utcnow() - timedelta(hours=2)
    with broker.db.write() as s:
        s.add(m.LoginFailure(key="user:stale", failures=50, last_failed_at=long_ago))
        s.add(m.LoginFailure(key="user:recent", failures=1, last_failed_at=utcnow()))
    with pytest.raises(Unauthorized):
        broker.authenticate("somebody", "whatever it is")
    with broker.db.read() as s:
        keys = set(s.scalars(select(m.LoginFailure.key)))
    assert keys == {"user:recent", "user:somebody"}
    broker.db.dispose()


# ----------------------------------------------------------------------------- a strict server


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def strict(request, tmp_path_factory) -> Live:
    """A broker with small allowances (3 failures per user, 6 per address), a first wait of
    5 s (long enough that a loaded test machine still sees the lock) and login tokens that
    live 3 s."""
    env = {
        "BIGMAP_LOGIN_TOKEN_HOURS": str(3 / 3600),
        "BIGMAP_LOGIN_FREE_FAILURES": "3",
        "BIGMAP_LOGIN_ADDRESS_FREE_FAILURES": "6",
        "BIGMAP_LOGIN_BACKOFF_SECONDS": "5",
        "BIGMAP_SWEEP_SECONDS": "0.5",
    }
    log = tmp_path_factory.mktemp("strict") / "broker.log"
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('strict-db') / 'bigmap.db'}"
        server = LocalBroker(url, env=env, log_path=log)
        with server:
            yield Live(server, {"admin": server.user("admin", "admin", password="admin-password")})
    else:
        _require_postgres()
        with (
            temporary_postgres_database() as url,
            LocalBroker(url, env=env, log_path=log) as server,
        ):
            yield Live(server, {"admin": server.user("admin", "admin", password="admin-password")})


def test_guesses_from_one_address_at_many_users_get_429(strict: Live):
    addr = _address()
    real = _new_user(strict)
    for _ in range(6):  # six names, one guess each: no user reaches its own limit
        assert _login(strict.url, _name("spray"), "Winter2025!", addr).status_code == 401
    blocked = _login(strict.url, real, GOOD, addr)
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
    # the same user from another address is not blocked: the address was
    assert _login(strict.url, real, GOOD, _address()).status_code == 200


def test_a_success_takes_its_attempt_off_the_address(strict: Live):
    """Successful logins from a shared address (a site's NAT) never add up to a lock."""
    addr, user = _address(), _new_user(strict)
    for _ in range(8):
        assert _login(strict.url, user, GOOD, addr).status_code == 200


def test_login_tokens_expire_with_a_clear_401(strict: Live):
    user = _new_user(strict)
    tok = _login(strict.url, user, GOOD, _address()).json()
    assert _me(strict.url, tok["access_token"]).status_code == 200
    exp = jwt.decode(tok["access_token"], options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, exp - time.time()) + 1.1)
    r = _me(strict.url, tok["access_token"])
    assert r.status_code == 401 and "expired" in r.json()["detail"], r.text
    assert r.headers["WWW-Authenticate"] == "Bearer"


def test_every_token_expires_by_default(live: Live):
    token = live.server.broker.issue_token("alice", label="t")[0]
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert 89 * 86400 < exp - time.time() <= 90 * 86400  # BIGMAP_TOKEN_DAYS
    with live.client("alice") as c:
        made = c.create_token(label="worker", days=2)
        assert (
            1.9 * 86400
            < (
                jwt.decode(made["access_token"], options={"verify_signature": False})["exp"]
                - time.time()
            )
            <= 2 * 86400
        )
        with pytest.raises(ValidationFailed, match="days"):
            c.create_token(days=10000)  # BIGMAP_TOKEN_MAX_DAYS


# ----------------------------------------------------------------------------- tokens


def test_wrong_tokens_get_401(live: Live):
    forged = jwt.encode(
        {"iss": "bigmap", "sub": str(uuid.uuid4()), "jti": str(uuid.uuid4())},
        "not the server's secret, but as long as one",
        algorithm="HS256",
    )
    for bad in ("garbage", forged, live.tokens["alice"] + "x"):
        r = _me(live.url, bad)
        assert r.status_code == 401 and "invalid token" in r.json()["detail"], r.text
    # signed with the right secret (as someone who read a world-readable database would),
    # but for a token id the server never issued
    unknown = security.encode_token(
        live.server.broker.secret,
        token_id=uuid.uuid4(),
        user_id=live.server.broker.get_user("admin").id,
        expires_at=None,
    )
    r = _me(live.url, unknown)
    assert r.status_code == 401 and "unknown token" in r.json()["detail"]


def test_revoked_token_is_refused_on_the_next_call(live: Live):
    user = _new_user(live)
    with BrokerClient.login(live.url, user, GOOD) as me:
        spare = me.create_token(label="spare")
        listed = {t["id"]: t for t in me.tokens()}
        assert spare["id"] in listed and listed[spare["id"]]["status"] == "active"
        assert "access_token" not in listed[spare["id"]]
        assert {t["user"] for t in listed.values()} == {user}
        with BrokerClient(live.url, spare["access_token"]) as other:
            assert other.me()["name"] == user
            revoked = me.revoke_token(spare["id"])
            assert revoked["status"] == "revoked" and revoked["revoked_at"]
            with pytest.raises(AuthError, match="revoked"):
                other.me()
        assert spare["id"] not in {t["id"] for t in me.tokens()}
        assert spare["id"] in {t["id"] for t in me.tokens(include_inactive=True)}
        # someone else's token: not found, not listed, whoever asks
        with live.client("bob") as bob:
            with pytest.raises(Exception) as exc:
                bob.revoke_token(listed[next(iter(listed))]["id"])
            assert exc.value.status_code == 404
            with pytest.raises(AuthError) as exc:
                bob.tokens(user=user)
            assert exc.value.status_code == 403
            with pytest.raises(AuthError):
                bob.tokens(all_users=True)
        with live.client("admin") as admin:
            assert spare["id"] in {t["id"] for t in admin.tokens(user=user, include_inactive=True)}


def test_disabled_user_is_refused_on_the_next_call(live: Live):
    user = _new_user(live)
    with BrokerClient.login(live.url, user, GOOD) as me, live.client("admin") as admin:
        assert me.me()["name"] == user
        assert admin.disable_user(user)["disabled"] is True
        with pytest.raises(AuthError, match="disabled"):
            me.me()
        r = _login(live.url, user, GOOD, _address())
        assert r.status_code == 401 and "disabled" in r.json()["detail"]
        admin.enable_user(user)
        assert me.me()["name"] == user
        with live.client("alice") as alice, pytest.raises(AuthError) as exc:
            alice.disable_user(user)
        assert exc.value.status_code == 403


def _cli(*args: str, db: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bigmap.cli", *args, "--db", db],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_token_list_revoke_and_user_disable_bite_on_a_running_server(live: Live):
    db = live.server.db_url
    user = _new_user(live)
    made = _cli("token", "create", user, "--label", "cli-test", db=db)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert _me(live.url, token).status_code == 200
    listing = _cli("token", "list", "--user", user, db=db)
    assert listing.returncode == 0 and "cli-test" in listing.stdout
    token_id = jwt.decode(token, options={"verify_signature": False})["jti"]
    assert token_id[:8] in listing.stdout

    assert _cli("user", "disable", user, db=db).returncode == 0
    r = _me(live.url, token)
    assert r.status_code == 401 and "disabled" in r.json()["detail"]
    assert "yes" in _cli("user", "list", db=db).stdout
    assert _cli("user", "enable", user, db=db).returncode == 0
    assert _me(live.url, token).status_code == 200

    revoked = _cli("token", "revoke", token_id, db=db)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    r = _me(live.url, token)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    assert _cli("token", "revoke", "not-an-id", db=db).returncode == 2
    missing = _cli("token", "revoke", str(uuid.uuid4()), db=db)
    assert missing.returncode == 2 and "no token" in missing.stderr


# ----------------------------------------------------------------------------- passwords


def test_password_policy_refuses_common_short_and_own_name(live: Live):
    with live.client("admin") as admin:
        for name, password, why in [
            (_name(), "password", "at least 12"),
            (_name(), "12345678", "at least 12"),
            (_name(), "qwerty123456", "common"),
            (_name(), "Q1W2E3R4T5Y6", "common"),
            (_name(), "  1q2w3e4r5t6y ", "common"),
            ("longusername1", "LongUserName1", "user's name"),
        ]:
            with pytest.raises(ValidationFailed) as exc:
                admin.add_user(name, password)
            assert exc.value.status_code == 422
            detail = exc.value.detail
            assert any(d["path"].endswith("password") and why in d["msg"] for d in detail), detail
        assert admin.add_user(_name(), "a long and unusual one")["role"] == "tenant"


@pytest.mark.parametrize("fresh_db_url", ["sqlite", "postgresql"], indirect=True)
def test_password_policy_in_the_store_and_cli(fresh_db_url):
    broker = _broker(fresh_db_url)
    with pytest.raises(Invalid) as exc:
        broker.create_user("dave", "iloveyou")
    assert exc.value.details[0].path.endswith("password")
    broker.create_user("dave", "dave-password-ok")
    with pytest.raises(Invalid, match="common"):
        broker.set_user("dave", password="1qaz2wsx3edc")
    with pytest.raises(Invalid, match="at least 20"):
        _broker(fresh_db_url, password_min_length=20).create_user("erin", "erin-password-ok")
    broker.db.dispose()
    bad = _cli("user", "add", "fred", "--password", "password123", db=fresh_db_url)
    assert bad.returncode == 2 and "password" in bad.stderr
    ok = _cli("user", "password", "dave", "--password", "a better passphrase", db=fresh_db_url)
    assert ok.returncode == 0, ok.stderr


# ----------------------------------------------------------------------------- files


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_database_file_and_its_directory_are_owner_only(tmp_path):
    os.umask(0o022)  # the usual umask, which would make files 0644 and directories 0755
    path = tmp_path / "new" / "data" / "bigmap.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    broker = Broker(Database(url))
    broker.secret  # noqa: B018 - the signing secret is now in the file
    broker.create_user("gina", GOOD)
    assert _mode(path) == 0o600
    for f in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        if f.exists():
            assert _mode(f) == 0o600, f
    assert _mode(path.parent) == 0o700 and _mode(path.parent.parent) == 0o700
    broker.db.dispose()
    # a database made world-readable by an older bigmap (or by hand) is tightened on open
    os.chmod(path, 0o644)
    Database(url).dispose()
    assert _mode(path) == 0o600


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_served_database_stays_owner_only(live_one: Live):
    """The server process (its own umask) keeps the file and its WAL owner-only."""
    live_one.server.broker.create_user(_name(), GOOD)  # a write: the WAL exists
    with live_one.client("alice") as alice:
        alice.create_token(label="write through the server")
    path = Path(live_one.server.db_url.removeprefix("sqlite:///"))
    for f in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        assert _mode(f) == 0o600, f


# ----------------------------------------------------------------------------- migration


@pytest.mark.parametrize("fresh_db_url", ["sqlite", "postgresql"], indirect=True)
def test_upgrade_gives_tokens_without_expiry_one(fresh_db_url):
    """CLI tokens made before 0006_identity never expired: after the upgrade they expire 90
    days later."""
    upgrade(fresh_db_url, "0005_import")
    old = Broker(Database(fresh_db_url))
    with old.db.write() as s:
        s.execute(
            m.User.__table__.insert().values(
                id=uuid.uuid4(),
                name="old",
                password_hash="x",
                role="tenant",
                groups=[],
                disabled=False,
                created_at=utcnow(),
            )
        )
        uid = s.execute(m.User.__table__.select()).first().id
        tid = uuid.uuid4()
        s.execute(
            m.Token.__table__.insert().values(
                id=tid,
                user_id=uid,
                label="cli",
                created_at=utcnow(),
                expires_at=None,
                revoked=False,
            )
        )
    old.db.dispose()
    upgrade(fresh_db_url)
    new = Broker(Database(fresh_db_url))
    with new.db.read() as s:
        tok = s.get(m.Token, tid)
    assert 89 < (tok.expires_at - utcnow()).total_seconds() / 86400 <= 90
    new.db.dispose()


def test_rate_limited_is_the_sdk_error_of_429(strict: Live):
    user, addr = _new_user(strict), _address()
    client = BrokerClient(strict.url, token="")
    client._http.headers["X-Forwarded-For"] = addr
    for _ in range(3):
        with pytest.raises(AuthError):
            client.call("POST", "/api/v1/auth/token", data={"username": user, "password": "no"})
    with pytest.raises(RateLimited) as exc:
        client.call("POST", "/api/v1/auth/token", data={"username": user, "password": "no"})
    assert exc.value.retry_after >= 1
    client.close()
