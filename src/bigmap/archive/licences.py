"""Licences by SPDX identifier (https://spdx.org/licenses/), with the ids InvenioRDM's
licence vocabulary uses (lower-case SPDX ids)."""

from __future__ import annotations

LICENCES: dict[str, dict[str, str]] = {
    "CC-BY-4.0": {
        "name": "Creative Commons Attribution 4.0 International",
        "url": "https://creativecommons.org/licenses/by/4.0/legalcode",
    },
    "CC-BY-SA-4.0": {
        "name": "Creative Commons Attribution Share Alike 4.0 International",
        "url": "https://creativecommons.org/licenses/by-sa/4.0/legalcode",
    },
    "CC0-1.0": {
        "name": "Creative Commons Zero v1.0 Universal",
        "url": "https://creativecommons.org/publicdomain/zero/1.0/legalcode",
    },
    "CC-BY-NC-4.0": {
        "name": "Creative Commons Attribution Non Commercial 4.0 International",
        "url": "https://creativecommons.org/licenses/by-nc/4.0/legalcode",
    },
    "ODbL-1.0": {
        "name": "Open Data Commons Open Database License v1.0",
        "url": "https://opendatacommons.org/licenses/odbl/1-0/",
    },
    "MIT": {"name": "MIT License", "url": "https://opensource.org/licenses/MIT"},
    "Apache-2.0": {
        "name": "Apache License 2.0",
        "url": "https://www.apache.org/licenses/LICENSE-2.0",
    },
    "BSD-3-Clause": {
        "name": 'BSD 3-Clause "New" or "Revised" License',
        "url": "https://opensource.org/licenses/BSD-3-Clause",
    },
    "GPL-3.0-or-later": {
        "name": "GNU General Public License v3.0 or later",
        "url": "https://www.gnu.org/licenses/gpl-3.0-standalone.html",
    },
}

DEFAULT_DATA_LICENCE = "CC-BY-4.0"
DEFAULT_CODE_LICENCE = "MIT"

# The MIT licence text (https://opensource.org/licenses/MIT), for the code in a package.
MIT_TEXT = """MIT License

Copyright (c) {year} {holders}

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def licence(spdx_id: str) -> dict[str, str]:
    """``{id, name, url}`` of an SPDX licence id; ``ValueError`` for one bigmap does not know."""
    for key, entry in LICENCES.items():
        if key.lower() == spdx_id.lower():
            return {"id": key, **entry}
    raise ValueError(f"unknown licence {spdx_id!r}; one of {', '.join(LICENCES)} (SPDX ids)")


def spdx_uri(spdx_id: str) -> str:
    return f"https://spdx.org/licenses/{licence(spdx_id)['id']}"
