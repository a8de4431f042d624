"""The conformance corpus (tests/data/cycler_files) read by bigmap and by an independent
reader, file by file: rows, cycles and per-cycle charge and discharge capacity, and their
largest relative disagreement. With ``--write`` it stores bigmap's figures, the independent
reader's name and version and the agreement in ``tests/data/cycler_files/expected.json``,
which ``tests/test_corpus.py`` holds bigmap to (0.1 % on capacities).

    python benchmarks/corpus_crosscheck.py [--write]

Independent readers, by format (a different code base from bigmap's reader in every case):

- cellpy 1.0.3 (J. P. Maehlen et al., MIT; installed with ``--no-deps``, see
  ingest_throughput.py): Arbin .res (``arbin_res``), PEC (``pec_csv``), Neware record CSV
  (``neware_txt``), BDF as BatMo writes it (``batmo_bdf``), Neware regular export;
- fastnda 1.3 (G. Kimbell, Empa, MIT; polars): Neware .nda/.ndax;
- access-parser (pure-Python Access reader, Apache-2.0): Arbin .res without mdbtools;
- galvani (the raw records, GPL-3.0) and impedance.py (``preprocessing.readFile``, MIT):
  BioLogic and Gamry impedance spectra;
- the Python standard library's ``csv`` module with the instrument's documented counter
  rules (written here, separately from bigmap's readers) where no maintained reader exists
  (Basytec, Novonix, Landt, Maccor dialects cellpy cannot read, Arbin CSV);
- the Battery Data Alliance's own conversion of the Landt file to BDF (per step).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import warnings
from collections import OrderedDict
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np

FILES = Path(__file__).resolve().parents[1] / "tests" / "data" / "cycler_files"
EXPECTED = FILES / "expected.json"
TOL = 1e-3  # relative, on per-cycle capacities

Figures = dict[str, list[float]]  # cycle -> [charge Ah, discharge Ah]


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


# ----------------------------------------------------------------------------- stdlib csv


def _rows(path: Path, header: int, sep: str = ",", encoding: str = "latin-1") -> list[dict]:
    with open(path, encoding=encoding, newline="") as f:
        lines = f.read().splitlines()
    body = [ln for ln in lines[header - 1 :] if ln.strip()]
    body = [ln.strip('"') if ln.startswith('"') and ln.endswith('"') else ln for ln in body]
    return list(csv.DictReader(body, delimiter=sep))


def runs_last(
    rows: list[dict],
    cycle: str,
    run: Callable[[dict], tuple],
    value: Callable[[dict], float],
    direction: Callable[[dict], str],
) -> Figures:
    """Sum over the runs (steps) of a cycle of each run's last counter value, by direction."""
    out: dict[str, list[float]] = OrderedDict()
    prev, last = None, None
    for r in [*rows, None]:
        key = None if r is None else (r[cycle], run(r))
        if prev is not None and key != prev:
            d = direction(last)
            fig = out.setdefault(str(int(float(prev[0]))), [0.0, 0.0])
            if d == "charge":
                fig[0] += abs(value(last))
            elif d == "discharge":
                fig[1] += abs(value(last))
        prev, last = key, r
    return out


def cycle_max(rows: list[dict], cycle: str, qc: str, qd: str, scale: float = 1.0) -> Figures:
    out: dict[str, list[float]] = OrderedDict()
    for r in rows:
        f = out.setdefault(str(int(float(r[cycle]))), [np.inf, -np.inf, np.inf, -np.inf])
        c, d = float(r[qc] or 0) * scale, float(r[qd] or 0) * scale
        f[0], f[1], f[2], f[3] = min(f[0], c), max(f[1], c), min(f[2], d), max(f[3], d)
    # an Arbin-style counter: what accumulated within the cycle
    return {
        k: [v[1] - min(v[0], 0) if v[0] < 1e-9 else v[1] - v[0], v[3] - v[2]]
        for k, v in out.items()
    }


def _sign(cur: str) -> Callable[[dict], str]:
    def f(r: dict) -> str:
        i = float(r[cur] or 0)
        return "charge" if i > 1e-9 else "discharge" if i < -1e-9 else "rest"

    return f


