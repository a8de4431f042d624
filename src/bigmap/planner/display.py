"""Rich progress of a running campaign, and the tables of ``bigmap campaign show``."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def fmt_x(x: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in x.items())


class CampaignProgress:
    """A live view: budget bars, the best so far, the last proposals."""

    def __init__(self, spec: Any, console: Any = None) -> None:
        self.spec = spec
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:.4g}/{task.total:.4g}"),
            TimeElapsedColumn(),
        )
        b = spec.budget
        self.t_req = self.progress.add_task("requests", total=b.requests) if b.requests else None
        self.t_cost = self.progress.add_task("cost", total=b.cost) if b.cost else None
        self.t_wall = (
            self.progress.add_task("wall s", total=b.wall_seconds) if b.wall_seconds else None
        )
        self.table = Table(title="best so far")
        self.live = Live(self._render({}), console=console, refresh_per_second=4, transient=False)

    def _render(self, summary: dict[str, Any]) -> Group:
        t = Table(show_header=True, header_style="bold")
        t.add_column("step")
        t.add_column("results")
        t.add_column("failed")
        t.add_column("pending")
        t.add_column("best")
        t.add_column("at")
        best = summary.get("best") or {}
        obj = self.spec.objectives[0].name
        t.add_row(
            str(summary.get("step", 0)),
            str(summary.get("n_results", 0)),
            str(summary.get("n_failed", 0)),
            str(summary.get("n_pending", 0)),
            _fmt((best.get("y") or {}).get(obj, "-")),
            fmt_x(best.get("x") or {}),
        )
        parts: list[Any] = [self.progress, t]
        for tier in summary.get("tiers") or []:
            parts.append(
                f"tier {tier['name']}: {tier['n_in']} in, "
                f"{tier['n_passed'] if tier['n_passed'] is not None else '-'} passed "
                f"(threshold {_fmt(tier['threshold']) if tier['threshold'] is not None else '-'})"
            )
        return Group(*parts)

    def update(self, runner: Any) -> None:
        s = runner.rules.summary(runner.h, runner.step, decisions=runner.decisions)
        if self.t_req is not None:
            self.progress.update(self.t_req, completed=s["n_requests"])
        if self.t_cost is not None:
            self.progress.update(self.t_cost, completed=s["cost_spent"])
        if self.t_wall is not None:
            self.progress.update(
                self.t_wall, completed=min(runner._elapsed(), self.spec.budget.wall_seconds)
            )
        self.live.update(self._render(s))

    def __enter__(self) -> CampaignProgress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(*exc)


def best_table(rows: list[dict[str, Any]], objective: str, unit: str = "") -> Table:
    t = Table(title=f"best candidates by {objective}" + (f" [{unit}]" if unit else ""))
    for col in ("#", objective, "x", "capability", "software", "tenant", "provenance", "result"):
        t.add_column(col, overflow="fold")
    for i, r in enumerate(rows, start=1):
        t.add_row(
            str(i),
            _fmt(r["value"]),
            fmt_x(r["x"]),
            r["capability"],
            r.get("software", ""),
            r.get("tenant", ""),
            r.get("provenance", ""),
            r.get("result_id") or "",
        )
    return t
