"""One row format for every validation benchmark (``benchmarks/validation_*.py``).

Each validation script builds a list of ``Row`` and calls ``report(title, rows, args)``: it
prints a table, and with ``--json PATH`` writes the rows so that ``docs/validation.md`` can be
generated from the JSON files of all scripts (``--markdown`` prints the Markdown table).

A row compares one computed value with one reference value from a named source. ``checked``
is False when the reference could not be read in its source (then the row says "unchecked"
and its verdict is never a pass: a value that was not checked is not a validation).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Row:
    quantity: str  # what is compared, e.g. "EC oxidation potential (GFN2-xTB, ALPB)"
    computed: float
    reference: float
    unit: str  # pint string, e.g. "V", "S/m", "eV", "A*h"
    source: str  # paper (authors, journal, year), table or figure; or package and dataset
    tolerance: float  # allowed |computed - reference| in ``unit`` (or relative, see ``relative``)
    relative: bool = False  # tolerance is a fraction of |reference|
    checked: bool = True  # the reference was read in its source
    note: str = ""  # method limits, why a row fails, what the tolerance rests on

    @property
    def deviation(self) -> float:
        return self.computed - self.reference

    @property
    def passed(self) -> bool | None:
        """True or False against the tolerance; None when the reference is unchecked."""
        if not self.checked:
            return None
        if not (math.isfinite(self.computed) and math.isfinite(self.reference)):
            return False
        allowed = self.tolerance * abs(self.reference) if self.relative else self.tolerance
        return abs(self.deviation) <= allowed

    @property
    def verdict(self) -> str:
        return {True: "pass", False: "FAIL", None: "unchecked"}[self.passed]

    def tolerance_text(self) -> str:
        """The tolerance as printed: a relative one in per cent with up to 3 significant
        digits (0.005 -> "±0.5%", never rounded to "±0%"), an absolute one with its unit."""
        if self.relative:
            return f"±{100 * self.tolerance:.3g}%"
        return f"±{self.tolerance:.6g} {self.unit}".rstrip()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every validation script takes."""
    parser.add_argument("--json", type=Path, help="write the rows as JSON to this file")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")


def _fmt(x: float) -> str:
    return f"{x:.4g}" if math.isfinite(x) else str(x)


def markdown(title: str, rows: list[Row]) -> str:
    lines = [
        f"### {title}",
        "",
        "| quantity | computed | reference | unit | tolerance | verdict | source | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.quantity} | {_fmt(r.computed)} | {_fmt(r.reference)} | {r.unit} | "
            f"{r.tolerance_text()} | {r.verdict} | {r.source} | {r.note} |"
        )
    n_pass = sum(r.passed is True for r in rows)
    n_fail = sum(r.passed is False for r in rows)
    n_un = sum(r.passed is None for r in rows)
    lines += ["", f"{n_pass} pass, {n_fail} fail, {n_un} unchecked.", ""]
    return "\n".join(lines)


def report(title: str, rows: list[Row], args: argparse.Namespace | None = None) -> None:
    """Print the table; write JSON and/or Markdown when the options ask for it."""
    if args is not None and getattr(args, "markdown", False):
        print(markdown(title, rows))
    else:
        w = max([len(r.quantity) for r in rows] + [8])
        print(f"\n{title}")
        print(f"{'quantity':<{w}}  {'computed':>10}  {'reference':>10}  {'unit':<6} verdict")
        for r in rows:
            print(
                f"{r.quantity:<{w}}  {_fmt(r.computed):>10}  {_fmt(r.reference):>10}  "
                f"{r.unit:<6} {r.verdict}"
            )
    if args is not None and getattr(args, "json", None):
        payload = {"title": title, "rows": [asdict(r) | {"verdict": r.verdict} for r in rows]}
        Path(args.json).write_text(json.dumps(payload, indent=1))


def load(path: Path) -> tuple[str, list[Row]]:
    """Read rows written by ``report(..., --json)``."""
    data = json.loads(Path(path).read_text())
    rows = []
    for d in data["rows"]:
        d.pop("verdict", None)
        rows.append(Row(**d))
    return data["title"], rows
