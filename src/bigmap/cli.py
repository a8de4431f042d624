"""The ``bigmap`` command: serve a broker, manage its users, tenants and capabilities, run
workers. Every command finds the database through ``--db`` or ``BIGMAP_DATABASE_URL``."""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bigmap import cli_campaign, cli_request, cli_scaffold, cli_sila
from bigmap.cli_support import (
    App,
    CliError,
    broker_client,
    dashboard_url,
    database_url,
    default_campaign_name,
    resolve_campaign,
)

app = App(
    help="bigmap: an open Materials Acceleration Platform for battery research.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _main(
    debug: Annotated[
        bool, typer.Option("--debug", help="show the traceback of an error (BIGMAP_DEBUG=1)")
    ] = False,
) -> None:
    """bigmap: an open Materials Acceleration Platform for battery research."""
    if debug:
        os.environ["BIGMAP_DEBUG"] = "1"


db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
user_app = typer.Typer(help="Users and their roles.", no_args_is_help=True)
token_app = typer.Typer(help="Bearer tokens.", no_args_is_help=True)
cap_app = typer.Typer(help="Capabilities: (quantity, method) with schemas.", no_args_is_help=True)
tenant_app = typer.Typer(
    help="Tenants: who provides and asks for capabilities.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(cap_app, name="capability")
app.add_typer(tenant_app, name="tenant")
app.add_typer(cli_sila.sila_app, name="sila")

console = Console()
err = Console(stderr=True)

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="database: a file path (SQLite) or a URL such as postgresql+psycopg://USER@HOST/DB "
        "(default: BIGMAP_DATABASE_URL or SQLite in the user data dir)",
    ),
]


def _url(db: str | None) -> str:
    return database_url(db)


def _broker(db: str | None):
    """A broker on a migrated database (an embedded SQLite database is migrated here)."""
    from bigmap.config import get_settings
    from bigmap.store.broker import Broker
    from bigmap.store.db import Database, DatabaseError, ensure_current, is_sqlite, upgrade
    from bigmap.store.services.identity import IdentityConfig

    url = _url(db)
    settings = get_settings()
    database = Database(url, sqlite_synchronous=settings.sqlite_synchronous)
    try:
        ensure_current(database)
    except DatabaseError:
        if not is_sqlite(url):
            raise
        upgrade(url)
    return Broker(
        database,
        secret=settings.secret,
        lease_seconds=settings.lease_seconds,
        identity=IdentityConfig.from_settings(settings),
    )


def _system_actor():
    """The operator at the command line acts as an admin."""
    from bigmap.schemas.common import Role
    from bigmap.store.access import Actor

    return Actor(uuid.UUID(int=0), "(command line)", Role.admin)


def _fail(message: str, code: int = 1) -> None:
    raise CliError(message, code)


def _run(fn, *args: Any, **kwargs: Any) -> Any:
    from bigmap.store.db import DatabaseError
    from bigmap.store.errors import BrokerError, Invalid

    try:
        return fn(*args, **kwargs)
    except Invalid as exc:
        _fail("\n".join(f"{d.path}: {d.msg}" for d in exc.details), 2)
    except (BrokerError, DatabaseError, ValueError, OSError) as exc:
        _fail(str(exc), 2)


# ----------------------------------------------------------------------------- db


@db_app.command("upgrade")
def db_upgrade(db: DbOpt = None, revision: str = "head") -> None:
    """Create or migrate the database to the newest schema."""
    from bigmap.store.db import upgrade

    _run(upgrade, _url(db), revision)
    console.print(f"database at revision {revision}")


@db_app.command("current")
def db_current(db: DbOpt = None) -> None:
    """Print the database's schema revision."""
    from bigmap.store.db import current_revision, make_engine

    engine = make_engine(_url(db))
    console.print(current_revision(engine) or "(empty)")
    engine.dispose()


# ----------------------------------------------------------------------------- serve


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="interface (default BIGMAP_HOST or 127.0.0.1)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="port (default BIGMAP_PORT or 8000)")] = None,
    db: DbOpt = None,
    workers: Annotated[int, typer.Option(help="server processes")] = 1,
    upgrade_db: Annotated[
        bool,
        typer.Option(
            "--upgrade/--no-upgrade", help="migrate the database first (always for SQLite)"
        ),
    ] = False,
    log_level: str = "warning",
) -> None:
    """Serve the broker: native API under /api/v1, FINALES paths at the root, docs at /docs."""
    import uvicorn

    from bigmap.config import get_settings
    from bigmap.server.limits import HeaderTimeoutProtocol
    from bigmap.store.db import is_sqlite, upgrade

    settings = get_settings()
    url = _url(db)
    if upgrade_db or is_sqlite(url):
        _run(upgrade, url)
    os.environ["BIGMAP_DATABASE_URL"] = url
    host = host or settings.host
    port = port or settings.port
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    console.print(
        f"bigmap broker on http://{host}:{port} (database {url.split('@')[-1]}): dashboard "
        f"http://{host}:{port}/, API reference http://{host}:{port}/docs",
        soft_wrap=True,
        highlight=False,
    )
    uvicorn.run(
        "bigmap.server.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
        http=HeaderTimeoutProtocol,  # closes connections that never finish a request head
        timeout_keep_alive=max(1, round(settings.idle_timeout_seconds)),
    )


