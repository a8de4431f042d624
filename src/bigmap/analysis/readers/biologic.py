"""BioLogic EC-Lab / BT-Lab files.

- ``.mpr`` (binary) through galvani (C. Kerr et al., github.com/echemdata/galvani, GPL-3.0,
  used as a library);
- ``.mpt`` (text export: "EC-Lab ASCII FILE", "Nb header lines : N", tab separated, decimal
  point or comma; or the column line alone) with bigmap's own parser.

Galvanostatic and other DC techniques give the cycling table: the charge passed comes from
the file's ``(Q-Qo)`` counter, split by sign and accumulated within each cycle. Impedance
techniques (PEIS, GEIS: most records carry a frequency) give the impedance table, with
``z_imag_ohm = -(-Im(Z))``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from bigmap.analysis.readers.common import (
    ZERO_CELSIUS,
    _check_complete,
    _head_lines,
    _numeric,
    _read_delimited,
)
from bigmap.analysis.readers.registry import Reader, Sample
from bigmap.analysis.table import IngestError, finish_table, step_type_from_current


def read_biologic_mpr(path: str | Path) -> pd.DataFrame:
    """BioLogic binary .mpr through galvani."""
    from galvani import BioLogic

    path = Path(path)
    try:
        mpr = BioLogic.MPRfile(str(path))
    except (OSError, ValueError, AssertionError) as exc:
        raise IngestError(path, _mpr_diagnosis(path, exc)) from None
    data = pd.DataFrame(mpr.data)
    flags = {}
    for name in ("mode",):
        try:
            flags[name] = mpr.get_flag(name)
        except AttributeError:
            pass
    rows = np.arange(1, len(data) + 1, dtype=np.int64)
    return _biologic_table(data, rows, path, flags.get("mode"))


def _mpr_diagnosis(path: Path, exc: Exception) -> str:
    """Why galvani could not read an .mpr: for a truncated data module, how many complete
    records it holds and which one is cut."""
    from galvani import BioLogic

    raw = path.read_bytes()
    if not raw.startswith(BioLogic.MPR_MAGIC):
        return "not a BioLogic .mpr file (bad magic at the start)"
    pos = raw.find(b"MODULEVMP data  ")
    if pos < 0:
        return f"no data module found ({exc})"
    try:
        hdr_dtype = BioLogic.VMPmodule_hdr_v1
        start = pos + len(b"MODULE")
        hdr_bytes = raw[start : start + BioLogic.VMPmodule_hdr_v2.itemsize]
        if hdr_bytes[35:39] == b"\xff\xff\xff\xff":
            hdr_dtype = BioLogic.VMPmodule_hdr_v2
        hdr = np.frombuffer(hdr_bytes[: hdr_dtype.itemsize], dtype=hdr_dtype, count=1)
        version = int(hdr["version"][0])
        declared_len = int(hdr["length"][0])
        body = raw[start + hdr_dtype.itemsize :]
        n_points = int(np.frombuffer(body[:4], dtype="<u4")[0])
        n_columns = int(body[4])
        if version in (2, 3):
            col_ids = np.frombuffer(body[5:], dtype="<u2", count=n_columns)
            offset = 406 if version == 3 else 405
        else:
            return f"cannot read the data module (version {version}): {exc}"
        dtype, _ = BioLogic.VMPdata_dtype_from_colIDs(col_ids)
        have = max(0, len(body) - offset)
        complete = have // dtype.itemsize
        if len(body) < declared_len or complete < n_points:
            return (
                f"truncated: the data module declares {n_points} records but the file holds "
                f"only {complete} complete ones; record {complete + 1} is cut off "
                f"({have - complete * dtype.itemsize} of {dtype.itemsize} bytes)"
            )
    except Exception:  # noqa: BLE001 - the diagnosis must not hide the original error
        pass
    return f"corrupt BioLogic .mpr: {exc}"


def read_biologic_mpt(path: str | Path) -> pd.DataFrame:
    """BioLogic EC-Lab/BT-Lab text export (.mpt), with its header block or without one (the
    column line first)."""
    path = Path(path)
    lines = _head_lines(path, 4)
    if lines and _is_column_line(lines[0]):
        n_header = 1
    else:
        if not lines or not lines[0].startswith(("EC-Lab ASCII FILE", "BT-Lab ASCII FILE")):
            raise IngestError(path, "not an EC-Lab text file (first line)", 1)
        m = re.match(r"Nb header lines\s*:\s*(\d+)", lines[1]) if len(lines) > 1 else None
        if not m:
            raise IngestError(path, "no 'Nb header lines : N' on line 2", 2)
        n_header = int(m.group(1))
    with open(path, "rb") as f:
        for _ in range(n_header - 1):
            f.readline()
        colline = f.readline().decode("latin-1")
        sample = f.readline().decode("latin-1")
    decimal = "," if re.search(r"\d,\d", sample) and "." not in sample.replace("\t", "") else "."
    df, rows = _read_delimited(path, n_header, "\t", decimal=decimal)
    df.columns = [c.strip() for c in df.columns]
    if not colline.strip():
        raise IngestError(path, "no column header", n_header)
    if len(df) == 0:
        raise IngestError(path, "no data rows", n_header + 1)
    df = df.loc[:, [c for c in df.columns if not c.startswith("Unnamed")]]
    return _biologic_table(df, rows, path, df["mode"].to_numpy() if "mode" in df else None)


_BIOLOGIC_ALIASES = {
    "<I>/mA": "I/mA",
    "Ecell/V": "Ewe/V",
    "<Ewe>/V": "Ewe/V",
    "<Ewe/V>": "Ewe/V",
    "dq/mA.h": "dQ/mA.h",
}


def _biologic_table(
    data: pd.DataFrame, rows: np.ndarray, path: Path, mode: np.ndarray | None
) -> pd.DataFrame:
    data = data.rename(columns={k: v for k, v in _BIOLOGIC_ALIASES.items() if k in data.columns})
    data = data.loc[:, ~data.columns.duplicated()]
    if "freq/Hz" in data and "Re(Z)/Ohm" in data:
        freq = _numeric(data, "freq/Hz", path, rows)
        if np.mean(freq > 0) > 0.5:  # an impedance technique (PEIS, GEIS): the spectrum
            return _impedance_table(data, rows, path, freq)
    for need in ("time/s", "Ewe/V"):
        if need not in data:
            raise IngestError(path, f"BioLogic file without a {need!r} column")
    t = _numeric(data, "time/s", path, rows)
    v = _numeric(data, "Ewe/V", path, rows)
    if "I/mA" in data:
        cur = _numeric(data, "I/mA", path, rows) * 1e-3
    elif "I/A" in data:
        cur = _numeric(data, "I/A", path, rows)
    else:
        cur = np.zeros(len(data))
    _check_complete({"time/s": t, "Ewe/V": v, "I": cur}, path, rows)
    if "cycle number" in data:
        cyc = _numeric(data, "cycle number", path, rows).astype(np.int64)
    elif "half cycle" in data:
        cyc = (_numeric(data, "half cycle", path, rows) // 2).astype(np.int64)
    else:
        cyc = np.zeros(len(data), dtype=np.int64)
    step = (
        _numeric(data, "Ns", path, rows).astype(np.int64)
        if "Ns" in data
        else np.zeros(len(data), dtype=np.int64)
    )
    kind = step_type_from_current(cur)
    if mode is not None:
        kind[np.asarray(mode) == 3] = "rest"
    if "freq/Hz" in data:
        kind[_numeric(data, "freq/Hz", path, rows) > 0] = "other"  # impedance points
    # charge passed: increments of (Q-Qo), split by sign, accumulated within each cycle
    if "(Q-Qo)/mA.h" in data:
        q = _numeric(data, "(Q-Qo)/mA.h", path, rows) * 1e-3
    elif "(Q-Qo)/C" in data:
        q = _numeric(data, "(Q-Qo)/C", path, rows) / 3600.0
    else:
        dt = np.diff(t, prepend=t[0])
        q = np.cumsum(cur * dt) / 3600.0
    dq = np.diff(q, prepend=q[0])
    new_cycle = np.r_[True, cyc[1:] != cyc[:-1]]
    dq[new_cycle] = 0.0
    dq_c, dq_d = np.maximum(dq, 0.0), np.maximum(-dq, 0.0)
    de = dq * v  # W h from A h * V when the file has no energy counters
    de_c, de_d = np.maximum(de, 0.0), np.maximum(-de, 0.0)
    if "Energy charge/W.h" in data and "Energy discharge/W.h" in data:
        ec = _numeric(data, "Energy charge/W.h", path, rows)
        ed = _numeric(data, "Energy discharge/W.h", path, rows)
        de_c = np.maximum(np.diff(ec, prepend=ec[0]), 0.0)
        de_d = np.maximum(np.diff(ed, prepend=ed[0]), 0.0)
        de_c[new_cycle] = 0.0
        de_d[new_cycle] = 0.0
    grp = pd.Series(cyc)

    def per_cycle(x: np.ndarray) -> np.ndarray:
        return pd.Series(x).groupby(grp).cumsum().to_numpy()

    temp = np.full(len(data), np.nan)
    for c in ("Temperature/°C", "Temperature/Â°C", "Temperature/C"):
        if c in data:
            temp = _numeric(data, c, path, rows) + ZERO_CELSIUS
            break
    out = {
        "test_time_s": t,
        "cycle": cyc,
        "step": step,
        "step_type": kind,
        "current_A": cur,
        "voltage_V": v,
        "charge_capacity_Ah": per_cycle(dq_c),
        "discharge_capacity_Ah": per_cycle(dq_d),
        "charge_energy_Wh": per_cycle(de_c),
        "discharge_energy_Wh": per_cycle(de_d),
        "temperature_K": temp,
        "source_row": rows,
    }
    return finish_table(out, path)


def _impedance_table(
    data: pd.DataFrame, rows: np.ndarray, path: Path, freq: np.ndarray
) -> pd.DataFrame:
    """The spectrum of a PEIS/GEIS file (the records with a frequency)."""
    keep = freq > 0
    re_z = _numeric(data, "Re(Z)/Ohm", path, rows)
    if "-Im(Z)/Ohm" in data:
        im_z = -_numeric(data, "-Im(Z)/Ohm", path, rows)
    elif "Im(Z)/Ohm" in data:
        im_z = _numeric(data, "Im(Z)/Ohm", path, rows)
    else:
        raise IngestError(path, "impedance file without an Im(Z) column")

    def opt(col: str, scale: float = 1.0) -> np.ndarray:
        return (
            _numeric(data, col, path, rows) * scale if col in data else np.full(len(data), np.nan)
        )

    cur = opt("I/mA", 1e-3) if "I/mA" in data else opt("I/A")
    cyc = opt("cycle number")
    out = {
        "frequency_Hz": freq[keep],
        "z_real_ohm": re_z[keep],
        "z_imag_ohm": im_z[keep],
        "test_time_s": opt("time/s")[keep],
        "voltage_V": opt("Ewe/V")[keep],
        "current_A": cur[keep],
        "cycle": np.nan_to_num(cyc[keep]).astype(np.int64),
        "source_row": rows[keep],
    }
    return finish_table(out, path, "impedance")


def _is_column_line(line: str) -> bool:
    cells = line.split("\t")
    return "time/s" in cells and bool({"Ewe/V", "Ecell/V", "<Ewe>/V", "freq/Hz"} & set(cells))


def sniff_mpr(s: Sample) -> bool:
    return s.head.startswith(b"BIO-LOGIC MODULAR FILE")


def sniff_mpt(s: Sample) -> bool:
    if not s.lines:
        return False
    first = s.lines[0]
    return first.startswith(("EC-Lab ASCII FILE", "BT-Lab ASCII FILE")) or _is_column_line(first)


READERS = (
    Reader(
        name="biologic_mpr",
        instrument="BioLogic",
        description="BioLogic EC-Lab/BT-Lab binary .mpr (GCPL, MB, CP, CA, PEIS, GEIS, ...)",
        sniff=sniff_mpr,
        read=read_biologic_mpr,
        library="galvani",
        kind="auto",
        extensions=(".mpr",),
        priority=10,
    ),
    Reader(
        name="biologic_mpt",
        instrument="BioLogic",
        description="BioLogic EC-Lab/BT-Lab text export .mpt (with or without its header block)",
        sniff=sniff_mpt,
        read=read_biologic_mpt,
        kind="auto",
        extensions=(".mpt", ".txt"),
        priority=20,
    ),
)
