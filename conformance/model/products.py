"""What a product declares (its ICS) and what a run executes (a test plan), both as YAML data."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from conformance import resources
from conformance.model.profile import CardProfile
from conformance.model.source import ProfileError, load_yaml, pydantic_errors
from conformance.resources import DEFAULT_PLAN, DEFAULT_PRODUCT, PLANS_DIR, PRODUCTS_DIR


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Product(_Strict):
    """An implementation conformance statement: who made the product and which options it has."""

    name: str
    vendor: str
    model: str
    version: str
    kind: str = "user card"
    features: list[str] = []
    sample: Literal["test", "issued"] = "issued"
    """What the submitted sample carries: ``test`` data of a fictitious person, or the data of
    an ``issued`` card, a real cardholder's. It decides the default privacy setting (on for an
    issued card), so an ICS that does not say is taken to describe an issued card."""
    sample_pin: SecretStr | None = Field(default=None, exclude=True, repr=False)
    """The PIN of the sample under test (feature ``pin``), as the vendor declares it. It is a
    secret: left out of model_dump (so of run summaries and reports) and of the repr."""
    other_application: str = ""
    """Feature ``co_branded``: the application the card carries beside DDF1, by the name of a
    shipped application profile (``pboc-pse``, profiles/applications/) or a path."""
    notes: str = ""
    source: str = ""
    sha256: str = ""

    def has(self, feature: str) -> bool:
        return feature in self.features


class Selection(_Strict):
    groups: list[str] = []
    ids: list[str] = []  # fnmatch patterns of case IDs


class Plan(_Strict):
    """Which cases a run executes and with which parameters.

    Only a plan of kind `certification` can end in CONFORMANT (conformance/results.py); any
    other plan is a subset and its run says so.
    """

    name: str
    title_zh: str
    title_en: str
    kind: Literal["certification", "subset"] = "subset"
    include: Selection = Selection()
    exclude: Selection = Selection()
    include_destructive: bool = False
    parameters: dict[str, Any] = Field(default_factory=dict)
    choices: Literal["enforce", "observe"] = "enforce"
    """A deviation from a [choice] value: enforce FAILs it, observe PASSes it with an
    observation."""
    source: str = ""
    sha256: str = ""


def _load(model: type[_Strict], path: Path) -> Any:
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise ProfileError(f"{path}: must be a mapping")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    try:
        return model.model_validate({**doc.data, "source": str(path), "sha256": sha})
    except ValidationError as exc:
        raise pydantic_errors(doc, exc) from None


def _shipped_or_path(directory: Path, value: str, what: str) -> Path:
    path = resources.named(directory, value)
    if path is None:
        known = ", ".join(resources.names(directory))
        raise ProfileError(f"no {what} named {value!r} (known: {known})")
    return path


def load_product(path: Path | str | None, profile: CardProfile) -> Product:
    """An ICS by file path, or by the name of a shipped one (`minimal`, `reference`)."""
    source = _shipped_or_path(PRODUCTS_DIR, str(path), "product") if path else DEFAULT_PRODUCT
    product: Product = _load(Product, source)
    unknown = [f for f in product.features if f not in profile.spec.features]
    if unknown:
        raise ProfileError(
            f"{product.source}: key features: {', '.join(unknown)} not optional features of "
            f"the profile (known: {', '.join(profile.spec.features)})"
        )
    _check_other_application(product)
    if product.sample_pin is not None:
        pin = product.sample_pin.get_secret_value()
        digits = 2 * profile.spec.security.pin.length_bytes
        if not (pin.isascii() and pin.isdigit() and 1 <= len(pin) <= digits):
            raise ProfileError(
                f"{product.source}: key sample_pin: a PIN is 1..{digits} decimal digits "
                "(the value is not shown)"
            )
    return product


def _check_other_application(product: Product) -> None:
    """co_branded needs the other application named (and that profile must load)."""
    from conformance.model.application import load_application

    if product.has("co_branded") and not product.other_application:
        raise ProfileError(f"{product.source}: key other_application: feature co_branded needs "
                           "the application the card carries beside DDF1 (e.g. pboc-pse)")
    if product.other_application:
        load_application(product.other_application)


def load_plan(name_or_path: Path | str | None) -> Plan:
    """A plan by the name of a shipped one (`certification`, `selftest`, `performance`) or by
    file path."""
    return _load(Plan, _shipped_or_path(PLANS_DIR, str(name_or_path or DEFAULT_PLAN), "plan"))


def catalogue_plan() -> Plan:
    """The certification plan with the parameters of the plans that run what it leaves out
    (the PERF measurements: the performance plan): what runs the whole catalogue at once (the
    kill matrix, the suite's own tests) takes its parameters from here."""
    plan = load_plan("certification")
    measuring = load_plan("performance")
    return plan.model_copy(update={"parameters": {**measuring.parameters, **plan.parameters}})


_ALLOWED = (ast.Expression, ast.BoolOp, ast.UnaryOp, ast.And, ast.Or, ast.Not, ast.Name, ast.Load)
_ALLOWED_CONSTANTS = (True, False)


def check_applicability(expression: str, features: list[str]) -> None:
    """Raise ValueError unless the expression uses only and/or/not, True/False and features."""
    tree = ast.parse(expression, mode="eval")
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and node.value in _ALLOWED_CONSTANTS:
            continue
        if not isinstance(node, _ALLOWED):
            raise ValueError(f"applicability {expression!r}: only and/or/not over features")
        if isinstance(node, ast.Name) and node.id not in features:
            raise ValueError(f"applicability {expression!r}: unknown feature {node.id}")


def applicable(expression: str, product: Product, known_features: list[str]) -> bool:
    """Evaluate an applicability expression (e.g. "pin and not contactless") over an ICS."""
    check_applicability(expression, known_features)
    names = {f: product.has(f) for f in known_features}
    return bool(eval(compile(expression, "<applicability>", "eval"), {"__builtins__": {}}, names))
