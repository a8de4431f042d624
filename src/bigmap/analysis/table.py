"""The normalised cycling table that every reader returns, and its Parquet form.

One row per record of the cycler. Columns (units in the names; ``UNITS`` gives pint strings):

============================  =======  =================================================
column                        dtype    meaning
============================  =======  =================================================
``test_time_s``               float64  time since the start of the test [s]
``cycle``                     int64    cycle index as the cycler numbered it
``step``                      int64    program step index as the cycler numbered it
``step_type``                 string   ``charge``, ``discharge``, ``rest`` or ``other``
``current_A``                 float64  current [A], **positive = charge**, negative = discharge
``voltage_V``                 float64  cell voltage [V]
``charge_capacity_Ah``        float64  charge passed while charging since the start of the
                                       cycle [A h] (resets to 0 with each new cycle)
``discharge_capacity_Ah``     float64  charge passed while discharging since the start of the
                                       cycle [A h], positive
``charge_energy_Wh``          float64  energy put in since the start of the cycle [W h]
``discharge_energy_Wh``       float64  energy taken out since the start of the cycle [W h]
``temperature_K``             float64  cell temperature [K]; NaN when the file has none
``source_row``                int64    1-based line (text) or record (binary) number in the
                                       source file, for tracing a value back to the file
============================  =======  =================================================

Impedance spectra (BioLogic PEIS/GEIS, Gamry EIS) have a table of their own,
``IMPEDANCE_COLUMNS`` (``frequency_Hz``, ``z_real_ohm``, ``z_imag_ohm`` with the sign of the
impedance itself, i.e. negative for a capacitive response, ...); ``df.attrs["kind"]`` says
which of the two a table is.

The capacity and energy convention is Arbin's (cumulative within a cycle), so that the
charge capacity of cycle *n* is the maximum of ``charge_capacity_Ah`` over its rows. Readers
build these from the cycler's own counters (which integrate at the instrument's rate), not by
re-integrating the sampled current.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

COLUMNS: dict[str, str] = {
    "test_time_s": "float64",
    "cycle": "int64",
    "step": "int64",
    "step_type": "string",
    "current_A": "float64",
    "voltage_V": "float64",
    "charge_capacity_Ah": "float64",
    "discharge_capacity_Ah": "float64",
    "charge_energy_Wh": "float64",
    "discharge_energy_Wh": "float64",
    "temperature_K": "float64",
    "source_row": "int64",
}

UNITS: dict[str, str] = {
    "test_time_s": "second",
    "cycle": "",
    "step": "",
    "step_type": "",
    "current_A": "ampere",
    "voltage_V": "volt",
    "charge_capacity_Ah": "ampere * hour",
    "discharge_capacity_Ah": "ampere * hour",
    "charge_energy_Wh": "watt * hour",
    "discharge_energy_Wh": "watt * hour",
    "temperature_K": "kelvin",
    "source_row": "",
}

IMPEDANCE_COLUMNS: dict[str, str] = {
    "frequency_Hz": "float64",
    "z_real_ohm": "float64",
    "z_imag_ohm": "float64",
    "test_time_s": "float64",
    "voltage_V": "float64",
    "current_A": "float64",
    "cycle": "int64",
    "source_row": "int64",
}

IMPEDANCE_UNITS: dict[str, str] = {
    "frequency_Hz": "hertz",
    "z_real_ohm": "ohm",
    "z_imag_ohm": "ohm",
    "test_time_s": "second",
    "voltage_V": "volt",
    "current_A": "ampere",
    "cycle": "",
    "source_row": "",
}

KINDS = {"cycling": COLUMNS, "impedance": IMPEDANCE_COLUMNS}

STEP_TYPES = ("charge", "discharge", "rest", "other")

#: |current| below this [A] counts as rest when a format has no step type of its own
REST_CURRENT_A = 1e-6


class IngestError(ValueError):
    """A cycler file that cannot be read: names the file and, where known, the row."""

    def __init__(self, path: str | Path, message: str, row: int | None = None) -> None:
        self.path = str(path)
        self.row = row
        self.reason = message
        where = f"{Path(self.path).name}"
        if row is not None:
            where += f", row {row}"
        super().__init__(f"{where}: {message}")


def empty_table() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in COLUMNS.items()})


def step_type_from_current(current: np.ndarray, threshold: float = REST_CURRENT_A) -> np.ndarray:
    out = np.full(current.shape, "rest", dtype=object)
    out[current > threshold] = "charge"
    out[current < -threshold] = "discharge"
    return out


def segment_ids(*keys: np.ndarray) -> np.ndarray:
    """An id that increases whenever any key changes from one row to the next (a 'run')."""
    n = len(keys[0])
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for k in keys:
        k = np.asarray(k)
        change[1:] |= k[1:] != k[:-1]
    return np.cumsum(change) - 1


def cumulate_step_counters(
    cycle: np.ndarray, segment: np.ndarray, counter: np.ndarray
) -> np.ndarray:
    """Turn a counter that restarts at every step segment into one that accumulates over the
    cycle: each row gets the sum of the final values of the earlier segments of its cycle plus
    its own value. ``counter`` must be 0 in segments of the other direction."""
    counter = np.asarray(counter, dtype=float)
    n = len(counter)
    if n == 0:
        return counter
    last = np.r_[segment[1:] != segment[:-1], True]
    seg_final = counter[last]  # one per segment, in order
    seg_cycle = np.asarray(cycle)[last]
    # offsets: the finals of the earlier segments of the same cycle, summed (no subtraction,
    # so an offset is never a rounding error below zero)
    first_of_cycle = np.r_[True, seg_cycle[1:] != seg_cycle[:-1]]
    shifted = np.r_[0.0, seg_final[:-1]]
    shifted[first_of_cycle] = 0.0
    offset = pd.Series(shifted).groupby(np.cumsum(first_of_cycle)).cumsum().to_numpy()
    return counter + offset[segment - segment[0]]


def finish_table(data: dict[str, Any], path: str | Path, kind: str = "cycling") -> pd.DataFrame:
    """Assemble, type and check a normalised table (``kind``: cycling or impedance)."""
    columns = KINDS[kind]
    first = "test_time_s" if kind == "cycling" else "frequency_Hz"
    n = len(data[first])
    cols = {}
    for name, dtype in columns.items():
        v = data.get(name)
        if v is None:
            v = np.full(n, np.nan) if dtype == "float64" else np.zeros(n, dtype=np.int64)
        cols[name] = (
            pd.Series(np.asarray(v), dtype=dtype)
            if dtype != "string"
            else pd.Series(np.asarray(v, dtype=object), dtype="string")
        )
    df = pd.DataFrame(cols)
    musts = (
        ("test_time_s", "current_A", "voltage_V")
        if kind == "cycling"
        else ("frequency_Hz", "z_real_ohm", "z_imag_ohm")
    )
    for must in musts:
        bad = df[must].isna().to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            raise IngestError(path, f"no value for {must}", row=int(df["source_row"].iloc[i]))
    df.attrs["kind"] = kind
    return df


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_parquet(df: pd.DataFrame, out: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Store a normalised table as Parquet with units and the source's metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out)
    table = pa.Table.from_pandas(df, preserve_index=False)
    md = dict(table.schema.metadata or {})
    kind = df.attrs.get("kind", "cycling")
    md[b"bigmap.units"] = json.dumps(UNITS if kind == "cycling" else IMPEDANCE_UNITS).encode()
    md[b"bigmap.kind"] = kind.encode()
    md[b"bigmap.source"] = json.dumps(meta or df.attrs.get("source", {}), default=str).encode()
    table = table.replace_schema_metadata(md)
    pq.write_table(table, out, compression="zstd")
    return out


def read_parquet(path: str | Path) -> pd.DataFrame:
    """A normalised table written by ``write_parquet`` (``attrs['source']`` holds its origin)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    df = table.to_pandas()
    md = table.schema.metadata or {}
    if b"bigmap.source" in md:
        df.attrs["source"] = json.loads(md[b"bigmap.source"])
    kind = md.get(b"bigmap.kind", b"cycling").decode()
    if kind not in KINDS:
        raise IngestError(path, f"not a bigmap table: unknown kind {kind!r}")
    missing = [c for c in KINDS[kind] if c not in df.columns]
    if missing:
        raise IngestError(path, f"not a bigmap {kind} table: missing columns {missing}")
    df.attrs["kind"] = kind
    return df
