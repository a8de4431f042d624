"""``bigmap request QUANTITY/METHOD`` and ``bigmap result ID``: ask a broker for a result
from the command line, wait for it, and show it with its units.

The command asks as a tenant of the user (``USER-cli``, registered on first use, or
``--tenant NAME``), nests the parameters under the method as the API wants them, and is
refused, with the reason per tenant, when no running tenant can serve the request now
(``--queue`` keeps it pending for a tenant yet to come).
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bigmap.cli_support import CliError, broker_client, dashboard_url

console = Console()

BrokerOpt = Annotated[
    str | None, typer.Option("--broker", help="broker URL (default BIGMAP_BROKER_URL)")
]
TokenOpt = Annotated[
    str | None, typer.Option("--token", help="bearer token (default BIGMAP_TOKEN)")
]
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def parse_params(pairs: list[str], json_file: Path | None) -> dict[str, Any]:
    """The parameters of ``--json FILE`` (JSON or YAML; ``-`` reads stdin), then each
    ``--param key=value`` on top: the value is read as JSON when it is JSON (``298.15``,
    ``[1, 2]``, ``{"a": 1}``), else as text; ``a.b=1`` sets ``{"a": {"b": 1}}``."""
    import yaml

    params: dict[str, Any] = {}
    if json_file is not None:
        text = sys.stdin.read() if str(json_file) == "-" else json_file.read_text()
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise CliError(f"{json_file}: neither JSON nor YAML ({exc})", 2) from None
        if not isinstance(loaded, dict):
            raise CliError(f"{json_file}: the parameters must be an object (key: value)", 2)
        params = loaded
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--param {pair!r}: write it as key=value", 2)
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        cur = params
        parts = key.strip().split(".")
        for part in parts[:-1]:
            nxt = cur.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise CliError(f"--param {pair!r}: {part} is not an object", 2)
            cur = nxt
        cur[parts[-1]] = value
    return params


def asking_tenant(client: Any, name: str | None) -> dict[str, Any]:
    """A tenant of the user to ask with: ``name``, or ``USER-cli`` (registered if new)."""
    me = client.me()["name"]
    mine = [t for t in client.tenants() if t.get("owner") == me]
    if name:
        hit = [t for t in mine if t["name"] == name]
        if not hit:
            have = ", ".join(sorted(t["name"] for t in mine)) or "none"
            raise CliError(f"you have no tenant {name!r} (yours: {have})", 2)
        return hit[0]
    wanted = f"{me}-cli"
    hit = [t for t in mine if t["name"] == wanted]
    if hit:
        return hit[0]
    return client.register_tenant(
        {
            "name": wanted,
            "kind": "planner",
            "description": f"requests {me} makes with 'bigmap request'",
            "limitations": [],
        }
    )


def _with_names(message: str, client: Any) -> str:
    """``tenant <uuid>`` in a broker's message as ``tenant NAME``."""
    try:
        names = {t["id"]: t["name"] for t in client.tenants()}
    except Exception:  # the names are a courtesy: the message stands without them
        names = {}
    message = _UUID.sub(lambda m: names.get(m.group(0), m.group(0)), message)
    # the same reason for each of a tenant's alternative limitations, said once
    head, sep, tail = message.partition(" (post it with queue=true")
    return "; or ".join(dict.fromkeys(head.split("; or "))) + sep + tail


