"""A tenant used by the runtime tests: small typed capabilities with real behaviour
(arithmetic on the inputs, deliberate failures, slow jobs, sub-requests)."""

from __future__ import annotations

import time

from pydantic import BaseModel, Field

from bigmap.client import CalculationFailed, InputError, JobContext, Tenant

tenant = Tenant("sample", kind="analysis", software={"name": "sample-tenant", "version": "1.2.3"})


class PolyIn(BaseModel):
    x: float = Field(ge=-100, le=100)
    coefficients: list[float] = Field(min_length=1)
    sleep: float = Field(default=0.0, ge=0, le=60)
    fail: str | None = None


class PolyOut(BaseModel):
    value: float
    derivative: float


@tenant.capability(
    "polynomial",
    "horner",
    parameters=PolyIn,
    result=PolyOut,
    limitations={"x": [{"min": -10, "max": 10}]},
    lease_seconds=1.0,
)
def horner(p: PolyIn, ctx: JobContext) -> PolyOut:
    """Value and derivative of a polynomial at x (Horner's scheme)."""
    if p.fail == "input":
        raise InputError("coefficients describe no physical polynomial")
    if p.fail == "calc":
        raise CalculationFailed("did not converge after 3 iterations")
    if p.fail == "crash":
        raise ZeroDivisionError("division by zero")
    steps = max(1, int(p.sleep / 0.1))
    for i in range(steps if p.sleep else 0):
        time.sleep(0.1)
        ctx.progress((i + 1) / steps, "working")
    value, deriv = 0.0, 0.0
    for c in p.coefficients:
        deriv = deriv * p.x + value
        value = value * p.x + c
    ctx.attach("trace.csv", f"x,value\n{p.x},{value}\n", "text/csv")
    return PolyOut(value=value, derivative=deriv)


class SumIn(BaseModel):
    xs: list[float] = Field(min_length=1, max_length=10)
    coefficients: list[float]


class SumOut(BaseModel):
    total: float
    parts: list[float]


@tenant.capability("polynomial", "sum_of_values", parameters=SumIn, result=SumOut)
def sum_of_values(p: SumIn, ctx: JobContext) -> SumOut:
    """Sum of the polynomial over xs, each value computed by a sub-request."""
    subs = [
        ctx.submit("polynomial", "horner", {"x": x, "coefficients": p.coefficients}) for x in p.xs
    ]
    parts = [ctx.wait(s["id"], timeout=60)["data"]["value"] for s in subs]
    ctx.provenance["inputs"] = [s["id"] for s in subs]
    return SumOut(total=sum(parts), parts=parts)
