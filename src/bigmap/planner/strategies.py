"""The planning strategies: the ``bigmap.strategies`` entry points (``bigmap.plugins``).

A strategy is a ``Strategy``: a name (``strategy.name`` of a campaign specification), a line
that says what it does, and ``propose(planner, history, n, rng)``, which returns up to ``n``
new points of the search space as dicts ``{variable: value}`` (or, with a pool, pool rows
with ``"_pool": index``). The planner then gives each point its measurements, records it and
posts the requests; a strategy decides only *where* to measure. Useful from ``planner``:
``planner.space.sample(n, rng)`` (feasible points), ``planner.space.encode(x)`` (the unit
cube), ``planner.pool``, ``planner.observed(output, history)`` (the results so far),
``planner.objectives``.

bigmap's own (declared in its pyproject.toml) are ``random``, ``sobol``, ``grid`` and
``botorch`` (Gaussian-process Bayesian optimisation, the model path of ``Planner.propose``:
``model=True``). A package adds one by declaring, in its pyproject.toml,

    [project.entry-points."bigmap.strategies"]
    annealing = "my_package.strategy:annealing"   # a bigmap.planner.strategies.Strategy
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bigmap import plugins

if TYPE_CHECKING:
    from bigmap.planner.core import History, Planner

Propose = Callable[["Planner", "History", int, np.random.Generator], list[dict[str, Any]]]


@dataclass(frozen=True)
class Strategy:
    """One planning strategy (see the module's docstring for ``propose``'s contract)."""

    name: str
    description: str
    propose: Propose | None = None
    #: the planner's own model path (Sobol for ``n_init``, then Bayesian optimisation)
    model: bool = False

    def __post_init__(self) -> None:
        if (self.propose is None) != self.model:
            raise ValueError(f"strategy {self.name!r}: give propose, or model=True (not both)")


def _random(planner: Planner, h: History, n: int, rng: np.random.Generator) -> list[dict]:
    return planner._random(h, n, rng)


def _sobol(planner: Planner, h: History, n: int, rng: np.random.Generator) -> list[dict]:
    return planner._sobol(h, n)


def _grid(planner: Planner, h: History, n: int, rng: np.random.Generator) -> list[dict]:
    return planner._grid_next(h, n)


random = Strategy("random", "uniform over the feasible space (or the pool)", _random)
sobol = Strategy(
    "sobol", "a scrambled Sobol sequence over the feasible space (or the nearest pool rows)", _sobol
)
grid = Strategy("grid", "a full factorial grid, as fine as the request budget allows", _grid)
botorch = Strategy(
    "botorch",
    "Sobol for n_init candidates, then Gaussian-process Bayesian optimisation (BoTorch)",
    model=True,
)


def strategy(name: str) -> Strategy:
    """The strategy of that name among the ``bigmap.strategies`` entry points."""
    plugin = plugins.find(plugins.STRATEGIES, name)
    if plugin is None:
        raise plugins.PluginError(
            f"no strategy {name!r}; installed: {', '.join(plugins.names(plugins.STRATEGIES))}"
        )
    obj = plugin.load()
    if not isinstance(obj, Strategy):
        raise plugins.PluginError(
            f"{plugin.group} entry point {name!r} of {plugin.distribution} gives a "
            f"{type(obj).__name__}, not a bigmap.planner.strategies.Strategy"
        )
    if obj.name != name:
        raise plugins.PluginError(
            f"{plugin.group} entry point {name!r} of {plugin.distribution} gives the strategy "
            f"{obj.name!r}: the names must agree"
        )
    return obj


def names() -> list[str]:
    """The installed strategies' names (bigmap's own first)."""
    return plugins.names(plugins.STRATEGIES)
