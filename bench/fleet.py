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
import contextlib
import json
import random
import secrets
import shutil
import sqlite3
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
    parser.add_argument(
        "--nodes-per-process",
        type=int,
        default=50,
        help="simulated nodes per process (paho's select() stops at socket 1024: about 140 nodes)",
    )
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
    db = open_database(database)
    shards: list[NodeShard] = []
    try:
        broker.start()
        for worker in workers:
            worker.start()
        rate_per_node = args.cameras * args.events_per_camera_min / 60.0
        for first in range(0, args.nodes, args.nodes_per_process):
            count = min(args.nodes_per_process, args.nodes - first)
            shards.append(NodeShard(args, broker.port, folder, first, count, rate_per_node * count))
        for shard in shards:
            shard.wait_for("ready")
        print(
            f"{len(cameras)} cameras on {args.nodes} nodes ({len(shards)} processes),"
            f" {args.workers} workers, {folder}",
            flush=True,
        )
        since = format_utc(datetime.now(UTC))
        sent_at, produced_s, drained_s = _produce(args, broker, workers, shards, folder, db, since)
        rows = stored(db, since)
        incidents_total = int(db.execute("SELECT count(*) FROM incidents").fetchone()[0])
    finally:
        db.close()
        for shard in shards:
            shard.stop()
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


class NodeShard:
    """A process of simulated nodes (bench.fleet_nodes): `ready`, then `go`, then `produced`."""

    def __init__(
        self, args: argparse.Namespace, port: int, folder: Path, first: int, count: int, rate: float
    ) -> None:
        self.first = first
        self.count = count
        self.folder = folder
        command = [
            *(sys.executable, "-m", "bench.fleet_nodes", "--port", str(port), "--first", str(first)),
            *("--nodes", str(count), "--cameras", str(args.cameras), "--rate", str(rate)),
            *("--seconds", str(args.seconds), "--folder", str(folder), "--seed", str(args.seed)),
            *("--health-s", str(args.health_s), "--ack-timeout-s", str(args.ack_timeout_s)),
        ]
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def wait_for(self, word: str) -> None:
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if line != word:
            raise SystemExit(
                f"node shard {self.first} said {line!r}, not {word!r} (rc {self.process.poll()})"
            )

    def say(self, word: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(word + "\n")
        self.process.stdin.flush()

    def sent_at(self) -> dict[tuple[str, int], float]:
        sent = json.loads((self.folder / f"sent-{self.first}.json").read_text())
        return {(key.split("/")[0], int(key.split("/")[1])): at for key, at in sent.items()}

    def unacked(self) -> int:
        """Rows of this shard's outboxes the centre has not acknowledged (read from the files)."""
        total = 0
        for n in range(self.first, self.first + self.count):
            conn = sqlite3.connect(self.folder / "edge" / f"node-{n:04d}.db", timeout=10)
            try:
                total += conn.execute("SELECT count(*) FROM outbox WHERE acked_at IS NULL").fetchone()[0]
            finally:
                conn.close()
        return total

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(BrokenPipeError, OSError):
                self.say("stop")
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _produce(
    args: argparse.Namespace,
    broker: MosquittoBroker,
    workers: list[Worker],
    shards: list[NodeShard],
    folder: Path,
    db: Database,
    since: str,
) -> tuple[dict[tuple[str, int], float], float, float]:
    """Poisson events for --seconds in every shard (the chaos thread killing a worker and the
    broker), then wait until everything is stored and acknowledged; returns when each event was
    sent, and how long producing and everything stored took."""
    chaos = threading.Thread(target=_chaos, args=(broker, workers, args.seconds), daemon=True)
    start = time.monotonic()
    for shard in shards:
        shard.say("go")
    if not args.no_kills:
        chaos.start()
    for shard in shards:
        shard.wait_for("produced")
    produced_s = time.monotonic() - start
    sent_at = {key: at for shard in shards for key, at in shard.sent_at().items()}
    if chaos.is_alive():
        chaos.join()
    deadline = time.monotonic() + max(60.0, args.ack_timeout_s * 4)
    while time.monotonic() < deadline:
        count = int(db.execute(f"SELECT count(*) {STORED}", [since]).fetchone()[0])
        if count >= len(sent_at) and sum(shard.unacked() for shard in shards) == 0:
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
