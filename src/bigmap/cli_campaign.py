"""``bigmap campaign validate SPEC`` (and the check ``campaign run`` makes before it starts):
a campaign specification checked against the live broker's catalogue."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from bigmap.cli_support import CliError, broker_client

console = Console()

BrokerOpt = Annotated[
    str | None, typer.Option("--broker", help="broker URL (default BIGMAP_BROKER_URL)")
]
TokenOpt = Annotated[
    str | None, typer.Option("--token", help="bearer token (default BIGMAP_TOKEN)")
]


def checked_spec(spec_file: Path, client: Any, *, show_ok: bool = False) -> Any:
    """The spec of ``spec_file``, checked against the broker; ``CliError`` (exit 2) listing
    every problem when it has any. Warnings are printed and do not stop it."""
    from bigmap.planner.check import check_spec
    from bigmap.planner.spec import load_spec

    spec = load_spec(spec_file)
    report = check_spec(spec, client)
    for f in report.findings:
        if f.level == "warning" or (show_ok and f.level == "ok"):
            console.print(f.line(), soft_wrap=True, highlight=False, markup=False)
    if report.errors:
        lines = "\n".join(f"  {f.path}: {f.message}" for f in report.errors)
        raise CliError(
            f"{spec_file}: {len(report.errors)} problem(s) against the broker at {client.url}; "
            f"nothing was started:\n{lines}",
            2,
        )
    return spec


def validate(
    spec_file: Annotated[Path, typer.Argument(help="the campaign specification (YAML)")],
    broker: BrokerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Check a campaign specification against the broker, without starting it: keys and
    values (with spelling suggestions), that every capability exists and is served, that
    every output path is in the capability's result schema, that the units convert."""
    client = broker_client(broker, token, retries=2)
    spec = checked_spec(spec_file, client, show_ok=True)
    n = len(spec.measurements)
    console.print(
        f"{spec_file}: valid against {client.url} ({n} measurement(s), "
        f"{len(spec.objectives)} objective(s)); start it with: bigmap campaign run {spec_file}",
        soft_wrap=True,
        highlight=False,
    )


def refuse_unknown_spec(spec_file: Path) -> None:
    if not spec_file.exists():
        raise CliError(f"no campaign specification at {spec_file}", 2)
