"""``bigmap sila``: SiLA 2 devices. ``discover`` lists what a server offers and writes a
mapping skeleton; ``check`` connects a mapping to its device and shows the capabilities it
makes; ``serve-emulator`` runs bigmap's emulated lab as a SiLA 2 server. A mapped device is
served by ``bigmap worker --sila MAPPING.yaml``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from bigmap.cli_support import CliError

sila_app = typer.Typer(
    help="SiLA 2 lab devices: discover a server, check a mapping, serve the emulated lab.",
    no_args_is_help=True,
)


def _address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise CliError(f"{address!r}: give the server as HOST:PORT", 2)
    return host, int(port)


@sila_app.command("discover")
def discover(
    address: Annotated[str, typer.Argument(help="the SiLA 2 server, HOST:PORT")],
    insecure: Annotated[
        bool, typer.Option(help="no TLS (test servers; real devices use TLS)")
    ] = False,
    root_certs: Annotated[
        Path | None, typer.Option(help="PEM file of the CA that signed the server")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="write the mapping skeleton to this file")
    ] = None,
) -> None:
    """List the server's features, commands, properties and units, and print a mapping
    skeleton (YAML) to edit."""
    from bigmap.tenants.sila.adapter import DeviceUnavailable, SilaConnection
    from bigmap.tenants.sila.discover import describe, skeleton
    from bigmap.tenants.sila.mapping import Mapping, ServerSpec

    host, port = _address(address)
    server = ServerSpec(
        host=host,
        port=port,
        insecure=insecure,
        root_certs=str(root_certs.resolve()) if root_certs else None,
    )
    mapping = Mapping.model_construct(
        server=server, tenant=None, emulated=False, capabilities=[], base_dir=Path(".")
    )
    conn = SilaConnection(mapping)
    try:
        conn.client()
    except DeviceUnavailable as exc:
        raise CliError(str(exc), 1) from None
    try:
        print(describe(conn.info, conn.features))
        text = skeleton(server, conn.info, conn.features)
    finally:
        conn.close()
    if out:
        out.write_text(text)
        print(f"\nmapping skeleton written to {out}")
    else:
        print("\n# ---- mapping skeleton ----")
        print(text)


@sila_app.command("check")
def check(
    mapping: Annotated[Path, typer.Argument(help="the mapping file (YAML)")],
) -> None:
    """Read a mapping, connect to its device and check the one against the other; print the
    capabilities it makes (parameter and result schemas, limitations)."""
    from bigmap.tenants.sila.adapter import DeviceUnavailable, build_sila_tenant
    from bigmap.tenants.sila.mapping import MappingError, load_mapping

    try:
        tenant = build_sila_tenant(load_mapping(mapping))
    except (MappingError, DeviceUnavailable) as exc:
        raise CliError(str(exc), 2 if isinstance(exc, MappingError) else 1) from None
    try:
        for (q, m), cap in tenant.capabilities.items():
            print(f"{q}/{m}")
            print("  parameters:", json.dumps(cap.spec.parameter_schema)[:2000])
            print("  result:    ", json.dumps(cap.spec.result_schema)[:2000])
            print("  limitations:", json.dumps(cap.current_limitations()))
        print("status:", json.dumps(tenant.heartbeat_software()["status"]))  # type: ignore[index]
    finally:
        tenant.sila.stop()  # type: ignore[attr-defined]


@sila_app.command("serve-emulator")
def serve_emulator(
    port: Annotated[int, typer.Option(help="port to listen on")] = 50052,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    insecure: Annotated[
        bool, typer.Option(help="no TLS (otherwise a self-signed certificate is made)")
    ] = False,
    ca_out: Annotated[
        Path | None,
        typer.Option(help="with TLS: write the self-signed certificate here (root_certs)"),
    ] = None,
    time_scale: Annotated[
        float, typer.Option(help="wall-clock seconds per emulated second (0: no waiting)")
    ] = 0.0,
    seed: Annotated[int | None, typer.Option(help="random seed of the emulators")] = None,
) -> None:
    """Run the virtual lab's emulated instruments (electrolyte station, coin-cell assembler,
    cycler) as one SiLA 2 server; serve it with `bigmap worker --sila lab-emulator.yaml` in
    place of `bigmap worker virtual-lab`. Every result through it says "emulated" in its
    provenance."""
    from bigmap.tenants.sila.emulator import make_emulator_server

    server = make_emulator_server(time_scale=time_scale, seed=seed)
    if insecure:
        server.start_insecure(host, port, enable_discovery=False)
    else:
        server.start(host, port, enable_discovery=True)
        if ca_out and server.generated_ca:
            ca_out.write_bytes(server.generated_ca)
    print(f"emulated lab serving SiLA 2 on {host}:{port} ({'insecure' if insecure else 'TLS'})")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop(1.0)
