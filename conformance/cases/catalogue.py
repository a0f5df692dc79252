"""The case catalogue: every group's cases built from the profile, and plan selection."""

from __future__ import annotations

import fnmatch
from importlib import import_module

from conformance.cases.framework import GROUPS, Case
from conformance.model.products import Plan, check_applicability
from conformance.model.profile import CardProfile

GROUP_MODULES = ["atr", "cmd", "fs", "data", "sec", "cyc", "idx", "rec", "pin"]


def build_catalogue(profile: CardProfile) -> list[Case]:
    """All cases for a profile, in group order, with unique IDs and valid applicability."""
    cases: list[Case] = []
    for name in GROUP_MODULES:
        module = import_module(f"conformance.cases.{name}")
        cases.extend(module.cases(profile))
    seen: set[str] = set()
    features = list(profile.spec.features)
    for case in cases:
        if case.id in seen:
            raise ValueError(f"duplicate case ID {case.id}")
        seen.add(case.id)
        check_applicability(case.applicability, features)
    order = list(GROUPS)
    return sorted(cases, key=lambda c: order.index(c.group))


def _matches(case: Case, groups: list[str], patterns: list[str]) -> bool:
    return case.group in groups or any(fnmatch.fnmatchcase(case.id, p) for p in patterns)


def select(cases: list[Case], plan: Plan) -> list[Case]:
    """The cases a plan runs: included, not excluded, destructive ones only if allowed."""
    return [
        c
        for c in cases
        if _matches(c, plan.include.groups, plan.include.ids)
        and not _matches(c, plan.exclude.groups, plan.exclude.ids)
        and (plan.include_destructive or not c.destructive)
    ]
