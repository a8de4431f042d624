"""Figures of merit from the normalised cycling table (``bigmap.analysis.table``).

Definitions (one row per cycle of the file, in the cycler's numbering):

- charge / discharge capacity [A h] and energy [W h]: the maxima of the table's per-cycle
  cumulative counters (the cycler's own integration).
- coulombic efficiency = discharge capacity / charge capacity of the same cycle; energy
  efficiency = discharge energy / charge energy (the definitions cyclers print, e.g. the
  "Chg.-DChg. Eff" of a Neware export).
- capacity retention = discharge capacity / discharge capacity of a reference cycle (default:
  the first cycle with a discharge).
- cycle at 80 % retention: the first cycle whose retention is at or below 0.8 (``None`` if
  none), the end-of-life definition of Severson et al., Nature Energy 4, 383 (2019).
- mean charge / discharge voltage = energy / capacity (the charge-weighted mean voltage), and
  their gap (charge minus discharge), a measure of polarisation.
- DC internal resistance: |ΔV/ΔI| across a switch between rest and load (either way)
  between two consecutive records at most ``max_dt`` apart (the pulse method of IEC 61960-3,
  read from the file's own sampling, so the value includes whatever relaxation happens within
  that interval; the interval is reported).
- dQ/dV: capacity interpolated on a uniform voltage grid, smoothed with a Savitzky-Golay
  filter, differentiated.
- ΔQ(V) = Q_b(V) − Q_a(V) between the discharge curves of two cycles on a common voltage grid,
  and its summary statistics (minimum, mean, variance, skewness, kurtosis, value at the lowest
  voltage), the features of Severson et al. 2019 (their ΔQ_100−10(V), 1000 points between the
  voltage limits, log10 of the absolute value of each statistic in their models).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import signal, stats


def cycle_summary(df: pd.DataFrame, reference_cycle: int | None = None) -> pd.DataFrame:
    """Per-cycle figures of merit (index: cycle)."""
    if len(df) == 0:
        raise ValueError("the table is empty")
    g = df.groupby("cycle", sort=True)
    s = pd.DataFrame(
        {
            "charge_capacity_Ah": g["charge_capacity_Ah"].max(),
            "discharge_capacity_Ah": g["discharge_capacity_Ah"].max(),
            "charge_energy_Wh": g["charge_energy_Wh"].max(),
            "discharge_energy_Wh": g["discharge_energy_Wh"].max(),
            "start_time_s": g["test_time_s"].min(),
            "end_time_s": g["test_time_s"].max(),
            "min_voltage_V": g["voltage_V"].min(),
            "max_voltage_V": g["voltage_V"].max(),
        }
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        qc, qd = s["charge_capacity_Ah"], s["discharge_capacity_Ah"]
        ec, ed = s["charge_energy_Wh"], s["discharge_energy_Wh"]
        s["coulombic_efficiency"] = (qd / qc).where((qc > 0) & (qd > 0))
        s["energy_efficiency"] = (ed / ec).where((ec > 0) & (ed > 0))
        s["mean_charge_voltage_V"] = (ec / qc).where(qc > 0)
        s["mean_discharge_voltage_V"] = (ed / qd).where(qd > 0)
    s["voltage_gap_V"] = s["mean_charge_voltage_V"] - s["mean_discharge_voltage_V"]
    if reference_cycle is None:
        with_discharge = s.index[s["discharge_capacity_Ah"] > 0]
        reference_cycle = int(with_discharge[0]) if len(with_discharge) else None
    if reference_cycle is not None and reference_cycle in s.index:
        q0 = s.loc[reference_cycle, "discharge_capacity_Ah"]
        s["capacity_retention"] = s["discharge_capacity_Ah"] / q0 if q0 > 0 else np.nan
    else:
        s["capacity_retention"] = np.nan
    s.attrs["reference_cycle"] = reference_cycle
    return s


def cycle_at_retention(summary: pd.DataFrame, threshold: float = 0.8) -> int | None:
    """The first cycle whose capacity retention is at or below ``threshold``."""
    r = summary["capacity_retention"]
    hit = r.index[(r <= threshold).to_numpy()]
    return int(hit[0]) if len(hit) else None


def dc_internal_resistance(
    df: pd.DataFrame, *, max_dt: float = 30.0, rest_fraction: float = 0.01
) -> pd.DataFrame:
    """Every switch between rest and load in the file with |ΔV/ΔI| (one row per event).

    An event is a pair of consecutive records at most ``max_dt`` apart where one side is at
    rest (|I| below ``rest_fraction`` of the largest current in the file) and the other is
    not; impedance records (step type ``other``) are left out."""
    d = df[df["step_type"] != "other"]
    t = d["test_time_s"].to_numpy()
    i = d["current_A"].to_numpy()
    v = d["voltage_V"].to_numpy()
    cols = ["cycle", "test_time_s", "delta_I_A", "delta_t_s", "resistance_ohm"]
    if len(t) < 2:
        return pd.DataFrame(columns=cols)
    rest = np.abs(i) <= rest_fraction * float(np.nanmax(np.abs(i)))
    di, dv, dt = np.diff(i), np.diff(v), np.diff(t)
    ok = (rest[1:] != rest[:-1]) & (dt <= max_dt) & (dt >= 0) & (di != 0)
    idx = np.flatnonzero(ok)
    return pd.DataFrame(
        {
            "cycle": d["cycle"].to_numpy()[idx + 1],
            "test_time_s": t[idx + 1],
            "delta_I_A": di[idx],
            "delta_t_s": dt[idx],
            "resistance_ohm": np.abs(dv[idx] / di[idx]),
        },
        columns=cols,
    )


def _segment(df: pd.DataFrame, cycle: int, direction: str) -> pd.DataFrame:
    rows = df[(df["cycle"] == cycle) & (df["step_type"] == direction)]
    if len(rows) < 3:
        raise ValueError(f"cycle {cycle} has no {direction} to analyse ({len(rows)} records)")
    return rows


def q_of_v(
    df: pd.DataFrame,
    cycle: int,
    v_grid: np.ndarray,
    direction: str = "discharge",
) -> np.ndarray:
    """The capacity passed in ``direction`` during ``cycle`` as a function of voltage, on
    ``v_grid`` (NaN outside the voltage range the cycle covered)."""
    seg = _segment(df, cycle, direction)
    col = "discharge_capacity_Ah" if direction == "discharge" else "charge_capacity_Ah"
    v = seg["voltage_V"].to_numpy()
    q = seg[col].to_numpy()
    q = q - q[0]
    # make voltage monotonic in the direction of travel (noise and relaxation blips)
    if direction == "discharge":
        v = np.minimum.accumulate(v)
        vv, qq = v[::-1], q[::-1]
    else:
        vv, qq = np.maximum.accumulate(v), q
    vv, keep = np.unique(vv, return_index=True)
    qq = qq[keep]
    out = np.interp(v_grid, vv, qq, left=np.nan, right=np.nan)
    return out


def delta_q(
    df: pd.DataFrame,
    cycle_a: int,
    cycle_b: int,
    v_min: float | None = None,
    v_max: float | None = None,
    n: int = 1000,
) -> tuple[np.ndarray, np.ndarray]:
    """ΔQ(V) = Q_b(V) − Q_a(V) of the discharge curves on ``n`` voltages between the limits
    both cycles cover (or ``v_min``/``v_max``). Returns (voltages, ΔQ [A h])."""
    sa = _segment(df, cycle_a, "discharge")
    sb = _segment(df, cycle_b, "discharge")
    lo = max(sa["voltage_V"].min(), sb["voltage_V"].min()) if v_min is None else v_min
    hi = min(sa["voltage_V"].max(), sb["voltage_V"].max()) if v_max is None else v_max
    if not hi > lo:
        raise ValueError(f"cycles {cycle_a} and {cycle_b} share no voltage range")
    grid = np.linspace(lo, hi, n)
    qa = q_of_v(df, cycle_a, grid)
    qb = q_of_v(df, cycle_b, grid)
    return grid, qb - qa


def delta_q_statistics(dq: np.ndarray) -> dict[str, float]:
    """Severson et al.'s summary statistics of ΔQ(V) (``value_at_min_voltage``: their
    "value at 2 V", the lowest voltage of the grid)."""
    x = dq[np.isfinite(dq)]
    if len(x) < 3:
        raise ValueError("ΔQ(V) has fewer than 3 finite points")
    return {
        "minimum": float(x.min()),
        "mean": float(x.mean()),
        "variance": float(x.var(ddof=1)),
        "skewness": float(stats.skew(x)),
        "kurtosis": float(stats.kurtosis(x, fisher=False)),
        "value_at_min_voltage": float(x[0]),
    }


def dqdv(
    df: pd.DataFrame,
    cycle: int,
    direction: str = "discharge",
    dv: float = 0.005,
    window: int = 11,
) -> pd.DataFrame:
    """dQ/dV [A h/V] of one half-cycle on a grid of spacing ``dv`` (Savitzky-Golay smoothing
    of order 2 over ``window`` points before differentiating)."""
    seg = _segment(df, cycle, direction)
    v = seg["voltage_V"]
    grid = np.arange(v.min(), v.max(), dv)
    if len(grid) < window + 2:
        raise ValueError(f"cycle {cycle}: voltage range too small for dQ/dV at {dv} V")
    q = q_of_v(df, cycle, grid, direction)
    ok = np.isfinite(q)
    grid, q = grid[ok], q[ok]
    qs = signal.savgol_filter(q, window, 2)
    d = np.gradient(qs, grid)
    if direction == "discharge":
        d = -d  # capacity grows as voltage falls: report a positive peak
    return pd.DataFrame({"voltage_V": grid, "dqdv_Ah_per_V": d})


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, np.floating):
        return _clean(float(x))
    if isinstance(x, np.integer):
        return int(x)
    return x


def figures_of_merit(
    df: pd.DataFrame,
    *,
    reference_cycle: int | None = None,
    delta_q_cycles: tuple[int, int] | None = None,
    retention_threshold: float = 0.8,
) -> dict[str, Any]:
    """All figures of merit as a JSON-ready dict (lists per cycle, NaN as None)."""
    s = cycle_summary(df, reference_cycle)
    per_cycle = {
        c: [_clean(x) for x in s[c].tolist()]
        for c in (
            "charge_capacity_Ah",
            "discharge_capacity_Ah",
            "charge_energy_Wh",
            "discharge_energy_Wh",
            "coulombic_efficiency",
            "energy_efficiency",
            "capacity_retention",
            "mean_charge_voltage_V",
            "mean_discharge_voltage_V",
            "voltage_gap_V",
        )
    }
    ir = dc_internal_resistance(df)
    out: dict[str, Any] = {
        "cycles": [int(c) for c in s.index],
        **per_cycle,
        "reference_cycle": s.attrs.get("reference_cycle"),
        "cycle_at_80pct_retention": cycle_at_retention(s, retention_threshold),
        "dc_internal_resistance_ohm": _clean(float(ir["resistance_ohm"].median()))
        if len(ir)
        else None,
        "dc_internal_resistance_events": len(ir),
    }
    if delta_q_cycles is not None:
        a, b = delta_q_cycles
        _, dq = delta_q(df, a, b)
        out["delta_q"] = {"cycles": [a, b], **delta_q_statistics(dq)}
    return out


def early_life_features(
    df: pd.DataFrame, fom: dict[str, Any], formation_cycles: int = 0
) -> dict[str, float]:
    """The FINALES early-life descriptors of ``capacity/cycling`` (the inputs of
    ``degradationEOL/degradation_model``) between cycle 10 after formation and the last cycle:
    the change of coulombic efficiency and of the charge-discharge voltage gap, and
    log10 var ΔQ(V) (Severson et al. 2019). Empty when the file has fewer than 11 cycles
    after formation or the descriptors cannot be formed."""
    cycles = fom["cycles"]
    out: dict[str, float] = {}
    if len(cycles) - formation_cycles < 11:
        return out
    c10, cx = cycles[formation_cycles + 9], cycles[-1]
    k10, kx = cycles.index(c10), cycles.index(cx)
    ce, gap = fom["coulombic_efficiency"], fom["voltage_gap_V"]
    if ce[kx] is not None and ce[k10] is not None:
        out["delta_coulombic_efficiency"] = ce[kx] - ce[k10]
    if gap[kx] is not None and gap[k10] is not None:
        out["voltage_gap_charge_discharge"] = gap[kx] - gap[k10]
    try:
        _, dq = delta_q(df, c10, cx)
        out["capacity_vector_variance"] = math.log10(max(delta_q_statistics(dq)["variance"], 1e-30))
    except ValueError:
        pass
    return out