def _state(col: str) -> Callable[[dict], str]:
    return lambda r: {"C": "charge", "D": "discharge"}.get(r[col].strip(), "rest")


def csv_maccor(
    path: Path, header: int, cycle: str, cap: str, state: str | None, cur: str, scale: float = 1.0
) -> Figures:
    sep = "\t" if "\t" in path.read_bytes()[:20000].decode("latin-1") else ","
    rows = _rows(path, header, sep)
    rows = [{k.strip(): v for k, v in r.items() if k} for r in rows]
    return runs_last(
        rows,
        cycle,
        lambda r: r["Step"],
        lambda r: float(r[cap]) * scale,
        _state(state) if state else _sign(cur),
    )


# ----------------------------------------------------------------------------- cellpy


def cellpy_figures(path: Path, instrument: str, **kw: object) -> Figures:
    import cellpy

    c = cellpy.get(str(path), instrument=instrument, **kw)
    g = c.data.raw.groupby("cycle_index")
    qc, qd = g["charge_capacity"].max(), g["discharge_capacity"].max()
    scale = 1.0
    return {str(int(k)): [float(qc[k]) * scale, float(qd[k]) * scale] for k in qc.index}


def fastnda_figures(path: Path) -> Figures:
    import fastnda

    df = fastnda.read(str(path))
    df = df.to_pandas() if hasattr(df, "to_pandas") else df
    last = df.groupby("step_count").tail(1)
    out: dict[str, list[float]] = OrderedDict()
    for _, r in last.iterrows():
        f = out.setdefault(str(int(r["cycle_count"])), [0.0, 0.0])
        t = str(r["step_type"]).lower()
        if "dchg" in t or "discharge" in t:
            f[1] += abs(r["capacity_mAh"]) / 1000
        elif "chg" in t or "charge" in t:
            f[0] += abs(r["capacity_mAh"]) / 1000
    return out


def access_parser_figures(path: Path) -> Figures:
    from access_parser import AccessParser

    t = AccessParser(str(path)).parse_table("Channel_Normal_Table")
    rows = [dict(zip(t, vals, strict=True)) for vals in zip(*t.values(), strict=True)]
    rows.sort(key=lambda r: r["Data_Point"])
    return cycle_max(rows, "Cycle_Index", "Charge_Capacity", "Discharge_Capacity")


# ----------------------------------------------------------------------------- the corpus

C = "cycling"
I = "impedance"  # noqa: E741

