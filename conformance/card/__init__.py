"""The card side: the reference virtual card, its faults, and the vpcd bridge to PC/SC."""

from typing import Any

from conformance.card.faults import GROUPS, Fault, FaultSet, check_fault_names, fault_catalogue
from conformance.card.virtual import VirtualCard, check_features

__all__ = [
    "GROUPS",
    "Fault",
    "FaultSet",
    "VirtualCard",
    "check_fault_names",
    "check_features",
    "fault_catalogue",
]


def __getattr__(name: str) -> Any:
    """``FAULTS``: the fault catalogue of the default profile (built on first use)."""
    if name == "FAULTS":
        return fault_catalogue()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
