"""Semantics of bigmap's data: JSON-LD with EMMO / BattINFO IRIs, SHACL validation, SPARQL,
and the minimum metadata per data type.

Built from the BattINFO assets shipped in ``battinfo/`` (Apache-2.0, see its ``__init__``);
a term that has no IRI there is reported, never invented.
"""

from bigmap.ontology.jsonld import (
    JsonLd,
    campaign_jsonld,
    capability_jsonld,
    cell_jsonld,
    chemical_jsonld,
    context,
    formulation_jsonld,
    request_jsonld,
    result_jsonld,
    tenant_jsonld,
    to_graph,
    to_jsonld,
    to_turtle,
)
from bigmap.ontology.vocab import MappingReport, vocabulary

__all__ = [
    "JsonLd",
    "MappingReport",
    "campaign_jsonld",
    "capability_jsonld",
    "cell_jsonld",
    "chemical_jsonld",
    "context",
    "formulation_jsonld",
    "request_jsonld",
    "result_jsonld",
    "tenant_jsonld",
    "to_graph",
    "to_jsonld",
    "to_turtle",
    "vocabulary",
]
