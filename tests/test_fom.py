"""Figures of merit against values computed by hand (tests/data/arbin_export.csv was written
by hand in Arbin's export format with round numbers) and against the cycler's own summary
(the Neware export's cycle rows); the life model's elastic net against scikit-learn and its fit
on a known law."""

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
from tests.conftest import CYCLER_FILES

DATA = Path(__file__).resolve().parent / "data"
NEWARE = CYCLER_FILES / "nw_regular_export_ife_example.csv"


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


# ----------------------------------------------------------------------------- life model


def test_elastic_net_matches_scikit_learn():
    from sklearn.linear_model import ElasticNet

    from bigmap.analysis.lifemodel import elastic_net

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    y = 2.3 + x @ np.array([0.5, -0.2, 0.0, 0.05]) + rng.normal(0, 0.05, 60)
    for alpha in (1e-3, 0.05, 0.3):
        w, b0 = elastic_net(x, y, alpha, 0.5, iters=20000)
        ref = ElasticNet(alpha=alpha, l1_ratio=0.5, tol=1e-12, max_iter=100000).fit(x, y)
        np.testing.assert_allclose(w, ref.coef_, atol=1e-6)
        assert b0 == pytest.approx(ref.intercept_, abs=1e-6)


def test_life_model_fit_predict_and_its_uncertainty(tmp_path):
    from bigmap.analysis.lifemodel import LifeModel, errors, fit_life_model, relative_log10_var

    rng = np.random.default_rng(1)
    n = 80
    feats = pd.DataFrame(
        {
            "log10_var_dq_rel": rng.uniform(-5, -3.5, n),
            "delta_coulombic_efficiency": rng.normal(0, 1e-3, n),
            "delta_voltage_gap": rng.uniform(0.002, 0.01, n),
            "fade_slope": rng.uniform(-2e-3, -4e-4, n),
        }
    )
    # a known law, log-normal noise of 0.03 in log10
    log_life = 0.8 - 0.35 * feats["log10_var_dq_rel"] + rng.normal(0, 0.03, n)
    feats["cycle_life"] = 10**log_life
    model = fit_life_model(feats.iloc[:60], cycles=(10, 40), n_bootstrap=100)
    test = feats.iloc[60:].to_dict("records")
    pred = np.array([model.predict(r)["cycle_life"] for r in test])
    err = errors(feats["cycle_life"].iloc[60:].to_numpy(), pred)
    assert err["mean_percent_error"] < 8  # ~ the noise: 10**0.03 - 1 = 7 %
    cover = np.mean(
        [
            model.predict(r)["lower95"] <= r["cycle_life"] <= model.predict(r)["upper95"]
            for r in test
        ]
    )
    assert cover >= 0.85
    assert model.sigma_log10 == pytest.approx(0.03, rel=0.5)
    # saved and loaded, the same predictions
    path = tmp_path / "m.json"
    path.write_text(model.to_json())
    back = LifeModel.load(path)
    assert back.predict(test[0]) == pytest.approx(model.predict(test[0]))
    with pytest.raises(ValueError, match="missing features"):
        model.predict({"log10_var_dq_rel": -4.0})
    # the size-free ΔQ feature: a 3x smaller cell with a 3x smaller ΔQ has the same value
    assert relative_log10_var(-9.0 - 2 * np.log10(3), 0.005 / 3) == pytest.approx(
        relative_log10_var(-9.0, 0.005)
    )
    with pytest.raises(ValueError, match="positive"):
        relative_log10_var(-9.0, 0.0)
