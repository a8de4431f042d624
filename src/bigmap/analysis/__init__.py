"""Analysis of battery data: cycler-file readers into one normalised table, figures of merit,
ΔQ(V) features, impedance fits and early cycle-life prediction.

Layering: this package uses numpy, pandas and scipy, plus the libraries of the formats it
reads (galvani for BioLogic, pyarrow for Parquet, impedance.py for EIS); it never imports the
client, the server or the store.
"""

from bigmap.analysis.readers import detect_format, formats, ingest, read_cycler_file
from bigmap.analysis.table import COLUMNS, UNITS, IngestError, read_parquet, write_parquet

__all__ = [
    "COLUMNS",
    "UNITS",
    "IngestError",
    "detect_format",
    "formats",
    "ingest",
    "read_cycler_file",
    "read_parquet",
    "write_parquet",
]
