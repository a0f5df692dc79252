"""The case catalogue: every group's cases built from the profile, and plan selection."""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from importlib import import_module

from conformance.cases.framework import GROUPS, Case
from conformance.model.products import Plan, check_applicability
from conformance.model.profile import CardProfile

GROUP_MODULES = ["atr", "cmd", "fs", "data", "sec", "cyc", "idx", "rec", "pin", "cob", "perf"]

WIRE_TERM = re.compile(r"<(sw|cmd|cla|ins):([a-z0-9_]+(?::[0-9A-Fa-f]{1,3})?)>")
"""A wire fact named in case text: ``<sw:security_not_satisfied>`` → 6982,
``<sw:wrong_le:08>`` → 6C08, ``<cmd:update_record_sm>`` → 04 DC, ``<cla:…>`` / ``<ins:…>`` →
one byte. Case modules write these; the catalogue shows the profile's bytes."""

TEXT_FIELDS = (
    "title_zh", "title_en", "clause", "purpose", "purpose_zh", "preconditions",
)


def build_catalogue(profile: CardProfile) -> list[Case]:
    """All cases for a profile, in group order, with unique IDs and valid applicability; their
    expected status words and wire terms (named by meaning in the case modules) rendered as
    the profile's hex."""
    cases: list[Case] = []
    for name in GROUP_MODULES:
        module = import_module(f"conformance.cases.{name}")
        cases.extend(_rendered(case, profile) for case in module.cases(profile))
    seen: set[str] = set()
    features = list(profile.spec.features)
    for case in cases:
        if case.id in seen:
            raise ValueError(f"duplicate case ID {case.id}")
        seen.add(case.id)
        check_applicability(case.applicability, features)
    check_requirements(profile, cases)
    order = list(GROUPS)
    return sorted(cases, key=lambda c: order.index(c.group))


def render_text(profile: CardProfile, text: str) -> str:
    """``text`` with every :data:`WIRE_TERM` replaced by the profile's bytes (KeyError for a
    name the profile lacks)."""

    def term(match: re.Match[str]) -> str:
        kind, name = match.groups()
        if kind == "sw":
            return profile.sw_text(name)
        if name not in profile.spec.commands:
            raise KeyError(f"no command {name!r} in profile {profile.spec.profile.name}")
        if kind == "cmd":
            return profile.command_text(name)
        cla, ins = profile.command(name)
        return f"{cla if kind == 'cla' else ins:02X}"

    return WIRE_TERM.sub(term, text)


def _rendered(case: Case, profile: CardProfile) -> Case:
    """The case with its expected status words (named by meaning: ``security_not_satisfied``,
    ``wrong_le:08``) and the wire terms of its text turned into the profile's hex, so that
    catalogue, report and body judge by the same words."""
    key = case.requirement or profile.requirement_of(case.id)
    if key and key not in profile.spec.requirements:
        raise ValueError(f"case {case.id}: unknown requirement {key!r} (not in the profile's "
                         "requirements)")
    try:
        shown = tuple(profile.sw_text(name) for name in case.expected_sw)
        texts = {f: render_text(profile, getattr(case, f)) for f in TEXT_FIELDS}
        if key:
            requirement = profile.spec.requirements[key]
            texts.update(
                requirement=key,
                requirement_zh=render_text(profile, requirement.zh),
                requirement_en=render_text(profile, requirement.en),
                source=profile.requirement_source(key),
            )
        notes = choice_notes(profile, case.choices, case.interpretations)
    except KeyError as exc:
        raise ValueError(f"case {case.id}: {exc.args[0]}") from None
    return dataclasses.replace(
        case, expected_sw=shown, choice_notes=tuple(en for _, en in notes),
        choice_notes_zh=tuple(zh for zh, _ in notes), **texts,
    )


def choice_notes(
    profile: CardProfile, choices: tuple[str, ...], interpretations: tuple[str, ...]
) -> list[tuple[str, str]]:
    """(zh, en) per [choice] key, cited by the profile's name, version and section, then per
    interpretation key; KeyError for a key the profile's tables lack."""
    info, spec = profile.spec.profile, profile.spec
    notes = []
    for key in choices:
        if key not in spec.choices:
            raise KeyError(f"unknown [choice] {key!r} (not in the profile's choices)")
        note = spec.choices[key]
        notes.append((f"依据参考配置 {info.name} {info.version} {note.zh}。",
                      f"Rests on reference profile {info.name} {info.version} {note.en}."))
    for key in interpretations:
        if key not in spec.interpretations:
            raise KeyError(f"unknown interpretation {key!r} (not in the profile's "
                           "interpretations)")
        note = spec.interpretations[key]
        notes.append((render_text(profile, note.zh), render_text(profile, note.en)))
    return notes


def check_requirements(profile: CardProfile, cases: list[Case]) -> None:
    """ValueError (one line) for a requirement that no case takes: its case patterns match no
    case, or only cases an earlier requirement takes. A typo in the table must not leave a
    requirement silently untested."""
    taken = {c.requirement for c in cases}
    idle = [
        f"{key} ({', '.join(requirement.cases) or 'no cases'})"
        for key, requirement in profile.spec.requirements.items()
        if key not in taken
    ]
    if idle:
        raise ValueError("requirements no case tests (case patterns match none, or only cases "
                         "of an earlier requirement): " + "; ".join(idle))


def _matches(case: Case, groups: list[str], patterns: list[str]) -> bool:
    return case.group in groups or any(fnmatch.fnmatchcase(case.id, p) for p in patterns)


def check_selection(cases: list[Case], plan: Plan) -> None:
    """Raise ValueError (one line) when the plan names a group or an ID pattern the catalogue
    does not have, or selects no case: such a plan is a mistake, not a small run."""
    groups = {c.group for c in cases}
    problems = []
    for part, selection in (("include", plan.include), ("exclude", plan.exclude)):
        unknown = [g for g in selection.groups if g not in groups]
        if unknown:
            problems.append(f"{part}.groups: no group {', '.join(unknown)} in the catalogue "
                            f"(groups: {', '.join(sorted(groups))})")
        idle = [p for p in selection.ids if not any(fnmatch.fnmatchcase(c.id, p) for c in cases)]
        if idle:
            problems.append(f"{part}.ids: {', '.join(idle)} match no case of the catalogue")
    if not problems and not select(cases, plan):
        problems.append("selects no case of the catalogue")
    if problems:
        raise ValueError(f"plan {plan.name}: " + "; ".join(problems))


def select(cases: list[Case], plan: Plan) -> list[Case]:
    """The cases a plan runs: included, not excluded, destructive ones only if allowed."""
    return [
        c
        for c in cases
        if _matches(c, plan.include.groups, plan.include.ids)
        and not _matches(c, plan.exclude.groups, plan.exclude.ids)
        and (plan.include_destructive or not c.destructive)
    ]
