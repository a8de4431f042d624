"""The conformance corpus: real files from public repositories (tests/data/cycler_files, each
with its source and licence in README.md there), read by bigmap and compared with what an
independent reader makes of the same file.

``expected.json`` holds bigmap's figures (rows, cycles, per-cycle charge and discharge
capacity) as ``benchmarks/corpus_crosscheck.py --write`` stored them after checking them
against the independent reader it names (cellpy 1.0.3, fastnda, access-parser, or a separate
stdlib-csv computation from the instrument's documented counters): every agreement there is
within 0.1 %. Here every file is read again and held to those figures, and the independent
readers that the test environment has (galvani, impedance.py, access-parser, the stdlib-csv
computations of ``corpus_crosscheck``, the Battery Data Alliance's own BDF conversion of the
Landt file) are run live.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bigmap.analysis import IngestError, read_cycler_file
from bigmap.analysis.fom import cycle_summary
from bigmap.analysis.readers import (
    Reader,
    detect_format,
    register,
    unregister,
    write_bdf,
)
from bigmap.analysis.readers import (
    read_cycler_file as read_file,
)
from tests.conftest import CYCLER_FILES, REPO

EXPECTED = json.loads((CYCLER_FILES / "expected.json").read_text())
NOT_DATA = {"README.md", "expected.json", "trim.py"}
TOL = 1e-3


def _crosscheck():
    spec = importlib.util.spec_from_file_location(
        "corpus_crosscheck", REPO / "benchmarks" / "corpus_crosscheck.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


CROSS = _crosscheck()


def _figures(df: pd.DataFrame) -> dict[str, list[float]]:
    s = cycle_summary(df)
    return {
        str(int(c)): [
            float(s.loc[c, "charge_capacity_Ah"]),
            float(s.loc[c, "discharge_capacity_Ah"]),
        ]
        for c in s.index
    }


def test_every_file_of_the_corpus_is_read_and_matches_its_expected_figures():
    files = sorted(p for p in CYCLER_FILES.iterdir() if p.is_file() and p.name not in NOT_DATA)
    assert {p.name for p in files} == set(EXPECTED), "every corpus file has expected figures"
    read = 0
    families = set()
    for p in files:
        exp = EXPECTED[p.name]
        df = read_cycler_file(p)
        src = df.attrs["source"]
        assert src["format"] == exp["format"], p.name
        assert src["sha256"] and len(src["sha256"]) == 64
        assert src["library"] and src["library_version"] not in ("", "unknown"), src
        assert len(df) == exp["rows"], p.name
        assert df.attrs["kind"] == exp["kind"]
        families.add(src["instrument"])
        if exp["kind"] == "cycling":
            figs = _figures(df)
            assert len(figs) == exp["cycles"], p.name
            assert list(figs) == list(exp["per_cycle_Ah"]), p.name
            for c, (qc, qd) in exp["per_cycle_Ah"].items():
                scale = max(qc, qd, 1e-12)
                assert abs(figs[c][0] - qc) <= TOL * scale, (p.name, c)
                assert abs(figs[c][1] - qd) <= TOL * scale, (p.name, c)
            if exp["agreement"] is not None:
                assert exp["agreement"] <= TOL, (p.name, exp["independent_reader"])
        else:
            lo, hi = exp["frequency_Hz"]
            assert df["frequency_Hz"].min() == pytest.approx(lo)
            assert df["frequency_Hz"].max() == pytest.approx(hi)
        read += 1
    assert read == len(files) == 29
    # at least 8 instrument families (the BDF counts as a format, not an instrument)
    assert len(families - {"Battery Data Format", "any"}) >= 9, families


@pytest.mark.parametrize(
    "name",
    [n for n, (_, indep, fn) in CROSS.CHECKS.items() if fn is not None and "stdlib" in indep]
    + ["arbin_res_mits7_fixture.res"],
)
def test_independent_readers_that_run_here_agree(name):
    """The stdlib-csv computations and access-parser, live (cellpy and fastnda, which need
    packages the test environment does not install, were checked when expected.json was
    written)."""
    _, indep, fn = CROSS.CHECKS[name]
    df = read_cycler_file(CYCLER_FILES / name)
    assert CROSS.agreement(_figures(df), fn(CYCLER_FILES / name)) <= TOL, indep


def test_biologic_impedance_against_galvani_and_impedance_py():
    from galvani import BioLogic
    from impedance import preprocessing

    mpr = read_cycler_file(CYCLER_FILES / "biologic_peis.mpr")
    raw = BioLogic.MPRfile(str(CYCLER_FILES / "biologic_peis.mpr")).data
    assert mpr.attrs["kind"] == "impedance"
    np.testing.assert_allclose(mpr["frequency_Hz"], raw["freq/Hz"])
    np.testing.assert_allclose(mpr["z_real_ohm"], raw["Re(Z)/Ohm"])
    np.testing.assert_allclose(mpr["z_imag_ohm"], -raw["-Im(Z)/Ohm"])
    mpt = read_cycler_file(CYCLER_FILES / "biologic_peis_impedancepy.mpt")
    f, z = preprocessing.readFile(str(CYCLER_FILES / "biologic_peis_impedancepy.mpt"), "biologic")
    np.testing.assert_allclose(mpt["frequency_Hz"], f)
    np.testing.assert_allclose(mpt["z_real_ohm"], z.real)
    np.testing.assert_allclose(mpt["z_imag_ohm"], z.imag)
    dta = read_cycler_file(CYCLER_FILES / "gamry_eispot_impedancepy.DTA")
    f, z = preprocessing.readGamry(str(CYCLER_FILES / "gamry_eispot_impedancepy.DTA"))
    np.testing.assert_allclose(dta["frequency_Hz"], f)
    np.testing.assert_allclose(dta["z_real_ohm"], z.real)
    np.testing.assert_allclose(dta["z_imag_ohm"], z.imag)
    assert (dta["z_imag_ohm"] < 0).sum() > len(dta) // 2  # capacitive: negative imaginary part


def test_biologic_text_exports_against_their_own_counter():
    """(Q-Qo) increments split by sign, summed per cycle, with the csv module."""
    for name in ("biologic_btlab_mb_pyprobe.txt", "biologic_no_header_pyprobe.mpt"):
        p = CYCLER_FILES / name
        lines = p.read_bytes().decode("latin-1").splitlines()
        start = 0
        if lines[0].startswith(("EC-Lab", "BT-Lab")):
            start = int(lines[1].split(":")[1]) - 1
        rows = list(csv.DictReader(lines[start:], delimiter="\t"))
        q = [float(r["(Q-Qo)/mA.h"]) / 1000 for r in rows]
        dq = np.diff(q, prepend=q[0])
        df = read_cycler_file(p)
        assert len(df) == len(rows)
        assert df["charge_capacity_Ah"].max() == pytest.approx(dq[dq > 0].sum(), rel=TOL, abs=1e-12)
        assert df["discharge_capacity_Ah"].max() == pytest.approx(
            -dq[dq < 0].sum(), rel=TOL, abs=1e-12
        )


def test_landt_against_the_battery_data_alliances_own_bdf_conversion():
    """The BDA converted the same Landt export to BDF with its own code: step by step, the
    capacities bigmap reads from the raw file are the ones in the BDA's file."""
    raw = read_cycler_file(CYCLER_FILES / "landt_LiGrR2032_trimmed.csv")
    bda = pd.read_csv(CYCLER_FILES / "bdf_bda_landt_LiGrR2032_trimmed.csv")
    assert len(raw) == len(bda)
    np.testing.assert_allclose(raw["test_time_s"], bda["test_time_second"])
    np.testing.assert_allclose(raw["voltage_V"], bda["voltage_volt"])
    np.testing.assert_allclose(raw["current_A"], bda["current_ampere"])
    steps = (raw["step"].diff() != 0).cumsum()
    for _, g in bda.groupby(steps.to_numpy()):
        i = g.index
        qc = raw.loc[i, "charge_capacity_Ah"].max() - raw.loc[i[0], "charge_capacity_Ah"]
        qd = raw.loc[i, "discharge_capacity_Ah"].max() - raw.loc[i[0], "discharge_capacity_Ah"]
        assert g["charging_capacity_ah"].max() == pytest.approx(qc, abs=1e-4)
        assert g["discharging_capacity_ah"].max() == pytest.approx(qd, abs=1e-4)


