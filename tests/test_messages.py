"""Bilingual reasons: the message table, and that shipped case code only writes templated
messages (a bare English string would leave the Chinese report with English text)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import conformance
from conformance.messages import Msg, as_msg, load_messages, msg, placeholders
from conformance.model.source import ProfileError

PACKAGE = Path(conformance.__file__).parent
SHIPPED = sorted([*PACKAGE.glob("cases/*.py"), *PACKAGE.glob("host/*.py")])

MESSAGE_ARG = {  # callable name → position of its message argument
    "fail": 0, "inconclusive": 0, "observe": 0, "step": 0, "expecting": 0,
    "precondition": 0, "restoring": 0, "check": 1,
    "CaseFailure": 0, "Inconclusive": 0, "HostError": 0, "AuthenticationWithheld": 0,
    "CodingError": 0,
}
"""The framework's message-taking calls; functions of the case modules that take a ``what``
parameter are added to it from their definitions."""


def _is_text(node: ast.expr) -> bool:
    """A literal or f-string (or a concatenation of them): text no template produced."""
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_text(node.left) or _is_text(node.right)
    return False


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _what_takers(trees: list[ast.Module]) -> dict[str, int]:
    out = dict(MESSAGE_ARG)
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names = [a.arg for a in node.args.args]
                if "what" in names:
                    skip = 1 if names and names[0] in ("self", "cls") else 0
                    out.setdefault(node.name, names.index("what") - skip)
    return out


def bare_messages() -> list[str]:
    """Every shipped call site that passes plain text where a message is expected."""
    trees = {path: ast.parse(path.read_text("utf-8")) for path in SHIPPED}
    takers = _what_takers(list(trees.values()))
    found = []
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _name(node.func)
            args = [kw.value for kw in node.keywords if kw.arg in ("what", "message", "text")]
            if name in takers and len(node.args) > takers[name] >= 0:
                args.append(node.args[takers[name]])
            for arg in args:
                if _is_text(arg):
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {name}")
    return found


def test_shipped_case_code_writes_only_templated_messages() -> None:
    assert bare_messages() == []


def test_every_template_names_the_same_values_in_both_languages() -> None:
    for key, template in load_messages().items():
        zh = {n.removesuffix("_zh") for n in placeholders(template.zh)}
        en = {n.removesuffix("_en") for n in placeholders(template.en)}
        assert zh == en, key
        words = re.sub(r"\{[^}]*\}|\b[A-Z0-9]+\b", "", template.en)
        assert template.zh != template.en or not re.search(r"[a-z]{2,}", words), key


def test_every_key_the_code_names_is_in_the_table() -> None:
    table = load_messages()
    missing = []
    for path in [*SHIPPED, *PACKAGE.glob("*.py"), *PACKAGE.glob("model/*.py")]:
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if (isinstance(node, ast.Call) and _name(node.func) == "msg" and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and node.args[0].value not in table):
                missing.append(f"{path.name}:{node.lineno} {node.args[0].value}")
    assert missing == []


def test_a_message_renders_nested_messages_in_its_own_language() -> None:
    what = msg("act.read_record", n=3, path="DF01/EF05")
    message = msg("sw.expected", what=what, expected="9000 (ok)", sw="6982")
    assert message.en == "READ RECORD 3 of DF01/EF05: expected 9000 (ok), card answered 6982"
    assert message.zh == "读记录 3（DF01/EF05）：应为 9000 (ok)，卡片应答 6982"
    assert message.templated and not as_msg("plain").templated
    assert str(message) == message.en


def test_a_message_missing_a_value_or_key_is_a_harness_error() -> None:
    with pytest.raises(KeyError, match="needs sw"):
        msg("sw.expected", what="x", expected="9000")
    with pytest.raises(KeyError, match="no message"):
        msg("no.such.key")
    assert isinstance(as_msg("text"), Msg)


def test_a_template_whose_languages_disagree_is_a_load_error(tmp_path: Path) -> None:
    bad = tmp_path / "messages.yaml"
    bad.write_text('a.key:\n  zh: "{x}"\n  en: "{y}"\n', encoding="utf-8")
    with pytest.raises(ProfileError, match=r"messages.yaml:1: key a.key: .*different placeholders"):
        load_messages(bad)
    bad.write_text('a.key:\n  zh: "中文"\n', encoding="utf-8")
    with pytest.raises(ProfileError, match=r"a\.key\.en: Field required"):
        load_messages(bad)
