"""The suite's fixed numbers, in one place: bench ports and timeouts, exit codes, output root.

A leaf module (no imports from the package) so that the card, transport and front-door layers
can all use it without pulling each other in.
"""

from __future__ import annotations

from pathlib import Path

VPCD_HOST = "127.0.0.1"
VPCD_PORT = 35963
"""vpcd's first slot: the card that connects here shows in reader "Virtual PCD 00 00"."""
VPCD_READERS = 4
"""The vpcd readers of the bench (scripts/setup.sh: ports VPCD_PORT … VPCD_PORT + 3)."""

APDU_TIMEOUT_S = 10.0
"""How long a PC/SC card may take to answer one APDU before the bench gives up on it."""

CASE_TIMEOUT_S = 120.0
"""How long one case may run before the runner stops it and records it INCONCLUSIVE."""

DEFAULT_OUT_ROOT = Path("reports") / "out"
"""Where `rhc run` puts a run directory (`<root>/<UTC time>`) when --out is not given."""

EXIT_OK = 0
"""CONFORMANT (a certification), or a command that succeeded."""
EXIT_NOT_CONFORMANT = 1
"""NOT_CONFORMANT, or a report that does not verify."""
EXIT_NO_VERDICT = 2
"""No verdict possible: a usage or input error, a bench failure, an incomplete run."""
EXIT_NOT_CERTIFICATION = 3
"""`rhc run`: NO_FAILURES, no case failed but the run is no certification (a subset plan, a
selection, the built-in virtual card); never 0, so that a script cannot take it for one."""
