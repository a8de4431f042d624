"""A tenant for the planner's tests: a cheap and an expensive capability of one known
function of two variables, so that what the planner finds can be checked exactly.

``f(x1, x2)`` on [0, 1]^2 is two Gaussian bumps: the global maximum 1.0 at (0.3, 0.7) and a
local one of 0.6 at (0.8, 0.2). The "model" is cheap and biased (a smooth error of up to
0.15); the "measurement" is exact up to small, reproducible noise and fails (a spilled
sample) when ``x1 > spill_above``. ``sleep`` slows a job down (for kill-and-resume tests).
"""

from __future__ import annotations

import hashlib
import math
import time

from pydantic import BaseModel, Field

from bigmap.client import CalculationFailed, JobContext, Tenant

tenant = Tenant(
    "planner-test", kind="simulation", software={"name": "planner-test", "version": "1.0"}
)

OPTIMUM = {"x1": 0.3, "x2": 0.7}
F_MAX = 1.0


def f(x1: float, x2: float) -> float:
    return math.exp(-((x1 - 0.3) ** 2 + (x2 - 0.7) ** 2) / 0.05) + 0.6 * math.exp(
        -((x1 - 0.8) ** 2 + (x2 - 0.2) ** 2) / 0.02
    )


def bias(x1: float, x2: float) -> float:
    return 0.15 * math.sin(3.0 * x1) * math.cos(2.0 * x2)


def noise(x1: float, x2: float, scale: float) -> float:
    """Reproducible noise: the same x gives the same reading."""
    h = hashlib.sha256(f"{x1:.9f},{x2:.9f}".encode()).digest()
    u1 = (int.from_bytes(h[:8], "big") + 0.5) / 2**64
    u2 = (int.from_bytes(h[8:16], "big") + 0.5) / 2**64
    return scale * math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)


class In(BaseModel):
    x1: float = Field(ge=0, le=1)
    x2: float = Field(ge=0, le=1)
    sleep: float = Field(default=0.0, ge=0, le=30)
    spill_above: float = Field(default=2.0)


class ModelOut(BaseModel):
    value: float
    uncertainty: float


class MeasOut(BaseModel):
    value: float


@tenant.capability(
    "test_yield", "cheap_model", parameters=In, result=ModelOut, cost=1, fidelity=0.5
)
def cheap_model(p: In, ctx: JobContext) -> ModelOut:
    """f plus a smooth, systematic error."""
    time.sleep(p.sleep)
    return ModelOut(value=f(p.x1, p.x2) + bias(p.x1, p.x2), uncertainty=0.1)


@tenant.capability(
    "test_yield", "measurement", parameters=In, result=MeasOut, cost=10, fidelity=1.0
)
def measurement(p: In, ctx: JobContext) -> MeasOut:
    """f with small noise; fails for x1 > spill_above."""
    time.sleep(p.sleep)
    if p.x1 > p.spill_above:
        raise CalculationFailed(f"sample spilled at x1 = {p.x1:.3f}")
    return MeasOut(value=f(p.x1, p.x2) + noise(p.x1, p.x2, 0.01))