# ----------------------------------------------------------------------------- users, tokens


@user_app.command("add")
def user_add(
    name: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    role: Annotated[
        str,
        typer.Option(
            help="admin, maintainer (a tenant that may define new capabilities), tenant or "
            "observer (docs/security.md)"
        ),
    ] = "tenant",
    groups: Annotated[str, typer.Option(help="comma-separated groups (for restricted data)")] = "",
    db: DbOpt = None,
) -> None:
    """Add a user with a hashed password (at least BIGMAP_PASSWORD_MIN_LENGTH characters,
    12 by default; not one of the common passwords bigmap ships; not the user's name)."""
    from bigmap.schemas.common import Role

    if role not in {r.value for r in Role}:
        _fail(f"role must be admin, maintainer, tenant or observer, not {role!r}", 2)
    broker = _broker(db)
    user = _run(broker.create_user, name, password, Role(role), [g for g in groups.split(",") if g])
    console.print(f"user {user.name} ({user.role}) {user.id}")


@user_app.command("list")
def user_list(db: DbOpt = None) -> None:
    """List users: name, role, groups, whether disabled."""
    table = Table("name", "role", "groups", "disabled", "id")
    for u in _broker(db).list_users():
        table.add_row(
            u.name, u.role, ",".join(u.groups or []), "yes" if u.disabled else "", str(u.id)
        )
    console.print(table)


@user_app.command("role")
def user_role(
    name: str,
    role: Annotated[
        str | None,
        typer.Argument(help="admin, maintainer, tenant or observer; omit it to show the role"),
    ] = None,
    db: DbOpt = None,
) -> None:
    """Show or give a user's role: 'maintainer' lets a tenant user define new capabilities
    (docs/security.md, "Roles and rights"). A running server applies it from the next call."""
    from bigmap.schemas.common import Role
    from bigmap.store import policy

    broker = _broker(db)
    if role is None:
        user = _run(broker.get_user, name)
    else:
        if role not in {r.value for r in Role}:
            _fail(f"role must be admin, maintainer, tenant or observer, not {role!r}", 2)
        policy.set_role(_system_actor(), Role(role))
        user = _run(broker.set_user, name, role=Role(role))
    console.print(f"{user.name}: {user.role}")


@user_app.command("disable")
def user_disable(name: str, db: DbOpt = None) -> None:
    """Disable a user: its tokens are refused from the next call on, and it cannot log in."""
    user = _run(_broker(db).set_user, name, disabled=True)
    console.print(f"user {user.name} disabled")


@user_app.command("enable")
def user_enable(name: str, db: DbOpt = None) -> None:
    """Enable a disabled user again (its tokens that have not expired work again)."""
    user = _run(_broker(db).set_user, name, disabled=False)
    console.print(f"user {user.name} enabled")


@user_app.command("password")
def user_password(
    name: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    db: DbOpt = None,
) -> None:
    """Set a user's password (the password policy applies)."""
    user = _run(_broker(db).set_user, name, password=password)
    console.print(f"password of {user.name} set")


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="the user the token acts for")],
    days: Annotated[
        float | None,
        typer.Option(help="valid for this many days (default: BIGMAP_TOKEN_DAYS, 90)"),
    ] = None,
    label: str = "",
    db: DbOpt = None,
) -> None:
    """Print a new bearer token for a user. Every token expires; `bigmap token list` shows
    its id, `bigmap token revoke ID` ends it earlier."""
    broker = _broker(db)
    text, _ = _run(broker.issue_token, name, label=label or "cli", days=days)
    print(text)


@token_app.command("list")
def token_list(
    user: Annotated[str | None, typer.Option(help="only this user's tokens")] = None,
    all_: Annotated[bool, typer.Option("--all", help="also the expired and revoked ones")] = False,
    db: DbOpt = None,
) -> None:
    """List tokens (never their text): id, user, label, created, expires, status."""
    from bigmap.store.services.identity import token_status

    broker = _broker(db)
    rows = _run(broker.identity.list_tokens, user=user, include_inactive=all_)
    table = Table("id", "user", "label", "created (UTC)", "expires (UTC)", "status")

    def when(t) -> str:
        return f"{t:%Y-%m-%d %H:%M}" if t else "never"

    for tok, name in rows:
        table.add_row(
            str(tok.id),
            name,
            tok.label,
            when(tok.created_at),
            when(tok.expires_at),
            token_status(tok),
        )
    console.print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="the token's id (from `bigmap token list`)")],
    db: DbOpt = None,
) -> None:
    """Revoke a token: it is refused from the next call on."""
    try:
        tid = uuid.UUID(token_id)
    except ValueError:
        _fail(f"token_id: {token_id!r} is not a token id (a UUID from `bigmap token list`)", 2)
    tok = _run(_broker(db).revoke_token, tid)
    console.print(f"token {tok.id} revoked")


