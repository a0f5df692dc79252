"""The card's volatile security state: rights granted per DF, the last challenge, PIN status.

Kept apart from the persistent content (retry counters live there, as on a real card's
EEPROM) because a reset clears exactly this and nothing else (REFERENCE.md §3).
"""

from __future__ import annotations

__all__ = ["SecurityState"]

_NONE: frozenset[str] = frozenset()


class SecurityState:
    """Rights per DF (key families authenticated there), the challenge, the PIN status.

    Rights are stored per DF so that "selecting another DF clears them" is an explicit act
    (:meth:`leave_df`) the card performs, and a faulty card that skips it is easy to express.
    """

    __slots__ = ("challenge", "granted_since_reset", "pin_verified", "rights")

    def __init__(self) -> None:
        self.rights: dict[str, set[str]] = {}
        self.challenge: bytes | None = None
        self.pin_verified = False
        self.granted_since_reset: set[str] = set()

    def rights_in(self, df: str) -> set[str] | frozenset[str]:
        """The key families authenticated in DF ``df`` (empty if none)."""
        return self.rights.get(df, _NONE)

    def grant(self, df: str, family: str) -> None:
        """A successful EXTERNAL AUTHENTICATE: rights accumulate in the current DF."""
        self.rights.setdefault(df, set()).add(family)
        self.granted_since_reset.add(family)

    def revoke_all_in(self, df: str) -> None:
        self.rights.pop(df, None)

    def leave_df(self, df: str) -> None:
        """Selecting another DF clears the rights of the DF being left."""
        self.rights.pop(df, None)

    def take_challenge(self, *, keep: bool = False) -> bytes | None:
        """The challenge for this command; it is used up unless ``keep`` (a faulty card)."""
        challenge = self.challenge
        if not keep:
            self.challenge = None
        return challenge

    def reset(self, *, keep_rights: bool = False, keep_challenge: bool = False) -> None:
        """Power-up: no rights, no challenge, PIN not verified."""
        if not keep_rights:
            self.rights = {}
            self.granted_since_reset = set()
        if not keep_challenge:
            self.challenge = None
        self.pin_verified = False
