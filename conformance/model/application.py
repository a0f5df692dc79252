"""The other application of a co-branded card (REFERENCE.md §6 ``co_branded``), as YAML data.

A co-branded card carries, beside the health DDF1, a financial or social-security application
selected by name (a PBOC payment system environment and its ADF). Its AIDs, FCI, files,
records, data objects and keys live in ``profiles/applications/*.yaml``; the virtual card is
built from it and the COB cases judge a card against it (a product's ICS names it with
``other_application``). Records and FCI are BER-TLV, encoded by :mod:`pyemv.tlv`.
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path
from typing import Literal

import pyemv.tlv
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from conformance import resources
from conformance.model.source import ProfileError, load_yaml, pydantic_errors

__all__ = [
    "APPLICATIONS_DIR",
    "AppFile",
    "OtherApplication",
    "load_application",
    "load_application_keys",
    "sfi_p2",
    "tlv_items",
]

APPLICATIONS_DIR = resources.PROFILES_DIR / "applications"
RECORD_TEMPLATE = "70"
"""EMV record template: every record of the other application is 70 L (data objects)."""


def sfi_p2(sfi: int) -> int:
    """READ / UPDATE RECORD P2 addressing record P1 of file ``sfi`` (ISO/IEC 7816-4)."""
    return (sfi << 3) | 0x04


def tlv_items(data: bytes) -> list[tuple[str, bytes]]:
    """The BER-TLV data objects of ``data`` at one level, in order, duplicates kept (a PSE
    directory record may hold several 61 entries); ValueError when it is not BER-TLV."""
    out: list[tuple[str, bytes]] = []
    i, n = 0, len(data)
    while i < n:
        if data[i] in (0x00, 0xFF):  # padding between data objects (EMV Book 3 §5.2)
            i += 1
            continue
        start = i
        i += 1
        if data[start] & 0x1F == 0x1F:
            while i < n and data[i] & 0x80:
                i += 1
            i += 1
        if i >= n:
            raise ValueError(f"data object at offset {start} has no length")
        length = data[i]
        i += 1
        if length & 0x80:
            size = length & 0x7F
            if not 1 <= size <= 2 or i + size > n:
                raise ValueError(f"data object at offset {start}: bad length field")
            length = int.from_bytes(data[i : i + size], "big")
            i += size
        if i + length > n:
            raise ValueError(f"data object at offset {start} runs past the end ({length} bytes)")
        out.append((_tag_hex(data, start), data[i : i + length]))
        i += length
    return out


def _tag_hex(data: bytes, start: int) -> str:
    end = start + 1
    if data[start] & 0x1F == 0x1F:
        while data[end] & 0x80:
            end += 1
        end += 1
    return data[start:end].hex().upper()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _hex(value: str) -> str:
    try:
        bytes.fromhex(value)
    except ValueError:
        raise ValueError(f"{value!r} is not hex") from None
    return value.upper()


class Command(_Strict):
    cla: int = Field(ge=0, le=0xFF)
    ins: int = Field(ge=0, le=0xFF)


class Pse(_Strict):
    """The payment system environment: its DF name and the SFI of its directory."""

    name: str
    directory_sfi: int = Field(ge=1, le=30)
    fci: dict[str, str] = {}

    _fci = field_validator("fci")(lambda v: {_hex(k): _hex(x) for k, x in v.items()})


class AppKey(_Strict):
    kid: int = Field(ge=0, le=0xFF)
    algorithm: Literal["3DES"]
    retry_limit: int = Field(ge=1, le=15)


class AppFile(_Strict):
    """A record file of the ADF, addressed by SFI; records are data objects (tag → hex)."""

    sfi: int = Field(ge=1, le=30)
    zh: str
    en: str
    update: str | None = None
    """The key whose right or MAC updates the file; None: read-only."""
    records: list[dict[str, str]]

    _records = field_validator("records")(
        lambda v: [{_hex(k): _hex(x) for k, x in r.items()} for r in v])

    def encoded(self) -> list[bytes]:
        """Each record as the card returns it: 70 L (the data objects in order)."""
        return [pyemv.tlv.encode({RECORD_TEMPLATE: {t: bytes.fromhex(v) for t, v in r.items()}})
                for r in self.records]


class Adf(_Strict):
    aid: str
    label: str
    priority: int = Field(ge=1, le=15)
    fci: dict[str, str] = {}
    data_objects: dict[str, str] = {}
    keys: dict[str, AppKey]
    files: list[AppFile]

    _aid = field_validator("aid")(lambda v: _hex(v))
    _maps = field_validator("fci", "data_objects")(
        lambda v: {_hex(k): _hex(x) for k, x in v.items()})


class OtherApplication(_Strict):
    """The whole application profile (see profiles/applications/pboc-pse.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True, ignored_types=(cached_property,))

    name: str
    kind: Literal["financial", "social_security"]
    title_zh: str
    title_en: str
    standard: str
    commands: dict[str, Command]
    select_by_name_p1: int
    challenge_length: int = Field(ge=4, le=16)
    mac_length: int = Field(ge=4, le=8)
    pse: Pse
    adf: Adf
    test_keys: str
    source: str = ""
    sha256: str = ""

    def command(self, name: str) -> tuple[int, int]:
        c = self.commands[name]
        return c.cla, c.ins

    @property
    def aid(self) -> bytes:
        return bytes.fromhex(self.adf.aid)

    @property
    def pse_name(self) -> bytes:
        return self.pse.name.encode("ascii")

    def file(self, sfi: int) -> AppFile:
        found = [f for f in self.adf.files if f.sfi == sfi]
        if not found:
            raise KeyError(f"application {self.name} has no file with SFI {sfi}")
        return found[0]

    @property
    def protected_files(self) -> list[AppFile]:
        """The files only the application's own key updates."""
        return [f for f in self.adf.files if f.update is not None]

    def pse_fci(self) -> bytes:
        """6F (84 PSE name, A5 (88 directory SFI, the pse fci entries))."""
        a5 = {"88": bytes([self.pse.directory_sfi])}
        a5.update({t: bytes.fromhex(v) for t, v in self.pse.fci.items()})
        return pyemv.tlv.encode({"6F": {"84": self.pse_name, "A5": a5}})

    def adf_fci(self) -> bytes:
        """6F (84 AID, A5 (50 label, 87 priority, the adf fci entries))."""
        a5 = {"50": self.adf.label.encode("ascii"), "87": bytes([self.adf.priority])}
        a5.update({t: bytes.fromhex(v) for t, v in self.adf.fci.items()})
        return pyemv.tlv.encode({"6F": {"84": self.aid, "A5": a5}})

    def directory_records(self) -> list[bytes]:
        """The PSE directory: one record 70 (61 (4F AID, 50 label, 87 priority))."""
        entry = {"4F": self.aid, "50": self.adf.label.encode("ascii"),
                 "87": bytes([self.adf.priority])}
        return [pyemv.tlv.encode({RECORD_TEMPLATE: {"61": entry}})]

    @property
    def test_keys_path(self) -> Path:
        return resources.FIXTURES_DIR / self.test_keys


