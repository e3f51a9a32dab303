"""A fleet of simulated edge nodes through one broker into K ingest workers and one database.

    .venv/bin/python -m bench.fleet [--nodes 250] [--cameras 4] [--workers 2]
        [--events-per-camera-min 5] [--seconds 120] [--queue-requests 100]
        [--database sqlite|postgresql] [--postgres-server URL] [--prefill 1000000] [--keep]

Each node is the real Outbox + Publisher (health every --health-s, end-to-end acks), without
video; its cameras open, update and clear incidents at random (Poisson, --events-per-camera-min
events per camera per minute; about 0.5 is a busy street, 10x that the issue's load). The broker
is a private Mosquitto with persistence; the workers are `python -m uplink.ingest_worker`
processes in one $share group, on a SQLite file or a fresh PostgreSQL database (C collation,
dropped at the end unless --keep). --prefill first loads that many historical incidents (a year
before the run at 1 million; bench.review.prefill: cases, 10 % rejected, indexes and statistics
rebuilt), so the queue is timed at the table sizes of a city. Mid-run one worker is SIGKILLed
(and restarted) and the broker is SIGKILLed (and restarted). Reports events/s, event -> stored
latency p50/p95/p99 (outbox enqueue to the ingest's received_at, one host clock), lost and
duplicated (must both be 0), and the review queue page's p50/p95 (the review server's config
`database_url` on the same database, the case assigner caught up first, as the review server's
worker keeps it).
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.review import INTERVAL_S, PASSWORD, POSTGRES_SERVER, Site, log_in, prefill, scratch_database, timed
from tests.support.broker import MosquittoBroker
from uplink.clock import format_utc, parse_utc
from uplink.database import Database, open_database
from uplink.messages import IncidentEventKind, IncidentMessage, Shop
from uplink.outbox import Outbox
from uplink.publisher import Publisher
from uplink.settings import MqttSettings
from uplink.topics import Topics

ROOT = Path(__file__).resolve().parents[1]
T = Topics()
CLEAR_CHANCE = 0.2  # an event of an open incident clears it with this probability


@dataclass
class Camera:
    node_id: str
    camera_id: str
    incident_id: uuid.UUID | None = None
    seq: int = 0
    first_seen_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def site(self) -> Site:
        return Site(
            self.node_id,
            self.camera_id,
            f"zone-{self.camera_id}",
            f"shop-{self.node_id}-{self.camera_id}",
            "东街12号",
        )

    def next_event(self, rng: random.Random, now: datetime) -> IncidentMessage:
        if self.incident_id is None:
            self.incident_id, self.seq, self.first_seen_at = uuid.uuid4(), 0, now
            kind = IncidentEventKind.OPENED
        else:
            self.seq += 1
            kind = IncidentEventKind.CLEARED if rng.random() < CLEAR_CHANCE else IncidentEventKind.UPDATED
        site = self.site
        message = IncidentMessage(
            incident_id=self.incident_id,
            seq=self.seq,
            event=kind,
            node_id=self.node_id,
            camera_id=self.camera_id,
            zone_id=site.zone_id,
            shop=Shop(id=site.shop_id, name=site.shop_name),
            label="chair",
            confidence=0.8,
            bbox=(0.1, 0.5, 0.3, 0.9),
            first_seen_at=self.first_seen_at,
            at=now,
        )
        if kind is IncidentEventKind.CLEARED:
            self.incident_id = None
        return message


class Worker:
    """One ingest worker process; kill() is SIGKILL, as a crash would be."""

    def __init__(
        self, broker: MosquittoBroker, client_id: str, folder: Path, database: str, group: str | None
    ) -> None:
        self.command = [
            *(sys.executable, "-m", "uplink.ingest_worker", "--port", str(broker.port)),
            *("--client-id", client_id, "--db", database),
            *("--evidence-dir", str(folder / "evidence")),
            *(("--shared-group", group) if group else ()),
        ]
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "subscribed":
            raise SystemExit(f"ingest worker did not start: {self.command}")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)


STORED = "FROM incident_events WHERE received_at >= ?"  # the run's events, not the prefilled history


def stored(db: Database, since: str) -> list[tuple[str, int, str]]:
    return [(r[0], r[1], r[2]) for r in db.execute(f"SELECT incident_id, seq, received_at {STORED}", [since])]


def quantiles_ms(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
    q = statistics.quantiles(values, n=100)
    return {"p50": round(q[49] * 1000, 1), "p95": round(q[94] * 1000, 1), "p99": round(q[98] * 1000, 1)}


def queue_page_ms(folder: Path, database: str, requests: int, filtered: list[str]) -> dict[str, object]:
    """The review server's /queue over ASGI on the database the fleet filled (as bench.review),
    unfiltered and with filters, after the case assigner took what the ingest stored."""
    from fastapi.testclient import TestClient

    from review_ui.auth import Role
    from review_ui.config import ReviewConfig
    from review_ui.service import ReviewServer

    (folder / "secret.key").write_text(secrets.token_hex(32))
    config = ReviewConfig.model_validate(
        {
            "database_url": database,
            "evidence_dir": folder / "evidence",
            "secret_key_file": folder / "secret.key",
        }
    )
    began = time.monotonic()
    server = ReviewServer(config)
    try:
        assigned = 0
        while batch := server.cases.run_once():  # what the review server's worker does as they arrive
            assigned += batch
        server.accounts.create_user("bench", PASSWORD, Role.INSPECTOR, "bench")
        with TestClient(server.app, base_url="https://bench") as client:
            log_in(client)
            p50, p95 = timed(client, ["/queue"] * requests)
            f50, f95 = timed(client, [filtered[i % len(filtered)] for i in range(requests)])
    finally:
        server.store.close()
    return {
        "p50": round(p50, 1),
        "p95": round(p95, 1),
        "filtered_p50": round(f50, 1),
        "filtered_p95": round(f95, 1),
        "assigned_to_cases": assigned,
        "took_s": round(time.monotonic() - began, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=250)
    parser.add_argument("--cameras", type=int, default=4, help="cameras per node")
    parser.add_argument("--workers", type=int, default=2, help="ingest worker processes")
    parser.add_argument("--events-per-camera-min", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=120.0, help="how long the nodes produce events")
    parser.add_argument("--health-s", type=float, default=30.0)
    parser.add_argument("--ack-timeout-s", type=float, default=10.0, help="the edge's outbox.ack_timeout_s")
    parser.add_argument("--no-kills", action="store_true", help="no worker or broker kill mid-run")
    parser.add_argument("--queue-requests", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--postgres-server",
        default=POSTGRES_SERVER,
        help="with --database postgresql: the server the run's database is created on",
    )
    parser.add_argument(
        "--prefill", type=int, default=0, help="historical incidents loaded before the run (e.g. 1000000)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the folder and the database afterwards")
    args = parser.parse_args()
    if (
        min(args.nodes, args.cameras, args.workers) < 1
        or args.seconds <= 0
        or args.events_per_camera_min <= 0
        or args.prefill < 0
        or args.queue_requests < 2
    ):
        parser.error(
            "--nodes, --cameras, --workers, --seconds and --events-per-camera-min must be positive,"
            " --prefill not negative, --queue-requests at least 2"
        )
    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="curbwatch-fleet-"))
    try:
        with scratch_database(args.database, folder, args.postgres_server, keep=args.keep) as database:
            report = run(args, folder, database)
            if args.keep:
                print(f"kept {folder} and {database}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    report["wall_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(report, ensure_ascii=False, indent=2))
    if report["lost"] or report["duplicated"]:
        raise SystemExit("events were lost or duplicated")


def run(args: argparse.Namespace, folder: Path, database: str) -> dict[str, object]:
    node_ids = [f"node-{n:04d}" for n in range(args.nodes)]
    cameras = [Camera(node_id, f"cam-{c:02d}") for node_id in node_ids for c in range(args.cameras)]
    sites = [camera.site for camera in cameras]
    history_end = datetime.now(UTC) - timedelta(hours=1)  # the prefilled history ends before the run
    filled = prefill(
        database,
        args.prefill,
        site=lambda i: sites[i % len(sites)],
        start=history_end - timedelta(seconds=INTERVAL_S * args.prefill),
    )
    if args.prefill:
        print(
            f"prefilled {args.prefill} incidents in {filled.seconds:.1f} s ({filled.cases} cases)", flush=True
        )

    broker = MosquittoBroker(folder / "broker")
    group = "ingest" if args.workers > 1 else None
    workers = [Worker(broker, f"ingest-{i}", folder, database, group) for i in range(args.workers)]
    publishers = [
        Publisher(
            MqttSettings(port=broker.port, client_id=node_id, keepalive_s=10, reconnect_max_s=2),
            folder / "edge" / f"{node_id}.db",
            health_interval_s=args.health_s,
            ack_timeout_s=args.ack_timeout_s,
            resend_check_s=1.0,
        )
        for node_id in node_ids
    ]
    (folder / "edge").mkdir()
    outboxes = {node_id: Outbox(folder / "edge" / f"{node_id}.db") for node_id in node_ids}
    db = open_database(database)
    try:
        broker.start()
        for worker in workers:
            worker.start()
        for publisher in publishers:
            publisher.start()
        print(f"{len(cameras)} cameras on {args.nodes} nodes, {args.workers} workers, {folder}", flush=True)
        since = format_utc(datetime.now(UTC))
        sent_at, produced_s, drained_s = _produce(
            args, broker, workers, cameras, outboxes, publishers, db, since
        )
        rows = stored(db, since)
        incidents_total = int(db.execute("SELECT count(*) FROM incidents").fetchone()[0])
    finally:
        db.close()
        for publisher in publishers:
            publisher.stop(flush_timeout_s=1)
        for worker in workers:
            worker.stop()
        broker.stop()

    keys = [(incident_id, seq) for incident_id, seq, _ in rows]
    latencies = [
        parse_utc(received).timestamp() - sent_at[(incident_id, seq)]
        for incident_id, seq, received in rows
        if (incident_id, seq) in sent_at
    ]
    some = cameras[len(cameras) // 3]
    filtered = [
        f"/queue?camera={some.camera_id}",
        f"/queue?shop={some.site.shop_id}&status=",
        "/queue?status=rejected",
        f"/queue?zone={some.site.zone_id}&from={(history_end - timedelta(days=30)).date().isoformat()}",
        "/queue?page=3",
    ]
    return {
        "database": args.database,
        "cameras": len(cameras),
        "nodes": args.nodes,
        "workers": args.workers,
        "events": len(sent_at),
        "offered_events_per_s": round(len(cameras) * args.events_per_camera_min / 60.0, 1),
        "events_per_s": round(len(rows) / drained_s, 1),
        "produced_s": round(produced_s, 1),
        "all_stored_after_s": round(drained_s, 1),
        "lost": len(set(sent_at) - set(keys)),
        "duplicated": len(keys) - len(set(keys)),
        "latency_ms": quantiles_ms(latencies),
        "kills": "none" if args.no_kills else "worker ingest-0 SIGKILL at 1/3, broker SIGKILL at 2/3",
        "incident_rows": len({k[0] for k in keys}),
        "prefilled": args.prefill,
        "prefill_s": round(filled.seconds, 1),
        "incidents_in_database": incidents_total,
        "queue_page_ms": queue_page_ms(folder, database, args.queue_requests, filtered),
    }


def _produce(
    args: argparse.Namespace,
    broker: MosquittoBroker,
    workers: list[Worker],
    cameras: list[Camera],
    outboxes: dict[str, Outbox],
    publishers: list[Publisher],
    db: Database,
    since: str,
) -> tuple[dict[tuple[str, int], float], float, float]:
    """Poisson events for --seconds (the chaos thread killing a worker and the broker), then wait
    until everything is stored and acknowledged; returns when each event was sent, and how long
    producing and everything stored took."""
    sent_at: dict[tuple[str, int], float] = {}
    rng = random.Random(args.seed)
    rate_per_s = len(cameras) * args.events_per_camera_min / 60.0
    chaos = threading.Thread(target=_chaos, args=(broker, workers, args.seconds), daemon=True)
    if not args.no_kills:
        chaos.start()
    start = time.monotonic()
    next_at = start
    while (now := time.monotonic()) < start + args.seconds:
        if now < next_at:
            time.sleep(min(0.05, next_at - now))
            continue
        next_at += rng.expovariate(rate_per_s)  # Poisson arrivals over the whole fleet
        camera = rng.choice(cameras)
        message = camera.next_event(rng, datetime.now(UTC))
        outboxes[camera.node_id].enqueue(message, T.incident(camera.node_id, camera.camera_id))
        sent_at[(str(message.incident_id), message.seq)] = time.time()
    produced_s = time.monotonic() - start
    for publisher in publishers:
        publisher.notify()
    if chaos.is_alive():
        chaos.join()
    deadline = time.monotonic() + max(60.0, args.ack_timeout_s * 4)
    while time.monotonic() < deadline:
        count = int(db.execute(f"SELECT count(*) {STORED}", [since]).fetchone()[0])
        if count >= len(sent_at) and all(o.unacked()[0] == 0 for o in outboxes.values()):
            break
        time.sleep(0.5)
    return sent_at, produced_s, time.monotonic() - start


def _chaos(broker: MosquittoBroker, workers: list[Worker], seconds: float) -> None:
    """A worker crash at a third of the run, a broker crash at two thirds; both come back."""
    time.sleep(seconds / 3)
    print(f"t={seconds / 3:.0f}s SIGKILL ingest worker 0", flush=True)
    workers[0].kill()
    time.sleep(2)
    workers[0].start()
    time.sleep(max(0.0, seconds / 3 - 2))
    print(f"t={2 * seconds / 3:.0f}s SIGKILL broker", flush=True)
    broker.kill()
    time.sleep(2)
    broker.start()


if __name__ == "__main__":
    main()