def test_the_bda_sample_against_its_three_rows():
    """0.1 A for 2 s: 0.2 A s = 5.56e-5 A h (trapezoidal; the file has no counters)."""
    df = read_cycler_file(CYCLER_FILES / "bdf_bda_sample.csv")
    assert df["charge_capacity_Ah"].max() == pytest.approx(0.2 / 3600)
    assert df["voltage_V"].tolist() == [3.7, 3.6, 3.5]


def test_bdf_written_by_bigmap_reads_back_the_same(tmp_path):
    for name in ("neware_TestFile.nda", "maccor_rec_cycleP_trimmed.txt", "pec_sbt0550_trimmed.csv"):
        df = read_cycler_file(CYCLER_FILES / name)
        out = write_bdf(df, tmp_path / f"{name}.bdf.csv")
        header = out.read_text().splitlines()[0].split(",")
        assert header[:3] == ["Test Time / s", "Voltage / V", "Current / A"]
        assert "Cycle Count / 1" in header and "Cycle Charging Capacity / Ah" in header
        back = read_cycler_file(out)
        assert back.attrs["source"]["format"] == "bdf"
        assert len(back) == len(df)
        a, b = _figures(df), _figures(back)
        assert CROSS.agreement(a, b) <= 1e-6
        np.testing.assert_allclose(back["current_A"], df["current_A"], rtol=1e-9)


