"""CardProfile: the loaded, validated card model and the questions every layer asks of it."""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from pydantic import ValidationError

from conformance.model import codecs
from conformance.model.schema import (
    DFSpec,
    EFSpec,
    Item,
    KeyFamily,
    LayoutField,
    ProfileSpec,
    Structure,
)
from conformance.model.source import ProfileError, load_yaml, pydantic_errors
from conformance.resources import DEFAULT_PROFILE


@dataclass(frozen=True)
class ItemPlace:
    """Where a data item lives: a file, and a record number (1-based) or a byte offset."""

    path: str
    record: int | None = None
    offset: int | None = None
    length: int = 0


class CardProfile:
    """A validated profile with lookups by file path, item number, key family and SW name."""

    def __init__(self, spec: ProfileSpec, source: Path, sha256: str):
        self.spec = spec
        self.source = source
        self.sha256 = sha256

    # -- files -------------------------------------------------------------------------
    @property
    def files(self) -> dict[str, EFSpec]:
        return self.spec.files

    def file(self, path: str) -> EFSpec:
        try:
            return self.spec.files[path]
        except KeyError:
            raise KeyError(f"no file {path} in profile {self.spec.profile.name}") from None

    def df(self, name: str) -> DFSpec:
        return self.spec.dfs[name]

    @property
    def dfs(self) -> dict[str, DFSpec]:
        return self.spec.dfs

    def df_path(self, name: str) -> list[str]:
        """FIDs to select from the MF down to DF `name`, e.g. DF01 -> [DDF1, DF01]."""
        chain: list[str] = []
        while name != "MF":
            df = self.spec.dfs[name]
            chain.insert(0, df.fid)
            name = df.parent
        return chain

    def select_path(self, path: str) -> list[str]:
        """FIDs to select for a DF name or an EF path 'DF/EF'."""
        df_name, _, fid = path.partition("/")
        return self.df_path(df_name) + ([fid] if fid else [])

    def record_count(self, path: str) -> int:
        ef = self.file(path)
        return len(ef.items) if ef.structure is Structure.TLV_RECORDS else ef.records or 0

    def record_length(self, path: str, record: int) -> int:
        ef = self.file(path)
        if ef.structure is Structure.TLV_RECORDS:
            return self.item(ef.items[record - 1]).length + 2
        return ef.record_length or 0

    def file_size(self, path: str) -> int:
        """Size of a transparent file, or of all records of a record file."""
        ef = self.file(path)
        if ef.structure is Structure.TRANSPARENT:
            return ef.size or 0
        return sum(self.record_length(path, r) for r in range(1, self.record_count(path) + 1))

    # -- keys --------------------------------------------------------------------------
    @property
    def keys(self) -> dict[str, KeyFamily]:
        return self.spec.keys

    def key(self, name: str) -> KeyFamily:
        return self.spec.keys[name]

    def key_by_kid(self, df: str, kid: int) -> str | None:
        for name, key in self.spec.keys.items():
            if key.df == df and key.kid == kid:
                return name
        return None

    # -- items -------------------------------------------------------------------------
    def item(self, number: int) -> Item:
        try:
            return self.spec.items[number]
        except KeyError:
            raise KeyError(f"no data item {number} in profile {self.spec.profile.name}") from None

    @property
    def items(self) -> dict[int, Item]:
        return self.spec.items

    def layout(self, name: str) -> list[LayoutField]:
        return self.spec.layouts[name]

    @cached_property
    def places(self) -> dict[int, list[ItemPlace]]:
        """Every place each numbered item occupies (EE/ED items sit in several files)."""
        out: dict[int, list[ItemPlace]] = {}
        for path, ef in self.spec.files.items():
            if ef.structure is Structure.TLV_RECORDS:
                for record, n in enumerate(ef.items, start=1):
                    out.setdefault(n, []).append(
                        ItemPlace(path, record=record, length=self.item(n).length)
                    )
            elif ef.structure is Structure.LINEAR_FIXED:
                for n in ef.items:
                    out.setdefault(n, []).append(ItemPlace(path, length=ef.record_length or 0))
            if ef.layout is not None:
                for f in self.layout(ef.layout):
                    if f.item is not None:
                        out.setdefault(f.item, []).append(
                            ItemPlace(path, offset=f.offset, length=f.length)
                        )
        return out

    def place(self, number: int) -> ItemPlace:
        """The first place of an item (the only one for items 1..63)."""
        try:
            return self.places[number][0]
        except KeyError:
            raise KeyError(f"data item {number} is in no file of the profile") from None

    def tlv_items(self) -> list[int]:
        """Numbers of the items stored as TLV records, in file order."""
        return [
            n
            for ef in self.spec.files.values()
            if ef.structure is Structure.TLV_RECORDS
            for n in ef.items
        ]

    def encode_item(self, number: int, value: str) -> bytes:
        item = self.item(number)
        try:
            return codecs.encode(item.coding, value, item.length)
        except codecs.CodingError as exc:
            raise codecs.CodingError(f"item {number} ({item.zh}): {exc}") from None

    def decode_item(self, number: int, raw: bytes) -> str:
        return codecs.decode(self.item(number).coding, raw)

    def empty_item(self, number: int) -> bytes:
        item = self.item(number)
        return codecs.empty(item.coding, item.length)

    def tlv(self, number: int, value: str) -> bytes:
        """The SIMPLE-TLV record of an item: tag (= item number) ‖ length ‖ value."""
        raw = self.encode_item(number, value)
        return bytes([number, len(raw)]) + raw

    def canonical(self, number: int, value: str) -> str:
        """The value as a card read-back decodes it (e.g. B '00' → all 00 bytes in hex)."""
        return self.decode_item(number, self.encode_item(number, value))

    # -- wire constants ----------------------------------------------------------------
    def sw(self, name: str) -> int:
        """A full status word by meaning, e.g. sw('file_not_found') == 0x6A82."""
        value = self.spec.status_words[name]
        if len(value) != 4:
            raise KeyError(f"status word {name} is a prefix; use sw_prefix")
        return int(value, 16)

    def sw_prefix(self, name: str) -> str:
        """The hex prefix of a status-word family, e.g. '6C', '63C'."""
        return self.spec.status_words[name]

    def sw_text(self, spec: str) -> str:
        """A status word named by meaning, in hex as the catalogue and the report show it.

        'security_not_satisfied' → '6982'; a family known by its prefix is padded with x
        ('wrong_le' → '6Cxx', 'wrong_cryptogram' → '63Cx') or completed by the hex after a
        colon ('wrong_le:08' → '6C08'). KeyError for a name the profile lacks.
        """
        name, _, tail = spec.partition(":")
        try:
            value = self.spec.status_words[name]
        except KeyError:
            raise KeyError(f"no status word {name!r} in profile {self.spec.profile.name}") from None
        text = value + tail.upper() if tail else value.ljust(4, "x")
        if len(text) != 4:
            raise KeyError(f"status word {spec!r} does not make four hex digits ({text})")
        return text

    def command(self, name: str) -> tuple[int, int]:
        cmd = self.spec.commands[name]
        return cmd.cla, cmd.ins

    def command_text(self, name: str) -> str:
        """CLA and INS of a command as hex text: update_record_sm → '04 DC' (reference)."""
        cla, ins = self.command(name)
        return f"{cla:02X} {ins:02X}"

    def command_name(self, name: str, lang: str) -> str:
        """A command's display name in ``lang`` (zh / en), its profile key if it has none."""
        cmd = self.spec.commands[name]
        return getattr(cmd, lang) or name

    def requirement_source(self, key: str) -> str:
        """Where requirement ``key`` comes from: its clause, or the profile's own [choice]."""
        requirement = self.spec.requirements[key]
        info = self.spec.profile
        return requirement.clause or f"profile [choice] {info.name} {info.version}"

    def requirement_of(self, case_id: str) -> str:
        """The first requirement whose case patterns match ``case_id`` ("" if none)."""
        for key, requirement in self.spec.requirements.items():
            if any(fnmatch.fnmatchcase(case_id, p) for p in requirement.cases):
                return key
        return ""

    def classes(self) -> set[int]:
        """Every CLA the card answers."""
        return {c.cla for c in self.spec.commands.values()}

    def instructions(self) -> dict[int, list[str]]:
        """INS → names of the commands that use it, in profile order."""
        out: dict[int, list[str]] = {}
        for name, c in self.spec.commands.items():
            out.setdefault(c.ins, []).append(name)
        return out

    def commands_feature(self, names: Iterable[str]) -> str:
        """Applicability of commands: their feature if every one has one, else "True"."""
        features = {self.spec.commands[n].feature for n in names}
        if None in features or not features:
            return "True"
        return " or ".join(sorted(f for f in features if f))

    def role_item(self, role: str) -> int:
        """The item with a role the host relies on (profile item_roles), e.g. 'city_code'."""
        try:
            return int(getattr(self.spec.item_roles, role))
        except AttributeError:
            raise KeyError(f"no item role {role!r} in profile {self.spec.profile.name}") from None

    def atr(self, card_number_factor: bytes) -> bytes:
        return self.spec.atr.build(card_number_factor)

    def card_number_factor(self, atr: bytes) -> bytes:
        return self.spec.atr.factor(atr)


def load_profile(path: Path | str | None = None) -> CardProfile:
    """Load and validate a profile YAML; ProfileError names file, key and line on failure."""
    doc = load_yaml(path or DEFAULT_PROFILE)
    try:
        spec = ProfileSpec.model_validate(doc.data)
    except ValidationError as exc:
        raise pydantic_errors(doc, exc) from None
    problems = spec.problems()
    if problems:
        raise ProfileError("\n".join(f"{doc.where(where)}: {msg}" for where, msg in problems))
    sha = hashlib.sha256(doc.path.read_bytes()).hexdigest()
    return CardProfile(spec, doc.path, sha)


__all__ = ["DEFAULT_PROFILE", "CardProfile", "ItemPlace", "ProfileError", "load_profile"]
