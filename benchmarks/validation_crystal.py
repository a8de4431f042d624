"""Validation of ``crystal-sim`` (CHGNet, D3(BJ), SevenNet-0 cross-check) against experiment.

    .venv/bin/python benchmarks/validation_crystal.py [--skip-neb] [--cache runs.json]
        [--json out.json] [--markdown]

Computes with the real capabilities (``tenant.run_local``, validated in and out):

1. the c lattice parameter of graphite relaxed with and without D3(BJ);
2. average voltages of LiFePO4, LiCoO2, LiMn2O4, LiC6 (Li) and olivine NaFePO4 (Na) with
   CHGNet (dispersion ``auto``: D3 where a host is layered), each cross-checked with
   SevenNet-0, and LiC6 once more without dispersion;
3. the Li vacancy-hop barrier along b in LiFePO4 (CHGNet, climbing-image NEB).

Nothing is fitted. A reference is ``checked`` only if its value was read in the cited source
from this workplace; the others say so and never pass. Tolerances were fixed before the runs:
±0.3 V for voltages (the size of GGA+U voltage errors reported by F. Zhou et al., Phys. Rev.
B 70 (2004) 235121 and V. L. Chevrier et al., Phys. Rev. B 82 (2010) 075122, whose tables
were not read here), ±0.15 V for LiC6 and ±3 % for graphite c (the aims of issue 13), ±0.1 eV
for the barrier.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from validation_table import Row, add_arguments, report  # noqa: E402

warnings.filterwarnings("ignore")

GRAPHITE_C = (
    6.711,
    "P. Trucano, R. Chen, Nature 258 (1975) 136: c = 6.711(4) Å (read in AIST's crystal "
    "structure table, staff.aist.go.jp/nomura-k; IUPAC Gold Book H02818 gives 670.8 pm)",
)

#: force criterion of the graphite relaxations [eV/Å]: the interlayer energy surface is flat
#: without dispersion, and the default 0.1 stops c short of its minimum (7.38 against 7.70 Å)
GRAPHITE_FMAX = 0.02

VOLTAGES = {  # lithiated: (delithiated, reference V, source, checked, tolerance V)
    "LiFePO4": (
        "FePO4",
        3.5,
        "A. K. Padhi, K. S. Nanjundaswamy, J. B. Goodenough, J. Electrochem. Soc. 144 (1997) "
        "1188: a flat potential at 3.5 V vs Li, as quoted in the abstract of Dathar et al., "
        "'Calculations of Li-ion diffusion in olivine phosphates' and in a LiFePO4 paper's "
        "introduction (both read here; the original not)",
        True,
        0.3,
    ),
    "LiCoO2": (
        "CoO2",
        3.95,
        "experimental average of LiCoO2 -> CoO2, ~3.9-4.0 V (as remembered, e.g. from Aydinol "
        "et al., Phys. Rev. B 56 (1997) 1354; not read here)",
        False,
        0.3,
    ),
    "LiMn2O4": (
        "Mn2O4",
        4.1,
        "T. Ohzuku, M. Kitagawa, T. Hirai, J. Electrochem. Soc. 137 (1990) 769: plateaus at "
        "~4.05 and 4.15 V (as remembered; not read here)",
        False,
        0.3,
    ),
    "LiC6": (
        "graphite",
        0.1,
        "K. Leung, arXiv:1502.00187, introduction: 'Li+ insertion into graphite anodes to form "
        "LiC6 is completed at 0.1 V vs. Li+/Li(s)' (read here)",
        True,
        0.15,
    ),
    "NaFePO4": (
        "FePO4",
        2.9,
        "olivine NaFePO4 <-> FePO4 vs Na+/Na, ~2.9 V (as remembered from P. Moreau et al., "
        "Chem. Mater. 22 (2010) 4126; not read here)",
        False,
        0.3,
    ),
}

LFP_BARRIER = (
    0.27,
    "D. Morgan, A. Van der Ven, G. Ceder, Electrochem. Solid-State Lett. 7 (2004) A30: GGA, "
    "curved path along b, ~0.27 eV (value as remembered; the abstract read here gives no number)",
)


#: why a row failed, written after the run (an explanation, never a change of tolerance or
#: reference); keyed by (lithiated, dispersion, potential)
FAIL_REASONS = {
    ("LiC6", "auto", "CHGNet"): "D3(BJ) on CHGNet gets graphite's c right (6.71 Å) but moves "
    "this voltage by only -0.002 V against the run without dispersion (0.430 vs 0.432 V): "
    "the CHGNet error of LiC6 is not the interlayer spacing alone (presumably D3 binds "
    "LiC6 and graphite alike; not investigated); SevenNet-0 gives 0.02 V",
    ("LiC6", "none", "CHGNet"): "no dispersion; D3 does not change it either (see the D3 row)",
}

CACHED_ONLY = False


def _cached(cache: dict, key: str, fn) -> dict:
    if CACHED_ONLY:
        return cache.get(key, {})
    if key not in cache:
        t0 = time.perf_counter()
        cache[key] = fn()
        cache[key]["seconds"] = time.perf_counter() - t0
    return cache[key]


def compute(cache: dict, save, neb: bool) -> None:
    from bigmap.tenants.crystal import tenant

    def run(q: str, m: str, params: dict) -> dict:
        out, ctx = tenant.run_local(q, m, params)
        return out

    for disp in ("none", "d3bj"):

        def graphite(disp=disp) -> dict:
            out = run(
                "relaxed_structure",
                "chgnet",
                {"structure": "graphite", "dispersion": disp, "fmax": GRAPHITE_FMAX},
            )
            return {
                "c": out["structures"][0]["lattice"]["c"],
                "a": out["structures"][0]["lattice"]["a"],
            }

        r = _cached(cache, f"graphite:{disp}:{GRAPHITE_FMAX}", graphite)
        save()
        if r:
            print(f"graphite c ({disp}): {r['c']:.3f} Å", flush=True)
    # small cells first; SevenNet-0 (several times slower than CHGNet on this CPU) cross-checks
    # the hosts of up to 14 atoms, the 28-atom olivines run with CHGNet alone
    jobs = [
        ("LiC6", "auto", "sevennet"),
        ("LiC6", "none", "sevennet"),
        ("LiCoO2", "auto", "sevennet"),
        ("LiMn2O4", "auto", "sevennet"),
        ("LiFePO4", "auto", "none"),
        ("NaFePO4", "auto", "none"),
    ]
    for lith, disp, check in jobs:
        delith = VOLTAGES[lith][0]

        def voltage(lith=lith, delith=delith, disp=disp, check=check) -> dict:
            out = run(
                "intercalation_voltage",
                "chgnet",
                {
                    "lithiated": lith,
                    "delithiated": delith,
                    "dispersion": disp,
                    "cross_check": check,
                },
            )
            return {
                "voltage": out["average_voltage"],
                "sevennet": out["cross_check"]["average_voltage"] if out["cross_check"] else None,
                "uncertainty": out["uncertainty"],
                "d3": out["dispersion_applied"],
                "limits": [m["note"] for m in out["method_limits"]],
            }

        r = _cached(cache, f"voltage:{lith}:{disp}:{check}", voltage)
        save()
        if not r:
            continue
        seven = f"{r['sevennet']:.3f} V" if r["sevennet"] is not None else "-"
        print(
            f"{lith:8s} {disp:5s} D3={r['d3']!s:5s} CHGNet {r['voltage']:.3f} V, SevenNet-0 "
            f"{seven} ({r['seconds']:.0f} s)",
            flush=True,
        )
    if neb:

        def barrier() -> dict:
            out = run(
                "migration_barrier",
                "chgnet_neb",
                {"structure": "LiFePO4", "supercell": [1, 2, 1], "images": 5, "max_steps": 300},
            )
            return {"barrier": out["barrier"], "converged": out["converged"]}

        r = _cached(cache, "barrier:LiFePO4", barrier)
        save()
        if r:
            print(
                f"LiFePO4 b-axis barrier {r['barrier']:.3f} eV ({r['seconds']:.0f} s)", flush=True
            )


def rows(cache: dict) -> list[Row]:
    out: list[Row] = []
    ref, src = GRAPHITE_C
    for disp, label in (("d3bj", "CHGNet + D3(BJ)"), ("none", "CHGNet, no dispersion")):
        r = cache.get(f"graphite:{disp}:{GRAPHITE_FMAX}")
        if r:
            out.append(
                Row(
                    quantity=f"graphite c ({label})",
                    computed=r["c"],
                    reference=ref,
                    unit="Å",
                    source=src,
                    tolerance=0.03,
                    relative=True,
                    note="±3 %: the aim of issue 13"
                    + ("; no interlayer binding without dispersion" if disp == "none" else ""),
                )
            )
    for key, r in sorted(cache.items()):
        if not key.startswith("voltage:"):
            continue
        _, lith, disp, _ = key.split(":")
        delith, ref, src, checked, tol = VOLTAGES[lith]
        ion = "Na" if lith.startswith("Na") else "Li"
        d3 = " + D3(BJ)" if r["d3"] else ", no dispersion"
        limits = "; ".join(r["limits"])
        for pot, value in (("CHGNet", r["voltage"]), ("SevenNet-0", r["sevennet"])):
            if value is None:
                continue
            out.append(
                Row(
                    quantity=f"{lith}/{delith} average voltage ({pot}{d3})",
                    computed=value,
                    reference=ref,
                    unit="V",
                    source=src,
                    tolerance=tol,
                    checked=checked,
                    note=f"vs {ion}+/{ion}; "
                    + (
                        f"CHGNet-SevenNet disagreement {r['uncertainty']:.2f} V (the reported "
                        "uncertainty)"
                        if r["uncertainty"] is not None
                        else "no SevenNet cross-check (28-atom cells: too slow here)"
                    )
                    + (f"; method limits: {limits}" if limits and pot == "CHGNet" else "")
                    + (
                        f"; FAIL: {FAIL_REASONS[(lith, disp, pot)]}"
                        if (lith, disp, pot) in FAIL_REASONS and checked and abs(value - ref) > tol
                        else ""
                    ),
                )
            )
    r = cache.get("barrier:LiFePO4")
    if r:
        ref, src = LFP_BARRIER
        out.append(
            Row(
                quantity="LiFePO4 Li vacancy hop along b, barrier (CHGNet CI-NEB, 1x2x1 cell)",
                computed=r["barrier"],
                reference=ref,
                unit="eV",
                source=src,
                tolerance=0.1,
                checked=False,
                note="method limit: universal potentials underpredict migration barriers "
                "(Deng et al., npj Comput. Mater. 11 (2025) 9); NEB converged="
                f"{r['converged']}",
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--skip-neb", action="store_true", help="leave out the LiFePO4 NEB")
    ap.add_argument("--cache", type=Path, help="reuse and extend finished calculations here")
    ap.add_argument(
        "--cached-only", action="store_true", help="compute nothing: tabulate the cache"
    )
    add_arguments(ap)
    a = ap.parse_args()
    global CACHED_ONLY
    CACHED_ONLY = a.cached_only
    cache: dict = json.loads(a.cache.read_text()) if a.cache and a.cache.exists() else {}

    def save() -> None:
        if a.cache:
            a.cache.write_text(json.dumps(cache, indent=1))

    t0 = time.perf_counter()
    compute(cache, save, not a.skip_neb)
    report("Crystals: lattice, voltages, barrier (crystal-sim)", rows(cache), a)
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
