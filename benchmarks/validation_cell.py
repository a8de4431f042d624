"""Validation of ``cell-sim``: the Chen2020 (LG M50) cell's capacity.

    .venv/bin/python benchmarks/validation_cell.py [--json out.json] [--markdown]

The DFN model with PyBaMM's Chen2020 parameter set (C.-H. Chen et al., J. Electrochem. Soc.
167 (2020) 080534), discharged from PyBaMM's initial state at C/5 and 1C to 2.5 V through the
capability function (``bigmap.tenants.cell.simulate_cycling``), against

* the nominal capacity PyBaMM's parameter set states ("Nominal cell capacity [A.h]", read in
  the installed package): ±5 % at C/5;
* the LG INR21700 M50 datasheet, nominal 5.0 Ah and minimum 4.85 Ah: the datasheet could not
  be found in this workplace's search tools, so these rows are unchecked;
* published PyBaMM figures: none could be read here; no row (the lead may add one).

The tolerances were fixed before the run.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from validation_table import Row, add_arguments, report  # noqa: E402

warnings.filterwarnings("ignore")

DATASHEET = "LG Chem INR21700 M50 product specification (not found via search: unchecked)"


def rows() -> list[Row]:
    import pybamm

    from bigmap.tenants import cell

    nominal = float(pybamm.ParameterValues("Chen2020")["Nominal cell capacity [A.h]"])
    caps = {}
    for rate in ("C/5", "1C"):
        s, _ = cell.simulate_cycling(
            {
                "parameter_set": "Chen2020",
                "model": "DFN",
                "experiment": [f"Discharge at {rate} until 2.5 V"],
            }
        )
        caps[rate] = s["discharge_capacity"][0]
    src = f"PyBaMM {pybamm.__version__} Chen2020 'Nominal cell capacity [A.h]' (installed package)"
    return [
        Row("Chen2020 DFN capacity, C/5 to 2.5 V", caps["C/5"], nominal, "A*h", src, 0.05, True),
        Row(
            "Chen2020 DFN capacity, 1C to 2.5 V",
            caps["1C"],
            nominal,
            "A*h",
            src,
            0.08,
            True,
            note="1C loses a few % to polarisation",
        ),
        Row(
            "Chen2020 DFN capacity, C/5, vs LG M50 nominal",
            caps["C/5"],
            5.0,
            "A*h",
            DATASHEET,
            0.05,
            True,
            checked=False,
        ),
        Row(
            "Chen2020 DFN capacity, C/5, vs LG M50 minimum",
            caps["C/5"],
            4.85,
            "A*h",
            DATASHEET,
            0.05,
            True,
            checked=False,
            note="a minimum: computed should be >= it",
        ),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(ap)
    a = ap.parse_args()
    report("Cells: Chen2020 / LG M50 capacity (cell-sim)", rows(), a)


if __name__ == "__main__":
    main()
