"""YAML loading that remembers where each key came from, so errors can name file, key and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class ProfileError(ValueError):
    """A profile, personalization or key file is malformed; the message names file, key, line."""


KeyPath = tuple[str | int, ...]


def _construct(
    node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], loader: yaml.SafeLoader
) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, loader, path)
            if not isinstance(key, (str, int)):
                raise ValueError(f"{key_node.start_mark.line + 1}: a key must be a scalar")
            if key in out:
                raise ValueError(f"{key_node.start_mark.line + 1}: duplicate key {key!r}")
            out[key] = _construct(value_node, (*path, key), lines, loader)
            lines[(*path, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(c, (*path, i), lines, loader) for i, c in enumerate(node.value)]
    return _scalar(node, loader, path)


def _scalar(node: yaml.Node, loader: yaml.SafeLoader, path: KeyPath) -> Any:
    try:
        return loader.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as exc:
        dotted = ".".join(str(k) for k in path) or "(top level)"
        raise ValueError(
            f"{node.start_mark.line + 1}: key {dotted}: {exc.problem or exc}"
        ) from None


class YamlDocument:
    """A parsed YAML file with the line of every key path."""

    def __init__(self, path: Path, data: Any, lines: dict[KeyPath, int]):
        self.path = path
        self.data = data
        self.lines = lines

    def where(self, key_path: KeyPath) -> str:
        """'file:line key a.b.c' for the deepest known prefix of key_path."""
        probe = tuple(key_path)
        while probe and probe not in self.lines:
            probe = probe[:-1]
        line = self.lines.get(probe, 1)
        dotted = ".".join(str(k) for k in key_path) or "(top level)"
        return f"{self.path}:{line}: key {dotted}"


def load_yaml(path: Path | str) -> YamlDocument:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ProfileError(f"{path}: file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read: {exc}") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from exc
    lines: dict[KeyPath, int] = {}
    loader = yaml.SafeLoader("")
    try:
        data = _construct(node, (), lines, loader) if node is not None else {}
    except ValueError as exc:
        raise ProfileError(f"{path}:{exc}") from None
    return YamlDocument(path, data, lines)


def pydantic_errors(doc: YamlDocument, exc: Any) -> ProfileError:
    """Turn a pydantic ValidationError into a ProfileError naming file, key path and line."""
    messages = []
    for err in exc.errors():
        loc = tuple(part for part in err["loc"] if not (isinstance(part, str) and "[" in part))
        messages.append(f"{doc.where(loc)}: {err['msg']}")
    return ProfileError("\n".join(messages))
