"""Bilingual messages: a key of the message table (profiles/messages.yaml) and its parameters.

A reason, an observation or a step description is a :class:`Msg`; it is rendered into Chinese
and English from the same template with the same measured values, so the two never disagree.
A parameter may itself be a Msg (rendered in the same language). Plain text (``Msg`` with
no key) is still accepted from case code that predates the table, and then reads the same in
both languages; tests flag it for shipped cases.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, RootModel, ValidationError, model_validator

from conformance.resources import PROFILES_DIR

MESSAGES_PATH = PROFILES_DIR / "messages.yaml"
LANGS = ("zh", "en")


class Template(BaseModel):
    """One message in both languages, with the same {placeholders}."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    zh: str
    en: str

    @model_validator(mode="after")
    def _same_fields(self) -> Template:
        zh, en = _neutral(placeholders(self.zh)), _neutral(placeholders(self.en))
        if zh != en:
            raise ValueError(f"zh and en name different placeholders ({sorted(zh ^ en)})")
        return self


class MessageTable(RootModel[dict[str, Template]]):
    """The whole message table: key → template."""


def _neutral(names: set[str]) -> set[str]:
    """Placeholder names without a language suffix (``meaning_zh`` / ``meaning_en`` are one
    value given in each language)."""
    return {n.removesuffix("_zh").removesuffix("_en") for n in names}


def placeholders(text: str) -> set[str]:
    """The {names} a template fills (format specs and conversions are not allowed)."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


@cache
def load_messages(path: Path = MESSAGES_PATH) -> dict[str, Template]:
    """The message table (ProfileError, naming file, key and line, when it is malformed)."""
    from conformance.model.source import load_yaml, pydantic_errors

    doc = load_yaml(path)
    try:
        return MessageTable.model_validate(doc.data).root
    except ValidationError as exc:
        raise pydantic_errors(doc, exc) from None


@dataclass(frozen=True)
class Msg:
    """A message: template ``key`` with ``params``; ``key == ""`` is untemplated ``text``."""

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)
    text: str = ""

    def render(self, lang: str) -> str:
        if not self.key:
            return self.text
        template = getattr(load_messages()[self.key], lang)
        values = {k: _value(v, lang) for k, v in self.params.items()}
        return template.format_map(values)

    @property
    def en(self) -> str:
        return self.render("en")

    @property
    def zh(self) -> str:
        return self.render("zh")

    @property
    def templated(self) -> bool:
        """Whether this message and every message inside it come from the table."""
        return bool(self.key) and all(
            v.templated for v in self.params.values() if isinstance(v, Msg)
        )

    def __str__(self) -> str:
        return self.en


def _value(value: Any, lang: str) -> str:
    if isinstance(value, Msg):
        return value.render(lang)
    if isinstance(value, list | tuple):  # a list of messages reads as clauses
        clauses = any(isinstance(v, Msg) for v in value)
        separator = {"zh": ("、", "；"), "en": (", ", "; ")}[lang][clauses]
        return separator.join(_value(v, lang) for v in value)
    return str(value)


def msg(key: str, /, **params: Any) -> Msg:
    """A message of the table; KeyError for a key the table lacks (a harness mistake)."""
    table = load_messages()
    if key not in table:
        raise KeyError(f"no message {key!r} in {MESSAGES_PATH.name}")
    missing = placeholders(table[key].en) | placeholders(table[key].zh)
    missing -= set(params)
    if missing:
        raise KeyError(f"message {key!r} needs {', '.join(sorted(missing))}")
    return Msg(key, dict(params))


def as_msg(value: str | Msg) -> Msg:
    """A Msg for a message given either way (plain text stays untemplated)."""
    return value if isinstance(value, Msg) else Msg("", {}, str(value))


class Bilingual(Exception):
    """An exception whose message is a Msg: ``str()`` is English, ``msg`` keeps both languages.

    ``expected`` / ``measured``: short display strings of what was required and what the card
    gave ("" when not applicable), for the report's columns."""

    def __init__(self, message: str | Msg = "", *, expected: str = "", measured: str = ""):
        self.msg = as_msg(message)
        self.expected = expected
        self.measured = measured
        super().__init__(self.msg.en)


def msg_of(exc: BaseException) -> Msg:
    """The bilingual message of any exception (plain ``str(exc)`` when it carries none)."""
    carried = getattr(exc, "msg", None)
    if isinstance(carried, Msg):
        return carried
    return as_msg(str(exc))
