"""`bigmap ingest`: files, folders and globs, Parquet and BDF output, and --post to a live
broker (a real `bigmap serve` on SQLite): unsolicited results of capacity/cycling and
impedance/eis with the raw file attached and the reader's provenance."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bigmap.analysis import read_cycler_file, read_parquet
from tests.conftest import CYCLER_FILES, REPO


def bigmap(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO):
    return subprocess.run(
        [sys.executable, "-m", "bigmap.cli", "ingest", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


@pytest.fixture
def lab_folder(tmp_path: Path) -> Path:
    """A lab's folder of exports, one bad file among them."""
    d = tmp_path / "exports"
    (d / "eis").mkdir(parents=True)
    for name in ("arbin_res_20160805_test001_45_cc_01.res", "neware_TestFile.nda"):
        shutil.copy(CYCLER_FILES / name, d / name)
    shutil.copy(CYCLER_FILES / "gamry_eispot_impedancepy.DTA", d / "eis" / "cell7.DTA")
    return d


def test_folders_globs_and_bdf_output(lab_folder: Path, tmp_path: Path):
    out = tmp_path / "bdf"
    r = bigmap(
        str(lab_folder), str(CYCLER_FILES / "maccor_*.00?"), "--to", "bdf", "--out", str(out)
    )
    assert r.returncode == 0, r.stderr
    assert "4 of 4 file(s) ingested" in r.stdout
    written = sorted(p.name for p in out.iterdir())
    # the spectrum has no BDF form: it is kept as Parquet
    assert "cell7.DTA.parquet" in written
    assert "arbin_res_20160805_test001_45_cc_01.res.bdf.csv" in written
    assert "maccor_bdt_example.001.bdf.csv" in written
    back = read_cycler_file(out / "neware_TestFile.nda.bdf.csv")
    assert back.attrs["source"]["format"] == "bdf"
    assert len(back) == len(read_cycler_file(lab_folder / "neware_TestFile.nda"))
    assert read_parquet(out / "cell7.DTA.parquet").attrs["kind"] == "impedance"


def _cli(*args: str):
    """The command in this process (typer's runner), for the quick error paths."""
    from typer.testing import CliRunner

    from bigmap.cli import app

    return CliRunner().invoke(app, ["ingest", *args])


def test_a_bad_file_is_named_and_the_others_are_read(lab_folder: Path, tmp_path: Path):
    (lab_folder / "broken.ndax").write_bytes(b"PK\x03\x04 not a zip at all")
    (lab_folder / "notes.csv").write_text("operator,comment\nalice,fine\n")
    r = _cli(str(lab_folder), "--out", str(tmp_path / "o"))
    assert r.exit_code == 2
    assert "broken.ndax" in r.output and "notes.csv" in r.output
    assert "no column for test_time_s" in r.output
    assert "3 of 5 file(s) ingested" in r.output
    r = _cli(str(tmp_path / "nothing-here"), str(tmp_path / "*.none"))
    assert r.exit_code == 2 and "nothing-here" in r.output and "*.none" in r.output
    r = _cli(str(lab_folder), "--to", "xlsx")
    assert r.exit_code == 2 and "parquet or bdf" in r.output
    r = _cli(str(lab_folder), "--format", "nonsense")
    assert r.exit_code == 2 and "nonsense" in r.output


def test_post_records_the_files_at_the_broker(live_one, lab_folder: Path, tmp_path: Path):
    env = {"BIGMAP_BROKER_URL": live_one.url, "BIGMAP_TOKEN": live_one.tokens["alice"]}
    r = bigmap(
        str(lab_folder), "--post", "--lab", "Lab B, Oslo", "--out", str(tmp_path / "o"), env=env
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("posted result") == 3
    alice = live_one.client("alice")
    cycling = alice.results(quantity="capacity", method="cycling")
    mine = {
        x["provenance"]["source_file"]["name"]: x
        for x in cycling
        if "source_file" in x["provenance"]
    }
    res = mine["arbin_res_20160805_test001_45_cc_01.res"]
    path = lab_folder / "arbin_res_20160805_test001_45_cc_01.res"
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    prov = res["provenance"]
    assert prov["source_file"]["sha256"] == sha
    assert prov["reader"]["library"] == "mdbtools" and prov["reader"]["library_version"]
    assert prov["instruments"] == {"Arbin": {"file_format": "arbin_res"}}
    assert prov["emulated"] is False
    # the per-cycle capacities, charge and discharge alternately, as the file holds them
    df = read_cycler_file(path)
    from bigmap.analysis.fom import cycle_summary

    s = cycle_summary(df)
    assert res["data"]["capacity_list"][0::2] == pytest.approx(s["charge_capacity_Ah"].tolist())
    assert res["data"]["capacity_list"][1::2] == pytest.approx(s["discharge_capacity_Ah"].tolist())
    # 18 cycles: the early-life descriptors the life model takes are there
    assert res["data"]["capacity_vector_variance"] is not None
    assert res["data"]["figures_of_merit"]["cycles"] == s.index.tolist()
    assert res["parameters"]["location"]["address"] == "Lab B, Oslo"
    # the raw file and the normalised table are attached, byte for byte
    files = {f["name"]: f for f in alice.result(res["id"])["files"]}
    assert files, res
    assert files[path.name]["sha256"] == sha
    assert alice.download(files[path.name]["id"]) == path.read_bytes()
    assert "arbin_res_20160805_test001_45_cc_01.parquet" in files
    # the spectrum is an impedance/eis result
    eis = [x for x in alice.results(quantity="impedance", method="eis") if x["id"]]
    spec = next(x for x in eis if x["provenance"]["source_file"]["name"] == "cell7.DTA")
    assert len(spec["data"]["frequency"]) == 72
    assert spec["data"]["frequency_range"][1] == pytest.approx(200015.6)
    # posting the same files again gives the same results back, nothing twice
    r = bigmap(str(lab_folder), "--post", "--out", str(tmp_path / "o2"), env=env)
    assert r.returncode == 0, r.stderr
    again = alice.results(quantity="capacity", method="cycling")
    assert len(again) == len(cycling)
    # an observer cannot post: a clear refusal, exit code 1
    r = bigmap(
        str(lab_folder / "neware_TestFile.nda"),
        "--post",
        "--out",
        str(tmp_path / "o3.parquet"),
        env={**env, "BIGMAP_TOKEN": live_one.tokens["olga"]},
    )
    assert r.returncode == 1 and "role observer" in r.stderr and "read-only" in r.stderr
    # no token at all
    r = bigmap(str(lab_folder / "neware_TestFile.nda"), "--post", env={**env, "BIGMAP_TOKEN": ""})
    assert r.returncode == 2 and "no token" in r.stderr
