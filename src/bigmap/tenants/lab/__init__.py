"""The laboratory side: instrument drivers, emulators and the ``virtual-lab`` tenant.

- ``instrument``: the driver interface (states, typed commands, progress, raw files,
  calibration); a real device's driver is a subclass.
- ``station``: the emulated electrolyte station (mixing, impedance, conductivity).
- ``cycler`` / ``cell_line``: the emulated cell line (assembly, PyBaMM cycler, Maccor files).
- ``tenant``: the capabilities, over any instruments (``build_tenant``).

``tenant`` below is the ``virtual-lab`` tenant with the emulators (``bigmap worker virtual-lab``).
"""

from bigmap.tenants.lab.tenant import build_tenant

tenant = build_tenant()

__all__ = ["build_tenant", "tenant"]
