"""Property-based fuzz (Hypothesis, bounded): hostile payloads never crash the ingest or the
node's config handling; they are stored, ignored or dead-lettered, and rejected with a reason."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.database import review_db_for
from tests.uplink.helpers import NODE, incident
from uplink.database import Database
from uplink.ingest import Ingest, OutcomeKind
from uplink.messages import to_json
from uplink.publisher import Publisher
from uplink.review_db import open_review_database
from uplink.settings import MqttSettings
from uplink.topics import Topics

T = Topics()
TOPICS = [
    T.incident(NODE, "cam-1"),
    T.node_health(NODE),
    T.camera_status(NODE, "cam-1"),
    T.snapshot(NODE, "cam-1"),
    T.node_status(NODE),
    f"{T.prefix}/{NODE}/ack",
    f"{T.prefix}/{NODE}/cam-1/nonsense",
]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


def payloads() -> st.SearchStrategy[bytes]:
    good = json.loads(to_json(incident(uuid.UUID(int=7), 0)))
    mutated = st.dictionaries(st.sampled_from(sorted(good)), JSON, max_size=3).map(
        lambda changes: json.dumps({**good, **changes}).encode()
    )
    return st.one_of(
        st.binary(max_size=300),
        JSON.map(lambda value: json.dumps(value).encode()),
        mutated,
        st.integers(1, 3000).map(lambda n: b"[" * n),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(topic=st.sampled_from(TOPICS), payload=payloads())
def test_the_ingest_answers_every_payload_without_raising(tmp_path: Path, topic: str, payload: bytes) -> None:
    db: Database = open_review_database(review_db_for(tmp_path), synchronous="OFF")
    try:
        outcome = Ingest(db, tmp_path / "evidence").handle(topic, payload)
        assert outcome.kind in set(OutcomeKind)
        if outcome.kind is OutcomeKind.DEAD_LETTER:
            assert outcome.reason
    finally:
        db.close()


class Recorder:
    def __init__(self) -> None:
        self.rejected: list[tuple[int | None, list[str]]] = []
        self.applied: list[object] = []


@settings(max_examples=150, deadline=None)
@given(payload=payloads())
def test_the_config_thread_turns_every_payload_into_a_config_or_a_rejection(payload: bytes) -> None:
    recorder = Recorder()
    settings_ = MqttSettings.model_validate({"host": "127.0.0.1", "port": 1, "client_id": NODE})
    publisher = Publisher(
        settings_,
        "unused.sqlite",
        on_config=recorder.applied.append,
        on_config_rejected=lambda version, problems: recorder.rejected.append((version, problems)),
    )
    publisher._handle_config(payload)  # what the config thread runs; nothing may escape it
    assert len(recorder.applied) + len(recorder.rejected) == 1
    for _version, problems in recorder.rejected:
        assert problems and all(isinstance(p, str) and p for p in problems)
