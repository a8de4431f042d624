"""Figures of merit against values computed by hand (tests/data/arbin_export.csv was written
by hand in Arbin's export format with round numbers) and against the cycler's own summary
(the Neware export's cycle rows)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bigmap.analysis import read_cycler_file
from bigmap.analysis.fom import (
    cycle_at_retention,
    cycle_summary,
    dc_internal_resistance,
    delta_q,
    delta_q_statistics,
    dqdv,
    figures_of_merit,
    q_of_v,
)
from bigmap.analysis.table import COLUMNS

DATA = Path(__file__).resolve().parent / "data"
NEWARE = (
    Path(__file__).resolve().parents[1].parent
    / "shared/data/cycler_files/nw_regular_export_ife_example.csv"
)


@pytest.fixture(scope="module")
def arbin() -> pd.DataFrame:
    return read_cycler_file(DATA / "arbin_export.csv")


def test_per_cycle_figures_by_hand(arbin):
    s = cycle_summary(arbin)
    assert s.index.tolist() == [1, 2, 3]
    assert s["charge_capacity_Ah"].tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert s["discharge_capacity_Ah"].tolist() == pytest.approx([0.95, 0.8, 0.75])
    assert s["coulombic_efficiency"].tolist() == pytest.approx([0.95, 0.8, 0.75])
    # energies written in the file: 3.65/3.3125, 3.7/2.76, 3.7/2.5875 Wh
    assert s["energy_efficiency"].tolist() == pytest.approx(
        [3.3125 / 3.65, 2.76 / 3.7, 2.5875 / 3.7]
    )
    assert s["mean_charge_voltage_V"].tolist() == pytest.approx([3.65, 3.7, 3.7])
    assert s["mean_discharge_voltage_V"].tolist() == pytest.approx(
        [3.3125 / 0.95, 2.76 / 0.8, 2.5875 / 0.75]
    )
    assert s["voltage_gap_V"].iloc[0] == pytest.approx(3.65 - 3.3125 / 0.95)
    assert s["capacity_retention"].tolist() == pytest.approx([1.0, 0.8 / 0.95, 0.75 / 0.95])
    assert cycle_at_retention(s, 0.8) == 3
    assert cycle_at_retention(s, 0.7) is None
    assert cycle_at_retention(cycle_summary(arbin, reference_cycle=2), 0.95) == 3


def test_dc_internal_resistance_by_hand(arbin):
    # every rest<->load switch in the file was written as 0.1 V per 1 A
    ir = dc_internal_resistance(arbin)
    # 4 switches in cycles 1 and 2 (rest/charge, charge/rest, rest/discharge,
    # discharge/next rest), 3 in cycle 3 (no rest after the last discharge)
    assert len(ir) == 11
    assert ir["resistance_ohm"].to_numpy() == pytest.approx(np.full(11, 0.1))
    assert figures_of_merit(arbin)["dc_internal_resistance_ohm"] == pytest.approx(0.1)


def _linear_cycles(tmp_path: Path) -> pd.DataFrame:
    """Two discharges from 4.0 V to 3.0 V with Q(V) = k (4.0 - V): k = 1.0 and 0.9 A h/V."""
    rows = ["time_s,cycle,current_A,voltage_V,discharge_capacity_Ah,charge_capacity_Ah"]
    t = 0.0
    for cyc, k in ((1, 1.0), (2, 0.9)):
        for v in np.linspace(4.0, 3.0, 201):
            rows.append(f"{t},{cyc},-1.0,{v:.6f},{k * (4.0 - v):.9f},0")
            t += 10
    p = tmp_path / "linear.csv"
    p.write_text("\n".join(rows) + "\n")
    return read_cycler_file(p)


def test_delta_q_statistics_analytically(tmp_path):
    df = _linear_cycles(tmp_path)
    assert list(df.columns) == list(COLUMNS)
    v, dq = delta_q(df, 1, 2, n=1000)
    # ΔQ(V) = (0.9 - 1.0)(4 - V) = -0.1 (4 - V) on [3, 4]
    np.testing.assert_allclose(dq, -0.1 * (4.0 - v), atol=1e-7)
    st = delta_q_statistics(dq)
    assert st["minimum"] == pytest.approx(-0.1, abs=1e-6)
    assert st["value_at_min_voltage"] == pytest.approx(-0.1, abs=1e-6)
    assert st["mean"] == pytest.approx(-0.05, abs=1e-6)
    # 1000 equally spaced values (spacing h = 0.1/999) on [-0.1, 0]: sample variance
    # h^2 n (n + 1) / 12
    h = 0.1 / 999
    assert st["variance"] == pytest.approx(h * h * 1000 * 1001 / 12, rel=1e-6)
    assert st["skewness"] == pytest.approx(0.0, abs=1e-6)
    assert st["kurtosis"] == pytest.approx(1.8, rel=5e-3)  # uniform: 9/5
    # dQ/dV of a linear Q(V) is its slope
    d = dqdv(df, 1, dv=0.01)
    assert d["dqdv_Ah_per_V"].to_numpy() == pytest.approx(np.full(len(d), 1.0), rel=1e-6)
    assert q_of_v(df, 2, np.array([3.5]))[0] == pytest.approx(0.45)


def test_figures_of_merit_on_the_neware_export_match_its_own_efficiency_column():
    df = read_cycler_file(NEWARE)
    fom = figures_of_merit(df, delta_q_cycles=(2, 20))
    eff = {}
    with open(NEWARE, encoding="latin-1") as f:
        for ln in f.read().splitlines()[3:]:
            if ln and ln[0].isdigit():
                v = ln.split(",")
                eff[int(v[0])] = float(v[3]) / 100
    assert fom["cycles"] == list(range(1, 21))
    assert fom["coulombic_efficiency"] == pytest.approx([eff[c] for c in range(1, 21)], abs=1e-4)
    assert fom["reference_cycle"] == 1
    assert fom["capacity_retention"][-1] == pytest.approx(0.26320 / 0.33067, abs=1e-4)
    assert fom["cycle_at_80pct_retention"] == 20 or fom["cycle_at_80pct_retention"] is None
    assert 0.05 < fom["dc_internal_resistance_ohm"] < 0.2
    dq = fom["delta_q"]
    assert dq["cycles"] == [2, 20] and dq["minimum"] < dq["mean"] < 0 and dq["variance"] > 0


def test_bad_inputs_are_clear(arbin):
    with pytest.raises(ValueError, match="cycle 7 has no discharge"):
        delta_q(arbin, 1, 7)
    with pytest.raises(ValueError, match="empty"):
        cycle_summary(arbin.iloc[0:0])
