"""Rows per second reading each file of tests/data/cycler_files with bigmap's readers,
against cellpy (1.0.3) reading the same file in the same run.

    python benchmarks/ingest_throughput.py [--repeat 3]

cellpy is in the ``bench`` extra; it pins pandas<3, so next to bigmap's pandas 3 install it
without its dependencies plus the two it needs for these readers:
``pip install --no-deps cellpy==1.0.3 python-box dateparser`` (and dateparser's regex, tzlocal,
pytz). A file cellpy cannot read is reported with cellpy's error.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

FILES = Path(__file__).resolve().parents[1] / "tests" / "data" / "cycler_files"
# the corpus files cellpy 1.0.3 reads (the others it has no reader for, or fails on)
CELLPY_INSTRUMENT = {
    "biol.mpr": "biologics_mpr",
    "maccor_001.txt": "maccor_txt",
    "nw_regular_export_ife_example.csv": "neware_txt",
    "neware_record_uio_trimmed.csv": "neware_txt",
    "pec_sbt0550_trimmed.csv": "pec_csv",
    "bdf_batmo_first20cycles.csv": "batmo_bdf",
    "arbin_res_20160805_test001_45_cc_01.res": "arbin_res",
}
TEXT = ("csv", "txt", "mpt", "dta", "0")  # suffixes (or their start) of text formats
SKIP = {"README.md", "expected.json", "trim.py"}


def best_of(fn, repeat: int) -> tuple[float, int]:
    best, rows = float("inf"), 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        rows = fn()
        best = min(best, time.perf_counter() - t0)
    return best, rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=FILES)
    a = ap.parse_args(argv)
    from bigmap.analysis import read_cycler_file

    try:
        warnings.filterwarnings("ignore")
        logging.disable(logging.WARNING)
        import cellpy
    except ImportError:
        cellpy = None
        print("cellpy is not installed: only bigmap's figures (see the docstring to install it)")
    files = sorted(p for p in a.dir.iterdir() if p.is_file() and p.name not in SKIP)
    print(f"{'file':46} {'format':14} {'bigmap rows/s':>14} {'cellpy rows/s':>14} {'ratio':>7}")
    ratios_text = []
    for f in files:
        t_b, n_b = best_of(lambda f=f: len(read_cycler_file(f)), a.repeat)
        rb = n_b / t_b
        rc_txt, ratio = "-", "-"
        if cellpy is not None and f.name in CELLPY_INSTRUMENT:

            def run_cellpy(f=f) -> int:
                c = cellpy.get(str(f), instrument=CELLPY_INSTRUMENT[f.name])
                return len(c.data.raw)

            try:
                t_c, n_c = best_of(run_cellpy, a.repeat)
                rc = n_c / t_c
                rc_txt, ratio = f"{rc:,.0f}", f"{rb / rc:.1f}x"
                if f.suffix.lower().lstrip(".").startswith(TEXT):
                    ratios_text.append(rb / rc)
            except Exception as exc:  # noqa: BLE001 - report what cellpy says
                rc_txt = f"fails: {type(exc).__name__}: {str(exc)[:60]}"
        fmt = read_cycler_file(f).attrs["source"]["format"]
        print(f"{f.name[:46]:46} {fmt:14} {rb:>14,.0f} {rc_txt:>14} {ratio:>7}  ({n_b} rows)")
    if ratios_text:
        print(f"text formats: bigmap is {min(ratios_text):.1f}x to {max(ratios_text):.1f}x cellpy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