# ----------------------------------------------------------------------------- capabilities, tenants


@cap_app.command("add")
def capability_add(
    files: Annotated[
        list[Path],
        typer.Argument(help="capability files or folders of them (FINALES files load as they are)"),
    ],
    replace: Annotated[bool, typer.Option(help="replace a different definition")] = False,
    db: DbOpt = None,
) -> None:
    """Register capabilities from JSON files."""
    from bigmap.schemas.capability import load_capability_file
    from bigmap.schemas.common import json_files

    broker = _broker(db)
    actor = _system_actor()
    for path in json_files(files):
        spec = _run(load_capability_file, path)
        row, created = _run(broker.add_capability, actor, spec, replace=replace)
        console.print(
            f"{'added' if created else 'present'}: {row.quantity}/{row.method}", soft_wrap=True
        )


@cap_app.command("list")
def capability_list(db: DbOpt = None) -> None:
    table = Table("quantity", "method", "active", "providers")
    for c, n in _broker(db).list_capabilities():
        table.add_row(c.quantity, c.method, str(c.is_active), str(n))
    console.print(table)


@tenant_app.command("add")
def tenant_add(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="tenant files or folders of them (FINALES tenant files load as they are)"
        ),
    ],
    owner: Annotated[str, typer.Option(help="the user the tenants belong to")],
    db: DbOpt = None,
) -> None:
    """Register tenants. One file prints its tenant's uuid; several print a line each: uuid,
    name and file. All files are read and checked before any tenant is registered."""
    from bigmap.schemas.common import json_files
    from bigmap.schemas.tenant import load_tenant_file

    broker = _broker(db)
    paths = list(json_files(files))

    def load(path: Path):
        try:
            return load_tenant_file(path)
        except (ValueError, OSError) as exc:
            raise ValueError(f"{path}: {exc}") from exc

    specs = [_run(load, path) for path in paths]
    for path, spec in zip(paths, specs, strict=True):
        tenant, warnings, _ = _run(broker.register_tenant, _system_actor(), spec, owner=owner)
        for w in warnings:
            err.print(f"[yellow]warning:[/yellow] {w}")
        print(
            tenant.id
            if len(files) == 1 and not files[0].is_dir()
            else f"{tenant.id}  {tenant.name}  {path}"
        )


@tenant_app.command("list")
def tenant_list(db: DbOpt = None) -> None:
    broker = _broker(db)
    tenants = broker.list_tenants()
    details = broker.tenant_details(tenants)
    table = Table("name", "owner", "kind", "provides", "id")
    for t in tenants:
        provides = ", ".join(f"{p['quantity']}/{p['method']}" for p in details[t.id]["provides"])
        table.add_row(t.name, details[t.id]["owner"], t.kind, provides, str(t.id))
    console.print(table)


# ----------------------------------------------------------------------------- worker


@app.command()
def worker(
    tenant: Annotated[
        str | None,
        typer.Argument(
            help="a built-in tenant (electrolyte-model, cell-sim, molecule-sim, crystal-sim, "
            "virtual-lab), an installed one (bigmap.tenants entry points: see --list), a file "
            "(my_tenant.py), or a module (my_package.my_tenant[:attribute], also from the "
            "current folder)"
        ),
    ] = None,
    list_: Annotated[
        bool,
        typer.Option(
            "--list",
            help="list the installed plug-ins (tenants, readers, strategies): name, module "
            "and the distribution they come from; then exit",
        ),
    ] = False,
    sila: Annotated[
        Path | None,
        typer.Option(
            "--sila",
            help="serve a SiLA 2 device through this mapping file (YAML) instead of TENANT",
        ),
    ] = None,
    broker: Annotated[
        str | None, typer.Option(help="broker URL (default BIGMAP_BROKER_URL)")
    ] = None,
    token: Annotated[str | None, typer.Option(help="bearer token (default BIGMAP_TOKEN)")] = None,
    concurrency: Annotated[int, typer.Option(help="jobs at once")] = 1,
    poll: Annotated[float, typer.Option(help="seconds to wait for work per claim")] = 10.0,
    max_jobs: Annotated[int | None, typer.Option(help="stop after this many jobs")] = None,
    name: Annotated[
        str | None, typer.Option(help="register under this name (default: the tenant's own)")
    ] = None,
    replace_capabilities: Annotated[
        bool, typer.Option(help="replace differing capability definitions (admin)")
    ] = False,
    log_level: str = "info",
) -> None:
    """Run a tenant: register it, then claim, run and post until stopped (SIGTERM returns
    unfinished claims to the queue)."""
    from bigmap.cli_support import quiet_http_logs
    from bigmap.client import BrokerClient, BrokerError, BrokerUnavailable
    from bigmap.tenants import load_tenant

    quiet_http_logs(log_level)
    if list_:
        _list_plugins()
        return
    if (tenant is None) == (sila is None):
        _fail("give a TENANT or --sila MAPPING.yaml (one of them)", 2)
    if sila is not None:
        from bigmap.tenants.sila.adapter import DeviceUnavailable, build_sila_tenant
        from bigmap.tenants.sila.mapping import MappingError, load_mapping

        try:
            t = build_sila_tenant(load_mapping(sila))
        except MappingError as exc:
            _fail(str(exc), 2)
        except DeviceUnavailable as exc:
            _fail(str(exc), 1)
    else:
        try:
            t = load_tenant(str(tenant))
        except ValueError as exc:
            _fail(str(exc), 2)
    if name:
        t.name = name
    client = BrokerClient(broker, token)
    if not client.token:
        _fail("no token: pass --token or set BIGMAP_TOKEN (bigmap token create NAME)", 2)
    try:
        done = t.serve(
            client,
            concurrency=concurrency,
            poll=poll,
            max_jobs=max_jobs,
            replace_capabilities=replace_capabilities,
        )
    except (BrokerError, BrokerUnavailable, RuntimeError) as exc:
        _fail(str(exc), 1)
    finally:
        device = getattr(t, "sila", None)
        if device is not None:
            device.stop()  # closes the gRPC channel and its subscriptions
    console.print(f"{t.name}: {done} job(s) done")


