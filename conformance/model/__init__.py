"""The card model: profiles (files, items, keys, access rules) loaded from YAML and validated."""

from conformance.model.codecs import Coding, CodingError
from conformance.model.personalization import (
    KeySet,
    Personalization,
    load_key_set,
    load_personalization,
)
from conformance.model.profile import (
    CardProfile,
    ItemPlace,
    load_profile,
)
from conformance.model.schema import EFSpec, KeyUse, Structure, UpdateMode
from conformance.model.source import ProfileError
from conformance.resources import (
    DEFAULT_PERSONALIZATION,
    DEFAULT_PROFILE,
    DEFAULT_TEST_KEYS,
    FIXTURES_DIR,
    PROFILES_DIR,
)

__all__ = [
    "DEFAULT_PERSONALIZATION",
    "DEFAULT_PROFILE",
    "DEFAULT_TEST_KEYS",
    "FIXTURES_DIR",
    "PROFILES_DIR",
    "CardProfile",
    "Coding",
    "CodingError",
    "EFSpec",
    "ItemPlace",
    "KeySet",
    "KeyUse",
    "Personalization",
    "ProfileError",
    "Structure",
    "UpdateMode",
    "load_key_set",
    "load_personalization",
    "load_profile",
]
