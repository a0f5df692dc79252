"""The terminal side: a HealthCardSession over any transport, keys from a KeyProvider.

This package judges cards only through a transport and must never import conformance.card
(DESIGN.md, "Boundaries that keep the suite honest").
"""

from conformance.host.keys import KeyProvider, TestKeyProvider
from conformance.host.session import HealthCardSession, HostError

__all__ = ["HealthCardSession", "HostError", "KeyProvider", "TestKeyProvider"]