def _list_plugins() -> None:
    """The entry points of bigmap's plug-in groups, read without importing them."""
    from bigmap import plugins

    table = Table("group", "name", "module", "from", title="installed plug-ins")
    for group in plugins.GROUPS:
        try:
            found = plugins.plugins(group)
        except plugins.PluginError as exc:
            _fail(str(exc), 1)
        for p in found:
            table.add_row(group, p.name, p.value, f"{p.distribution} {p.version} ({p.location})")
    console.print(table)


# ----------------------------------------------------------------------------- ingest (issue 5)


@app.command()
def ingest(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="cycler or impedance files, folders (read recursively) or globs ('runs/*.res')"
        ),
    ],
    format: Annotated[
        str | None,
        typer.Option("--format", help="the reader to use (default: detect from the content)"),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="where to write: a file for one input, a folder for several (default: beside each)",
        ),
    ] = None,
    to: Annotated[
        str,
        typer.Option(
            "--to", help="parquet (the normalised table) or bdf (Battery Data Format CSV)"
        ),
    ] = "parquet",
    post: Annotated[
        bool,
        typer.Option(
            "--post",
            help="post each table to the broker as an unsolicited result (capacity/cycling or "
            "impedance/eis) with the raw file attached",
        ),
    ] = False,
    broker: Annotated[
        str | None, typer.Option("--broker", help="broker URL (default BIGMAP_BROKER_URL)")
    ] = None,
    token: Annotated[
        str | None, typer.Option("--token", help="bearer token (default BIGMAP_TOKEN)")
    ] = None,
    lab: Annotated[
        str | None, typer.Option("--lab", help="the lab (address) the files come from, for --post")
    ] = None,
    cell: Annotated[
        str | None, typer.Option("--cell", help="the cell's name (default: each file's name)")
    ] = None,
) -> None:
    """Read cycler and impedance files into the normalised table and store them as Parquet or
    BDF; with --post, record them at the broker."""
    from bigmap.tenants.lab.ingest import run_ingest

    code = run_ingest(
        paths,
        format=format,
        out=out,
        to=to,
        post=post,
        broker=broker,
        token=token,
        lab=lab,
        cell=cell,
        console=console,
        err=err,
    )
    if code:
        raise typer.Exit(code)


# ----------------------------------------------------------------------------- campaigns (issue 6)

campaign_app = typer.Typer(
    help="Campaigns: the planner's closed loop (run, resume, show, replay).", no_args_is_help=True
)
app.add_typer(campaign_app, name="campaign")
BrokerOpt = Annotated[
    str | None, typer.Option("--broker", help="broker URL (default BIGMAP_BROKER_URL)")
]
TokenOpt = Annotated[
    str | None, typer.Option("--token", help="bearer token (default BIGMAP_TOKEN)")
]


def _planner_client(broker: str | None, token: str | None):
    return broker_client(broker, token)


