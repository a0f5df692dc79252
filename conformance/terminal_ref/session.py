"""The reference terminal's card session: the suite's HealthCardSession, bent by the faults.

Without faults it is the host session unchanged (selection from DDF1 down, one authentication
per DF and key, X = an earlier challenge for update keys, a fresh challenge for every
authentication and SM command, SM per REFERENCE.md §4). Each fault of
:mod:`conformance.terminal_ref.faults` overrides the one step it names.
"""

from __future__ import annotations

from conformance.apdu import ApduError, CommandAPDU
from conformance.host.keys import KeyProvider
from conformance.host.session import HealthCardSession, RightKind
from conformance.iso7816 import RECORD_P2_BY_NUMBER
from conformance.model import CardProfile, EFSpec
from conformance.transport.base import Transport

__all__ = ["TerminalSession"]


class TerminalSession(HealthCardSession):
    """A HealthCardSession for one terminal transaction, with the faults it was asked for."""

    def __init__(
        self,
        transport: Transport,
        profile: CardProfile,
        keys: KeyProvider,
        *,
        faults: frozenset[str] = frozenset(),
        chunk_size: int = 0xFF,
    ) -> None:
        super().__init__(transport, profile, keys, chunk_size=chunk_size)
        self.faults = faults
        self._first_challenge: bytes | None = None

    def get_challenge(self) -> bytes:
        """A fresh challenge; with ``reuse_challenge`` the first one of the transaction."""
        if "reuse_challenge" in self.faults and self._first_challenge is not None:
            return self._first_challenge
        challenge = super().get_challenge()
        self._first_challenge = challenge
        return challenge

    def authenticate(self, family: str) -> None:
        """EXTERNAL AUTHENTICATE once; with ``retry_refused_auth`` once more after a refusal."""
        try:
            super().authenticate(family)
        except ApduError as exc:
            if "retry_refused_auth" not in self.faults or not self._refused_auth(exc):
                raise
            self.withheld.pop(family, None)
            super().authenticate(family)

    def _refused_auth(self, exc: ApduError) -> bool:
        command = exc.command
        return command is not None and (command.cla, command.ins) == self.profile.command(
            "external_authenticate"
        )

    def _ensure_right(self, path: str, right: RightKind) -> EFSpec:
        """The right, then the file selected; with ``no_select_before_read`` a read goes
        to the card with no SELECT of its file (authentication still selects its DF)."""
        if right != "read" or "no_select_before_read" not in self.faults:
            return super()._ensure_right(path, right)
        ef = self.profile.file(path)
        family = ef.access.read
        df_name = path.partition("/")[0]
        if family not in (None, "free") and not (
            self.current_df == df_name and family in self.granted
        ):
            self.authenticate(family)
        return ef

    def update_record_sm(self, path: str, n: int, tlv: bytes) -> None:
        """A TLV record under SM; with ``tlv_write_without_sm`` a plain UPDATE RECORD after
        the update right."""
        if "tlv_write_without_sm" not in self.faults:
            super().update_record_sm(path, n, tlv)
            return
        self._ensure_right(path, "update")
        cla, ins = self.profile.command("update_record")
        command = CommandAPDU(cla, ins, n, RECORD_P2_BY_NUMBER, bytes(tlv))
        self._send(command)
