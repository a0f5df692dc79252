"""The lab's three input files, schema-checked: who tests (lab), what was submitted
(submission), and on what it was tested (bench).

ISO/IEC 17025 §7.8.2–7.8.3 asks a report to name the laboratory and its place of testing, the
people who tested, reviewed and approved, the client, the samples (unique ID, description,
condition, date of receipt), the environmental conditions and the equipment. Those facts come
from files the lab keeps, not from the card: `--lab`, `--submission` and `--bench`
(examples: fixtures/lab-demo.yaml, submission-demo.yaml, bench-demo.yaml). Every key is
checked here, once, before the first APDU; a bad file is one line naming file, line and key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import string
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from conformance.model import ProfileError
from conformance.model.source import load_yaml, pydantic_errors
from conformance.resources import DEMO_LAB

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_NUMBER_FORMAT = "{code}-{date:%Y%m%d}-{seq:04d}"
NUMBER_FIELDS = ("code", "date", "seq")


class LabFileError(ValueError):
    """A lab, submission or bench file is wrong: one line naming file, line and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Person(_Strict):
    name: Text
    title: str = ""
    """The person's function as printed beside the name, e.g. 检测工程师 / Test engineer."""


class People(_Strict):
    tester: Person
    reviewer: Person
    approver: Person


class LabFile(_Strict):
    """fixtures/lab-demo.yaml: the laboratory that issues the report."""

    demo: bool = False
    code: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")]
    """Short name of the lab: in report numbers and the name of its state directory."""
    name_zh: Text
    name_en: Text
    address: Text
    accreditation: Text
    place_of_testing: Text
    timezone: str = DEFAULT_TIMEZONE
    report_number: str = DEFAULT_NUMBER_FORMAT
    """str.format template over code, date (lab-local, a datetime) and seq (the counter)."""
    state_dir: str = ""
    """Where the report-number counter lives (default: $RHC_STATE_DIR or
    ~/.local/state/rhc, then the lab code); relative to the lab file."""
    people: People

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone such as Asia/Shanghai") from None
        return value

    @field_validator("report_number")
    @classmethod
    def _number(cls, value: str) -> str:
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a format template: {exc}") from None
        unknown = sorted(f for f in fields if f not in NUMBER_FIELDS)
        if unknown or "seq" not in fields:
            raise ValueError(f"{value!r} must use {{seq}} and only {', '.join(NUMBER_FIELDS)} "
                             f"(not {', '.join(unknown) or 'without seq'})")
        try:
            value.format(code="X", date=dt.datetime(2000, 1, 1), seq=1)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise ValueError(f"{value!r} cannot be formatted: {exc}") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Party(_Strict):
    name_zh: Text
    name_en: str = ""
    address: Text
    contact: str = ""


class SubmittedProduct(_Strict):
    name: Text
    model: str = ""
    manufacturer: Text
    version: str = ""


class SubmittedSample(_Strict):
    id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    """The lab's unique ID of the sample (样品编号)."""
    description: Text
    condition: Text
    received: dt.date
    """Date of receipt (收样日期), lab-local."""
    chip_serial: str = ""
    """Optional: the chip serial the card reports, to tie the sample to the card tested."""


class SubmissionFile(_Strict):
    """fixtures/submission-demo.yaml: the client's request and the samples received."""

    demo: bool = False
    number: str = ""
    """The lab's reference of the request (委托编号), if it keeps one."""
    client: Party
    product: SubmittedProduct
    samples: Annotated[list[SubmittedSample], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_ids(self) -> SubmissionFile:
        seen: set[str] = set()
        for sample in self.samples:
            if sample.id in seen:
                raise ValueError(f"sample id {sample.id!r} is given twice: IDs must be unique")
            seen.add(sample.id)
        return self


QUANTITIES = {
    "temperature": ("温度", "Temperature"),
    "humidity": ("相对湿度", "Relative humidity"),
}
"""The environmental quantities a bench file records, with their printed names."""


class Reading(_Strict):
    value: float
    unit: Text
    min: float
    max: float

    @model_validator(mode="after")
    def _limits(self) -> Reading:
        if self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}")
        return self

    @property
    def within(self) -> bool:
        return self.min <= self.value <= self.max