def load_application(name_or_path: str | Path) -> OtherApplication:
    """An application profile by the name of a shipped one (``pboc-pse``) or by path."""
    path = resources.named(APPLICATIONS_DIR, str(name_or_path))
    if path is None:
        known = ", ".join(resources.names(APPLICATIONS_DIR))
        raise ProfileError(f"no application profile named {name_or_path!r} (known: {known})")
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise ProfileError(f"{path}: must be a mapping")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    try:
        app = OtherApplication.model_validate({**doc.data, "source": str(path), "sha256": sha})
    except ValidationError as exc:
        raise pydantic_errors(doc, exc) from None
    for f in app.adf.files:
        if f.update is not None and f.update not in app.adf.keys:
            raise ProfileError(f"{doc.where(('adf', 'files'))}: SFI {f.sfi} is updated by "
                               f"{f.update}, not a key of the application")
    return app


def load_application_keys(app: OtherApplication) -> dict[str, bytes]:
    """The test master keys of the application (its ``test_keys`` fixture): one 16-byte
    3DES key per key of the ADF, nothing else."""
    doc = load_yaml(app.test_keys_path)
    data = doc.data if isinstance(doc.data, dict) else {}
    masters = data.get("master_keys")
    if not isinstance(masters, dict) or set(masters) != set(app.adf.keys):
        raise ProfileError(f"{doc.where(('master_keys',))}: must hold exactly the keys "
                           f"{sorted(app.adf.keys)} of application {app.name}")
    keys: dict[str, bytes] = {}
    for name, value in masters.items():
        try:
            raw = bytes.fromhex(str(value))
        except ValueError:
            raw = b""
        if len(raw) != 16:
            raise ProfileError(f"{doc.where(('master_keys', name))}: must be 16 bytes of hex")
        keys[name] = raw
    if data.get("algorithm") != "3DES":
        raise ProfileError(f"{doc.where(('algorithm',))}: must be 3DES")
    return keys
