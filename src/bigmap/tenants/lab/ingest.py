"""Lab files into the FAIR store: a cell test or an impedance spectrum that another lab (or
another cycler) recorded becomes an unsolicited result at the broker, with the raw file
attached and its provenance, so that it is searchable, citable and usable by the life model
and the planner like a result bigmap measured itself. Through the client only.

Capabilities (registered when the broker lacks them):

- ``capacity/cycling`` (FINALES' own schema, the one the virtual lab's cycler answers): the
  per-cycle charge and discharge capacities alternately in ``capacity_list`` [A h], the
  figures of merit, and the FINALES early-life descriptors (``capacity_vector_variance``,
  ``delta_coulombic_efficiency``, ``voltage_gap_charge_discharge``) that
  ``degradationEOL/degradation_model`` takes, when the file has enough cycles.
- ``impedance/eis`` (bigmap's; FINALES defines none): the spectrum (``frequency`` [Hz],
  ``z_real``/``z_imag`` [ohm], the imaginary part with its sign) and its range.

Provenance of every posted result: the file (name, SHA-256, size), the instrument family and
the format, the reader and the library that parsed the file with their versions, who ingested
it; the raw file and the normalised table (Parquet) are attached. The same file posted twice
gives the first result back (the idempotency key is the file's SHA-256).
"""

from __future__ import annotations

import getpass
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from bigmap.client import BrokerClient, ConflictError
from bigmap.schemas.capability import CapabilitySpec, finales_capability
from bigmap.schemas.tenant import TenantSpec

TENANT_NAME = "lab-ingest"

_LOCATION = {
    "type": "object",
    "properties": {
        "address": {"type": "string"},
        "detail_1": {"type": ["string", "null"]},
        "detail_2": {"type": ["string", "null"]},
    },
    "required": ["address"],
}

IMPEDANCE_EIS = CapabilitySpec(
    quantity="impedance",
    method="eis",
    description="an electrochemical impedance spectrum of a cell or sample (PEIS/GEIS)",
    parameter_schema={
        "type": "object",
        "properties": {
            "cell_info": {"type": "object", "description": "the cell or sample measured"},
            "location": _LOCATION,
            "technique": {"type": "string", "description": "e.g. PEIS, GEIS, EISPOT"},
            "temperature": {"type": ["number", "null"], "unit": "kelvin"},
            "amplitude": {"type": ["number", "null"], "description": "AC amplitude"},
        },
        "required": ["cell_info"],
    },
    result_schema={
        "type": "object",
        "properties": {
            "frequency": {"type": "array", "items": {"type": "number"}, "unit": "hertz"},
            "z_real": {"type": "array", "items": {"type": "number"}, "unit": "ohm"},
            "z_imag": {
                "type": "array",
                "items": {"type": "number"},
                "unit": "ohm",
                "description": "imaginary part, negative for a capacitive response",
            },
            "frequency_range": {
                "type": "array",
                "items": {"type": "number"},
                "minItems": 2,
                "maxItems": 2,
                "unit": "hertz",
            },
            "cell_info": {"type": "object"},
        },
        "required": ["frequency", "z_real", "z_imag"],
    },
    units={"frequency": "hertz", "z_real": "ohm", "z_imag": "ohm", "frequency_range": "hertz"},
    cost=1,
    fidelity=1.0,
)


