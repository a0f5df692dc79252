"""The card side: the reference virtual card, its faults, and the vpcd bridge to PC/SC."""

from conformance.card.faults import FAULTS, GROUPS, Fault, FaultSet, check_fault_names
from conformance.card.virtual import VirtualCard, check_features

__all__ = [
    "FAULTS",
    "GROUPS",
    "Fault",
    "FaultSet",
    "VirtualCard",
    "check_fault_names",
    "check_features",
]
