"""Readers of cycler files: the real exports in tests/data/cycler_files (written by real
cyclers, cellpy's test data, MIT) and hand-written files in the published formats
(tests/data), Parquet round trips, the CLI, and corrupt or truncated files."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bigmap.analysis import (
    COLUMNS,
    IngestError,
    detect_format,
    ingest,
    read_cycler_file,
    read_parquet,
)
from tests.conftest import CYCLER_FILES  # noqa: E402

SHARED = CYCLER_FILES
DATA = Path(__file__).resolve().parent / "data"
MACCOR = SHARED / "maccor_001.txt"
NEWARE = SHARED / "nw_regular_export_ife_example.csv"
MPR = SHARED / "biol.mpr"


@pytest.fixture(scope="module")
def maccor() -> pd.DataFrame:
    return read_cycler_file(MACCOR)


@pytest.fixture(scope="module")
def neware() -> pd.DataFrame:
    return read_cycler_file(NEWARE)


def test_formats_are_detected():
    assert detect_format(MACCOR) == "maccor"
    assert detect_format(NEWARE) == "neware"
    assert detect_format(MPR) == "biologic_mpr"
    assert detect_format(DATA / "arbin_export.csv") == "arbin"
    assert detect_format(DATA / "biologic_gcpl.mpt") == "biologic_mpt"


@pytest.mark.parametrize(
    "path", [MACCOR, NEWARE, MPR, DATA / "arbin_export.csv", DATA / "biologic_gcpl.mpt"]
)
def test_every_file_gives_the_normalised_table(path):
    df = read_cycler_file(path)
    assert list(df.columns) == list(COLUMNS)
    assert len(df) > 5
    assert df["test_time_s"].is_monotonic_increasing
    assert set(df["step_type"].unique()) <= {"charge", "discharge", "rest", "other"}
    # the sign convention: positive current while charging, negative while discharging
    ch = df[df["step_type"] == "charge"]["current_A"]
    dis = df[df["step_type"] == "discharge"]["current_A"]
    assert (ch > 0).all() and (dis < 0).all()
    for c in ("charge_capacity_Ah", "discharge_capacity_Ah"):
        assert (df[c] >= 0).all()
        # cumulative within each cycle
        assert (df.groupby("cycle")[c].diff().fillna(0) >= -1e-9).all()
    assert df.attrs["source"]["sha256"]


def _maccor_rows() -> list[dict[str, str]]:
    with open(MACCOR, encoding="latin-1") as f:
        lines = f.read().splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("Rec#"))
    return list(csv.DictReader(lines[head:], delimiter="\t"))


def test_maccor_matches_the_file_read_independently(maccor):
    rows = _maccor_rows()
    assert len(maccor) == len(rows) == 6704
    # each step's last Amp-hr is the cycler's own count of that step; sum them per state
    last: dict[str, dict[str, float]] = {}
    for r in rows:
        last[r["Step"]] = {"state": r["State"], "ah": float(r["Amp-hr"]), "wh": float(r["Watt-hr"])}
    qc = sum(v["ah"] for v in last.values() if v["state"] == "C")
    qd = sum(v["ah"] for v in last.values() if v["state"] == "D")
    ed = sum(v["wh"] for v in last.values() if v["state"] == "D")
    assert maccor["charge_capacity_Ah"].max() == pytest.approx(qc, rel=1e-9)
    assert maccor["discharge_capacity_Ah"].max() == pytest.approx(qd, rel=1e-9)
    assert maccor["discharge_energy_Wh"].max() == pytest.approx(ed, rel=1e-9)
    # "2d 02:52:51.57" of the last row
    assert maccor["test_time_s"].iloc[-1] == pytest.approx(
        2 * 86400 + 2 * 3600 + 52 * 60 + 51.5699996948242
    )
    # Maccor writes unsigned Amps; discharge rows become negative
    r = rows[2]
    assert r["State"] == "D" and maccor["current_A"].iloc[2] == pytest.approx(-float(r["Amps"]))
    assert maccor["source_row"].iloc[0] == 5  # three header lines, the column line, then data
    # the unconnected thermocouples (about -2500 °C) are not a temperature
    assert maccor["temperature_K"].isna().all()


def test_neware_cycles_match_the_cyclers_own_cycle_rows(neware):
    expected = {}
    with open(NEWARE, encoding="latin-1") as f:
        for ln in f.read().splitlines()[3:]:
            if ln and ln[0].isdigit():
                v = ln.split(",")
                expected[int(v[0])] = [float(x) for x in v[1:6]]
    g = neware.groupby("cycle")
    assert sorted(g.groups) == sorted(expected) == list(range(1, 21))
    for cyc, (qc, qd, _eff, ec, ed) in expected.items():
        assert g["charge_capacity_Ah"].max()[cyc] == pytest.approx(qc, abs=1e-5)
        assert g["discharge_capacity_Ah"].max()[cyc] == pytest.approx(qd, abs=1e-5)
        assert g["charge_energy_Wh"].max()[cyc] == pytest.approx(ec, abs=1e-5)
        assert g["discharge_energy_Wh"].max()[cyc] == pytest.approx(ed, abs=1e-5)
    # 27:55:43 (hours past 24) on the last record
    assert neware["test_time_s"].iloc[-1] == 27 * 3600 + 55 * 60 + 43
    assert neware["temperature_K"].between(290, 310).all()
    assert len(neware) == 9295


def test_biologic_mpr_against_galvani_columns():
    from galvani import BioLogic

    raw = BioLogic.MPRfile(str(MPR)).data
    df = read_cycler_file(MPR)
    assert len(df) == len(raw)
    np.testing.assert_allclose(df["voltage_V"], raw["Ewe/V"].astype(float))
    np.testing.assert_allclose(df["current_A"], raw["I/mA"].astype(float) * 1e-3)
    # all charge passed is the file's final (Q-Qo); this experiment only charges
    assert df["charge_capacity_Ah"].max() == pytest.approx(raw["(Q-Qo)/mA.h"][-1] * 1e-3)
    assert df["discharge_capacity_Ah"].max() == 0
    assert (df["step_type"] == "other").sum() > 0  # the impedance records


def test_biologic_mpt_hand_written_agrees_with_galvani(tmp_path):
    from galvani import BioLogic

    arr, _ = BioLogic.MPTfile(str(DATA / "biologic_gcpl.mpt"))
    df = read_cycler_file(DATA / "biologic_gcpl.mpt")
    np.testing.assert_allclose(df["voltage_V"], arr["Ewe/V"])
    np.testing.assert_allclose(df["test_time_s"], arr["time/s"])
    g = df.groupby("cycle")
    assert g["charge_capacity_Ah"].max().tolist() == pytest.approx([1.0e-3, 1.0e-3])
    assert g["discharge_capacity_Ah"].max().tolist() == pytest.approx([0.95e-3, 0.8e-3])
    assert g["discharge_energy_Wh"].max().tolist() == pytest.approx([3.3975e-3, 2.82e-3])
    # the same file as a European EC-Lab writes it: decimal commas
    text = (DATA / "biologic_gcpl.mpt").read_bytes().decode("ascii")
    head, body = text.split("Energy discharge/W.h\r\n")
    comma = tmp_path / "comma.mpt"
    comma.write_bytes((head + "Energy discharge/W.h\r\n" + body.replace(".", ",")).encode())
    df2 = read_cycler_file(comma)
    np.testing.assert_allclose(df2["voltage_V"], df["voltage_V"])


def test_generic_csv_with_units_in_the_header(tmp_path):
    p = tmp_path / "plain.csv"
    p.write_text(
        "time/h;Current(mA);Voltage(V);Temperature [°C]\n"
        "0;0;3.0;25\n0.5;100;3.5;25\n1.0;100;4.0;26\n1.5;-100;3.6;26\n2.0;-100;3.2;25\n",
        encoding="utf-8",
    )
    df = read_cycler_file(p)
    assert df["test_time_s"].tolist() == [0, 1800, 3600, 5400, 7200]
    assert df["current_A"].tolist() == pytest.approx([0, 0.1, 0.1, -0.1, -0.1])
    assert df["temperature_K"].iloc[0] == pytest.approx(298.15)
    # no capacity columns: integrated (trapezoidal) from the current
    assert df["charge_capacity_Ah"].max() == pytest.approx(0.025 + 0.05)
    assert df["discharge_capacity_Ah"].max() == pytest.approx(0.05)


@pytest.mark.integration  # child processes / a server of its own
def test_parquet_round_trip_and_cli(tmp_path, maccor):
    out = ingest(MACCOR, tmp_path / "m.parquet")
    back = read_parquet(out)
    pd.testing.assert_frame_equal(back, maccor, check_like=False)
    assert back.attrs["source"]["format"] == "maccor"
    cli = tmp_path / "n.parquet"
    r = subprocess.run(
        [sys.executable, "-m", "bigmap.cli", "ingest", str(NEWARE), "--out", str(cli)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "neware" in r.stdout and len(read_parquet(cli)) == 9295


@pytest.mark.parametrize("path", [MACCOR, NEWARE])
def test_the_fast_path_gives_what_the_checked_path_gives(path, monkeypatch):
    from bigmap.analysis.readers import common

    fast = read_cycler_file(path)
    seen = []
    real = common._arrow_block
    monkeypatch.setattr(common, "_arrow_block", lambda *a, **k: seen.append(real(*a, **k)) or None)
    checked = read_cycler_file(path)
    assert seen and seen[0] is not None  # the fast path had read the file
    pd.testing.assert_frame_equal(fast, checked)


def test_durations_vectorised_and_checked():
    from bigmap.analysis.readers import _durations, _durations_arrow

    text = ["  0d 00:00:5.05", "  2d 02:52:51.57", "27:55:43", "00:01:02", "1 day 01:00:00"]
    want = [5.05, 2 * 86400 + 10371.57, 100543, 62, 90000]
    np.testing.assert_allclose(_durations_arrow(text), want)
    np.testing.assert_allclose(_durations_arrow(["12.5", " 7"]), [12.5, 7])
    np.testing.assert_allclose(_durations_arrow(["0:01:02,5"]), [62.5])  # decimal comma
    assert _durations_arrow(["00:00:01", "soon"]) is None
    with pytest.raises(IngestError, match="'soon' is not a duration") as ei:
        _durations(pd.Series(["00:00:01", "soon"]), Path("f.csv"), np.array([7, 8]), "Time")
    assert ei.value.row == 8


# ----------------------------------------------------------------------------- bad files


def _expect(path: Path, *needles: str, row: int | None = None, fmt: str | None = None):
    with pytest.raises(IngestError) as ei:
        read_cycler_file(path, fmt)
    msg = str(ei.value)
    assert path.name in msg
    for n in needles:
        assert n in msg, msg
    if row is not None:
        assert ei.value.row == row, msg
        assert f"row {row}" in msg
    return ei.value


def test_truncated_maccor_names_the_row(tmp_path):
    raw = MACCOR.read_bytes().decode("latin-1").splitlines()
    cut = raw[:1000] + [raw[1000][:40]]  # the last row stops after a few columns
    p = tmp_path / "maccor_cut.txt"
    p.write_text("\n".join(cut), encoding="latin-1")
    _expect(p, "ends in the middle", row=1001)


def test_garbage_value_in_maccor_names_row_and_value(tmp_path):
    raw = MACCOR.read_bytes().decode("latin-1").splitlines()
    f = raw[500].split("\t")
    f[8] = "3.41x27"  # Volts
    raw[500] = "\t".join(f)
    p = tmp_path / "maccor_bad.txt"
    p.write_text("\n".join(raw), encoding="latin-1")
    _expect(p, "Volts", "'3.41x27'", row=501)


def test_blank_line_inside_maccor_data_names_the_row(tmp_path):
    raw = MACCOR.read_bytes().decode("latin-1").splitlines()
    p = tmp_path / "maccor_gap.txt"
    p.write_text("\n".join(raw[:300] + [""] + raw[300:]), encoding="latin-1")
    _expect(p, "empty line inside the data", row=301)
    # a newline at the very end is no error
    p.write_text("\n".join(raw) + "\n\n", encoding="latin-1")
    assert len(read_cycler_file(p)) == 6704


def test_neware_garbage_value_names_row_and_value(tmp_path):
    raw = NEWARE.read_bytes().decode("latin-1").splitlines()
    f = raw[199].split(",")
    assert raw[199].startswith(",,")
    f[6] = "4.1O86"  # Voltage(V), a letter O
    raw[199] = ",".join(f)
    p = tmp_path / "nw_garbage.csv"
    p.write_text("\n".join(raw), encoding="latin-1")
    _expect(p, "Voltage(V)", "'4.1O86'", row=200)


def test_neware_row_with_extra_fields(tmp_path):
    raw = NEWARE.read_bytes().decode("latin-1").splitlines()
    assert raw[99].startswith(",,")
    raw[99] += ",1,2,3"
    p = tmp_path / "nw_bad.csv"
    p.write_text("\n".join(raw), encoding="latin-1")
    _expect(p, "malformed", row=100)


def test_truncated_mpr_says_how_many_records_are_whole(tmp_path):
    data = MPR.read_bytes()
    p = tmp_path / "biol_cut.mpr"
    p.write_bytes(data[: len(data) // 2])
    err = _expect(p, "truncated", "23561 records")
    assert "record" in str(err)


def test_not_a_cycler_file(tmp_path):
    p = tmp_path / "bad.mpr"
    p.write_bytes(b"PK\x03\x04 this is a zip")
    _expect(p, "magic")
    e = tmp_path / "empty.csv"
    e.write_text("")
    _expect(e, "empty")
    _expect(tmp_path / "missing.txt", "no such file")
    x = tmp_path / "x.csv"
    x.write_text("a,b\n1,2\n")
    _expect(x, "no column for test_time_s")
    # a Maccor export forced through the Arbin reader
    _expect(MACCOR, "Arbin", fmt="arbin")


@pytest.mark.integration  # child processes / a server of its own
def test_cli_reports_a_bad_file(tmp_path):
    p = tmp_path / "m.txt"
    shutil.copy(MACCOR, p)
    with open(p, "ab") as f:
        f.write(b"6705\t0\t24\t  2d 02:52:5")
    r = subprocess.run(
        [sys.executable, "-m", "bigmap.cli", "ingest", str(p)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert "m.txt" in r.stderr and "row 6709" in r.stderr  # 6708 lines, then the cut one