# file -> (kind, independent reader name, how to get its figures)
CHECKS: dict[str, tuple[str, str, Callable[[Path], Figures] | None]] = {
    "arbin_res_20160805_test001_45_cc_01.res": (
        C,
        f"cellpy {_version('cellpy')} arbin_res",
        lambda p: cellpy_figures(p, "arbin_res"),
    ),
    "arbin_res_mits7_fixture.res": (
        C,
        f"access-parser {_version('access-parser')}",
        access_parser_figures,
    ),
    "arbin_csv_bdt_example.csv": (
        C,
        "stdlib csv (Arbin per-cycle counters)",
        lambda p: cycle_max(_rows(p, 1), "Cycle_Index", "Charge_Capacity", "Discharge_Capacity"),
    ),
    "arbin_csv_mitspro8_pyprobe.csv": (
        C,
        "stdlib csv (Arbin per-cycle counters)",
        lambda p: cycle_max(
            _rows(p, 1, encoding="utf-8-sig"),
            "Cycle Index",
            "Charge Capacity (Ah)",
            "Discharge Capacity (Ah)",
        ),
    ),
    "biol.mpr": (C, f"galvani {_version('galvani')} ((Q-Qo) of the raw records)", None),
    "biologic_peis.mpr": (I, f"galvani {_version('galvani')}", None),
    "biologic_peis_impedancepy.mpt": (
        I,
        f"impedance.py {_version('impedance')} readFile(biologic)",
        None,
    ),
    "biologic_btlab_mb_pyprobe.txt": (C, "stdlib csv ((Q-Qo) increments by sign)", None),
    "biologic_no_header_pyprobe.mpt": (C, "stdlib csv ((Q-Qo) increments by sign)", None),
    "gamry_eispot_impedancepy.DTA": (I, f"impedance.py {_version('impedance')} readGamry", None),
    "maccor_001.txt": (
        C,
        "stdlib csv (last Amp-hr of each step, by State)",
        lambda p: csv_maccor(p, 4, "Cyc#", "Amp-hr", "State", "Amps"),
    ),
    "maccor_beep_PredictionDiagnostics_000151.052": (
        C,
        "stdlib csv (last Amp-hr of each step, by State)",
        lambda p: csv_maccor(p, 2, "Cyc#", "Amp-hr", "State", "Amps"),
    ),
    "maccor_bdt_example.001": (
        C,
        "stdlib csv (last Amp-hr of each step, by State)",
        lambda p: csv_maccor(p, 2, "Cyc#", "Amp-hr", "State", "Amps"),
    ),
    "maccor_beep_4267-66-6519.041": (
        C,
        "stdlib csv (last Amp-hr of each step, by State)",
        lambda p: csv_maccor(p, 2, "Cyc#", "Amp-hr", "State", "Amps"),
    ),
    "maccor_csv_pyprobe.csv": (
        C,
        "stdlib csv (last Capacity of each step, by current sign)",
        lambda p: csv_maccor(p, 3, "Cycle C", "Capacity", None, "Current"),
    ),
    "maccor_rec_cycleP_trimmed.txt": (
        C,
        "stdlib csv (last Cap. [Ah] of each step, by Md)",
        lambda p: csv_maccor(p, 14, "Cycle C", "Cap. [Ah]", "Md", "Current [A]"),
    ),
    "neware_TestFile.nda": (C, f"fastnda {_version('fastnda')}", fastnda_figures),
    "neware_TESTCELL0001-B2.ndax": (C, f"fastnda {_version('fastnda')}", fastnda_figures),
    "neware_record_uio_trimmed.csv": (
        C,
        f"cellpy {_version('cellpy')} neware_txt",
        lambda p: cellpy_figures(p, "neware_txt"),
    ),
    "nw_regular_export_ife_example.csv": (C, "the export's own cycle rows (stdlib csv)", None),
    "basytec_pyprobe.txt": (
        C,
        "stdlib csv (Ah-Cyc-Charge/Discharge per cycle)",
        lambda p: cycle_max(
            [{k.lstrip("~"): v for k, v in r.items()} for r in _rows(p, 13, "\t")],
            "Cyc-Count",
            "Ah-Cyc-Charge",
            "Ah-Cyc-Discharge",
        ),
    ),
    "novonix_beep_form_short.csv": (
        C,
        "stdlib csv (last Capacity of each Step Number, by Step Type)",
        lambda p: _novonix(p),
    ),
    "novonix_pyprobe.csv": (
        C,
        "stdlib csv (last Capacity of each Step Number, by Step Type)",
        lambda p: _novonix(p),
    ),
    "pec_sbt0550_trimmed.csv": (
        C,
        f"cellpy {_version('cellpy')} pec_csv",
        lambda p: cellpy_figures(p, "pec_csv"),
    ),
    "pec_act4_test25205.csv": (
        C,
        "stdlib csv (per-cycle counters)",
        lambda p: cycle_max(
            _rows(p, 46), "Cycle", "Charge Capacity (mAh)", "Discharge Capacity (mAh)", 1e-3
        ),
    ),
    "landt_LiGrR2032_trimmed.csv": (
        C,
        "stdlib csv (last capacity of each step)",
        lambda p: runs_last(
            _rows(p, 7),
            "cycle_index",
            lambda r: r["step_index"],
            lambda r: float(r["charge_capacity_Ah"] or 0) + float(r["discharge_capacity_Ah"] or 0),
            lambda r: (
                "charge"
                if r["step_name"].split()[0] == "charge"
                else "discharge"
                if r["step_name"].startswith("discharge")
                else "rest"
            ),
        ),
    ),
    "bdf_bda_landt_LiGrR2032_trimmed.csv": (
        C,
        "stdlib csv (step maxima of the BDA's conversion)",
        None,
    ),
    "bdf_batmo_first20cycles.csv": (
        C,
        f"cellpy {_version('cellpy')} batmo_bdf",
        lambda p: cellpy_figures(p, "batmo_bdf"),
    ),
    "bdf_bda_sample.csv": (C, "trapezoidal integral of the three rows", None),
}