def test_detection_is_by_content_not_by_extension(tmp_path):
    for name, fmt in [
        ("neware_TESTCELL0001-B2.ndax", "neware_nda"),
        ("arbin_res_mits7_fixture.res", "arbin_res"),
        ("maccor_beep_PredictionDiagnostics_000151.052", "maccor"),
        ("gamry_eispot_impedancepy.DTA", "gamry_dta"),
        ("novonix_beep_form_short.csv", "novonix"),
        ("basytec_pyprobe.txt", "basytec"),
        ("bdf_bda_sample.csv", "bdf"),
        ("pec_act4_test25205.csv", "pec"),
    ]:
        p = tmp_path / f"renamed_{name}.dat"
        shutil.copy(CYCLER_FILES / name, p)
        assert detect_format(p) == fmt, name


def test_xlsx_exports_of_neware_and_arbin(tmp_path):
    """No real Neware or Arbin workbook could be found in public repositories: the workbooks
    here hold real exports (the Neware record CSV and the Arbin CSV of the corpus) laid out
    as the vendors' Excel exports are (sheet 'record'; sheets 'Channel_1-006_1/_2')."""
    import openpyxl

    nw = pd.read_csv(CYCLER_FILES / "neware_record_uio_trimmed.csv")
    wb = openpyxl.Workbook()
    wb.active.title = "test"
    wb.active.append(["Neware BTS test info"])
    ws = wb.create_sheet("record")
    ws.append(list(nw.columns))
    for row in nw.itertuples(index=False):
        ws.append(list(row))
    p = tmp_path / "neware.xlsx"
    wb.save(p)
    df = read_cycler_file(p)
    assert df.attrs["source"]["format"] == "neware_record"
    want = read_cycler_file(CYCLER_FILES / "neware_record_uio_trimmed.csv")
    assert CROSS.agreement(_figures(df), _figures(want)) <= 1e-9
    assert df["source_row"].iloc[0] == 2  # the sheet's own row number

    ar = pd.read_csv(CYCLER_FILES / "arbin_csv_bdt_example.csv")
    wb = openpyxl.Workbook()
    wb.active.title = "Global_Info"
    for part, chunk in enumerate(np.array_split(np.arange(len(ar)), 2), start=1):
        ws = wb.create_sheet(f"Channel_1-006_{part}")
        ws.append(list(ar.columns))
        for i in chunk:
            ws.append([float(x) for x in ar.iloc[i]])
    wb.create_sheet("Statistics_1-006").append(["Cycle_Index", "Charge_Capacity(Ah)"])
    p = tmp_path / "arbin.xlsx"
    wb.save(p)
    df = read_cycler_file(p)
    assert df.attrs["source"]["format"] == "arbin_xlsx"
    want = read_cycler_file(CYCLER_FILES / "arbin_csv_bdt_example.csv")
    assert len(df) == len(want)
    assert CROSS.agreement(_figures(df), _figures(want)) <= 1e-9


def test_digatron_written_in_its_documented_layout(tmp_path):
    """No real Digatron export is public: a file in the column layout the Battery Data
    Alliance documents for it (German decimal commas, a units row)."""
    p = tmp_path / "digatron.csv"
    rows = ["Step;Status;Prog Time;Voltage;Current;AhCha;AhDch;Cycle", ";;h:m:s;V;A;Ah;Ah;"]
    t = 0
    for step, status, cur, n in ((1, "PAU", 0.0, 3), (2, "CHA", 1.0, 4), (3, "DCH", -1.0, 4)):
        for _ in range(n):
            t += 900
            qc = 0.25 * max(0, t - 2700) / 900 if status == "CHA" else (1.0 if step == 3 else 0)
            qd = 0.25 * (t - 6300) / 900 if status == "DCH" else 0
            h, m, s = t // 3600, t % 3600 // 60, t % 60
            v = f"{3.5 + 0.1 * cur:.2f}".replace(".", ",")
            rows.append(
                f"{step};{status};{h:02d}:{m:02d}:{s:02d};{v};{cur:.1f};{qc:.2f};{qd:.2f};1".replace(
                    "0.", "0,"
                ).replace("1.0", "1,0")
            )
    p.write_text("\n".join(rows) + "\n", encoding="latin-1")
    df = read_cycler_file(p)
    assert df.attrs["source"]["format"] == "digatron"
    assert df["charge_capacity_Ah"].max() == pytest.approx(1.0)
    assert df["discharge_capacity_Ah"].max() == pytest.approx(1.0)
    assert (df["current_A"] < 0).sum() == 4 and set(df["step_type"]) == {
        "rest",
        "charge",
        "discharge",
    }
    assert df["test_time_s"].iloc[-1] == 11 * 900


