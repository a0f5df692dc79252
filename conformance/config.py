"""The run configuration: run options declared once, every input validated once, the card built.

Both front doors go through here. The pytest plugin registers `RUN_OPTIONS` as `--rhc-NAME`
options; `rhc` registers the same entries as `--NAME`. Either way the values reach
`build_config`, which loads and checks profile, ICS, plan (and the cases it selects), keys,
personalization or card image, faults, reader requirements and the run directory before the
first APDU, writes nothing, and raises `ConfigError` with one line naming the problem.
`claim_out_dir` then prepares the run directory and `card_under_test` opens the card.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conformance.defaults import APDU_TIMEOUT_S, CASE_TIMEOUT_S
from conformance.host.keys import TestKeyProvider
from conformance.lab import (
    BenchFile,
    LabFile,
    LabFileError,
    SubmissionFile,
    load_bench,
    load_lab,
    load_submission,
)
from conformance.model import (
    DEFAULT_PERSONALIZATION,
    DEFAULT_TEST_KEYS,
    CardProfile,
    KeySet,
    ProfileError,
    load_key_set,
    load_personalization,
    load_profile,
)
from conformance.model.products import Plan, Product, load_plan, load_product
from conformance.transport.base import Transport

if TYPE_CHECKING:  # the virtual card loads only when a configuration asks for it
    from cryptography import x509

    from conformance.card import VirtualCard
    from conformance.cases.framework import Case

CARDS = ("virtual", "pcsc")
PRIVACY = ("auto", "on", "off")
PASSPHRASE_ENV = "RHC_SIGN_PASSPHRASE"  # a PKCS#12 lab certificate's passphrase


class ConfigError(Exception):
    """A run input is wrong; the message is one line naming the option and the problem."""

    def __init__(self, message: str):
        lines = [line.strip() for line in str(message).splitlines() if line.strip()]
        super().__init__("; ".join(lines))


@dataclass(frozen=True)
class RunOption:
    """One run option: `--NAME` on `rhc`, `--rhc-NAME` in pytest, `values[key]` here.

    Values reach `build_config` as the strings the user typed: the parsers only collect them,
    so a bad value is the same one-line error through either door.
    """

    name: str
    help: str
    metavar: str = ""
    repeat: bool = False
    flag: bool = False  # an on/off switch (`--replace`): its value is True or False

    @property
    def key(self) -> str:
        return self.name.replace("-", "_")

    def argparse_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for argparse's (and so pytest's) add_argument/addoption."""
        if self.flag:
            return {"help": self.help, "action": "store_true", "default": False}
        kwargs: dict[str, Any] = {"help": self.help, "metavar": self.metavar, "default": None}
        if self.repeat:
            kwargs.update(action="append", default=[])
        return kwargs