def _drive(runner, quiet: bool, max_steps: int | None) -> None:
    from bigmap.client import BrokerError, BrokerUnavailable
    from bigmap.planner.display import CampaignProgress, fmt_x

    console.print(
        f"campaign [bold]{runner.cid}[/bold] ({escape(runner.campaign.get('name', ''))})",
        soft_wrap=True,
    )
    console.print(
        f"dashboard: {dashboard_url(runner.client, f'campaigns/{runner.cid}')}", soft_wrap=True
    )
    try:
        if quiet:
            runner.run(max_steps=max_steps)
        else:
            with CampaignProgress(runner.spec, console) as view:
                runner.on_update = view.update
                runner.run(max_steps=max_steps)
    except KeyboardInterrupt:
        runner.pause("interrupted (Ctrl-C)")
        err.print(f"interrupted: continue with [bold]bigmap campaign resume {runner.cid}[/bold]")
        raise typer.Exit(130) from None
    except (BrokerError, BrokerUnavailable) as exc:
        _fail(f"{exc}; the campaign can be resumed: bigmap campaign resume {runner.cid}", 1)
    best = runner.planner.best(runner.h)
    console.print(
        f"status: {runner.status}" + (f" ({runner.reason})" if runner.reason else ""),
        soft_wrap=True,
    )
    if runner.status == "paused":
        console.print(f"continue with: bigmap campaign resume {runner.cid}", soft_wrap=True)
    if best is not None:
        obj = runner.spec.objectives[0]
        console.print(
            f"best {obj.name} = {best.y[obj.name]:.6g} {obj.unit} at {fmt_x(best.x)} "
            f"(result {best.result_id})"
        )
    if runner.status == "failed":
        raise typer.Exit(1)


@campaign_app.command("run")
def campaign_run(
    spec_file: Annotated[Path, typer.Argument(help="the campaign specification (YAML)")],
    broker: BrokerOpt = None,
    token: TokenOpt = None,
    name: Annotated[
        str | None,
        typer.Option(help="campaign name (default: the spec's, with the date and a run tag)"),
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option(help="stop after this many planning steps (resume later)")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="check the spec against the broker and stop")
    ] = False,
) -> None:
    """Start a campaign: check the spec against the broker (as 'campaign validate' does;
    nothing starts when it has a problem), then post requests, wait for results, update the
    model, propose again, until the budget or a stopping rule ends it."""
    from bigmap.cli_campaign import checked_spec
    from bigmap.planner.runner import CampaignRunner

    client = _planner_client(broker, token)
    spec = checked_spec(spec_file, client, show_ok=dry_run)
    if dry_run:
        console.print(
            f"{spec_file}: valid against {client.url}; nothing started (--dry-run)",
            soft_wrap=True,
            highlight=False,
        )
        return
    runner = CampaignRunner.create(
        client, spec, name=name or default_campaign_name(spec.name), base_dir=spec_file.parent
    )
    _drive(runner, quiet, max_steps)


