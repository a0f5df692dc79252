"""The card model as validated pydantic types: what a profile YAML may say, and nothing else.

Unknown keys are errors (a typo in a lab's correction must not pass silently), and the
cross-references (files → keys, items, layouts) are checked once, here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from conformance.model.codecs import Coding


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _hex(value: str, what: str) -> str:
    try:
        bytes.fromhex(value)
    except ValueError as exc:
        raise ValueError(f"{what} {value!r} is not hexadecimal") from exc
    return value.upper()


class ProfileInfo(Strict):
    name: str
    title_zh: str
    title_en: str
    standard: str
    version: str


class AtrField(Strict):
    name: str
    length: int = Field(gt=0)
    value: str | None = None

    @field_validator("value")
    @classmethod
    def _value_hex(cls, v: str | None) -> str | None:
        return None if v is None else _hex(v, "value")


class AtrFactor(Strict):
    atr_offset: int = Field(ge=0)
    length: int = Field(gt=0)


class AtrSpec(Strict):
    ts: int
    t0: int
    interface_bytes: str
    historical: list[AtrField]
    card_number_factor: AtrFactor

    @field_validator("interface_bytes")
    @classmethod
    def _iface_hex(cls, v: str) -> str:
        return _hex(v, "interface_bytes")

    @property
    def historical_length(self) -> int:
        return sum(f.length for f in self.historical)

    @model_validator(mode="after")
    def _t0_matches(self) -> AtrSpec:
        if self.t0 & 0x0F != self.historical_length:
            raise ValueError(
                f"T0 low nibble {self.t0 & 0x0F} != {self.historical_length} historical bytes"
            )
        expected = bin(self.t0 >> 4).count("1")
        if len(bytes.fromhex(self.interface_bytes)) != expected:
            raise ValueError(f"T0 announces {expected} interface bytes in Y1")
        return self

    def build(self, card_number_factor: bytes) -> bytes:
        """The ATR of a card with this card-number factor."""
        hist = b""
        for f in self.historical:
            if f.name == "card_number_factor":
                hist += card_number_factor
            else:
                hist += bytes.fromhex(f.value or "00" * f.length)
        return bytes([self.ts, self.t0]) + bytes.fromhex(self.interface_bytes) + hist

    def factor(self, atr: bytes) -> bytes:
        f = self.card_number_factor
        return atr[f.atr_offset : f.atr_offset + f.length]


class Secret(Strict):
    """Which fields of one command's exchange the evidence masks (transport/redact.py).

    ``any_class``: the INS is masked in every class, because a case that probes class handling
    (e.g. EXTERNAL AUTHENTICATE with a wrong CLA) still carries a real cryptogram.
    ``keep_tail`` trailing data bytes stay visible, only when the data field has exactly
    ``keep_tail_if_length`` bytes (in a field of the wrong length no byte can be trusted not
    to belong to the secret).
    """

    data: bool = False
    response: bool = False
    any_class: bool = False
    keep_tail: int = Field(default=0, ge=0)
    keep_tail_if_length: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _something(self) -> Secret:
        if not (self.data or self.response):
            raise ValueError("a secret names data, response or both")
        if self.keep_tail and (not self.data or self.keep_tail_if_length is None):
            raise ValueError("keep_tail needs data: true and keep_tail_if_length")
        return self


class Command(Strict):
    """One command of the profile. ``personal``: which field of its exchange carries data items
    of the card (``data`` for writes, ``response`` for reads): with privacy on, the evidence masks
    what in it is personal (transport/redact.py)."""

    zh: str = ""  # display name in Chinese (擦除记录), for titles and reasons
    en: str = ""  # display name in English (ERASE RECORD)
    cla: int = Field(ge=0, le=255)
    ins: int = Field(ge=0, le=255)
    feature: str | None = None
    secret: Secret | None = None
    personal: Literal["data", "response"] | None = None


class SamCommand(Strict):
    """A command a terminal sends to its SAM (PSAM), not to the card: listed for redaction."""

    cla: int = Field(ge=0, le=255)
    ins: int = Field(ge=0, le=255)
    secret: Secret


class PinSpec(Strict):
    length_bytes: int
    tries: int = Field(gt=0, le=15)


class SecuritySpec(Strict):
    challenge_length: int
    retry_limit: int = Field(gt=0, le=15)
    ext_auth_trailer: int
    max_short_le: int
    pin: PinSpec


class Feature(Strict):
    zh: str
    en: str


class KeyUse(StrEnum):
    READ = "read"
    UPDATE = "update"
    SM = "sm"


class KeyFamily(Strict):
    df: str
    kid: int | None
    use: KeyUse
    level: Literal[1, 2]


Fid = Annotated[str, StringConstraints(pattern=r"^[0-9A-Fa-f]{4}$")]


class DFSpec(Strict):
    fid: Fid
    parent: str
    sm_key: str
    zh: str
    en: str


class Structure(StrEnum):
    TLV_RECORDS = "tlv_records"
    CYCLIC = "cyclic"
    LINEAR_FIXED = "linear_fixed"
    TRANSPARENT = "transparent"


class UpdateMode(StrEnum):
    SM = "sm"
    PLAIN = "plain"


class Access(Strict):
    read: str
    update: str | None = None
    update_mode: UpdateMode | None = None
    mark: str | None = None
    erase: str | None = None


class EFSpec(Strict):
    fid: Fid
    structure: Structure
    zh: str
    en: str
    access: Access
    items: list[int] = []
    layout: str | None = None
    records: int | None = Field(default=None, gt=0)
    record_length: int | None = Field(default=None, gt=0)
    size: int | None = Field(default=None, gt=0)
    read_by_tag: bool = False
    index_of: list[str] = []

    @model_validator(mode="after")
    def _shape(self) -> EFSpec:
        s = self.structure
        if s is Structure.TRANSPARENT and (self.size is None or self.layout is None):
            raise ValueError("a transparent file needs size and layout")
        if s in (Structure.CYCLIC, Structure.LINEAR_FIXED) and (
            self.records is None or self.record_length is None
        ):
            raise ValueError(f"a {s} file needs records and record_length")
        if s is Structure.TLV_RECORDS and not self.items:
            raise ValueError("a tlv_records file needs items")
        if s is Structure.CYCLIC and self.layout is None:
            raise ValueError("a cyclic file needs a layout")
        return self


class Item(Strict):
    name: str
    zh: str
    en: str
    coding: Coding
    length: int = Field(gt=0, le=255)
    rules: list[str] = []
    personal: bool = False  # data about the cardholder: masked in evidence when privacy is on


class CodeTable(Strict):
    ref: str
    values: list[str] | None = None
    pattern: str | None = None

    @model_validator(mode="after")
    def _one(self) -> CodeTable:
        if (self.values is None) == (self.pattern is None):
            raise ValueError("a code table has either values or a pattern")
        return self


class Consistency(Strict):
    id: str
    kind: Literal["equal", "equal_when", "birth_date_in_id", "not_before"]
    items: list[int] = Field(min_length=2, max_length=2)
    ref: str
    when: dict[str, int | str] | None = None


class LayoutField(Strict):
    item: int | None
    offset: int = Field(ge=0)
    length: int = Field(gt=0)
    coding: Coding
    name: str | None = None
    role: Literal["signature", "signer_key"] | None = None


VALUE_RULES = {"date", "id_number", "digits", "phone"}

class ItemRoles(Strict):
    """Items the host relies on by meaning, named by number in the profile."""

    city_code: int  # its first 2 BCD bytes make CityCode8 (key diversification)
    chip_serial: int  # the sample's identity in the report


class Situation(Strict):
    """A situation whose status word the text leaves open: the expected one and the others a
    reading of the text also allows (each accepted, recorded as an observation)."""

    sw: str  # the status word name the reference profile answers
    alternatives: list[str] = []  # other status word names the text admits
    any_error: bool = False  # the text names no status word: any error (not 9000) is accepted
    rests_on: str  # the sentence of REFERENCE.md it rests on


NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class Requirement(Strict):
    """One requirement of the test basis: the sentence, in both languages, that cases test.

    ``clause``: the clause it comes from where the evidence names one ("WS/T 543.4 §4");
    without one the requirement is the profile's own [choice]. ``cases``: the case ID
    patterns (fnmatch) that test it."""

    zh: NonEmpty
    en: NonEmpty
    clause: NonEmpty | None = None
    cases: list[NonEmpty] = []


class ProfileSpec(Strict):
    """The whole profile file."""

    profile: ProfileInfo
    atr: AtrSpec
    commands: dict[str, Command]
    sam_commands: dict[str, SamCommand] = {}
    status_words: dict[str, str]
    situations: dict[str, Situation] = {}
    choices: dict[str, str] = {}  # [choice] name -> the place of REFERENCE.md that marks it
    security: SecuritySpec
    features: dict[str, Feature]
    keys: dict[str, KeyFamily]
    dfs: dict[str, DFSpec]
    files: dict[str, EFSpec]
    items: dict[int, Item]
    item_roles: ItemRoles
    code_tables: dict[str, CodeTable]
    consistency: list[Consistency]
    layouts: dict[str, list[LayoutField]]
    requirements: dict[str, Requirement] = {}

    @field_validator("status_words")
    @classmethod
    def _sw_hex(cls, v: dict[str, str]) -> dict[str, str]:
        return {k: _hex(s if len(s) % 2 == 0 else s + "0", k)[: len(s)] for k, s in v.items()}

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Cross-references that do not resolve, as (key path, message)."""
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for name, key in self.keys.items():
            if key.df not in self.dfs:
                problems.append((("keys", name, "df"), f"{key.df} is not a DF of the profile"))
        for name, df in self.dfs.items():
            seen, parent = {name}, df.parent
            while parent in self.dfs and parent not in seen:
                seen.add(parent)
                parent = self.dfs[parent].parent
            if parent in seen:
                problems.append((("dfs", name, "parent"), "the DF tree has a cycle"))
            if df.parent != "MF" and df.parent not in self.dfs:
                problems.append((("dfs", name, "parent"), f"{df.parent} is not a DF"))
            if df.sm_key not in self.keys:
                problems.append((("dfs", name, "sm_key"), f"{df.sm_key} is not a key family"))
        for path, ef in self.files.items():
            df_name, _, fid = path.partition("/")
            if df_name not in self.dfs or fid != ef.fid:
                problems.append((("files", path), "must be <DF>/<fid> of a known DF"))
            for right in ("read", "update", "mark", "erase"):
                key = getattr(ef.access, right)
                if key is None or key == "free":
                    continue
                family = self.keys.get(key)
                if family is None:
                    problems.append((("files", path, "access", right), f"unknown key family {key}"))
                elif family.df != df_name:
                    problems.append(
                        (("files", path, "access", right), f"{key} belongs to {family.df}")
                    )
            for n in ef.items:
                if n not in self.items:
                    problems.append((("files", path, "items"), f"item {n} is not defined"))
            if ef.layout is not None:
                fields = self.layouts.get(ef.layout)
                if fields is None:
                    problems.append((("files", path, "layout"), f"unknown layout {ef.layout}"))
                else:
                    total = ef.size if ef.structure is Structure.TRANSPARENT else ef.record_length
                    end = max((f.offset + f.length for f in fields), default=0)
                    if end != total:
                        problems.append(
                            (("files", path), f"layout {ef.layout} ends at {end}, not {total}")
                        )
        for name, fields in self.layouts.items():
            offset = 0
            for f in sorted(fields, key=lambda f: f.offset):
                if f.offset != offset:
                    problems.append(
                        (("layouts", name), f"field at {f.offset} leaves a gap or overlap")
                    )
                offset = f.offset + f.length
        for n, item in self.items.items():
            for rule in item.rules:
                kind, _, arg = rule.partition(":")
                if kind == "code" and arg not in self.code_tables:
                    problems.append((("items", n, "rules"), f"unknown code table {arg}"))
                elif kind != "code" and rule not in VALUE_RULES:
                    problems.append((("items", n, "rules"), f"unknown rule {rule}"))
        for role, n in self.item_roles.model_dump().items():
            if n not in self.items:
                problems.append((("item_roles", role), f"item {n} is not defined"))
            elif not any(
                n in ef.items for ef in self.files.values() if ef.structure is Structure.TLV_RECORDS
            ):
                problems.append((("item_roles", role), f"item {n} is not a TLV record item"))
        missing = {"ok", "bytes_available", "wrong_le"} - set(self.status_words)
        if missing:
            problems.append((("status_words",), f"missing {', '.join(sorted(missing))}"))
        for name, situation in self.situations.items():
            for sw in (situation.sw, *situation.alternatives):
                if sw not in self.status_words:
                    problems.append((("situations", name), f"{sw} is not a status word"))
        if "get_response" not in self.commands:
            problems.append((("commands",), "missing get_response (T=0 needs it)"))
        for rule in self.consistency:
            for n in rule.items:
                if n not in self.items:
                    problems.append((("consistency",), f"{rule.id}: item {n} is not defined"))
        return problems