RUN_OPTIONS: tuple[RunOption, ...] = (
    RunOption("card", "card under test: the built-in virtual card or a PC/SC reader "
              "(default: pcsc with --reader, else virtual)", "{" + ",".join(CARDS) + "}"),
    RunOption("reader", "PC/SC reader: exact name or regular expression (default: none; "
              "implies --card pcsc)", "NAME"),
    RunOption("profile", "card profile YAML (default: the shipped WS/T 543 profile)", "FILE"),
    RunOption("product", "the product's ICS: a file, or a shipped name such as minimal "
              "(default: reference)", "FILE|NAME"),
    RunOption("plan", "test plan: a file, or a shipped name such as selftest "
              "(default: certification)", "FILE|NAME"),
    RunOption("keys", "test master keys YAML (default: the shipped test keys)", "FILE"),
    RunOption("personalization", "virtual card: personalization YAML (default: the shipped "
              "one)", "FILE"),
    RunOption("image", "virtual card: load a JSON card image (rhc card serve --save-image; "
              "default: none, the personalization)", "FILE"),
    RunOption("fault", "virtual card: a fault of the defect catalogue (repeatable; "
              "`rhc card faults` lists them; default: none)", "NAME", repeat=True),
    RunOption("card-latency-ms", "virtual card: milliseconds it takes for every answer, as a "
              "real card would (default 0)", "MS"),
    RunOption("card-byte-us", "virtual card: microseconds per byte on the wire, command and "
              "response (default 0)", "US"),
    RunOption("apdu-timeout", f"PC/SC: seconds the card may take to answer one APDU "
              f"(default: {APDU_TIMEOUT_S:g})", "S"),
    RunOption("privacy", "mask the cardholder's personal data items in evidence and reports "
              "(default auto: on unless the ICS declares `sample: test`)",
              "{" + ",".join(PRIVACY) + "}"),
    RunOption("seal-to", "lab certificate (PEM or PKCS#12) the run's trace salt is sealed to "
              "(salt.sealed.json; default: the signing certificate of `rhc run`, else the "
              "demo lab's)", "CERT"),
    RunOption("case-timeout", f"seconds one case may run before it is stopped and recorded "
              f"INCONCLUSIVE (default: {CASE_TIMEOUT_S:g})", "S"),
    RunOption("lab", "lab file YAML: laboratory, address, accreditation, place of testing, "
              "tester/reviewer/approver, time zone, report-number format (default: the DEMO "
              "lab, fixtures/lab-demo.yaml; rhc report build: the one the run recorded)",
              "FILE"),
    RunOption("submission", "submission file YAML: client and address, product, samples "
              "with IDs, condition and date of receipt (example: fixtures/"
              "submission-demo.yaml; default: none, the report says so; rhc report build: "
              "the one the run recorded)", "FILE"),
    RunOption("bench", "bench file YAML: temperature and humidity with their limits, "
              "equipment with serial numbers and calibration due dates (example: fixtures/"
              "bench-demo.yaml; default: none, the report says so; rhc report build: the "
              "one the run recorded)", "FILE"),
    RunOption("out", "run directory for results, evidence and report; it must be new or "
              "empty, see --replace (default of rhc run: reports/out/<UTC time>)", "DIR"),
    RunOption("replace", "remove the earlier run in --out before this one starts "
              "(after every input was checked)", flag=True),
)
OPTIONS_BY_NAME = {option.name: option for option in RUN_OPTIONS}
VIRTUAL_ONLY = ("personalization", "image", "fault", "card-latency-ms", "card-byte-us")


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs, loaded and checked: nothing here can fail on first use."""

    profile: CardProfile
    product: Product
    plan: Plan
    key_set: KeySet
    card: str
    reader: str | None = None
    apdu_timeout_s: float = APDU_TIMEOUT_S
    faults: tuple[str, ...] = ()
    virtual_card: VirtualCard | None = field(default=None, repr=False)
    out_dir: Path | None = None
    privacy: bool = False
    privacy_basis: str = ""
    seal_cert: x509.Certificate | None = field(default=None, repr=False)
    replace: bool = False
    case_timeout_s: float = CASE_TIMEOUT_S
    lab: LabFile | None = field(default=None, repr=False)
    lab_path: Path | None = None
    """None: the DEMO lab of fixtures/lab-demo.yaml."""
    submission: SubmissionFile | None = field(default=None, repr=False)
    submission_path: Path | None = None
    bench: BenchFile | None = field(default=None, repr=False)
    bench_path: Path | None = None
    catalogue: tuple[Case, ...] = field(default=(), repr=False)
    """Every case of the profile's catalogue (what a certification must cover)."""
    cases: tuple[Case, ...] = field(default=(), repr=False)
    """The cases of the plan, in catalogue order."""

    @cached_property
    def keys(self) -> TestKeyProvider:
        """The host's key provider over the configured test keys (one per run)."""
        return TestKeyProvider(self.key_set)


def given(values: Mapping[str, Any], name: str) -> bool:
    """Whether the option was set (a repeatable one: at least once)."""
    value = values.get(OPTIONS_BY_NAME[name].key)
    return bool(value) if isinstance(value, (list, tuple, bool)) else value is not None


def _flag(name: str) -> str:
    return f"--{name}"


def _load(label: str, loader: Callable[[], Any]) -> Any:
    try:
        return loader()
    except (ProfileError, ValueError, OSError) as exc:  # also a plan's selection mistakes
        raise ConfigError(f"{label}: {exc}") from None


def lab_files(values: Mapping[str, Any]) -> dict[str, Any]:
    """The lab, submission and bench files the options name, each checked (ConfigError)."""
    loaded: dict[str, Any] = {}
    for name, loader in (("lab", load_lab), ("submission", load_submission),
                         ("bench", load_bench)):
        path = values.get(name)
        loaded[f"{name}_path"] = Path(path) if path else None
        if path or name == "lab":
            try:
                loaded[name] = loader(path)
            except LabFileError as exc:
                raise ConfigError(f"--{name}: {exc}") from None
    return loaded


