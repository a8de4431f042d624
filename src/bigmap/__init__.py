"""bigmap: an open Materials Acceleration Platform (MAP) for battery research.

The broker (``bigmap.server``) connects simulations, instruments and planners
(``bigmap.tenants``, ``bigmap.planner``) that exchange typed requests and results;
``bigmap.client`` is all a tenant needs.
"""

__version__ = "0.1.0"

import os as _os

# PyBaMM asks about telemetry and may try to reach the network; bigmap runs offline.
_os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")
