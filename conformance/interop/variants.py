"""Card variants of the interoperability matrix: the virtual card a province might meet in the
field, as data (``profiles/interop/cards/NAME.yaml``).

A variant names the product whose virtual card it is (an ICS of ``profiles/products/``), the
personalization, the optional features the card has on (by default every one its ICS
declares; a variant may switch some off, never declare one the ICS lacks), faults of the
defect catalogue, and the states and reader behaviours of a terminal test card (index flags,
EE/ED records, retry counters, 6Cxx to Le 00). It becomes a terminal test card
(:class:`~conformance.terminal.cards.TestCard`), so a pair is served and judged exactly as a
terminal case is.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, ValidationError

from conformance import resources
from conformance.model.products import Product, load_product
from conformance.model.profile import CardProfile
from conformance.model.source import ProfileError, load_yaml
from conformance.resources import PROFILES_DIR
from conformance.terminal.cards import TestCard

__all__ = ["CARD_VARIANTS_DIR", "CardVariant", "load_named", "load_variant", "variant_names"]

M = TypeVar("M")

CARD_VARIANTS_DIR = PROFILES_DIR / "interop" / "cards"


class CardVariant(TestCard):
    """One card sample of the matrix: a product's virtual card, personalized and bent."""

    product: str = "reference"
    """The ICS: a name in profiles/products/ (``reference``, ``co-branded``…) or a file."""
    features: list[str] | None = None  # type: ignore[assignment]
    """The optional features the card has on; None: every feature the ICS declares."""
    notes: str = ""
    source: str = Field(default="", exclude=True)

    def ics(self, profile: CardProfile) -> Product:
        """The product's ICS (ProfileError, one line, when it is unknown or bad)."""
        base = Path(self.source).parent if self.source else CARD_VARIANTS_DIR
        value = self.product
        path = Path(value)
        if (path.suffix or len(path.parts) > 1) and not path.is_absolute():
            value = str(base / path)  # a relative ICS file is relative to the variant file
        return load_product(value, profile)

    def test_card(self, profile: CardProfile) -> TestCard:
        """The terminal test card this variant is: features resolved against its ICS."""
        product = self.ics(profile)
        features = list(product.features) if self.features is None else self.features
        extra = [f for f in features if f not in product.features]
        if extra:
            raise ProfileError(f"{self.source or self.name}: key features: "
                               f"{', '.join(extra)} not declared by the ICS {product.source} "
                               f"(it declares: {', '.join(product.features) or 'none'})")
        fields = self.model_dump(exclude={"product", "features", "notes", "source"})
        return TestCard(**fields, features=features, name=self.name)


def variant_names() -> list[str]:
    """The names of the shipped card variants."""
    return resources.names(CARD_VARIANTS_DIR)


def load_variant(value: str) -> CardVariant:
    """A card variant by shipped name (``t0``) or by file; ProfileError (one line) if bad."""
    return load_named(CARD_VARIANTS_DIR, value, "card variant", lambda data, path: CardVariant(
        **data, name=path.stem, source=str(path)))


def load_named(directory: Path, value: str, what: str,
               make: Callable[[dict[str, Any], Path], M]) -> M:
    """One of the matrix's data files, by shipped name or by path, made into its model by
    ``make(data, path)``; ProfileError (one line: file, key and line) if it is bad."""
    path = resources.named(directory, value)
    if path is None:
        raise ProfileError(f"no {what} named {value!r} (known: "
                           f"{', '.join(resources.names(directory))}; or give a YAML file)")
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise ProfileError(f"{doc.path}: a {what} is a mapping of keys")
    try:
        return make(doc.data, path)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ProfileError(f"{doc.where(tuple(err['loc']))}: {err['msg']}") from None
