"""Throughput and latency of outbox -> Mosquitto -> ingest -> SQLite, on loopback.

    .venv/bin/python -m bench.uplink [--events 20000] [--rate 2000] [--seconds 10]

Runs a private Mosquitto (as the tests do), one IngestService and one Publisher, and measures:
  burst     events enqueued as fast as the edge can commit them (100 per transaction) while the
            publisher drains; events/s from the first enqueue to the last stored row
  burst-puback  the same burst with rows done at PUBACK (no end-to-end acknowledgement):
            what waiting for the centre's curbwatch.ack/1 costs
  paced     a steady --rate for --seconds; latency from the outbox row's created_at to the
            ingest row's received_at (same host clock)
  baseline  the obvious alternative: no outbox, publish() + wait_for_publish() one at a time
Targets: >= 2,000 events/s sustained, p95 < 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import sqlite_utils

from tests.support.broker import MosquittoBroker
from uplink.ingest_service import IngestService
from uplink.messages import IncidentEventKind, IncidentMessage, Shop, to_json
from uplink.outbox import Outbox
from uplink.publisher import DEFAULT_ACK_TIMEOUT_S, Publisher
from uplink.settings import MqttSettings
from uplink.topics import Topics

T = Topics()
T0 = datetime.fromisoformat("2026-05-01T02:00:00+00:00")


def event(node_id: str, incident_id: uuid.UUID, seq: int) -> IncidentMessage:
    return IncidentMessage(
        incident_id=incident_id,
        seq=seq,
        event=IncidentEventKind.OPENED if seq == 0 else IncidentEventKind.UPDATED,
        node_id=node_id,
        camera_id="cam-01",
        zone_id="door-12-sidewalk",
        shop=Shop(id="shop-12", name="东街12号"),
        label="chair",
        confidence=0.8,
        bbox=(0.1, 0.5, 0.3, 0.9),
        first_seen_at=T0,
        at=T0,
    )


def events(node_id: str, count: int, per_incident: int = 5) -> list[IncidentMessage]:
    out: list[IncidentMessage] = []
    while len(out) < count:
        incident_id = uuid.uuid4()
        out.extend(event(node_id, incident_id, seq) for seq in range(min(per_incident, count - len(out))))
    return out


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class Result:
    name: str
    count: int
    seconds: float
    latencies: list[float]

    def line(self) -> str:
        rate = self.count / self.seconds
        if not self.latencies:
            return f"{self.name:9s} {self.count:6d} events in {self.seconds:6.2f} s = {rate:7.0f} events/s"
        q = [value * 1000 for value in statistics.quantiles(self.latencies, n=100)]
        worst = max(self.latencies) * 1000
        return (
            f"{self.name:9s} {self.count:6d} events in {self.seconds:6.2f} s = {rate:7.0f} events/s;"
            f" latency p50 {q[49]:6.1f} ms, p95 {q[94]:6.1f} ms, max {worst:6.1f} ms"
        )


def stored_rows(review: Path, node_id: str) -> list[tuple[str, int, str]]:
    with sqlite_utils.Database(review) as db:
        return list(
            db.execute(
                "SELECT e.incident_id, e.seq, e.received_at FROM incident_events e"
                " JOIN incidents i USING (incident_id) WHERE i.node_id = ?",
                [node_id],
            )
        )


def wait_stored(review: Path, node_id: str, count: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while len(stored_rows(review, node_id)) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"{node_id}: only {len(stored_rows(review, node_id))} of {count} stored")
        time.sleep(0.05)


def run_outbox(
    broker: MosquittoBroker,
    work: Path,
    review: Path,
    name: str,
    messages: list[IncidentMessage],
    rate: float | None,
    end_to_end_ack: bool = True,
) -> Result:
    node_id = messages[0].node_id
    settings = MqttSettings(host=broker.host, port=broker.port, client_id=node_id)
    outbox = Outbox(work / f"{node_id}.db")
    ack_timeout_s = DEFAULT_ACK_TIMEOUT_S if end_to_end_ack else None  # None: PUBACK is enough
    publisher = Publisher(
        settings, work / f"{node_id}.db", health_interval_s=3600, ack_timeout_s=ack_timeout_s
    )
    publisher.start()
    publisher.wait_connected(10)
    topic = T.incident(node_id, "cam-01")
    batch = 100 if rate is None else max(1, int(rate / 100))  # paced: one commit every 10 ms
    start = time.monotonic()
    for index in range(0, len(messages), batch):
        if rate is not None:
            time.sleep(max(0.0, start + index / rate - time.monotonic()))
        with outbox.transaction():
            for message in messages[index : index + batch]:
                outbox.enqueue(message, topic)
        publisher.notify()
    wait_stored(review, node_id, len(messages))
    publisher.stop()
    with sqlite_utils.Database(work / f"{node_id}.db") as edge:
        created = {
            (r[0], r[1]): _ts(r[2]) for r in edge.execute("SELECT incident_id, seq, created_at FROM outbox")
        }
    rows = stored_rows(review, node_id)
    latencies = [_ts(received) - created[(iid, seq)] for iid, seq, received in rows]
    first = min(created.values())
    last = max(_ts(received) for _, _, received in rows)
    outbox.close()
    return Result(name, len(messages), last - first, latencies)


def run_baseline(broker: MosquittoBroker, review: Path, messages: list[IncidentMessage]) -> Result:
    node_id = messages[0].node_id
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=node_id)
    client.connect(broker.host, broker.port)
    client.loop_start()
    topic = T.incident(node_id, "cam-01")
    start = time.monotonic()
    for message in messages:
        client.publish(topic, to_json(message), qos=1).wait_for_publish(10)
    wait_stored(review, node_id, len(messages))
    seconds = time.monotonic() - start
    client.disconnect()
    client.loop_stop()
    return Result("baseline", len(messages), seconds, [])


def serve_ingest(port: int, review: Path, evidence: Path) -> None:
    """The centre runs in its own process, as in production: one GIL per side."""
    ingest = IngestService(MqttSettings(port=port, client_id="bench-ingest"), review, evidence)
    ingest.start()
    ingest.wait_subscribed(10)
    print("subscribed", flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    ingest.stop()


def start_ingest_process(broker: MosquittoBroker, review: Path, evidence: Path) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "bench.uplink",
        "--serve-ingest",
        str(broker.port),
        str(review),
        str(evidence),
    ]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    if process.stdout.readline().strip() != "subscribed":
        raise SystemExit("ingest process did not start")
    return process


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--serve-ingest":
        serve_ingest(int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events in the burst run")
    parser.add_argument("--rate", type=float, default=2_000, help="events/s in the paced run")
    parser.add_argument("--seconds", type=float, default=10, help="length of the paced run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, MosquittoBroker(Path(tmp) / "mosquitto") as broker:
        work = Path(tmp)
        review = work / "review.db"
        ingest = start_ingest_process(broker, review, work / "evidence")
        results = [
            run_outbox(broker, work, review, "burst", events("bench-burst", args.events), None),
            run_outbox(
                broker, work, review, "burst-puback", events("bench-puback", args.events), None, False
            ),
            run_outbox(
                broker, work, review, "paced", events("bench-paced", int(args.rate * args.seconds)), args.rate
            ),
            run_baseline(broker, review, events("bench-base", min(args.events, 5_000))),
        ]
        assert ingest.stdin is not None
        ingest.stdin.close()
        ingest.wait(30)
    for result in results:
        print(result.line())


if __name__ == "__main__":
    main()
