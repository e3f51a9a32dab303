"""Limits a config document must meet before a YAML parser sees it: size, nesting, aliases.

Config text comes from files and from the wire (the retained MQTT config, the zone editor's
API), so it is untrusted. ruamel.yaml takes minutes on 100,000 nested `[` (and the composer
recurses), and expands aliases on construction (a 700-byte "billion laughs" grows to
gigabytes). So, before parsing:

- at most `MAX_DOCUMENT_CHARS` characters;
- flow collections (`[`, `{`) nested at most `MAX_DEPTH` deep, and block indentation at most
  `MAX_INDENT` columns: found by one linear scan that skips quoted strings and comments;
- no aliases or anchors at all (a zone file never needs them), and at most `MAX_NODES` nodes:
  found from ruamel's event stream, which expands nothing.

Each violation is one `Problem` with the line where it starts.
"""

from __future__ import annotations

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent

MAX_DOCUMENT_CHARS = 512 * 1024
MAX_DEPTH = 32
MAX_INDENT = 128
MAX_NODES = 200_000


def document_problem(text: str) -> tuple[int | None, str] | None:
    """(line, message) of the first limit `text` breaks, or None when it is within all of them."""
    if len(text) > MAX_DOCUMENT_CHARS:
        return None, f"document of {len(text)} characters exceeds the limit of {MAX_DOCUMENT_CHARS}"
    found = _nesting_problem(text)
    if found is not None:
        return found
    return _event_problem(text)


def _nesting_problem(text: str) -> tuple[int, str] | None:
    depth = 0
    line = 1
    quote = ""
    at_line_start = True
    indent = 0
    in_comment = False
    for char in text:
        if char == "\n":
            line += 1
            at_line_start, indent, in_comment = True, 0, False
            continue
        if in_comment:
            continue
        if at_line_start:
            if char == " ":
                indent += 1
                if indent > MAX_INDENT:
                    return line, f"indented more than {MAX_INDENT} columns: nested too deeply"
                continue
            at_line_start = False
        if quote:
            if char == quote:
                quote = ""
            continue
        if char in "\"'":
            quote = char
        elif char == "#":
            in_comment = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line, f"collections nested more than {MAX_DEPTH} deep"
        elif char in "]}" and depth:
            depth -= 1
    return None


def _event_problem(text: str) -> tuple[int | None, str] | None:
    nodes = 0
    try:
        for event in YAML(typ="rt").parse(text):
            if isinstance(event, AliasEvent) or getattr(event, "anchor", None):
                line = event.start_mark.line + 1 if event.start_mark is not None else None
                return line, "anchors and aliases (&name, *name) are not allowed in a config document"
            if isinstance(event, CollectionStartEvent | ScalarEvent):
                nodes += 1
                if nodes > MAX_NODES:
                    line = event.start_mark.line + 1 if event.start_mark is not None else None
                    return line, f"more than {MAX_NODES} values in one document"
    except YAMLError:
        return None  # a syntax error: the parser proper reports it with its line
    return None
