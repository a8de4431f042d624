"""Validation of ``molecule-sim`` (redox potentials of carbonate solvents and additives).

    .venv/bin/python benchmarks/validation_molecule.py [--no-dft] [--only EC,VC]
        [--cache runs.json] [--json out.json] [--markdown]

Computes with the real capabilities (``tenant.run_local``, validated in and out), for EC, PC,
DMC, EMC, FEC and VC in a continuum of acetone's dielectric constant (ALPB acetone for xTB,
C-PCM eps = 20.493 for DFT):

- oxidation and reduction potentials with GFN2-xTB and IPEA1-xTB (``redox_potential/
  gfn2_xtb``, each optimising its own geometries, xtb's 4.8455 eV shift) and with
  B3LYP-D3(BJ)/def2-SVP/C-PCM at GFN2-xTB geometries (``redox_potential/dft``);
- whether each method reduces VC and FEC before EC, as experiment shows;
- the time of every DFT molecule on this machine (the DFT cost per molecule).

``--cache`` keeps every finished calculation in a JSON file and reuses it, so the table can be
regenerated (and an interrupted DFT run resumed) without recomputing. Nothing is fitted: the
computed values are compared as they come out.

References and tolerances. A reference is ``checked`` only if its value was read in the
cited source from this workplace; the absolute carbonate potentials of Borodin et al. could
not be read here, so those rows are unchecked (never a pass). Tolerances were fixed before
the calculations ran, from the accuracy the methods claim for redox potentials: ±0.5 V for a
hybrid functional in a continuum against a calculation of the same kind, ±1.0 V for xTB
against DFT (the IP/EA shift is a single constant for all molecules); the sources behind these
figures (e.g. H. Neugebauer et al., J. Phys. Chem. A 124 (2020) 7166 for xTB) were not read
here either, which each row's note says.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from validation_table import Row, add_arguments, report  # noqa: E402

warnings.filterwarnings("ignore")

MOLECULES = {  # name: SMILES
    "EC": "O=C1OCCO1",
    "PC": "CC1COC(=O)O1",
    "DMC": "COC(=O)OC",
    "EMC": "CCOC(=O)OC",
    "FEC": "O=C1OCC(F)O1",
    "VC": "O=C1OC=CO1",
}

#: Oxidation potentials of the isolated molecules [V vs Li+/Li] as remembered from O.
#: Borodin, W. Behl, T. R. Jow, J. Phys. Chem. C 117 (2013) 8661 (M05-2X, continuum of
#: eps ~ 20); the paper could not be read in this workplace: unchecked.
BORODIN_OX = {"EC": 6.9, "PC": 6.8, "DMC": 6.7, "EMC": 6.7}
BORODIN_SRC = (
    "O. Borodin, W. Behl, T. R. Jow, J. Phys. Chem. C 117 (2013) 8661 (M05-2X, continuum "
    "eps ~ 20); value as remembered, the paper was not readable here"
)

#: Reduction of EC-based electrolytes on graphite: "already decompose at 0.7-0.8 V vs.
#: Li+/Li(s)" (K. Leung, arXiv:1502.00187, introduction, read in this workplace); midpoint.
EC_REDUCTION_EXP = 0.75
EC_REDUCTION_SRC = (
    "K. Leung, arXiv:1502.00187, introduction: EC-based electrolytes "
    "decompose at 0.7-0.8 V vs Li+/Li on graphite (read here)"
)

ORDER_SRC = {
    "VC": (
        "X. Zhang, R. Kostecki, T. J. Richardson, J. K. Pugh, P. N. Ross, J. Electrochem. Soc. "
        "(2001), doi:10.1149/1.1415547, abstract: preferential reduction of VC in a PC-based "
        "electrolyte; "
        "and in-situ AFM (Univ. Surrey record): 1 % VC forms the SEI at a higher potential "
        "than EC (both read here)"
    ),
    "FEC": (
        "OSTI 1825791 (Gen2 + 10 mol% FEC, LBNL), abstract: FEC 'exhibits a preferential "
        "reduction' in EC/EMC electrolytes (read here)"
    ),
}

#: why a row failed, written after the run (an explanation, not a change of tolerance)
FAIL_REASONS = {
    ("VC", "GFN2-xTB", "oxidation"): "GFN2-xTB's single IP shift puts VC's oxidation next to "
    "EC's (6.85 vs 6.88 V) where DFT finds it 1.4 V lower (5.50 vs 6.91 V); IPEA1-xTB, "
    "parametrised for ionisation energies, gets 6.26 V: a limit of GFN2-xTB for the IP of "
    "VC's C=C pi system (not investigated further)",
}

DFT = {"functional": "B3LYP", "dispersion": "D3BJ", "basis": "def2-SVP", "geometry": "gfn2_xtb"}


def _run(cache: dict, key: str, method: str, params: dict, cached_only: bool = False) -> dict:
    from bigmap.tenants.molecule import tenant

    if key in cache or cached_only:
        return cache.get(key, {})
    load0 = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    out, ctx = tenant.run_local("redox_potential", method, params)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    # the machine is shared: the 1-minute load at the start and the 1/5/15-minute loads at
    # the end say how much of the wall time was waiting for a core
    load = [round(load0, 2)] + [round(x, 2) for x in os.getloadavg()]
    cache[key] = {
        "oxidation_potential": out["oxidation_potential"],
        "reduction_potential": out["reduction_potential"],
        "vertical_oxidation_potential": out["vertical_oxidation_potential"],
        "vertical_reduction_potential": out["vertical_reduction_potential"],
        "reduced_bonds_changed": out["reduced"]["bonds_changed"],
        "energy_method": out["energy_method"],
        "seconds": seconds,
        "cpu_seconds": cpu,
        "load_average": load,
        "provenance_dft": ctx.provenance.get("dft"),
    }
    return cache[key]


def compute(
    names: list[str], dft: bool, cache_path: Path | None, cached_only: bool = False
) -> dict:
    cache: dict = {}
    for path in cache_path.parent.glob(cache_path.name) if cache_path else []:
        cache |= json.loads(path.read_text())
    if cache_path and "*" in cache_path.name:  # several caches read, none written
        cache_path = None

    def save() -> None:
        if cache_path:
            cache_path.write_text(json.dumps(cache, indent=1))

    res: dict = {}
    for name in names:
        smi = MOLECULES[name]
        res[name] = {}
        for label, method, params in (
            ("GFN2-xTB", "gfn2_xtb", {"smiles": smi, "method": "GFN2-xTB"}),
            ("IPEA1-xTB", "gfn2_xtb", {"smiles": smi, "method": "IPEA1-xTB"}),
        ):
            r = _run(cache, f"{name}:{label}", method, params, cached_only)
            if r:
                res[name][label] = r
            save()
        if "GFN2-xTB" not in res[name]:
            del res[name]
            continue
        r = res[name]["GFN2-xTB"]
        print(
            f"{name:4s} GFN2 ox {r['oxidation_potential']:6.2f} red "
            f"{r['reduction_potential']:6.2f}  ({r['seconds']:.0f} s)",
            flush=True,
        )
    if dft:
        for name in res:
            r = _run(cache, f"{name}:DFT", "dft", {"smiles": MOLECULES[name]} | DFT, cached_only)
            if not r:
                continue
            res[name]["DFT"] = r
            save()
            print(
                f"{name:4s} DFT  ox {r['oxidation_potential']:6.2f} red "
                f"{r['reduction_potential']:6.2f}  ({r['seconds']:.0f} s, "
                f"{r['provenance_dft']['scf_runs']} SCF runs)",
                flush=True,
            )
    return res


def _load_text(load: list[float]) -> str:
    """``[start 1-min, end 1-min, end 5-min, end 15-min]`` as printed in the notes."""
    return f"{load[0]:.1f} at the start, {load[1]:.1f}/{load[2]:.1f}/{load[3]:.1f} at the end"


def _timing(r: dict) -> str:
    """The wall and CPU time of one DFT molecule and the machine's load meanwhile."""
    cpu = r.get("cpu_seconds")
    timing = f"; {r['seconds']:.0f} s wall" + (f", {cpu:.0f} s CPU" if cpu else "")
    timing += " on this shared 2-core machine"
    if r.get("load_average"):
        timing += f" (load average {_load_text(r['load_average'])})"
    elif r.get("load_sampled"):  # runs made before the script recorded the load
        ls = r["load_sampled"]
        timing += (
            f" (1-min load average {ls['mean']:.1f} on average, "
            f"{ls['min']:.1f}-{ls['max']:.1f}, {ls['samples']} samples of "
            "/proc/loadavg during the run)"
        )
    return timing


