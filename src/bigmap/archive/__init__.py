"""Archive packages of campaigns: RO-Crates with data, raw files, tables, JSON-LD metadata,
licences, creators, a semantic version and content hashes; their import into another
bigmap database; an InvenioRDM record for the BIG-MAP Archive (no network)."""

from bigmap.archive.package import (
    ArchiveError,
    ExportResult,
    export_campaign,
    import_package,
    read_package,
)

__all__ = ["ArchiveError", "ExportResult", "export_campaign", "import_package", "read_package"]
