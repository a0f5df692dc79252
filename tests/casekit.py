"""Running conformance cases against the virtual card from the suite's own tests."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path

from conformance.card import VirtualCard
from conformance.cases.catalogue import build_catalogue
from conformance.cases.framework import Case
from conformance.host.keys import TestKeyProvider
from conformance.model import (
    DEFAULT_PERSONALIZATION,
    DEFAULT_TEST_KEYS,
    CardProfile,
    load_key_set,
    load_personalization,
    load_profile,
)
from conformance.model.products import Product, catalogue_plan, load_product
from conformance.results import CaseResult
from conformance.runner import CaseRunner
from conformance.transport.inprocess import InProcessTransport


@cache
def profile() -> CardProfile:
    return load_profile()


@cache
def catalogue() -> tuple[Case, ...]:
    return tuple(build_catalogue(profile()))


def group_cases(*groups: str) -> tuple[Case, ...]:
    """The catalogue's cases of these groups (metadata rendered from the profile)."""
    return tuple(c for c in catalogue() if c.group in groups)


def reference_product() -> Product:
    return load_product(None, profile())


def new_card(
    faults: Iterable[str] = (),
    product: Product | None = None,
    *,
    prof: CardProfile | None = None,
) -> VirtualCard:
    """A virtual card of the profile (default: the reference), personalised with the fixtures."""
    prof = prof or profile()
    product = product or load_product(None, prof)
    return VirtualCard.personalize(
        prof,
        load_personalization(DEFAULT_PERSONALIZATION, prof),
        load_key_set(DEFAULT_TEST_KEYS, prof),
        features=frozenset(product.features),
        faults=frozenset(faults),
    )


def runner_for(
    card: VirtualCard,
    product: Product | None = None,
    *,
    prof: CardProfile | None = None,
    out_dir: Path | None = None,
) -> CaseRunner:
    """A runner over ``card`` with the profile's redaction and the certification plan."""
    prof = prof or profile()
    return CaseRunner(
        connect=lambda: InProcessTransport(card, name="virtual"),
        profile=prof,
        keys=TestKeyProvider(load_key_set(DEFAULT_TEST_KEYS, prof)),
        product=product or load_product(None, prof),
        plan=catalogue_plan(),
        out_dir=out_dir,
    )


def run_cases(
    cases: Iterable[Case], faults: Iterable[str] = (), product: Product | None = None
) -> dict[str, CaseResult]:
    """Run cases on one fresh virtual card (with faults) and return results by case ID."""
    card = new_card(faults, product)
    runner = runner_for(card, product)
    return {case.id: runner.run(case) for case in cases}