def request(
    capability: Annotated[
        str, typer.Argument(help="QUANTITY/METHOD, e.g. conductivity/transport_model")
    ],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="key=value (value as JSON when it is); repeat"),
    ] = None,
    json_file: Annotated[
        Path | None,
        typer.Option("--json", help="a JSON or YAML file with the parameters ('-': stdin)"),
    ] = None,
    wait: Annotated[bool, typer.Option(help="wait for the result and show it")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait with --wait")] = 600.0,
    queue: Annotated[
        bool,
        typer.Option(
            help="keep the request pending when no running tenant can serve it now "
            "(default: refuse it, with the reason per tenant)"
        ),
    ] = False,
    tenant: Annotated[
        str | None, typer.Option(help="ask as this tenant of yours (default USER-cli)")
    ] = None,
    priority: Annotated[int, typer.Option(help="-1000 ... 1000")] = 0,
    template: Annotated[
        bool, typer.Option(help="print the capability's parameter template and stop")
    ] = False,
    broker: BrokerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Ask for a quantity by a method: post a request (parameters from --param or --json),
    print its id, and with --wait the result. 'bigmap request Q/M --template' shows what
    the parameters look like."""
    from bigmap.client.errors import NotFoundError, ValidationFailed

    quantity, sep, method = capability.partition("/")
    if not sep or not quantity or not method or "/" in method:
        raise CliError(f"{capability!r}: write the capability as QUANTITY/METHOD", 2)
    client = broker_client(broker, token)
    try:
        tpl = client.template(quantity, method)
    except NotFoundError:
        import difflib

        known = [f"{c['quantity']}/{c['method']}" for c in client.capabilities()]
        close = difflib.get_close_matches(capability, known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else " (bigmap capability list)"
        raise CliError(f"no capability {capability}{hint}", 2) from None
    if template:
        print(json.dumps(tpl.get("parameters"), indent=2))
        return
    params = parse_params(param or [], json_file)
    if not params:
        raise CliError(
            f"give the parameters of {capability} with --param key=value or --json FILE; "
            f"its template (bigmap request {capability} --template): "
            + json.dumps(tpl.get("parameters"))[:600],
            2,
        )
    asker = asking_tenant(client, tenant)
    try:
        req = client.create_request(
            quantity, method, params, tenant_id=asker["id"], priority=priority, queue=queue
        )
    except ValidationFailed as exc:
        why = _with_names(exc.message, client)
        raise CliError(f"the broker refused the request: {why}", 2) from None
    info = req.get("status_info") or {}
    line = f"request {req['id']} {req['status']}"
    if info.get("servable") is False:
        line += f" (queued: {_with_names(info.get('unservable_reason', ''), client)})"
    console.print(line, soft_wrap=True, highlight=False)
    rid = req["id"]
    console.print(f"dashboard: {dashboard_url(client, f'requests/{rid}')}", soft_wrap=True)
    if not wait:
        console.print(f"its result: bigmap result {req['id']} --wait", soft_wrap=True)
        return
    show_result(client, str(req["id"]), wait=timeout, as_json=False)


def show_result(client: Any, ident: str, *, wait: float, as_json: bool) -> None:
    """Print the result ``ident`` names (a result id, or the id of its request)."""
    from bigmap.client.errors import NotFoundError

    try:
        res = client.result(ident)
    except NotFoundError:
        res = _result_of_request(client, ident, wait)
    if as_json:
        print(json.dumps(res, indent=2))
        return
    console.print(
        f"result {res['id']} of {res['quantity']}/{res['method']} ({res['status']}) for "
        f"request {res['request_id']}",
        soft_wrap=True,
        highlight=False,
    )
    sw = res.get("software") or (res.get("provenance") or {}).get("software") or {}
    prov = res.get("provenance") or {}
    origin = "emulated instrument" if prov.get("emulated") else ""
    console.print(
        f"by {sw.get('name', '?')} {sw.get('version', '')}" + (f" ({origin})" if origin else ""),
        highlight=False,
    )
    try:
        cap = client.capability(res["quantity"], res["method"])
    except NotFoundError:
        cap = {}
    table = Table("field", "value", "unit")
    for path, value in _numbers(res.get("data") or {}):
        table.add_row(path, _fmt(value), _unit(cap, path))
    console.print(table)
    res_id = res["id"]
    console.print(f"dashboard: {dashboard_url(client, f'results/{res_id}')}", soft_wrap=True)


def _result_of_request(client: Any, ident: str, wait: float) -> dict[str, Any]:
    from bigmap.client.errors import NotFoundError, RequestFailed

    try:
        client.request(ident)
    except NotFoundError:
        raise CliError(f"no result or request {ident} that you may see", 2) from None
    t0 = time.monotonic()
    try:
        res = client.result_of(ident, wait=min(wait, 60))
        while res is None and time.monotonic() - t0 < wait:
            res = client.result_of(ident, wait=min(wait - (time.monotonic() - t0), 60))
    except RequestFailed as exc:
        raise CliError(str(exc), 1) from None
    if res is not None:
        return res
    req = client.request(ident)
    info = req.get("status_info") or {}
    why = info.get("unservable_reason") if info.get("servable") is False else ""
    raise CliError(
        f"request {ident} is {req['status']}, no result yet"
        + (f" ({_with_names(why, client)})" if why else "")
        + ("" if wait else "; add --wait to wait for it"),
        1,
    )


def _numbers(data: Any, prefix: str = "", limit: int = 60) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []

    def walk(v: Any, path: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(v, bool) or v is None:
            return
        if (
            isinstance(v, int | float)
            or isinstance(v, list)
            and v
            and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
            or isinstance(v, str)
            and len(v) < 80
            and path.endswith(("name", "SMILES", "formula"))
        ):
            out.append((path, v))
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(x, f"{path}.{k}" if path else str(k))
        elif isinstance(v, list):
            for i, x in enumerate(v[:10]):
                walk(x, f"{path}.{i}")

    walk(data, prefix)
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, list):
        shown = ", ".join(_fmt(x) for x in v[:6])
        return f"[{shown}{', ...' if len(v) > 6 else ''}]"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _unit(cap: dict[str, Any], path: str) -> str:
    from bigmap.schemas.units import unit_for

    parts: list[str | int] = [int(p) if p.isdigit() else p for p in path.split(".")]
    keys = [p for p in parts if isinstance(p, str)]
    if not keys or not cap:
        return ""
    return unit_for(parts, keys[-1], {}, cap.get("units") or {}, cap.get("result_schema")) or ""


def result(
    ident: Annotated[str, typer.Argument(help="a result id, or the id of the request it answers")],
    wait: Annotated[bool, typer.Option(help="wait for the result of a request")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait with --wait")] = 600.0,
    as_json: Annotated[bool, typer.Option("--json", help="print the whole result as JSON")] = False,
    broker: BrokerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Show a result: its numbers with their units, who made it, and where to see it."""
    client = broker_client(broker, token)
    show_result(client, ident, wait=timeout if wait else 0.0, as_json=as_json)
