"""Published datasets that ship with bigmap (each with its licence and citation)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

HTE_CITATION = (
    "E. Flores et al., 'Learning the laws of lithium-ion transport in electrolytes using symbolic "
    "regression', Digital Discovery 1 (2022) 440-447, doi:10.1039/D2DD00027J; data: BIG-MAP/SR-electrolytes "
    "data/HTE_dataset_PC_EMC_EC_LiPF6.csv (MIT)"
)


def hte_path() -> Path:
    """The 3,626 measured conductivities of LiPF6 in EC/PC/EMC blends, 243-333 K (TSV)."""
    return Path(
        str(resources.files("bigmap.data") / "electrolyte_hte" / "HTE_dataset_PC_EMC_EC_LiPF6.tsv")
    )


# Rows of the HTE file that belong to the (EC + PC):EMC = 1:1 series (half-open ranges of
# the file's index); all others are of the 3:7 series. The file does not say; this is an
# inference, recorded here so that it can be re-checked
# (``benchmarks/validation_electrolyte.py --series-evidence`` prints the evidence):
#
# * the file is ordered by campaign (runs of formulations that share a set of molalities, i.e.
#   of stock solutions), each experiment a block of ten temperatures (four of nine);
# * the one experiment of the file whose composition is on record as 1:1
#   (fuzhanrahmanian/MADAP, data/Dataframe_STRUCTURED_all508.csv, commit 9d614d6:
#   WOC_23032021_BM063_4, PC 0 g, EMC 50.0 wt%, 0.593 mol/kg) is rows 1490-1499, and two on
#   record as 3:7 (PYA_25082021_BM169_1, WOC_02112021_BM241_3: EMC 70.5 and 69.7 wt%) are
#   rows 1560-1568 and 2316-2325;
# * a 1:1 blend holds 50 instead of 30 wt% of the viscous cyclic carbonates, so its
#   conductivity falls faster on cooling: fitting each experiment's ln(kappa) against 1000/T
#   and the slopes by a smooth function of (r, c) plus one offset for the series (assigned
#   by the smaller residual, the three records above fixed), whole campaigns come out 0.2-0.5
#   steeper (about 2 kJ/mol more activation energy): rows 70-289 (c = 1.05 and 1.47-1.50
#   mol/kg), 1320-1559 (c = 0.59 and 1.05, the campaign of the 1:1 record) and 1636-1685
#   (c = 0.788); elsewhere only single experiments scatter that far, and they are taken
#   to be of their campaign's series.
HTE_SERIES_1_1_ROWS = ((70, 290), (1320, 1560), (1636, 1686))


def load_hte() -> Any:
    """The HTE dataset as a pandas DataFrame with SI columns: ``T`` [K], ``r`` (the molar
    share of PC in EC + PC, see :mod:`bigmap.schemas.formulation`), ``c`` [mol/kg, LiPF6
    molality], ``kappa`` [S/m] (the file gives mS/cm; 1 mS/cm = 0.1 S/m), ``series``
    ("3:7" or "1:1", the (EC + PC):EMC mass ratio, inferred: :data:`HTE_SERIES_1_1_ROWS`),
    ``w_emc`` (the EMC mass fraction of the solvent, 0.7 or 0.5) and ``experiment`` (a number
    per measured sample, the block of rows of one temperature series)."""
    import numpy as np
    import pandas as pd

    raw = pd.read_csv(hte_path(), sep="\t", index_col=0)
    d = pd.DataFrame(
        {
            "T": raw["T [K]"].astype(float),
            "r": raw["r"].astype(float),
            "c": raw["c [mol/kg]"].astype(float),
            "kappa": raw["k [mS/cm]"].astype(float) * 0.1,
        }
    )
    one_one = np.zeros(len(d), dtype=bool)
    for lo, hi in HTE_SERIES_1_1_ROWS:
        one_one |= (d.index >= lo) & (d.index < hi)
    d["series"] = np.where(one_one, "1:1", "3:7")
    d["w_emc"] = np.where(one_one, 0.5, 0.7)
    key = d["r"].astype(str) + "/" + d["c"].astype(str)
    new = (key != key.shift()) | (d["T"] <= d["T"].shift())
    d["experiment"] = new.cumsum().astype(int) - 1
    return d
