"""The suite's fixed numbers, in one place: bench ports and timeouts, exit codes, output root.

A leaf module (no imports from the package) so that the card, transport and front-door layers
can all use it without pulling each other in.
"""

from __future__ import annotations

from pathlib import Path

VPCD_HOST = "127.0.0.1"
VPCD_PORT = 35963
"""vpcd's first slot: the card that connects here shows in reader "Virtual PCD 00 00"."""

APDU_TIMEOUT_S = 10.0
"""How long a PC/SC card may take to answer one APDU before the bench gives up on it."""

CASE_TIMEOUT_S = 120.0
"""How long one case may run in `rhc run` (pytest-timeout) before it is stopped."""

DEFAULT_OUT_ROOT = Path("reports") / "out"
"""Where `rhc run` puts a run directory (`<root>/<UTC time>`) when --out is not given."""

EXIT_OK = 0
"""CONFORMANT, or a command that succeeded."""
EXIT_NOT_CONFORMANT = 1
"""NOT_CONFORMANT, or a report that does not verify."""
EXIT_NO_VERDICT = 2
"""No verdict possible: a usage or input error, a bench failure, an incomplete run."""
