"""Reference pages generated from the code, so that they cannot drift from it:
``docs/cli.md`` from the ``bigmap`` command (Typer/Click) and the key tables of
``docs/campaign-spec.md`` from the campaign specification's models.

    python -m bigmap.docgen          # rewrite both
    python -m bigmap.docgen --check  # exit 1 when either is out of date (a test runs this)
"""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CLI_MD = ROOT / "docs" / "cli.md"
SPEC_MD = ROOT / "docs" / "campaign-spec.md"
BEGIN, END = "<!-- generated: keys -->", "<!-- end of generated keys -->"


# ----------------------------------------------------------------------------- the CLI


def _param_line(p: Any) -> str:
    if p.param_type_name == "argument":
        name = (p.metavar or p.name or "").upper()
        help_ = " ".join((getattr(p, "help", None) or "").split())
        opt = "" if p.required else ", optional"
        return f"- `{name}` (argument{opt}): {help_}".rstrip(": ")
    names = ", ".join(f"`{o}`" for o in [*p.opts, *p.secondary_opts])
    help_ = " ".join((p.help or "").split())
    default = ""
    if not p.is_flag and p.default not in (None, "", ()) and not callable(p.default):
        default = f" (default: `{p.default}`)"
    kind = ""
    return f"- {names}{kind}: {help_}{default}".rstrip(": ")


def cli_markdown() -> str:
    import typer

    from bigmap.cli import app

    root = typer.main.get_command(app)
    out = [
        "# The `bigmap` command",
        "",
        "Generated from the code by `python -m bigmap.docgen` (a test fails when it is out of "
        "date). Every command answers `--help`. Errors are one line (`error: ...`, exit code 2 "
        "for bad input, 1 otherwise); `--debug` anywhere (or `BIGMAP_DEBUG=1`) shows the "
        "traceback. Commands that talk to a broker read `BIGMAP_BROKER_URL` and "
        "`BIGMAP_TOKEN`; commands that open the database take `--db` (a file path or a URL) "
        "or `BIGMAP_DATABASE_URL`.",
        "",
    ]

    def walk(cmd: Any, path: list[str]) -> None:
        if hasattr(cmd, "commands"):
            for name in sorted(cmd.commands):
                walk(cmd.commands[name], [*path, name])
            return
        ctx = cmd.context_class(cmd, info_name=" ".join(path))
        out.append(f"## `{' '.join(path)}`")
        out.append("")
        out.append(" ".join((cmd.help or "").split()))
        out.append("")
        pieces = " ".join(cmd.collect_usage_pieces(ctx))
        out.append(f"    {' '.join(path)} {pieces}")
        out.append("")
        params = [p for p in cmd.params if p.name != "help"]
        out.extend(_param_line(p) for p in params)
        out.append("")

    walk(root, ["bigmap"])
    return "\n".join(out).rstrip() + "\n"


# ----------------------------------------------------------------------------- the spec


def _type_name(t: Any) -> str:
    origin = typing.get_origin(t)
    args = typing.get_args(t)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(dict.fromkeys(names)) + (" or null" if type(None) in args else "")
    if origin in (list, tuple):
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping of {_type_name(args[0])} to {_type_name(args[1])}" if args else "mapping"
    if isinstance(t, type):
        return {"str": "text", "int": "integer", "float": "number", "bool": "true/false"}.get(
            t.__name__, t.__name__
        )
    return str(t).replace("typing.", "")


def _default(f: Any) -> str:
    from pydantic_core import PydanticUndefined

    if f.is_required():
        return "**required**"
    if f.default_factory is not None:
        d = f.default_factory()
        return "(empty)" if d in ({}, []) else f"`{d!r}`"
    if f.default is PydanticUndefined or f.default is None:
        return "–"
    return f"`{f.default!r}`"


def _limits(f: Any) -> str:
    out = []
    for m in f.metadata:
        for attr, sym in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            v = getattr(m, attr, None)
            if v is not None:
                out.append(f"{sym} {v}")
        for attr in ("min_length", "max_length"):
            v = getattr(m, attr, None)
            if v is not None:
                out.append(f"{attr.replace('_', ' ')} {v}")
    return ", ".join(out)


def spec_tables() -> str:
    from bigmap.planner import spec as s

    sections = [
        ("the campaign (top level)", s.CampaignSpec),
        ("`variables[]` with `type: continuous` (the default type)", s.ContinuousVariable),
        ("`variables[]` with `type: integer`", s.IntegerVariable),
        ("`variables[]` with `type: categorical`", s.CategoricalVariable),
        ("`variables[]` with `type: mixture`", s.MixtureVariable),
        ("`variables[].components[]` of a mixture", s.Component),
        ("`objectives[]`", s.Objective),
        ("`constraints[]` with `type: linear` (the default type)", s.LinearConstraint),
        ("`constraints[]` with `type: outcome`", s.OutcomeConstraint),
        ("`measurements[]`", s.Measurement),
        ("`tiers[]` (a funnel)", s.Tier),
        ("`budget`", s.Budget),
        ("`stopping`", s.Stopping),
        ("`strategy`", s.StrategySpec),
        ("`pool`", s.Pool),
    ]
    out = []
    for title, model in sections:
        out.append(f"### {title}")
        out.append("")
        out.append("| key | type | default | limits | what it is |")
        out.append("|---|---|---|---|---|")
        for name, f in model.model_fields.items():
            desc = " ".join((f.description or "").split()).replace("|", "\\|")
            out.append(
                f"| `{name}` | {_type_name(f.annotation)} | {_default(f)} | {_limits(f)} | {desc} |"
            )
        out.append("")
    return "\n".join(out)


def spec_markdown(current: str) -> str:
    a, b = current.index(BEGIN) + len(BEGIN), current.index(END)
    return current[:a] + "\n\n" + spec_tables() + "\n" + current[b:]


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for path, make in ((CLI_MD, lambda _: cli_markdown()), (SPEC_MD, spec_markdown)):
        old = path.read_text() if path.exists() else ""
        new = make(old)
        if new != old:
            stale.append(path)
            if not check:
                path.write_text(new)
    if check and stale:
        print("out of date: " + ", ".join(str(p) for p in stale) + " (python -m bigmap.docgen)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