@campaign_app.command("resume")
def campaign_resume(
    campaign_id: Annotated[
        str, typer.Argument(help="the campaign: its id, a unique prefix of it, or part of its name")
    ],
    broker: BrokerOpt = None,
    token: TokenOpt = None,
    max_steps: Annotated[
        int | None, typer.Option(help="stop after this many planning steps")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
) -> None:
    """Continue a campaign where it stopped (after a crash, a kill or --max-steps)."""
    from bigmap.client import BrokerError, BrokerUnavailable
    from bigmap.planner.runner import CampaignRunner
    from bigmap.planner.spec import SpecError

    client = _planner_client(broker, token)
    campaign_id = resolve_campaign(client, campaign_id)
    try:
        runner = CampaignRunner.attach(client, campaign_id)
    except (BrokerError, BrokerUnavailable, SpecError) as exc:
        _fail(str(exc), 1)
    if runner.status in ("completed", "failed"):
        console.print(f"campaign {campaign_id} is {runner.status}: nothing to resume")
        return
    console.print(
        f"resuming at step {runner.step}: {len(runner.h.observations)} result(s) taken in, "
        f"{len(runner.h.pending)} pending"
    )
    _drive(runner, quiet, max_steps)


@campaign_app.command("show")
def campaign_show(
    campaign_id: Annotated[
        str, typer.Argument(help="the campaign: its id, a unique prefix of it, or part of its name")
    ],
    broker: BrokerOpt = None,
    token: TokenOpt = None,
    top: Annotated[int, typer.Option(help="how many candidates")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """The best candidates of a campaign, with the provenance of their results."""
    import json

    from bigmap.client import BrokerError, BrokerUnavailable
    from bigmap.planner.display import best_table
    from bigmap.planner.report import best_candidates

    client = _planner_client(broker, token)
    campaign_id = resolve_campaign(client, campaign_id)
    try:
        spec, camp, rows = best_candidates(client, campaign_id, top)
    except (BrokerError, BrokerUnavailable) as exc:
        _fail(str(exc), 1)
    if as_json:
        print(json.dumps({"campaign": camp, "best": rows}, indent=2, default=str))
        return
    s = camp.get("summary") or {}
    console.print(
        f"campaign {camp['id']} '{camp['name']}': {camp['status']}; "
        f"{s.get('n_results', 0)} result(s), {s.get('n_failed', 0)} failed, "
        f"cost {s.get('cost_spent', 0):g}, strategy {s.get('strategy', spec.strategy.name)}"
    )
    obj = spec.objectives[0]
    console.print(best_table(rows, obj.name, obj.unit))
    for t in s.get("tiers") or []:
        console.print(f"tier {t['name']}: {t['n_in']} in, {t.get('n_passed')} passed")


@campaign_app.command("replay")
def campaign_replay(
    campaign_id: Annotated[
        str, typer.Argument(help="the campaign: its id, a unique prefix of it, or part of its name")
    ],
    broker: BrokerOpt = None,
    token: TokenOpt = None,
    refit: Annotated[
        bool, typer.Option(help="re-fit each stored model state and compare its predictions")
    ] = False,
) -> None:
    """Replay a campaign step by step from its stored events."""
    from bigmap.client import BrokerError, BrokerUnavailable
    from bigmap.planner.display import fmt_x
    from bigmap.planner.report import replay

    client = _planner_client(broker, token)
    campaign_id = resolve_campaign(client, campaign_id)
    try:
        steps = replay(client, campaign_id, refit=refit)
    except (BrokerError, BrokerUnavailable) as exc:
        _fail(str(exc), 1)
    table = Table("step", "strategy", "seen", "best before", "candidates", "model", "check")
    bad = 0
    for st in steps:
        cands = "\n".join(
            f"{fmt_x(c['x'])} -> {c['capability']}"
            + (
                f" (pred {c['predicted']['mean']:.4g}±{c['predicted']['std']:.2g})"
                if c.get("predicted")
                else ""
            )
            for c in st.candidates
        )
        model = ", ".join(f"{m.get('output')}: n={m['n_train']}" for m in st.models)
        check = ""
        if st.check is not None:
            check = "ok" if st.check.get("ok") else f"DIFFERS {st.check}"
            bad += 0 if st.check.get("ok") else 1
        best = "-" if st.best_before is None else f"{st.best_before:.4g}"
        table.add_row(
            str(st.step), st.strategy, str(st.observations_before), best, cands, model, check
        )
    console.print(table)
    if refit and bad:
        _fail(f"{bad} model state(s) did not re-fit to their recorded predictions", 1)


@campaign_app.command("control")
def campaign_control(
    campaign_id: Annotated[
        str, typer.Argument(help="the campaign: its id, a unique prefix of it, or part of its name")
    ],
    action: Annotated[str, typer.Argument(help="run, pause or stop")],
    broker: BrokerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Ask the campaign's planner to pause, continue or stop."""
    from bigmap.client import BrokerError, BrokerUnavailable

    if action not in ("run", "pause", "stop"):
        _fail(f"action must be run, pause or stop, not {action!r}", 2)
    client = _planner_client(broker, token)
    campaign_id = resolve_campaign(client, campaign_id)
    try:
        camp = client.update_campaign(
            campaign_id, control=action, message="bigmap campaign control"
        )
    except (BrokerError, BrokerUnavailable) as exc:
        _fail(str(exc), 1)
    console.print(f"campaign {camp['id']}: control {camp['control']} (status {camp['status']})")


@campaign_app.command("list")
def campaign_list(broker: BrokerOpt = None, token: TokenOpt = None) -> None:
    """The campaigns this user can see."""
    from bigmap.client import BrokerError, BrokerUnavailable

    client = _planner_client(broker, token)
    try:
        camps = client.campaigns()
    except (BrokerError, BrokerUnavailable) as exc:
        _fail(str(exc), 1)
    # one line each, the full id first and the name last: nothing is cut at any width
    print(f"{'id':36}  {'status':9}  {'results':>7}  {'best':>10}  {'updated (UTC)':16}  name")
    for c in camps:
        s = c.get("summary") or {}
        best = s.get("best") or {}
        y = next(iter((best.get("y") or {}).values()), None)
        when = str(c["updated_at"])[:16].replace("T", " ")
        shown = "-" if y is None else f"{y:.4g}"
        print(
            f"{c['id']!s:36}  {c['status']:9}  {s.get('n_results', 0):>7}  {shown:>10}  "
            f"{when:16}  {c['name']}"
        )


campaign_app.command("validate")(cli_campaign.validate)
app.command("request")(cli_request.request)
app.command("result")(cli_request.result)
tenant_app.command("new")(cli_scaffold.new_tenant)


@app.command()
def demo(
    temperature: Annotated[float, typer.Option(help="temperature of the formulation [K]")] = 298.15,
    requests: Annotated[int, typer.Option(help="request budget of the campaign")] = 60,
    seed: Annotated[int, typer.Option(help="random seed")] = 1,
    keep: Annotated[
        bool,
        typer.Option(
            "--keep", help="keep the broker and workers running afterwards (for the dashboard)"
        ),
    ] = False,
    db: Annotated[
        Path | None,
        typer.Option(help="the SQLite file to keep the demo in (default: the user data dir)"),
    ] = None,
) -> None:
    """The closed loop: an embedded broker, the electrolyte model and the emulated
    electrolyte station as workers, and the planner maximising conductivity (about 5 min)."""
    from bigmap.planner.demo import DemoError, run_demo

    try:
        run_demo(
            temperature=temperature,
            requests=requests,
            seed=seed,
            db=db,
            keep=keep,
            console=console,
        )
    except DemoError as exc:
        _fail(str(exc), 1)


# ----------------------------------------------------------------------------- FAIR data (issue 7)

archive_app = typer.Typer(
    help="Archive packages (RO-Crate) of campaigns: export and import.", no_args_is_help=True
)
app.add_typer(archive_app, name="archive")

AsOpt = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="read as this user (or 'public': what anyone may see); default: the operator, "
        "who sees everything",
    ),
]


def _reader(broker, name: str | None):
    from bigmap.store.access import PUBLIC_READER

    if name is None:
        return _system_actor()
    if name == "public":
        return PUBLIC_READER
    return _run(broker.actor_for_user, name)


@app.command()
def query(
    sparql: Annotated[str, typer.Argument(help="a SPARQL query (SELECT, ASK, CONSTRUCT)")],
    db: DbOpt = None,
    as_user: AsOpt = None,
    campaign: Annotated[str | None, typer.Option(help="only this campaign's graph")] = None,
    limit: Annotated[int, typer.Option(help="newest requests and results included")] = 5000,
    json_out: Annotated[bool, typer.Option("--json", help="SPARQL JSON results")] = False,
) -> None:
    """SPARQL over the exported graph (EMMO/BattINFO terms, PROV-O, DCAT): semantic search
    across results. Prefixes emmo:, electrochemistry:, battery:, prov:, schema:, dcat:,
    bigmap:, skos: are declared; EMMO terms carry skos:prefLabel."""
    import json as _json

    from bigmap.ontology import sparql as sp
    from bigmap.server.routers.fair import store_graph

    broker = _broker(db)
    actor = _reader(broker, as_user)
    try:
        sp.prepare(sparql)
    except sp.QueryError as exc:
        _fail(str(exc), 2)
    cid = None
    if campaign:
        try:
            cid = uuid.UUID(campaign)
        except ValueError:
            _fail(f"campaign {campaign!r} is not a UUID", 2)
    graph = _run(store_graph, broker, actor, campaign=cid, limit=limit)
    try:
        out = sp.run(graph, sparql)
    except sp.QueryError as exc:
        _fail(str(exc), 2)
    if "turtle" in out:
        print(out["turtle"])
        return
    if json_out or "boolean" in out:
        print(_json.dumps(out.get("boolean", out), indent=1))
        return
    rows = sp.rows(out)
    names = out.get("head", {}).get("vars", [])
    table = Table(*names)
    for r in rows:
        table.add_row(*[str(r.get(n, "")) for n in names])
    console.print(table)
    console.print(f"{len(rows)} row(s)")


@archive_app.command("export")
def archive_export(
    campaign: Annotated[
        str, typer.Argument(help="the campaign: its id, a unique prefix of it, or part of its name")
    ],
    out: Annotated[Path, typer.Option("--out", help="the zip to write")],
    db: DbOpt = None,
    scope: Annotated[
        str,
        typer.Option(
            help="'public' (what anyone may see, the default for publication), 'all' (a full "
            "backup), or 'user:NAME' (what NAME may see)"
        ),
    ] = "public",
    data_licence: Annotated[str, typer.Option(help="SPDX id of the data's licence")] = "CC-BY-4.0",
    code_licence: Annotated[str, typer.Option(help="SPDX id of the code's licence")] = "MIT",
    creator: Annotated[
        list[str] | None,
        typer.Option(
            help="'Family, Given [ORCID] <e-mail> (Affiliation [ROR id])', all but the name "
            "optional; repeat for several"
        ),
    ] = None,
    publisher: Annotated[
        str | None,
        typer.Option(
            help="'Name [ROR id] <e-mail or URL>' of the publishing organisation (default: "
            "the first creator)"
        ),
    ] = None,
    version: Annotated[
        str | None, typer.Option(help="MAJOR.MINOR.PATCH (default: decided from the changes)")
    ] = None,
    title: Annotated[str | None, typer.Option(help="title of the package")] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="run the community's validators on the package (roc-validator, RO-Crate 1.3, "
            "REQUIRED and RECOMMENDED; InvenioRDM's record schema; pyld on the JSON-LD) and "
            "exit 1 if any has findings",
        ),
    ] = False,
) -> None:
    """Write a campaign's RO-Crate (data, raw files, Parquet tables, JSON-LD, licences,
    creators, semantic version, sha256 of every file) and its InvenioRDM record beside it.
    RO-Crate validators recommend an ORCID for every person, a ROR id for every organisation
    and a contact (e-mail) for a creator or the publisher: ``--check`` names what is missing."""
    from bigmap.archive import ArchiveError, export_campaign
    from bigmap.server.routers.fair import fair_of
    from bigmap.store.access import PUBLIC_READER

    broker = _broker(db)
    if scope == "public":
        actor = PUBLIC_READER
    elif scope == "all":
        actor = _system_actor()
    elif scope.startswith("user:"):
        actor = _run(broker.actor_for_user, scope[5:])
    else:
        _fail(f"scope {scope!r}: public, all or user:NAME", 2)
    try:
        cid = uuid.UUID(campaign)
    except ValueError:
        _fail(f"campaign {campaign!r} is not a UUID", 2)
    camp = _run(broker.get_campaign, _system_actor(), cid)
    from bigmap.store.access import can_see

    if not can_see(actor, camp):
        _fail(
            f"campaign {cid} is {camp.access}: the scope '{scope}' may not see it "
            "(use --scope all, or user:NAME for someone who may)",
            2,
        )
    try:
        res = _run(
            export_campaign,
            fair_of(broker),
            cid,
            out,
            actor=actor,
            scope=scope,
            data_licence=data_licence,
            code_licence=code_licence,
            creators=creator,
            publisher=publisher,
            version=version,
            title=title,
            created_by="(command line)",
        )
    except (ArchiveError, ValueError) as exc:
        _fail(str(exc), 2)
    c = res.counts
    console.print(
        f"{res.path}: version {res.version}{'' if res.new_version else ' (unchanged)'}, "
        f"{c['requests']} requests, {c['results']} results, {c['files']} raw files, "
        f"{c['events']} steps ({c['redacted_events']} withheld, {c['metadata_only']} "
        f"metadata-only); SHACL {'conforms' if res.shacl['conforms'] else 'DOES NOT CONFORM'} "
        f"({res.shacl['violations']} violations, {res.shacl['warnings']} warnings); "
        f"sha256 {res.sha256}"
    )
    console.print(f"InvenioRDM record: {res.invenio_path}")
    if check:
        from bigmap.archive.checks import check_package

        verdicts = check_package(res.path)
        for v in verdicts:
            mark = "[green]PASS[/green]" if v.passed else "[red]FINDINGS[/red]"
            console.print(f"{mark} {v.validator}: {v.summary}")
            for f in v.findings[:50]:
                where = f" [{f['entity']}]" if f.get("entity") else ""
                console.print(
                    f"    {f['level']}: {f['check']}: {f['message']}{where}", markup=False
                )
            if len(v.findings) > 50:
                console.print(f"    ... and {len(v.findings) - 50} more")
        if not all(v.passed for v in verdicts):
            raise typer.Exit(1)