def _check_card_choice(values: Mapping[str, Any]) -> str:
    card = values.get("card") or ("pcsc" if values.get("reader") else "virtual")
    if card not in CARDS:
        raise ConfigError(f"--card: {card!r} is not one of {', '.join(CARDS)}")
    if card == "pcsc":
        if not values.get("reader"):
            raise ConfigError("--card pcsc needs --reader NAME (see `pcsc_scan` or "
                              "`rhc card serve` for reader names)")
        wrong = [_flag(n) for n in VIRTUAL_ONLY if given(values, n)]
        if wrong:
            raise ConfigError(f"{', '.join(wrong)}: for --card virtual only; a card in a "
                              "PC/SC reader carries its own data")
    else:
        if values.get("reader"):
            raise ConfigError("--reader names a PC/SC reader, but --card virtual runs the "
                              "built-in virtual card: drop --card virtual, or --reader")
        if values.get("personalization") and values.get("image"):
            raise ConfigError("--personalization and --image: give one (an image already "
                              "holds its personalization)")
    return card


def _amount(values: Mapping[str, Any], name: str) -> float:
    """A number ≥ 0 (a time of the virtual card's timing shape); 0 when not given."""
    value = values.get(OPTIONS_BY_NAME[name].key)
    if value is None:
        return 0.0
    try:
        amount = float(value)
    except ValueError:
        amount = -1.0
    if not 0 <= amount < float("inf"):  # also refuses nan
        raise ConfigError(f"--{name}: {value!r} is not a number ≥ 0")
    return amount


def _seconds(values: Mapping[str, Any], name: str, default: float) -> float:
    value = values.get(OPTIONS_BY_NAME[name].key)
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not seconds > 0 or seconds == float("inf"):  # also refuses nan
        raise ConfigError(f"--{name}: {value!r} is not a positive number of seconds")
    return seconds


RUN_FILES = ("summary.json", "results.jsonl", "evidence", "report.xml")
"""What marks a directory as a run directory: only such a directory may be replaced."""


def _out_dir(values: Mapping[str, Any]) -> Path | None:
    """The run directory, checked but not touched: new or empty, or a run to be replaced."""
    out = values.get("out")
    if out is None:
        return None
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out: {path} is a file, not a directory")
    if not path.is_dir() or not any(path.iterdir()):
        return path
    if not values.get("replace"):
        raise ConfigError(f"--out: {path} is not empty (an earlier run?); nothing was touched: "
                          "give a new directory, or --replace to remove the earlier run")
    if not any((path / name).exists() for name in RUN_FILES):
        raise ConfigError(f"--replace: {path} does not hold a run ({', '.join(RUN_FILES)}); "
                          "not removing it")
    return path


def claim_out_dir(config: RunConfig) -> None:
    """Make the run directory ready, once every input was checked: the earlier run that
    --replace names is removed, then the directory is created. Raises ConfigError."""
    path = config.out_dir
    if path is None:
        return
    try:
        if config.replace and path.is_dir():
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out: cannot prepare run directory {path}: {exc}") from None


def _cases(profile: CardProfile, plan: Plan) -> tuple[tuple[Case, ...], tuple[Case, ...]]:
    from conformance.cases.catalogue import build_catalogue, check_selection, select

    catalogue = _load("--profile", lambda: build_catalogue(profile))
    _load("--plan", lambda: check_selection(catalogue, plan))
    return tuple(catalogue), tuple(select(catalogue, plan))


def _privacy(values: Mapping[str, Any], product: Product) -> tuple[bool, str]:
    """The privacy setting and why: on for an issued card unless the lab says otherwise."""
    choice = values.get("privacy") or "auto"
    if choice not in PRIVACY:
        raise ConfigError(f"--privacy: {choice!r} is not one of {', '.join(PRIVACY)}")
    if choice != "auto":
        return choice == "on", f"--privacy {choice}"
    if product.sample == "test":
        return False, "auto: the ICS declares a test sample (sample: test)"
    return True, f"auto: the ICS declares {product.sample!r} sample, not a test sample"


