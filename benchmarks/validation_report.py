"""Run every ``benchmarks/validation_*.py`` and write ``docs/validation.md`` from their rows.

    .venv/bin/python benchmarks/validation_report.py [--out docs/validation.md]
        [--molecule-cache runs.json] [--crystal-cache runs.json] [--cv-json cv.json]
        [--skip NAME ...]

The molecule and crystal tables run in their ``--cached-only`` mode (their calculations take
hours: fill the caches with the scripts themselves); by default they read the caches kept in
git, ``benchmarks/out/molecule_runs.json`` and ``benchmarks/out/crystal_runs.json`` (how they
were made: docs/validation.md, "Where the numbers come from"); the electrolyte table takes the grouped
cross-validation scores of ``electrolyte_model_validation.py --json`` when ``--cv-json`` is
given (else it recomputes them, about 10 minutes); the cell table computes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from validation_table import load, markdown  # noqa: E402

ORDER = ("molecule", "crystal", "electrolyte", "cell")
#: the caches the molecule and crystal tables are built from (kept in git: small JSON)
MOLECULE_CACHE = HERE / "out" / "molecule_runs.json"
CRYSTAL_CACHE = HERE / "out" / "crystal_runs.json"
CV_JSON = HERE / "out" / "electrolyte_cv.json"


#: how the committed caches were made (printed at the top of docs/validation.md)
PROVENANCE = [
    "Where the numbers come from: the molecule and crystal tables are tabulated from the",
    "caches kept in git, made on this shared 2-core machine with",
    "",
    "```bash",
    "nice -n 10 .venv/bin/python benchmarks/validation_molecule.py --only EC,VC \\",
    "    --cache benchmarks/out/molecule_runs.json          # xTB and DFT for EC and VC",
    "nice -n 10 .venv/bin/python benchmarks/validation_molecule.py --no-dft \\",
    "    --cache benchmarks/out/molecule_runs.json          # xTB for the other carbonates",
    "nice -n 10 .venv/bin/python benchmarks/validation_crystal.py \\",
    "    --cache benchmarks/out/crystal_runs.json          # stopped in the NEB (time)",
    ".venv/bin/python benchmarks/electrolyte_model_validation.py \\",
    "    --json benchmarks/out/electrolyte_cv.json          # the grouped 5-fold CV",
    "```",
    "",
    "Running a script again with the same `--cache` computes only what is missing: DFT for",
    "PC, DMC, EMC and FEC (drop `--only`) and the LiFePO4 NEB barrier were not affordable in",
    "the time of the run (the machine's load was 10-16 on 2 cores), so those rows are absent.",
    "The DFT rows give each molecule's wall and CPU time and the load average during its",
    "run (for EC and VC sampled from /proc/loadavg by a separate loop; see the cache).",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=HERE.parent / "docs" / "validation.md")
    ap.add_argument(
        "--molecule-cache",
        type=Path,
        default=MOLECULE_CACHE,
        help="cache of validation_molecule.py (default: the committed %(default)s)",
    )
    ap.add_argument(
        "--crystal-cache",
        type=Path,
        default=CRYSTAL_CACHE,
        help="cache of validation_crystal.py (default: the committed %(default)s)",
    )
    ap.add_argument(
        "--cv-json",
        type=Path,
        default=CV_JSON,
        help="electrolyte_model_validation.py --json output (default: the committed "
        "%(default)s; a missing file: recomputed, ~10 min)",
    )
    ap.add_argument("--skip", nargs="*", default=[], choices=ORDER)
    a = ap.parse_args()
    extra = {
        "molecule": ["--cached-only"]
        + (["--cache", str(a.molecule_cache)] if a.molecule_cache.exists() else []),
        "crystal": ["--cached-only"]
        + (["--cache", str(a.crystal_cache)] if a.crystal_cache.exists() else []),
        "electrolyte": ["--cv-json", str(a.cv_json)] if a.cv_json.exists() else [],
        "cell": [],
    }
    found = sorted(p.stem.removeprefix("validation_") for p in HERE.glob("validation_*.py"))
    names = [n for n in ORDER if n in found] + [n for n in found if n not in ORDER]
    sections = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            if name in ("table", "report") or name in a.skip:
                continue
            out = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, str(HERE / f"validation_{name}.py"), "--json", str(out)]
            cmd += extra.get(name, [])
            print("running", " ".join(cmd[1:]), flush=True)
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0 or not out.exists():
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
                sections.append(f"### validation_{name}.py\n\nnot run: {tail[0]}\n")
                continue
            title, rows = load(out)
            sections.append(markdown(title, rows))
    text = "\n".join(
        [
            "# Validation",
            "",
            "Generated by `benchmarks/validation_report.py` from the rows of every",
            "`benchmarks/validation_*.py`; do not edit by hand. Regenerate with",
            "`.venv/bin/python benchmarks/validation_report.py` (see its `--help` for the caches",
            "of the long calculations). A row is *unchecked* when its reference could not be read",
            "in the cited source; such a row never passes.",
            "",
            *PROVENANCE,
            "",
            *sections,
        ]
    )
    a.out.write_text(text)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
