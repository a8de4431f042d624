"""SHACL validation (pyshacl) of exported graphs against BattINFO's shipped shapes and
bigmap's own, with a report a person can read."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

SHAPE_SETS = {
    "battinfo-cell-spec": ("battinfo", "shapes", "cell-spec.shapes.ttl"),
    "battinfo-publication": ("battinfo", "shapes", "publication.shapes.ttl"),
    "bigmap": ("bigmap.shapes.ttl",),
}
SEVERITIES = ("Violation", "Warning", "Info")


@dataclass
class Finding:
    severity: str
    focus: str
    path: str
    message: str
    value: str | None
    shape: str

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


@dataclass
class ShaclReport:
    conforms: bool
    findings: list[Finding] = field(default_factory=list)
    shapes: list[str] = field(default_factory=list)
    triples: int = 0

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def violations(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "Violation"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "conforms": self.conforms,
            "triples": self.triples,
            "shapes": self.shapes,
            "counts": {s: self.count(s) for s in SEVERITIES},
            "findings": [f.as_dict() for f in self.findings],
        }

    def text(self, limit: int = 50) -> str:
        """One line per finding, grouped by severity, then the same messages counted."""
        head = (
            f"SHACL: {'conforms' if self.conforms else 'DOES NOT CONFORM'} "
            f"({self.triples} triples; shapes: {', '.join(self.shapes)}): "
            + ", ".join(f"{self.count(s)} {s.lower()}(s)" for s in SEVERITIES)
        )
        lines = [head]
        for sev in SEVERITIES:
            rows = [f for f in self.findings if f.severity == sev]
            if not rows:
                continue
            lines.append(f"{sev}:")
            by_message: dict[str, list[Finding]] = {}
            for f in rows:
                by_message.setdefault(f.message, []).append(f)
            for message, items in sorted(by_message.items(), key=lambda kv: -len(kv[1])):
                lines.append(f"  [{len(items)}x] {message}")
                for f in items[:3]:
                    value = f" = {f.value}" if f.value else ""
                    lines.append(f"      at {f.focus} {f.path}{value}")
                if len(items) > 3:
                    lines.append(f"      ... and {len(items) - 3} more")
                if len(lines) > limit:
                    lines.append("  ...")
                    return "\n".join(lines)
        return "\n".join(lines)


@lru_cache(maxsize=8)
def shapes_graph(names: tuple[str, ...] = tuple(SHAPE_SETS)) -> Any:
    import rdflib

    g = rdflib.Graph()
    for name in names:
        if name not in SHAPE_SETS:
            raise ValueError(f"unknown shape set {name!r}; one of {', '.join(SHAPE_SETS)}")
        ref = resources.files("bigmap.ontology").joinpath(*SHAPE_SETS[name])
        g.parse(data=ref.read_text("utf-8"), format="turtle")
    return g


def _short(node: Any, graph: Any) -> str:
    import rdflib

    if isinstance(node, rdflib.BNode):
        return "_:" + str(node)[:8]
    try:
        return graph.namespace_manager.normalizeUri(node)
    except Exception:
        return str(node)


def validate(graph: Any, shapes: tuple[str, ...] = tuple(SHAPE_SETS)) -> ShaclReport:
    """Validate an rdflib graph; Warning and Info findings do not break conformance."""
    import pyshacl
    import rdflib
    from rdflib.namespace import SH

    sg = shapes_graph(tuple(shapes))
    conforms, results, _text = pyshacl.validate(
        graph,
        shacl_graph=sg,
        inference="none",
        allow_warnings=True,
        advanced=True,
        meta_shacl=False,
    )
    findings = []
    for r in results.subjects(rdflib.RDF.type, SH.ValidationResult):
        sev = results.value(r, SH.resultSeverity)
        path = results.value(r, SH.resultPath)
        value = results.value(r, SH.value)
        findings.append(
            Finding(
                severity=str(sev).rsplit("#", 1)[-1] if sev else "Violation",
                focus=_short(results.value(r, SH.focusNode), graph),
                path=_short(path, graph) if isinstance(path, rdflib.URIRef) else str(path or ""),
                message=str(results.value(r, SH.resultMessage) or ""),
                value=None if value is None else str(value)[:200],
                shape=_short(results.value(r, SH.sourceShape), sg),
            )
        )
    findings.sort(key=lambda f: (SEVERITIES.index(f.severity), f.message, f.focus))
    return ShaclReport(bool(conforms), findings, list(shapes), len(graph))