class Environment(_Strict):
    temperature: Reading
    humidity: Reading
    measured_at: dt.datetime | None = None
    instrument: str = ""
    """The equipment id (of `equipment`) the readings were taken with."""

    def readings(self) -> list[tuple[str, Reading]]:
        return [(name, getattr(self, name)) for name in QUANTITIES]


EquipmentKind = Literal["reader", "computer", "thermohygrometer", "other"]


class Equipment(_Strict):
    id: Text
    kind: EquipmentKind
    name: Text
    model: Text
    serial: Text
    firmware: str = ""
    calibration_due: dt.date | None = None
    """None: the item needs no calibration (e.g. a computer)."""
    pcsc_reader: str = ""
    """A reader: the name PC/SC reports for it, so the report joins it with the run's reader."""


class BenchFile(_Strict):
    """fixtures/bench-demo.yaml: the environment of the test and the equipment used."""

    demo: bool = False
    environment: Environment
    equipment: Annotated[list[Equipment], Field(min_length=1)]

    @model_validator(mode="after")
    def _references(self) -> BenchFile:
        ids = [e.id for e in self.equipment]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"equipment id {', '.join(twice)} is given twice")
        instrument = self.environment.instrument
        if instrument and instrument not in ids:
            raise ValueError(f"environment.instrument {instrument!r} is none of the "
                             f"equipment ids ({', '.join(ids)})")
        return self


def _load(model: type[BaseModel], path: Path | str, what: str) -> Any:
    try:
        doc = load_yaml(path)
    except ProfileError as exc:
        raise LabFileError(f"{what} {exc}") from None
    if not isinstance(doc.data, dict):
        raise LabFileError(f"{what} {path}: expected a mapping of keys at the top level")
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        lines = str(pydantic_errors(doc, exc)).replace("Value error, ", "").splitlines()
        raise LabFileError(f"{what} " + "; ".join(lines)) from None


def load_lab(path: Path | str | None = None) -> LabFile:
    """The lab file (default: the DEMO lab, fixtures/lab-demo.yaml). Raises LabFileError."""
    return _load(LabFile, path or DEMO_LAB, "lab file")


def load_submission(path: Path | str) -> SubmissionFile:
    return _load(SubmissionFile, path, "submission file")


def load_bench(path: Path | str) -> BenchFile:
    return _load(BenchFile, path, "bench file")


def record(data: BaseModel, path: Path | str) -> dict[str, Any]:
    """What summary.json keeps of a file: its checked content, where it was and its digest."""
    path = Path(path)
    return {
        **data.model_dump(mode="json"),
        "source": str(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }


def from_record(model: type[BaseModel], data: dict[str, Any], what: str) -> Any:
    """A file's content as summary.json recorded it, checked against today's schema."""
    content = {k: v for k, v in data.items() if k not in ("source", "sha256")}
    try:
        return model.model_validate(content)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        message = str(first["msg"]).replace("Value error, ", "")
        raise LabFileError(f"summary.json {what}: key {key}: {message}") from None


def local_time(value: dt.datetime | str, zone: ZoneInfo) -> dt.datetime:
    """A time in the lab's zone (a naive or string time without offset is taken as UTC)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(zone)


def now_in(zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.now(zone).replace(microsecond=0)


__all__ = [
    "QUANTITIES",
    "BenchFile",
    "Equipment",
    "LabFile",
    "LabFileError",
    "SubmissionFile",
    "from_record",
    "load_bench",
    "load_lab",
    "load_submission",
    "local_time",
    "now_in",
    "record",
]
