"""Lab devices that speak SiLA 2 (the lab-automation standard, sila-standard.org) as bigmap
tenants, through a mapping file (docs/lab.md, "Instruments").

- ``fdl``: what a feature definition (FDL XML) says: commands, properties, types, units;
- ``mapping``: the mapping file, read and checked (also against the device);
- ``adapter``: the tenant over any SiLA 2 server (``build_sila_tenant``), with the ``sila2``
  package's dynamic client;
- ``discover``: a server's features and a mapping skeleton (``bigmap sila discover``);
- ``emulator``: the SiLA 2 face of bigmap's emulated lab (``bigmap sila serve-emulator``).

Imports go one way: this package uses ``client``, ``schemas`` and ``tenants.lab``; nothing in
``tenants.lab`` imports it.
"""

from bigmap.tenants.sila.mapping import Mapping, MappingError, load_mapping

__all__ = ["Mapping", "MappingError", "load_mapping"]
