"""The zone editor's YAML text: the whole document, edited by the drawing without losing the rest.

The drawing and the form change a plain copy of the document (JSON in the browser); `merge`
writes that copy back into the text through ruamel's round-trip tree, so every key the editor
has no input for, and every comment and number as written, stays where it was.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Mapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from zones.yaml_source import parse_text


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)  # `zones:\n  - id: ...`, as the example files
    yaml.width = 4096  # never fold a long shop name or polygon onto a second line
    yaml.allow_unicode = True
    return yaml


def _dump(root: Any) -> str:
    out = io.StringIO()
    _yaml().dump(root, out)
    return out.getvalue()


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, Mapping | list)


def _fresh(value: Any) -> Any:
    """A new node for `value`: lists of scalars (or of points) on one line, mappings in blocks."""
    if isinstance(value, Mapping):
        node = CommentedMap()
        for key, item in value.items():
            node[key] = _fresh(item)
        return node
    if isinstance(value, list):
        seq = CommentedSeq(_fresh(item) for item in value)
        if all(_is_scalar(item) or (isinstance(item, list) and all(map(_is_scalar, item))) for item in value):
            seq.fa.set_flow_style()
        return seq
    return value


def _same_scalar(node: Any, value: Any) -> bool:
    if isinstance(node, dt.date):  # the browser's copy holds dates as text
        return node.isoformat() == value
    # True == 1 in Python; a boolean and a number are never the same value here.
    return node == value and isinstance(node, bool) == isinstance(value, bool)


def _merge(node: Any, value: Any) -> Any:
    if isinstance(node, CommentedMap) and isinstance(value, Mapping):
        for key in [k for k in node if k not in value]:
            del node[key]
        for key, item in value.items():
            node[key] = _merge(node[key], item) if key in node else _fresh(item)
        return node
    if isinstance(node, CommentedSeq) and isinstance(value, list):
        del node[len(value) :]
        for index, item in enumerate(value):
            if index < len(node):
                node[index] = _merge(node[index], item)
            else:
                node.append(_fresh(item))
        return node
    if _is_scalar(node) and _is_scalar(value) and _same_scalar(node, value):
        return node  # keeps 0.60 written as 0.60, quotes, and the comment after it
    return _fresh(value)


def looks_like_json(text: str) -> bool:
    return text.lstrip().startswith("{")


def to_yaml(data: Any) -> str:
    return _dump(_fresh(data))


def editable_text(document: str, source_name: str = "stored") -> str:
    """The text the editor shows: YAML as written; JSON (what older editors stored) as YAML."""
    if not looks_like_json(document):
        return document
    try:
        data = json.loads(document)
    except ValueError:
        return document  # broken JSON: shown as it is, the checks say where
    return to_yaml(data)


def merge(document: str, data: Mapping[str, Any], source_name: str = "editor") -> str:
    """`document` with its values replaced by `data`'s; raises zones' ConfigFileError when the
    text itself cannot be read (the editor then asks for the text to be fixed first)."""
    if not document.strip() or looks_like_json(document):
        return to_yaml(data)
    parse_text(document, source_name)  # the limits and a syntax error, at its line
    yaml = _yaml()
    yaml.preserve_quotes = True  # a name written "in quotes" stays so
    root = yaml.load(document)
    if not isinstance(root, CommentedMap):
        return to_yaml(data)
    return _dump(_merge(root, data))
