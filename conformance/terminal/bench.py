"""Where test cards go: a reader the terminal reaches by name. The PC/SC bench puts each in a
vpcd reader (card in ``Virtual PCD 00 00``, SAM in ``Virtual PCD 00 01``)."""

from __future__ import annotations

from typing import Any, Protocol

from conformance.defaults import VPCD_PORT

__all__ = ["Bench", "VpcdBench"]

CARD, SAM = 0, 1
"""The two readers of a terminal run."""


class Bench(Protocol):
    def insert(self, responder: Any, slot: int) -> str:
        """Put ``responder`` in reader ``slot``, wait until it is usable; its reader name."""

    def pull(self, slot: int) -> None:
        """Take the card out now, from any thread (the card leaves mid-transaction)."""

    def remove(self, slot: int) -> None:
        """Take the card out and wait until the reader shows it empty."""


class VpcdBench:
    """Test cards in vsmartcard's vpcd readers, through pcscd."""

    def __init__(self, base_port: int = VPCD_PORT) -> None:
        self.base_port = base_port
        self._bridges: dict[int, Any] = {}

    def insert(self, responder: Any, slot: int) -> str:
        from conformance.bench import insert_vpcd_card

        bridge = insert_vpcd_card(responder, port=self.base_port + slot)
        self._bridges[slot] = bridge
        return str(bridge.reader_name)

    def pull(self, slot: int) -> None:
        bridge = self._bridges.get(slot)
        if bridge is not None:
            bridge.stop(join_timeout_s=0)

    def remove(self, slot: int) -> None:
        from conformance.bench import remove_vpcd_card

        bridge = self._bridges.pop(slot, None)
        if bridge is not None:
            remove_vpcd_card(bridge)