def _seal_cert(values: Mapping[str, Any]) -> x509.Certificate:
    """The certificate the trace salt is sealed to, read now so a bad file stops the run."""
    from conformance.report.seal import SealError, load_certificate
    from conformance.resources import DEMO_CERT

    path = values.get("seal_to") or DEMO_CERT
    try:
        return load_certificate(path, os.environ.get(PASSPHRASE_ENV))
    except SealError as exc:
        raise ConfigError(f"--seal-to: {exc}") from None


def build_config(values: Mapping[str, Any]) -> RunConfig:
    """The validated run configuration from option values keyed by `RunOption.key`.

    Missing keys take their defaults. Raises ConfigError (one line) on the first bad input.
    """
    unknown = sorted(set(values) - {o.key for o in RUN_OPTIONS})
    if unknown:
        raise ConfigError(f"not run options: {', '.join(unknown)}")
    card = _check_card_choice(values)
    timeout = _seconds(values, "apdu-timeout", APDU_TIMEOUT_S)
    case_timeout = _seconds(values, "case-timeout", CASE_TIMEOUT_S)
    out_dir = _out_dir(values)
    profile = _load("--profile", lambda: load_profile(values.get("profile")))
    product = _load("--product", lambda: load_product(values.get("product"), profile))
    plan = _load("--plan", lambda: load_plan(values.get("plan")))
    catalogue, cases = _cases(profile, plan)
    key_set = _load("--keys", lambda: load_key_set(values.get("keys") or DEFAULT_TEST_KEYS,
                                                 profile))
    faults = tuple(values.get("fault") or ())
    privacy, privacy_basis = _privacy(values, product)
    seal_cert = _seal_cert(values)
    files = lab_files(values)
    virtual = None
    if card == "virtual":
        virtual = _virtual_card(values, profile, product, key_set, faults)
    return RunConfig(
        profile=profile,
        product=product,
        plan=plan,
        key_set=key_set,
        card=card,
        reader=values.get("reader"),
        apdu_timeout_s=timeout,
        faults=faults,
        virtual_card=virtual,
        out_dir=out_dir,
        replace=bool(values.get("replace")),
        case_timeout_s=case_timeout,
        catalogue=catalogue,
        cases=cases,
        privacy=privacy,
        privacy_basis=privacy_basis,
        seal_cert=seal_cert,
        **files,
    )


def _virtual_card(
    values: Mapping[str, Any],
    profile: CardProfile,
    product: Product,
    key_set: KeySet,
    faults: Iterable[str],
) -> VirtualCard:
    from conformance.card import VirtualCard, check_fault_names, fault_catalogue

    fault_names = _load("--fault", lambda: check_fault_names(faults, fault_catalogue(profile)))
    features = frozenset(product.features)
    other = product.other_application or None
    image = values.get("image")
    if image:
        card = _load("--image", lambda: VirtualCard.from_image(
            image, profile, features=features, faults=fault_names, other_application=other))
        card.shape_timing(_amount(values, "card-latency-ms"), _amount(values, "card-byte-us"))
        return card
    personalization = _load("--personalization", lambda: load_personalization(
        values.get("personalization") or DEFAULT_PERSONALIZATION, profile))
    card = _load("virtual card", lambda: VirtualCard.personalize(
        profile, personalization, key_set, features=features, faults=fault_names,
        other_application=other))
    card.shape_timing(_amount(values, "card-latency-ms"), _amount(values, "card-byte-us"))
    return card


def card_under_test(config: RunConfig) -> Callable[[], Transport]:
    """How to (re)connect to the card the configuration names: the one place that opens it."""
    if config.virtual_card is not None:
        from conformance.transport.inprocess import InProcessTransport

        card = config.virtual_card
        return lambda: InProcessTransport(card, name="rhc virtual card")
    from conformance.transport.pcsc import PcscTransport

    reader, timeout = config.reader, config.apdu_timeout_s
    assert reader is not None  # build_config refuses --card pcsc without a reader
    return lambda: PcscTransport(reader, timeout_s=timeout)


__all__ = [
    "OPTIONS_BY_NAME",
    "PASSPHRASE_ENV",
    "RUN_OPTIONS",
    "ConfigError",
    "RunConfig",
    "RunOption",
    "build_config",
    "card_under_test",
    "claim_out_dir",
    "given",
    "lab_files",
]