def test_a_new_reader_joins_without_editing_detection(tmp_path):
    p = tmp_path / "log.mycycler"
    p.write_text("MYCYCLER v1\nt,V,I\n0,3.0,0.1\n3600,3.5,0.1\n")

    def read(path: Path) -> pd.DataFrame:
        from bigmap.analysis.readers.common import _read_delimited
        from bigmap.analysis.readers.mapped import Columns, table_from_columns

        df, rows = _read_delimited(Path(path), 2, ",")
        return table_from_columns(df, rows, Path(path), Columns(("t", 1), ("I", 1), ("V", 1)))

    with pytest.raises(IngestError, match="unknown cycler file format"):
        read_cycler_file(p)
    register(
        Reader("mycycler", "My cycler", "test", lambda s: s.lines[0].startswith("MYCYCLER"), read)
    )
    try:
        df = read_file(p)
        assert df.attrs["source"]["format"] == "mycycler"
        assert df["charge_capacity_Ah"].max() == pytest.approx(0.1)
    finally:
        unregister("mycycler")


# ----------------------------------------------------------------------------- bad files


def _err(path: Path, *needles: str, fmt: str | None = None) -> IngestError:
    with pytest.raises(IngestError) as ei:
        read_cycler_file(path, fmt)
    msg = str(ei.value)
    assert path.name in msg
    for n in needles:
        assert n in msg, msg
    return ei.value


def test_bad_files_name_the_file_the_row_and_what_was_expected(tmp_path):
    # a truncated NDAX (a zip cut in half)
    data = (CYCLER_FILES / "neware_TESTCELL0001-B2.ndax").read_bytes()
    p = tmp_path / "cut.ndax"
    p.write_bytes(data[: len(data) // 2])
    _err(p, "NewareNDA cannot read it", fmt="neware_nda")
    # an Access database that is not an Arbin test
    p = tmp_path / "garbage.res"
    p.write_bytes(b"\x00\x01\x00\x00Standard Jet DB" + b"\x00" * 4000)
    _err(p, "mdb-export")
    # a Novonix file with a letter in a number
    lines = (CYCLER_FILES / "novonix_pyprobe.csv").read_text(encoding="utf-8").splitlines()
    cells = lines[30].split(",")
    cells[6] = "3.8x"
    lines[30] = ",".join(cells)
    p = tmp_path / "novonix_bad.csv"
    p.write_text("\n".join(lines), encoding="utf-8")
    e = _err(p, "Potential (V)", "'3.8x'")
    assert e.row == 31
    # a Basytec file whose header lost its voltage column
    text = (CYCLER_FILES / "basytec_pyprobe.txt").read_bytes().decode("latin-1")
    p = tmp_path / "basytec_noU.txt"
    p.write_bytes(text.replace("U[V]", "Ux").encode("latin-1"))
    _err(p, "no column for voltage")
    # a Gamry file without its impedance table
    text = (CYCLER_FILES / "gamry_eispot_impedancepy.DTA").read_bytes().decode("latin-1")
    p = tmp_path / "no_z.DTA"
    p.write_bytes(text.replace("ZCURVE\tTABLE", "XCURVE\tTABLE").encode("latin-1"))
    _err(p, "without a ZCURVE table", "EISPOT")
    # a BDF file without its current
    p = tmp_path / "bdf_noI.csv"
    p.write_text("Test Time / s,Voltage / V,Current / furlong\n0,3.7,0.1\n")
    _err(p, "unknown unit 'furlong'")
    # a Maccor row cut short
    lines = (CYCLER_FILES / "maccor_rec_cycleP_trimmed.txt").read_bytes().decode("latin-1")
    lines = lines.splitlines()
    p = tmp_path / "maccor_cut.txt"
    p.write_text("\n".join([*lines[:200], lines[200][:30]]), encoding="latin-1")
    e = _err(p, "maccor_cut.txt")
    assert e.row == 201
