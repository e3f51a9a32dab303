from __future__ import annotations

import pytest

from uplink.topics import ParsedTopic, TopicError, TopicKind, Topics

T = Topics()


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        (T.node_status("n1"), ParsedTopic(TopicKind.NODE_STATUS, "n1")),
        (T.node_health("n1"), ParsedTopic(TopicKind.NODE_HEALTH, "n1")),
        (T.node_config("n1"), ParsedTopic(TopicKind.NODE_CONFIG, "n1")),
        (T.camera_status("n1", "cam-1"), ParsedTopic(TopicKind.CAMERA_STATUS, "n1", "cam-1")),
        (T.incident("n1", "cam-1"), ParsedTopic(TopicKind.INCIDENT, "n1", "cam-1")),
        (T.snapshot("n1", "cam-1"), ParsedTopic(TopicKind.SNAPSHOT, "n1", "cam-1")),
        # a camera may be called like a node-level leaf: depth tells them apart
        ("curbwatch/v1/n1/status/status", ParsedTopic(TopicKind.CAMERA_STATUS, "n1", "status")),
    ],
)
def test_round_trip(topic: str, expected: ParsedTopic) -> None:
    assert T.parse(topic) == expected


def test_layout_is_the_documented_one() -> None:
    assert T.incident("n1", "cam-1") == "curbwatch/v1/n1/cam-1/incident"
    assert Topics("city/x/v1").node_status("n1") == "city/x/v1/n1/status"


@pytest.mark.parametrize(
    "topic",
    [
        "other/v1/n1/status",
        "curbwatch/v1/n1",
        "curbwatch/v1/n1/cam/incident/extra",
        "curbwatch/v1/n1/unknown",
        "curbwatch/v1/n1/cam/config",
        "curbwatch/v1/.hidden/status",
        "curbwatch/v1//status",
    ],
)
def test_parse_rejects(topic: str) -> None:
    with pytest.raises(TopicError):
        T.parse(topic)


@pytest.mark.parametrize("bad", ["a/b", "+", "#", "", ".x", "x" * 65])
def test_ids_that_cannot_be_a_topic_level_are_refused(bad: str) -> None:
    with pytest.raises(TopicError):
        T.incident("n1", bad)


@pytest.mark.parametrize("prefix", ["", "a/+/b", "a//b", "#"])
def test_prefix_without_wildcards(prefix: str) -> None:
    with pytest.raises(TopicError):
        Topics(prefix)
