"""Load YAML or JSON config text and point every problem at its exact `file:line`.

Generic on purpose: the zone file and the edge node's `node.yaml` both use it.
ruamel's round-trip loader records where each key and list item starts
(`mapping.lc.key(k)`, `sequence.lc.item(i)`), so a pydantic error location such
as `("zones", 1, "polygon")` is walked down the document to the line of the
`polygon:` key itself. Frigate looks the line up on the parent mapping and so
points one level too high; walking to the deepest present node is exact.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from zones.limits import document_problem

KeyPath = tuple[str | int, ...]


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or suspicious) in a config document, with where it is."""

    file: str
    line: int | None  # 1-based; None when the text could not be read at all
    key_path: str  # "zones[1].polygon"; "" for the document as a whole
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        key = f" {self.key_path}:" if self.key_path else ""
        mark = " warning:" if self.severity is Severity.WARNING else ""
        return f"{where}:{key}{mark} {self.message}"


@dataclass(frozen=True)
class Finding:
    """A rule's verdict on a validated config, located by key path; becomes a Problem."""

    path: KeyPath
    message: str
    severity: Severity = Severity.ERROR


class ConfigFileError(ValueError):
    """A config document has errors. `str()` lists one `file:line: key: message` per line."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


@dataclass(frozen=True)
class SourceDocument:
    """Parsed text: `root` keeps ruamel's positions, `data` is plain Python for pydantic."""

    source_name: str
    root: Any
    data: Any


def format_key_path(path: Iterable[str | int]) -> str:
    """("zones", 1, "polygon", 0) -> "zones[1].polygon[0]"."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def to_plain(node: Any) -> Any:
    """ruamel's round-trip nodes -> dict / list / str / int / float, so no ruamel type leaks."""
    if isinstance(node, CommentedMap):
        return {to_plain(key): to_plain(value) for key, value in node.items()}
    if isinstance(node, CommentedSeq):
        return [to_plain(item) for item in node]
    if isinstance(node, bool | None | dt.date):  # dt.datetime is a dt.date too
        return node
    if isinstance(node, str):
        return str(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


class _TextTimestampConstructor(RoundTripConstructor):
    """Leaves `2024-13-01` and friends as text: pydantic parses dates and says what is wrong
    at the key's line, where ruamel would raise a bare ValueError with no position."""


_TextTimestampConstructor.add_constructor(
    "tag:yaml.org,2002:timestamp", RoundTripConstructor.construct_yaml_str
)


def _looks_like_json(text: str, source_name: str) -> bool:
    return source_name.lower().endswith(".json") or text.lstrip().startswith("{")


def parse_text(text: str, source_name: str) -> SourceDocument:
    """Parse YAML or JSON text; a syntax error or a broken limit (zones.limits) raises
    ConfigFileError with its line."""
    too_much = document_problem(text)
    if too_much is not None:
        line, message = too_much
        raise ConfigFileError([Problem(source_name, line, "", message)])
    if source_name.lower().endswith(".json"):
        # YAML reads `{"b": }` as null; a file named .json must be JSON.
        try:
            json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigFileError([Problem(source_name, err.lineno, "", f"invalid JSON: {err.msg}")]) from err
    if _looks_like_json(text, source_name):
        # JSON allows tabs between tokens, YAML's scanner does not; outside strings (where
        # JSON forbids raw tabs) a tab is only whitespace, and one-for-one keeps columns.
        text = text.replace("\t", " ")
    yaml = YAML(typ="rt")
    yaml.Constructor = _TextTimestampConstructor
    try:
        root = yaml.load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = None if mark is None else mark.line + 1
        message = " ".join(part for part in (err.context, err.problem) if part) or "invalid YAML"
        raise ConfigFileError([Problem(source_name, line, "", f"invalid YAML: {message}")]) from err
    except (YAMLError, ValueError, RecursionError) as err:
        raise ConfigFileError([Problem(source_name, None, "", f"invalid YAML: {err}")]) from err
    return SourceDocument(source_name, root, to_plain(root))


def load_with_positions(path_or_text: Path | str, source_name: str | None = None) -> SourceDocument:
    """Read a file (a `Path`) or take text (a `str`) and parse it, keeping key positions.

    `source_name` is what problems print as the file: the path by default, and
    something like "mqtt:curbwatch/v1/node-1/config" for text from the wire.
    """
    if isinstance(path_or_text, Path):
        name = source_name or str(path_or_text)
        try:
            text = path_or_text.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigFileError([Problem(name, None, "", f"cannot read: {err}")]) from err
        return parse_text(text, name)
    return parse_text(path_or_text, source_name or "<text>")


def _key_line(mapping: CommentedMap, key: Any) -> int | None:
    try:
        return int(mapping.lc.key(key)[0]) + 1
    except (KeyError, TypeError, AttributeError):
        return None


def _item_line(sequence: CommentedSeq, index: int) -> int | None:
    try:
        return int(sequence.lc.item(index)[0]) + 1
    except (KeyError, TypeError, AttributeError):
        return None


def line_of(root: Any, path: Iterable[str | int]) -> int | None:
    """The line of the deepest part of `path` present in the document.

    A missing key (a required field left out) points at the mapping that should
    hold it; parts the document does not have (pydantic's union tags) are skipped.
    """
    node = root
    line = _start_line(root)
    for part in path:
        if isinstance(node, CommentedMap) and part in node:
            line = _key_line(node, part) or line
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line = _item_line(node, part) or line
            node = node[part]
    return line


def _start_line(root: Any) -> int | None:
    if isinstance(root, CommentedMap | CommentedSeq):
        return int(root.lc.line) + 1
    return 1


def _pydantic_message(error: Any) -> str:
    # Our validators raise ValueError; pydantic prefixes "Value error, " which adds nothing.
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    if str(error["type"]).endswith(("_type", "_parsing")) and isinstance(value, str | int | float):
        message += f", got {value!r}"  # a quoted "0.5" reads like a number until shown as text
    return message


def problems_from_validation_error(err: ValidationError, doc: SourceDocument) -> list[Problem]:
    """One Problem per pydantic error, each at the line of the key it names."""
    problems = []
    for error in err.errors():
        loc = tuple(error["loc"])
        problems.append(
            Problem(doc.source_name, line_of(doc.root, loc), format_key_path(loc), _pydantic_message(error))
        )
    return problems


def problem_from_finding(finding: Finding, doc: SourceDocument) -> Problem:
    return Problem(
        doc.source_name,
        line_of(doc.root, finding.path),
        format_key_path(finding.path),
        finding.message,
        finding.severity,
    )