_NOVONIX_DIR = {
    0: "rest",
    1: "charge",
    2: "discharge",
    7: "charge",
    8: "charge",
    9: "discharge",
    10: "discharge",
}


def _novonix(p: Path) -> Figures:
    with open(p, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.strip().strip('"') == "[Data]") + 2
    rows = _rows(p, start, encoding="utf-8")
    return runs_last(
        rows,
        "Cycle Number",
        lambda r: r["Step Number"],
        lambda r: float(r["Capacity (Ah)"]),
        lambda r: _NOVONIX_DIR.get(int(float(r["Step Type"])), "rest"),
    )


def bigmap_figures(path: Path) -> tuple[dict, Figures]:
    from bigmap.analysis import read_cycler_file
    from bigmap.analysis.fom import cycle_summary

    df = read_cycler_file(path)
    info = {"format": df.attrs["source"]["format"], "rows": len(df), "kind": df.attrs["kind"]}
    if df.attrs["kind"] != "cycling":
        info["frequency_Hz"] = [float(df["frequency_Hz"].min()), float(df["frequency_Hz"].max())]
        info["first_z_ohm"] = [float(df["z_real_ohm"].iloc[0]), float(df["z_imag_ohm"].iloc[0])]
        return info, {}
    s = cycle_summary(df)
    info["cycles"] = len(s)
    figs = {
        str(int(c)): [
            float(s.loc[c, "charge_capacity_Ah"]),
            float(s.loc[c, "discharge_capacity_Ah"]),
        ]
        for c in s.index
    }
    return info, figs


def agreement(a: Figures, b: Figures) -> float:
    """Largest relative difference over cycles and directions (relative to the cycle's
    largest capacity, so that a near-zero capacity does not blow up)."""
    if len(a) != len(b):
        return float("inf")
    if set(a) != set(b):  # a reader that renumbers cycles (cellpy's PEC reader counts from 1)
        b = dict(zip(a, b.values(), strict=True))
    worst = 0.0
    for k in a:
        scale = max(max(abs(x) for x in a[k]), max(abs(x) for x in b[k]), 1e-12)
        for x, y in zip(a[k], b[k], strict=True):
            worst = max(worst, abs(x - y) / scale)
    return worst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--write", action="store_true", help="write tests/data/cycler_files/expected.json"
    )
    a = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    out: dict[str, dict] = {}
    print(f"{'file':46} {'format':14} {'rows':>6} {'cyc':>4}  {'independent reader':52} agreement")
    bad = 0
    for name, (kind, indep, fn) in CHECKS.items():
        path = FILES / name
        info, figs = bigmap_figures(path)
        assert info["kind"] == kind, (name, info["kind"])
        agree: float | None = None
        if fn is not None:
            try:
                other = fn(path)
                agree = agreement(figs, other)
            except Exception as exc:  # noqa: BLE001 - report what the other reader says
                indep += f" (failed: {type(exc).__name__}: {str(exc)[:60]})"
        ok = agree is None or agree <= TOL
        bad += not ok
        txt = "live in tests/test_corpus.py" if agree is None else f"{agree:.2e}"
        print(
            f"{name[:46]:46} {info['format']:14} {info['rows']:>6} {info.get('cycles', '-'):>4}  "
            f"{indep[:52]:52} {txt}{'' if ok else '  DISAGREES'}"
        )
        out[name] = {**info, "independent_reader": indep, "agreement": agree, "per_cycle_Ah": figs}
    if a.write:
        EXPECTED.write_text(json.dumps(out, indent=1) + "\n")
        print(f"wrote {EXPECTED}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