@archive_app.command("import")
def archive_import(
    file: Annotated[Path, typer.Argument(help="a package written by 'bigmap archive export'")],
    db: DbOpt = None,
    source: Annotated[
        str | None,
        typer.Option(
            help="where the package comes from; its owners become users NAME@SOURCE that "
            "cannot log in (default: archive-<campaign id prefix>)"
        ),
    ] = None,
    map_user: Annotated[
        list[str] | None,
        typer.Option(
            "--map-user",
            help="PACKAGE_USER=LOCAL_USER: records of that owner become the local user's; "
            "repeat for several",
        ),
    ] = None,
) -> None:
    """Restore a package into this database, as untrusted input: sizes bounded, hashes and
    every record's schema checked first; owners stay foreign identities (NAME@SOURCE, which
    cannot log in) unless mapped with --map-user; nothing attaches to records already here."""
    from bigmap.archive import ArchiveError, import_package
    from bigmap.archive.package import Limits
    from bigmap.server.routers.fair import fair_of

    mapping = {}
    for item in map_user or []:
        src, sep, local = item.partition("=")
        if not sep or not src.strip() or not local.strip():
            _fail(f"--map-user {item!r}: PACKAGE_USER=LOCAL_USER", 2)
        mapping[src.strip()] = local.strip()
    broker = _broker(db)
    try:
        out = _run(
            import_package,
            fair_of(broker),
            file,
            source=source,
            user_map=mapping,
            limits=Limits.from_settings(),
        )
    except ArchiveError as exc:
        _fail(str(exc), 2)
    n = out["imported"]
    console.print(
        f"campaign {out['campaign_id']}: "
        + ", ".join(f"{v} {k}" for k, v in n.items() if v)
        + (" (already present)" if out["already_present"] else "")
        + f"; owners imported from '{out['source']}'"
    )
    for w in out["warnings"]:
        err.print(f"[yellow]warning:[/yellow] {w}")


@user_app.command("groups")
def user_groups(
    name: str,
    set_: Annotated[
        str | None, typer.Option("--set", help="comma-separated: the complete new set")
    ] = None,
    add: Annotated[str, typer.Option(help="comma-separated groups to add")] = "",
    remove: Annotated[str, typer.Option(help="comma-separated groups to remove")] = "",
    db: DbOpt = None,
) -> None:
    """Show or change a user's groups (who may see restricted data). A running server
    picks the change up on the next call."""
    from bigmap.server.routers.fair import fair_of

    def split(text: str | None) -> list[str]:
        return [g.strip() for g in (text or "").split(",") if g.strip()]

    broker = _broker(db)
    if set_ is None and not add and not remove:
        user = _run(broker.get_user, name)
    else:
        user = _run(
            fair_of(broker).set_groups,
            _system_actor(),
            name,
            groups=None if set_ is None else split(set_),
            add=split(add),
            remove=split(remove),
        )
    console.print(f"{user.name}: {', '.join(user.groups or []) or '(no groups)'}")


if __name__ == "__main__":
    app()
