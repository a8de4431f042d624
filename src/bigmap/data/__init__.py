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


def load_hte() -> Any:
    """The HTE dataset as a pandas DataFrame with SI columns: ``T`` [K], ``r`` (the
    publication's solvent-ratio coordinate), ``c`` [mol/kg, LiPF6 molality], ``kappa``
    [S/m] (the file gives mS/cm; 1 mS/cm = 0.1 S/m)."""
    import pandas as pd

    raw = pd.read_csv(hte_path(), sep="\t", index_col=0)
    return pd.DataFrame(
        {
            "T": raw["T [K]"].astype(float),
            "r": raw["r"].astype(float),
            "c": raw["c [mol/kg]"].astype(float),
            "kappa": raw["k [mS/cm]"].astype(float) * 0.1,
        }
    )
