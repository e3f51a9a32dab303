"""Zone files in, a validated ZoneFile or every problem at its `file:line` out."""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path

from pydantic import ValidationError

from zones.checks import cross_zone_findings
from zones.schema import ZoneFile, validation_context
from zones.yaml_source import (
    ConfigFileError,
    Problem,
    Severity,
    SourceDocument,
    load_with_positions,
    problem_from_finding,
    problems_from_validation_error,
)

logger = logging.getLogger(__name__)


class ZoneFileError(ConfigFileError):
    """A zone file has errors; `.problems` holds them (and any warnings) in file order."""


def _sorted(problems: list[Problem]) -> tuple[Problem, ...]:
    return tuple(sorted(problems, key=lambda p: (p.line or 0, p.severity is Severity.WARNING)))


def check_document(
    doc: SourceDocument, known_classes: Collection[str] | None = None
) -> tuple[ZoneFile | None, tuple[Problem, ...]]:
    """Validate a parsed document: the ZoneFile (None if any error) and every problem found."""
    if not isinstance(doc.data, dict):
        found = type(doc.data).__name__ if doc.data is not None else "an empty document"
        return None, (
            Problem(doc.source_name, 1, "", f"expected a mapping with camera_id and zones, got {found}"),
        )
    try:
        zone_file = ZoneFile.model_validate(doc.data, context=validation_context(known_classes, True))
    except ValidationError as err:
        return None, _sorted(problems_from_validation_error(err, doc))
    problems = _sorted([problem_from_finding(f, doc) for f in cross_zone_findings(zone_file)])
    if any(problem.severity is Severity.ERROR for problem in problems):
        return None, problems
    return zone_file, problems


def check_zone_file(
    path: Path, known_classes: Collection[str] | None = None
) -> tuple[ZoneFile | None, tuple[Problem, ...]]:
    """For `zones validate`: never raises for a bad file, returns its problems instead."""
    try:
        doc = load_with_positions(Path(path))
    except ConfigFileError as err:
        return None, err.problems
    return check_document(doc, known_classes)


def _accept(zone_file: ZoneFile | None, problems: tuple[Problem, ...]) -> ZoneFile:
    if zone_file is None:
        raise ZoneFileError(problems)
    for problem in problems:
        logger.warning("zone file: %s", problem)
    return zone_file


def load_zone_file(path: Path | str, known_classes: Collection[str] | None = None) -> ZoneFile:
    """Load a YAML or JSON zone file; raises ZoneFileError listing `file:line: key: message`."""
    return _accept(*check_zone_file(Path(path), known_classes))


def parse_zone_document(
    text: str, source_name: str, known_classes: Collection[str] | None = None
) -> ZoneFile:
    """Zones that arrive as text (the retained MQTT config); same checks as a file."""
    try:
        doc = load_with_positions(text, source_name)
    except ConfigFileError as err:
        raise ZoneFileError(err.problems) from err
    return _accept(*check_document(doc, known_classes))
