"""Plug-ins by entry points: a distribution on ``sys.path`` (a ``*.dist-info`` folder with its
``entry_points.txt``, as pip leaves it) adds a tenant, a reader and a strategy that bigmap
then finds, without an edit to bigmap; what cannot be used is refused naming it."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bigmap import plugins
from bigmap.analysis.readers import read_cycler_file, readers, registry
from bigmap.analysis.table import IngestError
from bigmap.cli import app
from bigmap.planner.core import History, Planner
from bigmap.planner.spec import SpecError, parse_spec
from bigmap.tenants import load_tenant

MODULE = '''
"""A third-party package: one tenant, one reader, one strategy."""
from pathlib import Path

import pandas as pd
from pydantic import BaseModel

from bigmap.analysis.readers import Reader
from bigmap.analysis.readers.common import _read_delimited
from bigmap.analysis.readers.mapped import Columns, table_from_columns
from bigmap.client import JobContext, Tenant
from bigmap.planner.strategies import Strategy

tenant = Tenant("{prefix}-tenant", kind="simulation", software={{"name": "{dist}", "version": "0.1"}})


class In(BaseModel):
    x: float


class Out(BaseModel):
    y: float


@tenant.capability("square", "{prefix}", parameters=In, result=Out)
def square(p: In, ctx: JobContext) -> Out:
    """The square of x."""
    return Out(y=p.x * p.x)


def _read(path: Path) -> pd.DataFrame:
    df, rows = _read_delimited(Path(path), 2, ",")
    return table_from_columns(df, rows, Path(path), Columns(("t", 1), ("I", 1), ("V", 1)))


reader = Reader(
    "{prefix}_log", "{prefix} cycler", "test", lambda s: s.lines[0].startswith("{magic}"), _read
)


def _corners(planner, history, n, rng):
    """The lower corner of the space, then the upper one, then again."""
    xs = []
    for i in range(n):
        end = "low" if (len(history.proposed) + i) % 2 == 0 else "high"
        xs.append({{v.name: getattr(v, end) for v in planner.spec.variables}})
    return xs


corners = Strategy("{prefix}-corners", "the corners of the space, in turn", _corners)
not_a_tenant = 42
clash = Reader("csv", "{prefix} csv", "test", lambda s: False, _read)
'''


def install(
    root: Path,
    dist: str,
    entry_points: str,
    monkeypatch: pytest.MonkeyPatch,
    prefix: str = "fake",
    magic: str = "FAKECYCLER",
) -> str:
    """A distribution ``dist`` 0.1 in ``root``: its module and its ``.dist-info``."""
    module = dist.replace("-", "_")
    (root / f"{module}.py").write_text(MODULE.format(prefix=prefix, dist=dist, magic=magic))
    info = root / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(entry_points).format(module=module, prefix=prefix)
    )
    monkeypatch.syspath_prepend(str(root))
    return module


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    module = install(
        tmp_path,
        "bigmap-fake-plugin",
        """
        [bigmap.tenants]
        fake-tenant = {module}:tenant

        [bigmap.readers]
        fake = {module}:reader

        [bigmap.strategies]
        fake-corners = {module}:corners
        """,
        monkeypatch,
    )
    yield module
    for name in list(registry.ORIGIN):
        if registry.ORIGIN[name].distribution != "bigmap":
            registry.unregister(name)
    sys.modules.pop(module, None)


def test_bigmaps_own_come_through_the_entry_points():
    own = {g: {p.name for p in plugins.plugins(g) if p.builtin} for g in plugins.GROUPS}
    assert own[plugins.TENANTS] == {
        "electrolyte-model",
        "cell-sim",
        "molecule-sim",
        "crystal-sim",
        "virtual-lab",
    }
    assert own[plugins.STRATEGIES] == {"random", "sobol", "grid", "botorch"}
    assert len(own[plugins.READERS]) == 8
    # every built-in reader is registered from one of bigmap's entry points
    assert {r.name for r in readers()} >= {"arbin_res", "maccor", "neware_nda", "csv", "bdf"}
    assert all(registry.ORIGIN[r.name].builtin for r in readers())


def test_an_installed_tenant_is_found_and_listed(fake):
    t = load_tenant("fake-tenant")
    assert t.name == "fake-tenant" and type(t).__module__ == "bigmap.client.runtime"
    out = CliRunner().invoke(app, ["worker", "--list"], env={"COLUMNS": "300"})
    assert out.exit_code == 0, out.output
    line = next(ln for ln in out.output.splitlines() if "fake-tenant" in ln)
    assert f"{fake}:tenant" in line and "bigmap-fake-plugin 0.1" in line
    assert "virtual-lab" in out.output and "bigmap.tenants.lab:tenant" in out.output
    for name in ("fake-corners", "botorch", "maccor"):
        assert name in out.output


def test_an_installed_reader_reads_its_format(fake, tmp_path):
    p = tmp_path / "run.log"
    p.write_text("FAKECYCLER v1\nt,V,I\n0,3.0,0.1\n3600,3.5,0.1\n")
    registry.load_plugins(refresh=True)  # installed after bigmap loaded its readers
    df = read_cycler_file(p)
    assert df.attrs["source"]["format"] == "fake_log"
    assert df.attrs["source"]["reader"] == f"{fake}._read"
    assert df["charge_capacity_Ah"].max() == pytest.approx(0.1)
    assert registry.ORIGIN["fake_log"].distribution == "bigmap-fake-plugin"


def test_an_installed_strategy_plans_a_campaign(fake):
    spec = {
        "name": "corners",
        "variables": [{"name": "a", "low": 0, "high": 2}],
        "objectives": [{"name": "y"}],
        "measurements": [{"capability": "q/m", "outputs": {"y": "y"}}],
        "budget": {"requests": 4},
        "strategy": {"name": "fake-corners"},
    }
    planner = Planner(parse_spec(spec))
    h = History()
    first = planner.propose(h, 1, 0)
    planner.note_proposed(h, first.candidates)
    second = planner.propose(h, 1, 1)
    assert first.strategy == "fake-corners"
    assert [c.x for c in first.candidates + second.candidates] == [{"a": 0}, {"a": 2}]
    assert [c.capability for c in first.candidates] == ["q/m"]


def test_without_the_distribution_the_names_are_unknown(tmp_path):
    with pytest.raises(ValueError, match="no tenant 'fake-tenant'.*virtual-lab"):
        load_tenant("fake-tenant")
    spec = {
        "name": "x",
        "variables": [{"name": "a", "low": 0, "high": 1}],
        "objectives": [{"name": "y"}],
        "measurements": [{"capability": "q/m", "outputs": {"y": "y"}}],
        "budget": {"requests": 4},
        "strategy": {"name": "fake-corners"},
    }
    with pytest.raises(SpecError) as exc:
        parse_spec(spec)
    assert "$.strategy.name" in str(exc.value) and "botorch" in str(exc.value)
    p = tmp_path / "run.log"
    p.write_text("FAKECYCLER v1\nt,V,I\n0,3.0,0.1\n")
    with pytest.raises(IngestError, match="unknown cycler file format"):
        read_cycler_file(p)


def test_unusable_plugins_are_refused_naming_them(tmp_path, monkeypatch):
    module = install(
        tmp_path,
        "bigmap-bad-plugin",
        """
        [bigmap.tenants]
        bad-number = {module}:not_a_tenant
        bad-missing = {module}_gone:tenant
        virtual-lab = {module}:tenant

        [bigmap.readers]
        bad = {module}:not_a_tenant

        [bigmap.strategies]
        bad = {module}:not_a_tenant
        renamed = {module}:corners
        """,
        monkeypatch,
        prefix="bad",
    )
    try:
        with pytest.raises(ValueError, match="is a int, not a bigmap.client.Tenant"):
            load_tenant("bad-number")
        with pytest.raises(ValueError, match="bad-missing"):
            load_tenant("bad-missing")
        # a name bigmap (or another package) already has is ambiguous, never silently taken
        with pytest.raises(ValueError, match="several distributions.*bigmap, bigmap-bad-plugin"):
            load_tenant("virtual-lab")
        with pytest.raises(plugins.PluginError, match="bigmap-bad-plugin gives a int"):
            registry.load_plugins(refresh=True)
        from bigmap.planner.strategies import strategy

        with pytest.raises(plugins.PluginError, match="gives a int, not a bigmap.planner"):
            strategy("bad")
        with pytest.raises(plugins.PluginError, match="the names must agree"):
            strategy("renamed")
    finally:
        sys.modules.pop(module, None)


def test_a_reader_may_not_take_a_registered_name(tmp_path, monkeypatch):
    builtin_csv = registry.reader("csv")
    module = install(
        tmp_path,
        "bigmap-clash-plugin",
        """
        [bigmap.readers]
        clash = {module}:clash
        """,
        monkeypatch,
    )
    try:
        with pytest.raises(plugins.PluginError, match="'csv' is already registered.*bigmap's"):
            registry.load_plugins(refresh=True)
        assert registry.reader("csv") is builtin_csv
        assert registry.ORIGIN["csv"].distribution == "bigmap"
    finally:
        sys.modules.pop(module, None)
