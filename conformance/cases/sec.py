"""SEC: security — rights, keys, challenge, secure messaging (REFERENCE.md §1, §3, §4, §5;
WS/T 543 evidence §4.3–4.5).

The group is split by subject; this module gathers it for the catalogue:

- ``sec_read``   SEC-RD-*   read rights, per EF;
- ``sec_keys``   SEC-KEY-*  per authentication key (counters, rights kept after a failure),
                 SEC-EA-*   EXTERNAL AUTHENTICATE checks per DF, SEC-DIV-* diversification;
- ``sec_state``  SEC-ST-*   rights cleared / kept, SEC-CH-* the challenge;
- ``sec_update`` SEC-UPD-*  update rights and secure messaging per updatable file,
                 SEC-SEP-*  key separation.

No case locks a key: REFERENCE.md §3 lets a test spend at most 2 tries and restore the counter,
so a key's behaviour at 0 tries (6983) is left to the card's own tests.

Shared tools (raw authentication, probes of one right, paying back retry counters) are in
``sec_kit``.
"""

from __future__ import annotations

from conformance.cases import sec_keys, sec_read, sec_state, sec_update
from conformance.cases.framework import Case
from conformance.model.profile import CardProfile


def cases(profile: CardProfile) -> list[Case]:
    return [
        *sec_read.cases(profile),
        *sec_keys.cases(profile),
        *sec_state.cases(profile),
        *sec_update.cases(profile),
    ]
