"""Transports carry APDUs to a card: in-process to the virtual card, or PC/SC to a reader."""

from conformance.transport.base import ApduResponder, BenchError, CardUnresponsive, Transport

__all__ = ["ApduResponder", "BenchError", "CardUnresponsive", "Transport"]