class IngestPoster:
    """Posts normalised tables to a broker as unsolicited results of the tenant
    ``lab-ingest`` (an instrument tenant that provides nothing: it only records)."""

    def __init__(
        self,
        client: BrokerClient,
        *,
        lab: str | None = None,
        cell: str | None = None,
        tenant_name: str = TENANT_NAME,
    ) -> None:
        self.client = client
        self.lab = lab or "unknown lab"
        self.cell = cell
        for spec in (finales_capability("capacity", "cycling"), IMPEDANCE_EIS):
            try:
                client.capability(spec.quantity, spec.method)
            except Exception:  # noqa: BLE001 - not there (or not visible): add it
                try:
                    client.add_capability(spec.model_dump(mode="json"))
                except ConflictError:
                    pass  # added meanwhile by someone else
        from bigmap import __version__

        tenant = client.register_tenant(
            TenantSpec(
                name=tenant_name,
                kind="instrument",
                description="lab files ingested with `bigmap ingest --post`",
                software={"name": "bigmap-ingest", "version": __version__},
            ).model_dump(mode="json")
        )
        self.tenant_id = str(tenant["id"])

    def post(self, path: Path, df: pd.DataFrame) -> dict[str, Any]:
        """Post one table (as read from ``path``); returns the result."""
        from bigmap.analysis.table import write_parquet

        src = dict(df.attrs["source"])
        raw = Path(path).read_bytes()
        cell = self.cell or Path(path).stem
        cell_info = {"cell_name": cell, "uuid": None}
        location = {"address": self.lab, "detail_1": src["instrument"], "detail_2": None}
        with tempfile.TemporaryDirectory() as tmp:
            pq = write_parquet(df, Path(tmp) / "table.parquet", src).read_bytes()
        files = [
            (Path(path).name, raw, "application/octet-stream"),
            (Path(path).stem + ".parquet", pq, "application/vnd.apache.parquet"),
        ]
        provenance = {
            "source_file": {"name": src["file"], "sha256": src["sha256"], "bytes": len(raw)},
            "instruments": {src["instrument"]: {"file_format": src["format"]}},
            "reader": {
                "function": src["reader"],
                "library": src["library"],
                "library_version": src["library_version"],
                "bigmap_version": src["bigmap_version"],
            },
            "ingested_by": getpass.getuser(),
            "emulated": False,
        }
        if df.attrs.get("kind") == "impedance":
            quantity, method, params, data = "impedance", "eis", *self._impedance(df, cell_info)
            params["location"] = location
        else:
            quantity, method, params, data = (
                "capacity",
                "cycling",
                *self._cycling(df, cell_info, location, src),
            )
        return self.client.post_result(
            None,
            self.tenant_id,
            data,
            quantity=quantity,
            method=method,
            parameters=params,
            software={"name": "bigmap-ingest", "version": src["bigmap_version"]},
            provenance=provenance,
            files=files,
            idempotency_key=f"ingest:{src['sha256']}",
        )

    @staticmethod
    def _impedance(
        df: pd.DataFrame, cell_info: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        f = df["frequency_Hz"]
        params = {"cell_info": cell_info, "technique": "EIS"}
        data = {
            "frequency": f.tolist(),
            "z_real": df["z_real_ohm"].tolist(),
            "z_imag": df["z_imag_ohm"].tolist(),
            "frequency_range": [float(f.min()), float(f.max())],
            "cell_info": cell_info,
        }
        return params, data

    @staticmethod
    def _cycling(
        df: pd.DataFrame,
        cell_info: dict[str, Any],
        location: dict[str, Any],
        src: dict[str, Any],
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        from bigmap.analysis.fom import early_life_features, figures_of_merit

        fom = figures_of_merit(df)
        caps: list[float] = []
        for qc, qd in zip(fom["charge_capacity_Ah"], fom["discharge_capacity_Ah"], strict=True):
            caps += [qc or 0.0, qd or 0.0]
        v = df["voltage_V"]
        params = {
            "cycling_protocol": f"external: {src['format']} file {src['file']}",
            "number_cycles": len(fom["cycles"]),
            "cell_info": cell_info,
            "location": location,
            "reservation_number": src["sha256"][:16],
            "V_max": float(v.max()),
            "V_min": float(v.min()),
            "I_max": float(df["current_A"].abs().max()),
        }
        temperature = df["temperature_K"].median()
        data: dict[str, Any] = {
            "capacity_list": caps,
            "channel_list": [],
            "cell_info": cell_info,
            **early_life_features(df, fom),
            "figures_of_merit": fom,
            "raw_file": src["file"],
            "temperature": None if pd.isna(temperature) else float(temperature),
        }
        return params, data


# ----------------------------------------------------------------------------- bigmap ingest

_GLOB = set("*?[")
_OUTPUTS = (".parquet", ".bdf.csv")


def expand(paths: list[str]) -> tuple[list[Path], list[str]]:
    """Files from files, folders (recursively; hidden files and bigmap's own outputs left
    out) and globs, in order, each once; and the arguments that matched nothing."""
    import glob

    files: list[Path] = []
    missing: list[str] = []
    for arg in paths:
        p = Path(arg)
        if p.is_file():
            found = [p]
        elif p.is_dir():
            found = sorted(
                f
                for f in p.rglob("*")
                if f.is_file()
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
                and not f.name.endswith(_OUTPUTS)
            )
        elif _GLOB & set(arg):
            found = sorted(
                Path(f)
                for f in glob.glob(arg, recursive=True)
                if Path(f).is_file() and not f.endswith(_OUTPUTS)
            )
        else:
            found = []
        if not found:
            missing.append(arg)
        files += found
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, missing


def _target(file: Path, out: Path | None, many: bool, to: str) -> Path:
    suffix = ".bdf.csv" if to == "bdf" else ".parquet"
    name = file.name + suffix
    if out is None:
        return file.with_name(name)
    if many or out.is_dir():
        return out / name
    return out


def run_ingest(
    paths: list[str],
    *,
    format: str | None,
    out: Path | None,
    to: str,
    post: bool,
    broker: str | None,
    token: str | None,
    lab: str | None,
    cell: str | None,
    console: Any,
    err: Any,
) -> int:
    """``bigmap ingest``: returns the exit code (0 all read, 2 a file could not be read or
    written, 1 the broker refused or could not be reached)."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from bigmap.analysis import IngestError, read_cycler_file, write_parquet
    from bigmap.analysis.fom import cycle_summary
    from bigmap.analysis.readers import formats, write_bdf
    from bigmap.client import BrokerError, BrokerUnavailable

    if to not in ("parquet", "bdf"):
        err.print(f"[red]error:[/red] --to {to!r}: parquet or bdf")
        return 2
    if format is not None and format not in formats():
        err.print(f"[red]error:[/red] --format {format!r}: one of {', '.join(formats())}")
        return 2
    files, missing = expand(paths)
    for m in missing:
        err.print(f"[red]error:[/red] {m}: no such file, folder or matching files")
    if missing:
        return 2
    many = len(files) > 1
    if out is not None and many:
        out.mkdir(parents=True, exist_ok=True)
    poster = None
    if post:
        client = BrokerClient(broker, token)
        if not client.token:
            err.print("[red]error:[/red] no token: pass --token or set BIGMAP_TOKEN")
            return 2
        try:
            poster = IngestPoster(client, lab=lab, cell=cell if not many else None)
        except (BrokerError, BrokerUnavailable) as exc:
            err.print(f"[red]error:[/red] the broker refused the ingest tenant: {exc}")
            return 1
    failed = broker_failed = 0
    progress = Progress(
        TextColumn("[bold]ingest[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=err,
        transient=True,
        disable=not many,
    )
    with progress:
        task = progress.add_task("", total=len(files))
        for f in files:
            progress.update(task, description=f.name)
            t0 = time.perf_counter()
            try:
                df = read_cycler_file(f, format)
                kind = df.attrs.get("kind", "cycling")
                target = _target(f, out, many, to)
                if to == "bdf" and kind == "cycling":
                    write_bdf(df, target)
                else:
                    if to == "bdf":  # a spectrum has no BDF form
                        target = target.with_name(target.name.removesuffix(".bdf.csv") + ".parquet")
                    write_parquet(df, target, df.attrs["source"])
            except IngestError as exc:
                progress.console.print(f"[red]error:[/red] {exc}")
                failed += 1
                progress.advance(task)
                continue
            except OSError as exc:
                progress.console.print(f"[red]error:[/red] cannot write for {f.name}: {exc}")
                failed += 1
                progress.advance(task)
                continue
            src = df.attrs["source"]
            what = (
                f"{len(cycle_summary(df))} cycle(s)"
                if kind == "cycling"
                else f"{len(df)} frequencies"
            )
            line = (
                f"{f.name}: {src['format']}, {len(df)} rows, {what}, "
                f"{time.perf_counter() - t0:.2f} s -> {target}"
            )
            if poster is not None:
                try:
                    res = poster.post(f, df)
                    line += f"; posted result {res['id']} ({res['quantity']}/{res['method']})"
                except (BrokerError, BrokerUnavailable) as exc:
                    progress.console.print(f"[red]error:[/red] {f.name}: the broker said: {exc}")
                    broker_failed += 1
            console.print(line, highlight=False, soft_wrap=True)
            progress.advance(task)
    if many:
        ok = len(files) - failed - broker_failed
        console.print(f"{ok} of {len(files)} file(s) ingested" + (", posted" if post else ""))
    return 2 if failed else (1 if broker_failed else 0)
