"""BattINFO assets that bigmap's semantics are built from (data files only, no code).

Source: repository BIG-MAP/BattINFO at commit a600a72 (2026-08-22), as received by the project;
Apache License 2.0 (``LICENSE`` beside this file). BattINFO pins
the EMMO versions it was verified against: domain-battery 0.20.2, domain-electrochemistry
0.37.2, domain-chemical-substance 0.15.0 and EMMO core 1.0.2 (``vocab/battinfo.ttl``).

Copied unchanged:

- ``mappings/property_map.curated.json``: property keys -> EMMO quantity classes
  (``assets/mappings/domain-battery/``; the *curated* tables only: the candidate tables
  hold unreviewed and partly wrong IRIs and are deliberately not used);
- ``mappings/unit_map.curated.json``: unit symbols -> EMMO unit IRIs;
- ``mappings/entity_type_map.json``: cell format / chemistry / IEC code -> EMMO classes;
- ``mappings/material_map.json``: material names and aliases -> EMMO classes;
- ``vocab/emmo-labels.ttl``: the skos:prefLabel of every EMMO term BattINFO's emitters
  use (the IRIs of all class and relation names used here come from this file);
- ``vocab/battinfo.ttl`` and ``vocab/battinfo-records.ttl``: the application ontology
  (EMMO version pins) and the record-layer placeholder vocabulary;
- ``shapes/cell-spec.shapes.ttl`` and ``shapes/publication.shapes.ttl``: SHACL shapes.
"""
