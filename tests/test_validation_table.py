"""The row format of ``benchmarks/validation_*.py``: verdicts and how tolerances print."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _table():
    spec = importlib.util.spec_from_file_location(
        "validation_table", REPO / "benchmarks" / "validation_table.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


VT = _table()


def _row(**kw):
    base = dict(quantity="q", computed=1.0, reference=1.0, unit="V", source="s", tolerance=0.1)
    return VT.Row(**(base | kw))


def test_relative_tolerance_keeps_its_digits():
    # 0.5 % was printed as "±0%" (format spec .0%)
    assert _row(tolerance=0.005, relative=True).tolerance_text() == "±0.5%"
    assert _row(tolerance=0.03, relative=True).tolerance_text() == "±3%"
    assert _row(tolerance=0.15, relative=True).tolerance_text() == "±15%"
    assert _row(tolerance=0.00125, relative=True).tolerance_text() == "±0.125%"
    assert _row(tolerance=1e-6, relative=True).tolerance_text() == "±0.0001%"


def test_absolute_tolerance_has_its_unit():
    assert _row(tolerance=0.3).tolerance_text() == "±0.3 V"
    assert _row(tolerance=0.0547674, unit="S/m").tolerance_text() == "±0.0547674 S/m"
    assert _row(tolerance=0.0, unit="").tolerance_text() == "±0"


def test_verdicts():
    assert _row(computed=1.05, relative=True, tolerance=0.1).verdict == "pass"
    assert _row(computed=1.2, relative=True, tolerance=0.1).verdict == "FAIL"
    assert _row(computed=1.2, tolerance=0.1).verdict == "FAIL"
    # an unchecked reference never passes, even when the numbers agree
    assert _row(checked=False).verdict == "unchecked"
    assert _row(computed=math.nan).verdict == "FAIL"


def test_markdown_counts_and_json_round_trip(tmp_path):
    import argparse

    rows = [_row(), _row(computed=3.0), _row(checked=False)]
    md = VT.markdown("T", rows)
    assert "1 pass, 1 fail, 1 unchecked." in md
    out = tmp_path / "rows.json"
    VT.report("T", rows, argparse.Namespace(json=out, markdown=False))
    title, back = VT.load(out)
    assert title == "T" and [r.verdict for r in back] == ["pass", "FAIL", "unchecked"]
