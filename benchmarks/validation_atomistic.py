"""Validation of the atomistic tenants against published values.

    .venv/bin/python benchmarks/validation_atomistic.py [--skip-neb] [--json out.json]

Computes, with the real capabilities (``tenant.run_local``, validated in and out):

1. average intercalation voltages (CHGNet) of LiFePO4, LiCoO2, LiMn2O4 and LiC6 against
   experiment;
2. the Li migration barrier along the b channel of LiFePO4 (CHGNet, climbing-image NEB)
   against published DFT;
3. oxidation and reduction potentials (GFN2-xTB, ALPB acetone; and IPEA1-xTB energies at the
   same geometries) of EC, PC, DMC, EMC, FEC and VC against published calculations, and
   whether the method orders VC and FEC as reduced before EC (as experiment does).

Nothing is fitted: the differences are printed as they come out.

Reference values. ``checked=False`` marks values entered from the literature as
remembered, without the paper at hand in this offline environment: check them against the
paper before quoting the table.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

warnings.filterwarnings("ignore")

# ----------------------------------------------------------------------------- references

VOLTAGES = {  # lithiated, delithiated, experimental average voltage [V vs Li+/Li], source
    "LiFePO4": (
        "FePO4",
        3.45,
        "A. K. Padhi, K. S. Nanjundaswamy, J. B. Goodenough, J. Electrochem. Soc. 144 "
        "(1997) 1188: two-phase plateau at 3.4-3.5 V",
    ),
    "LiCoO2": (
        "CoO2",
        4.0,
        "experimental average for LiCoO2 -> CoO2 as tabulated by M. K. Aydinol, A. F. Kohan, "
        "G. Ceder, K. Cho, J. Joannopoulos, Phys. Rev. B 56 (1997) 1354",
    ),
    "LiMn2O4": (
        "Mn2O4",
        4.1,
        "T. Ohzuku, M. Kitagawa, T. Hirai, J. Electrochem. Soc. 137 (1990) 769: two plateaus at "
        "4.05 and 4.15 V (Li in the tetrahedral sites)",
    ),
    "LiC6": (
        "graphite",
        0.1,
        "J. R. Dahn, Phys. Rev. B 44 (1991) 9170: staging plateaus at 0.21, 0.12 and 0.09 V",
    ),
}

LFP_BARRIER = (
    0.27,
    "D. Morgan, A. Van der Ven, G. Ceder, Electrochem. Solid-State Lett. 7 (2004) A30: "
    "GGA, curved path along [010], ~270 meV in LiFePO4",
)

MOLECULES = {  # name: (SMILES, published oxidation potential [V vs Li+/Li] or None, checked)
    "EC": ("O=C1OCCO1", 6.9, False),
    "PC": ("CC1COC(=O)O1", 6.8, False),
    "DMC": ("COC(=O)OC", 6.7, False),
    "EMC": ("CCOC(=O)OC", 6.7, False),
    "FEC": ("O=C1OCC(F)O1", None, False),
    "VC": ("O=C1OC=CO1", None, False),
}
OXIDATION_SOURCE = (
    "isolated molecules, M05-2X with a continuum solvent (eps ~ 20): O. Borodin, W. Behl, "
    "T. R. Jow, J. Phys. Chem. C 117 (2013) 8661 (values as remembered, ~0.1 V; not checked)"
)
REDUCTION_ORDER_SOURCE = (
    "experiment: VC is reduced above EC on graphite (D. Aurbach et al., Electrochim. Acta 47 "
    "(2002) 1423), FEC too (V. Etacheri et al., Langmuir 28 (2012) 965); EC-based electrolytes "
    "decompose at 0.7-0.8 V vs Li+/Li (K. Leung et al., arXiv:1502.00187)"
)


def _row(*cells: object, widths: tuple[int, ...]) -> str:
    return " ".join(
        f"{c:>{w}}" if not isinstance(c, float) else f"{c:>{w}.2f}"
        for c, w in zip(cells, widths, strict=True)
    )


def voltages(out: dict) -> None:
    from bigmap.tenants.crystal import tenant

    print("\n1. Average intercalation voltage, CHGNet (relaxed cells) vs experiment [V]")
    w = (10, 10, 8, 8, 8, 8)
    print(_row("lithiated", "host", "CHGNet", "exp.", "diff", "time s", widths=w))
    for lith, (delith, exp, src) in VOLTAGES.items():
        t0 = time.perf_counter()
        r, _ = tenant.run_local(
            "intercalation_voltage", "chgnet", {"lithiated": lith, "delithiated": delith}
        )
        v = r["average_voltage"]
        out.setdefault("voltages", {})[lith] = {"chgnet": v, "experiment": exp, "source": src}
        print(_row(lith, delith, v, exp, v - exp, time.perf_counter() - t0, widths=w))
    for lith, (_, _, src) in VOLTAGES.items():
        print(f"   {lith}: {src}")


def barrier(out: dict) -> None:
    from bigmap.tenants.crystal import tenant

    print("\n2. Li migration barrier in LiFePO4 along b (vacancy hop, CI-NEB, CHGNet) [eV]")
    t0 = time.perf_counter()
    r, ctx = tenant.run_local(
        "migration_barrier",
        "chgnet_neb",
        {"structure": "LiFePO4", "supercell": [1, 2, 1], "images": 5, "max_steps": 300},
    )
    ref, src = LFP_BARRIER
    out["lfp_barrier"] = {
        "chgnet": r["barrier"],
        "dft": ref,
        "source": src,
        "converged": r["converged"],
        "hop_distance": r["hop_distance"],
        "profile": r["profile"],
    }
    print(
        f"   CHGNet {r['barrier']:.3f} eV vs DFT {ref:.2f} eV (diff {r['barrier'] - ref:+.3f}); "
        f"hop {r['hop_distance']:.2f} Å, {r['n_atoms']} atoms, NEB converged={r['converged']} "
        f"in {r['steps']} steps, {time.perf_counter() - t0:.0f} s"
    )
    print(
        "   profile (Å, eV): "
        + ", ".join(f"({p['reaction_coordinate']:.2f}, {p['energy']:.3f})" for p in r["profile"])
    )
    print(f"   {src}")


def redox(out: dict) -> None:
    from bigmap.tenants.molecule import tenant

    print(
        "\n3. Redox potentials of electrolyte molecules [V vs Li+/Li], ALPB(acetone), "
        "GFN2-xTB geometries"
    )
    w = (5, 9, 9, 9, 9, 9, 9, 9, 9)
    print(
        _row(
            "",
            "ox GFN2",
            "ox IPEA1",
            "ox ref",
            "d GFN2",
            "d IPEA1",
            "red GFN2",
            "red IPEA1",
            "HOMO eV",
            widths=w,
        )
    )
    res = {}
    for name, (smi, ref, _checked) in MOLECULES.items():
        g, _ = tenant.run_local("redox_potential", "gfn2_xtb", {"smiles": smi})
        i, _ = tenant.run_local(
            "redox_potential", "gfn2_xtb", {"smiles": smi, "energy_method": "IPEA1-xTB"}
        )
        res[name] = {
            "smiles": smi,
            "ox_gfn2": g["oxidation_potential"],
            "red_gfn2": g["reduction_potential"],
            "ox_ipea1": i["oxidation_potential"],
            "red_ipea1": i["reduction_potential"],
            "homo": g["homo"],
            "lumo": g["lumo"],
            "ox_reference": ref,
            "reduced_bonds_changed": g["reduced"]["bonds_changed"],
        }
        d1 = g["oxidation_potential"] - ref if ref is not None else "-"
        d2 = i["oxidation_potential"] - ref if ref is not None else "-"
        print(
            _row(
                name,
                g["oxidation_potential"],
                i["oxidation_potential"],
                ref if ref is not None else "-",
                d1,
                d2,
                g["reduction_potential"],
                i["reduction_potential"],
                g["homo"],
                widths=w,
            )
        )
    out["redox"] = res
    print(f"   oxidation reference: {OXIDATION_SOURCE}")
    for method in ("gfn2", "ipea1"):
        ec = res["EC"][f"red_{method}"]
        verdict = {m: res[m][f"red_{method}"] > ec for m in ("VC", "FEC")}
        out[f"reduced_before_ec_{method}"] = verdict
        print(
            f"   {method.upper()}: reduced before EC (higher reduction potential)? "
            + ", ".join(
                f"{m}: {'yes' if v else 'no'} ({res[m][f'red_{method}'] - ec:+.2f} V)"
                for m, v in verdict.items()
            )
        )
    print(f"   ordering reference: {REDUCTION_ORDER_SOURCE}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--skip-neb", action="store_true", help="leave out the LiFePO4 NEB")
    ap.add_argument("--json", help="write the numbers to this file")
    a = ap.parse_args()
    out: dict = {}
    t0 = time.perf_counter()
    redox(out)
    voltages(out)
    if not a.skip_neb:
        barrier(out)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
