"""The broker's HTTP server: native API under /api/v1 and the FINALES 1.1.0 paths."""

from bigmap.server.app import create_app

__all__ = ["create_app"]
