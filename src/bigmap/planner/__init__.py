"""The AI planner: campaigns that close the loop through the broker.

- ``spec``: the campaign specification (YAML), validated with errors that name their path;
- ``space``: variables <-> the unit cube, designs that respect mixtures and constraints;
- ``models``: Gaussian-process surrogates with outlier handling, and their recorded states;
- ``core``: the strategies (random, Sobol, grid, BoTorch) and the choice of measurement;
- ``rules``: budget, stopping rules, funnel thresholds, the campaign summary;
- ``runner``: the planner as a tenant of a broker, resumable from its campaign events;
- ``local``: the same loop with a Python function as the measurement (benchmarks);
- ``report``: best candidates with provenance, replay of a stored campaign;
- ``demo``: ``bigmap demo``.
"""

from bigmap.planner.core import Candidate, History, Observation, Planner
from bigmap.planner.spec import CampaignSpec, SpecError, load_spec, parse_spec

__all__ = [
    "CampaignSpec",
    "Candidate",
    "History",
    "Observation",
    "Planner",
    "SpecError",
    "load_spec",
    "parse_spec",
]