def rows(res: dict) -> list[Row]:
    out: list[Row] = []
    methods = ["GFN2-xTB", "IPEA1-xTB", "DFT"]
    for name, by in res.items():
        dft = by.get("DFT")
        for m in methods:
            if m not in by:
                continue
            r = by[m]
            label = "B3LYP-D3(BJ)/def2-SVP/C-PCM//GFN2-xTB" if m == "DFT" else m
            timing = _timing(r) if m == "DFT" else ""
            if name in BORODIN_OX:
                out.append(
                    Row(
                        quantity=f"{name} oxidation potential ({label})",
                        computed=r["oxidation_potential"],
                        reference=BORODIN_OX[name],
                        unit="V",
                        source=BORODIN_SRC,
                        tolerance=0.5 if m == "DFT" else 1.0,
                        checked=False,
                        note="adiabatic, vs Li+/Li; reference unchecked" + timing,
                    )
                )
            if m != "DFT" and dft is not None:
                for kind in ("oxidation", "reduction"):
                    out.append(
                        Row(
                            quantity=f"{name} {kind} potential ({m} vs DFT)",
                            computed=r[f"{kind}_potential"],
                            reference=dft[f"{kind}_potential"],
                            unit="V",
                            source="this work: redox_potential/dft, "
                            "B3LYP-D3(BJ)/def2-SVP/C-PCM(eps 20.49)//GFN2-xTB",
                            tolerance=1.0,
                            note="tolerance ±1.0 V fixed before the run for xTB against "
                            "hybrid DFT (published xTB redox accuracy not read here)"
                            + (
                                "; FAIL: " + FAIL_REASONS[(name, m, kind)]
                                if (name, m, kind) in FAIL_REASONS
                                and abs(r[f"{kind}_potential"] - dft[f"{kind}_potential"]) > 1.0
                                else ""
                            )
                            # the DFT time of a molecule without a row of its own
                            + (
                                "; DFT time:" + _timing(dft)[1:]
                                if name not in BORODIN_OX
                                and m == "GFN2-xTB"
                                and kind == "oxidation"
                                else ""
                            ),
                        )
                    )
        if name == "EC":
            for m in methods:
                if m in by:
                    out.append(
                        Row(
                            quantity=f"EC reduction potential ({m}) vs electrolyte onset",
                            computed=by[m]["reduction_potential"],
                            reference=EC_REDUCTION_EXP,
                            unit="V",
                            source=EC_REDUCTION_SRC,
                            tolerance=0.5,
                            note="an isolated EC in a continuum, without Li+ coordination and "
                            "the electrode, against the measured onset of EC-based electrolytes "
                            "on graphite: expected to come out too low (Li+ binding raises it)",
                        )
                    )
    ec = res.get("EC", {})
    for other in ("VC", "FEC"):
        for m in methods:
            if m in ec and m in res.get(other, {}):
                diff = res[other][m]["reduction_potential"] - ec[m]["reduction_potential"]
                out.append(
                    Row(
                        quantity=f"{other} reduced before EC ({m}): 1 = yes",
                        computed=1.0 if diff > 0 else 0.0,
                        reference=1.0,
                        unit="",
                        source=ORDER_SRC[other],
                        tolerance=0.0,
                        note=f"E_red({other}) - E_red(EC) = {diff:+.2f} V",
                    )
                )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-dft", action="store_true", help="leave out redox_potential/dft")
    ap.add_argument("--only", help="comma-separated molecules, e.g. EC,VC")
    ap.add_argument(
        "--cache",
        type=Path,
        help="reuse and extend finished calculations in this JSON file (a glob such as "
        "'runs-*.json' reads several and writes none)",
    )
    ap.add_argument(
        "--cached-only", action="store_true", help="compute nothing: tabulate the cache"
    )
    add_arguments(ap)
    a = ap.parse_args()
    names = a.only.split(",") if a.only else list(MOLECULES)
    t0 = time.perf_counter()
    res = compute(names, not a.no_dft, a.cache, a.cached_only)
    report("Redox potentials of carbonates (molecule-sim)", rows(res), a)
    for name, by in res.items():
        if "DFT" in by:
            d, x = by["DFT"], by["GFN2-xTB"]
            cpu = d.get("cpu_seconds")
            print(
                f"DFT time {name}: {d['seconds']:.0f} s wall"
                + (f", {cpu:.0f} s CPU" if cpu else "")
                + f" ({d['provenance_dft']['scf_runs']} SCF runs); GFN2-xTB {x['seconds']:.0f} s"
                + (f"; load {_load_text(d['load_average'])}" if d.get("load_average") else "")
            )
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
