"""Card samples in readers as rows of the matrix: ``--cards reader:PATTERN``.

A pair is judged on the APDUs the card received and its content before and after, which
only a card the suite serves gives. So the suite reads the sample in its reader through
PC/SC with the test keys (the path of `rhc card dump --reader`), writes what it read as a
personalization (the card number factor of its ATR and every data item), and the row is the
reference product's virtual card personalized with it. The terminals meet the sample's data,
served by the suite's reference card OS, not the sample's own chip (`rhc run --reader`
judges that); the row's title and note say so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from conformance.card.vpcd import vpcd_port
from conformance.config import ConfigError
from conformance.defaults import VPCD_PORT
from conformance.interop.matrix import CardEntry
from conformance.interop.variants import CardVariant
from conformance.messages import Msg, msg
from conformance.model.codecs import CodingError
from conformance.model.profile import CardProfile

__all__ = ["READER_PREFIX", "SAMPLES_DIR", "ReaderSample", "bench_ports", "is_reader",
           "read_sample", "sample_entry", "sample_path", "write_sample"]

READER_PREFIX = "reader:"
SAMPLES_DIR = "samples"
"""Where, in the matrix directory, the samples' personalizations are written."""
PRODUCT = "reference"
"""The product whose virtual card serves a sample's data."""
NOT_READ = "pin"
"""The feature a sample's copy lacks: a PIN cannot be read off a card."""

def is_reader(value: str) -> bool:
    """A --cards entry that names a reader, not a card variant."""
    return value.startswith(READER_PREFIX)


@dataclass
class ReaderSample:
    """What the suite read of the card in one reader."""

    pattern: str
    reader: str
    factor: bytes
    items: dict[int, str]

    @property
    def name(self) -> str:
        """The row's name (and its pairs' directories): reader-<the reader's name, slugged>."""
        return "reader-" + (re.sub(r"[^0-9A-Za-z]+", "-", self.reader).strip("-").lower()
                            or "unnamed")

    def note(self) -> Msg:
        return msg("interop.reader.note", card=self.name, reader=self.reader,
                   factor=self.factor.hex().upper(), items=len(self.items))

    def personalization(self) -> dict[str, Any]:
        """The personalization file's content: what was read, nothing added."""
        return {"card_number_factor": self.factor.hex().upper(),
                "items": dict(sorted(self.items.items()))}


def read_sample(value: str, profile: CardProfile, profile_path: str | None = None) -> ReaderSample:
    """Read the card in the reader ``reader:PATTERN`` names (exact name or regular
    expression) with the test keys; ConfigError (one line) when it cannot be read or its
    data does not fit the reference card."""
    from conformance.cli import read_card_sample
    from conformance.config import build_config

    pattern = value.removeprefix(READER_PREFIX).strip()
    try:
        if not pattern:
            raise ValueError("no reader named after reader:")
        config = build_config({"card": "pcsc", "reader": pattern, "profile": profile_path})
        reader, factor, items = read_card_sample(config)
    except Exception as exc:  # missing, empty, unreadable: one line, before any pair runs
        error = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise ConfigError(msg("interop.reader.unreadable", pattern=pattern,
                              error=error).en) from None
    for number, text in items.items():
        try:
            profile.encode_item(number, text)
        except CodingError as exc:
            raise ConfigError(msg("interop.reader.bad_item", pattern=pattern, item=number,
                                  error=str(exc)).en) from None
    return ReaderSample(pattern, reader, factor, items)


def sample_path(sample: ReaderSample, out: Path) -> Path:
    """Where the sample's personalization is written: ``out/samples/NAME.yaml``."""
    return (out / SAMPLES_DIR / f"{sample.name}.yaml").resolve()


def sample_entry(sample: ReaderSample, out: Path, profile: CardProfile) -> CardEntry:
    """The row of a sample: the reference product's virtual card personalized with the data
    read (written by :func:`write_sample` once the matrix directory is made)."""
    title, note = msg("interop.reader.title", reader=sample.reader), sample.note()
    probe = CardVariant(title_zh=title.zh, title_en=title.en, product=PRODUCT)
    # no card gives its PIN away: the served copy has every feature of the ICS but the PIN
    features = [f for f in probe.ics(profile).features if f != NOT_READ]
    variant = CardVariant(title_zh=title.zh, title_en=title.en, product=PRODUCT,
                          personalization=str(sample_path(sample, out)), name=sample.name,
                          features=features, notes=note.en)
    return CardEntry(sample.name, title.zh, title.en, PRODUCT, variant.ics(profile).name,
                     variant.test_card(profile), str(sample_path(sample, out)),
                     reader=sample.reader, note_zh=note.zh, note_en=note.en)


def write_sample(sample: ReaderSample, out: Path) -> Path:
    """Write the sample's personalization (what was read, nothing added) into the matrix."""
    path = sample_path(sample, out)
    path.parent.mkdir(parents=True, exist_ok=True)
    head = (f"# The data of the card in reader {sample.reader!r}, read by rhc interop run\n"
            "# (the card number factor of its ATR and every data item).\n")
    path.write_text(head + yaml.safe_dump(sample.personalization(), allow_unicode=True,
                                          sort_keys=False), encoding="utf-8")
    return path


def bench_ports(readers: int, step: int, samples: list[ReaderSample]) -> list[int]:
    """The base ports of the rows' benches (``step`` ports each, from VPCD_PORT, within
    ``readers`` readers), leaving out any a card sample sits in; ConfigError if none is left."""
    taken = {p for s in samples if (p := vpcd_port(s.reader)) is not None}
    bases = [VPCD_PORT + step * i for i in range(max(1, readers // step))]
    free = [b for b in bases if not taken & set(range(b, b + step))]
    if not free:
        raise ConfigError(msg("interop.reader.no_ports", readers=readers, first=VPCD_PORT,
                              last=VPCD_PORT + readers - 1,
                              samples=", ".join(s.reader for s in samples)).en)
    return free
