"""Review server latency with a big database: queue page, incident page, verdicts per second.

    .venv/bin/python -m bench.review [--incidents 100000] [--requests 200] [--verdicts 500]
        [--database sqlite|postgresql] [--postgres-server URL] [--keep]

Incidents are bulk-loaded in the ingest's schema (uplink.review_db), 10 % already reviewed,
and grouped into cases as the review server's assigner would have (review_ui.cases, window
24 h), all by `prefill` (which bench.fleet --prefill shares): COPY on PostgreSQL, executemany
on SQLite, the secondary indexes dropped during the load and rebuilt after it. The queue and
incident pages are timed in-process over ASGI (no network), with and without the read indexes
review_ui adds (review_ui.migrations.INCIDENT_INDEXES).
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import shutil
import statistics
import tempfile
import time
import uuid
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from review_ui.auth import Role
from review_ui.clock import iso
from review_ui.config import ReviewConfig
from review_ui.migrations import drop_incident_indexes, ensure_incident_indexes, migrate
from review_ui.service import ReviewServer
from review_ui.shops import ShopIn
from uplink.database import Database
from uplink.database.connection import PostgresDatabase, SqliteDatabase
from uplink.review_db import open_review_database

T0 = datetime(2026, 1, 1, tzinfo=UTC)
INTERVAL_S = 30.0  # between two prefilled incidents: 1 million is about a year
PASSWORD = "queue timing secret 1"  # the policy: 12+ characters, not the user name
POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
CHUNK = 50_000  # incidents generated and written at a time
LOADED = ("incidents", "incident_events", "workflow", "cases", "case_incidents")
INCIDENT_COLUMNS = (
    "incident_id", "node_id", "camera_id", "zone_id", "shop_id", "shop_name", "label", "confidence",
    "bbox", "objects", "state", "first_seen_at", "opened_at", "updated_at", "cleared_at", "last_seq",
    "evidence_path", "received_at",
)  # fmt: skip
EVENT_COLUMNS = ("incident_id", "seq", "event", "at", "payload", "received_at")
WORKFLOW_COLUMNS = ("incident_id", "status", "updated_at", "deadline_at", "opened_at")
CASE_COLUMNS = (
    "id", "shop_id", "first_opened_at", "last_opened_at", "occurrences", "head_incident_id", "decided",
)  # fmt: skip


@dataclass(frozen=True)
class Site:
    """Where a prefilled incident happened and whose it is."""

    node_id: str
    camera_id: str
    zone_id: str
    shop_id: str
    shop_name: str


def review_site(i: int) -> Site:
    """bench.review's spread: 10 nodes, 40 cameras, 120 zones, 500 shops."""
    return Site(f"node-{i % 10}", f"cam-{i % 40:02d}", f"zone-{i % 120}", f"shop-{i % 500}", f"商户{i % 500}")


@dataclass(frozen=True)
class Prefilled:
    ids: list[str]
    cases: int
    seconds: float


@dataclass(slots=True)
class _Case:
    id: int
    shop_id: str
    first_opened_at: str
    last_opened_at: str
    occurrences: int
    head_incident_id: str
    decided: int
    last_t: float  # last_opened_at in seconds after the start

    def row(self) -> tuple[object, ...]:
        return (
            *(self.id, self.shop_id, self.first_opened_at, self.last_opened_at),
            *(self.occurrences, self.head_incident_id, self.decided),
        )


@contextmanager
def scratch_database(
    engine: str, folder: Path, server: str = POSTGRES_SERVER, *, keep: bool = False
) -> Iterator[str]:
    """A bench's review database as a URL: a SQLite file in `folder`, or a new PostgreSQL database
    on `server` (C collation, as tests/support/database.py: text sorts as bytes, as on SQLite),
    dropped afterwards unless `keep`."""
    if engine == "sqlite":
        yield f"sqlite:///{folder / 'review.db'}"
        return
    import psycopg

    name = f"curbwatch_bench_{secrets.token_hex(6)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'")
    try:
        yield urlsplit(server)._replace(path=f"/{name}").geturl()
    finally:
        if not keep:
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def prefill(
    where: str | Path,
    n: int,
    *,
    site: Callable[[int], Site] = review_site,
    start: datetime = T0,
    interval_s: float = INTERVAL_S,
    window_h: float = 24.0,
) -> Prefilled:
    """Migrate the review database (the ingest's tables and the review server's) and load `n`
    historical incidents into it, one every `interval_s` from `start`; then rebuild the indexes
    and, on PostgreSQL, VACUUM ANALYZE (what autovacuum gives a database that grew by itself;
    a SQLite deployment never runs ANALYZE, so neither does this)."""
    began = time.perf_counter()
    db = open_review_database(where, synchronous="NORMAL")
    try:
        migrate(db)
        if n == 0:
            return Prefilled([], 0, time.perf_counter() - began)
        if isinstance(db, PostgresDatabase):
            db.execute("SET maintenance_work_mem = '512MB'")
        with db.transaction():
            indexes = _drop_secondary_indexes(db, LOADED)
            ids, cases = populate(db, n, site=site, start=start, interval_s=interval_s, window_h=window_h)
            for sql in indexes:
                db.execute(sql)
        if isinstance(db, PostgresDatabase):
            db.execute(f"VACUUM (ANALYZE) {', '.join(LOADED)}")
    finally:
        db.close()
    return Prefilled(ids, cases, time.perf_counter() - began)


def populate(
    db: Database,
    n: int,
    *,
    site: Callable[[int], Site] = review_site,
    start: datetime = T0,
    interval_s: float = INTERVAL_S,
    window_h: float = 24.0,
    with_cases: bool = True,
) -> tuple[list[str], int]:
    """Write incidents (every third cleared), their `opened` events, a rejected verdict's
    workflow row for every tenth, and their cases, inside the caller's transaction on a migrated
    database; returns the incident ids and how many cases were made (none without `with_cases`:
    then the review server's assigner makes them).

    Cases follow review_ui.cases.assign_new for incidents stored in time order: an undecided
    incident joins its shop's newest case when that case is undecided and opened within
    `window_h`; a decided one (or any, with window 0) starts its own."""
    rng = random.Random(7)
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(n)]
    first_case = int(db.execute("SELECT COALESCE(max(id), 0) FROM cases").fetchone()[0]) + 1
    cases: list[_Case] = []
    newest: dict[str, _Case] = {}  # shop -> its newest case
    case_of = array("q")  # incident i's case id
    window_s = window_h * 3600
    for begin in range(0, n, CHUNK):
        incidents, events, workflow = [], [], []
        for i in range(begin, min(n, begin + CHUNK)):
            iid, place, t = ids[i], site(i), i * interval_s
            at = iso(start + timedelta(seconds=t))
            decided = i % 10 == 0
            incidents.append(
                (
                    *(iid, place.node_id, place.camera_id, place.zone_id, place.shop_id, place.shop_name),
                    *("chair", 0.8, "[0.1, 0.5, 0.3, 0.9]", "[]", "open" if i % 3 else "cleared"),
                    *(at, at, at, None, 0, None, at),
                )
            )
            events.append((iid, 0, "opened", at, "{}", at))
            if decided:
                workflow.append((iid, "rejected", at, None, at))
            case = newest.get(place.shop_id)
            if window_h > 0 and not decided and case and not case.decided and t - case.last_t <= window_s:
                case.last_opened_at, case.head_incident_id, case.last_t = at, iid, t
                case.occurrences += 1
            else:
                case = _Case(first_case + len(cases), place.shop_id, at, at, 1, iid, int(decided), t)
                newest[place.shop_id] = case
                cases.append(case)
            case_of.append(case.id)
        _write(db, "incidents", INCIDENT_COLUMNS, incidents)
        _write(db, "incident_events", EVENT_COLUMNS, events)
        _write(db, "workflow", WORKFLOW_COLUMNS, workflow)
    if not with_cases:
        return ids, 0
    _write(db, "cases", CASE_COLUMNS, (case.row() for case in cases))
    _write(db, "case_incidents", ("incident_id", "case_id"), zip(ids, case_of, strict=True))
    if isinstance(db, PostgresDatabase):  # explicit ids: the identity must continue after them
        db.execute("SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT max(id) FROM cases))")
    # Every incident has its case: the assigner carries on after the newest.
    db.execute("UPDATE case_progress SET last_rowid = (SELECT max(rowid) FROM incidents) WHERE id = 1")
    return ids, len(cases)


def _write(db: Database, table: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    if isinstance(db, PostgresDatabase):
        with (
            db.conn.cursor() as cursor,
            cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
    elif isinstance(db, SqliteDatabase):
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        db.conn.executemany(sql, rows)
    else:
        raise TypeError(f"no bulk load for {type(db).__name__}")


def _drop_secondary_indexes(db: Database, tables: Sequence[str]) -> list[str]:
    """Drop the indexes of `tables` that back no key (a key checks every row of the load anyway);
    returns the statements that create them again."""
    if isinstance(db, PostgresDatabase):
        rows = db.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
            " AND tablename = ANY(?) AND indexname NOT IN (SELECT conname FROM pg_constraint)",
            [list(tables)],
        ).fetchall()
    else:
        rows = db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            f" AND tbl_name IN ({', '.join('?' * len(tables))})",
            list(tables),
        ).fetchall()
    for name, _sql in rows:
        db.execute(f"DROP INDEX {name}")
    return [sql for _name, sql in rows]


def timed(client: TestClient, urls: list[str]) -> tuple[float, float]:
    samples = []
    for url in urls:
        start = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def log_in(client: TestClient) -> None:
    """As the `bench` inspector (create it first)."""
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    client.post("/login", data={"username": "bench", "password": PASSWORD, "csrf_token": token})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--verdicts", type=int, default=500)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--postgres-server",
        default=POSTGRES_SERVER,
        help="with --database postgresql: the server a scratch database is created on (C collation)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the folder and the database afterwards")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="curbwatch-bench-"))
    try:
        with scratch_database(args.database, folder, args.postgres_server, keep=args.keep) as url:
            run(args, folder, url)
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def run(args: argparse.Namespace, folder: Path, url: str) -> None:
    (folder / "secret.key").write_text(secrets.token_hex(32))
    config = ReviewConfig.model_validate(
        {
            "database_url": url,
            "evidence_dir": folder / "evidence",
            "secret_key_file": folder / "secret.key",
        }
    )
    filled = prefill(url, args.incidents)
    server = ReviewServer(config)
    print(f"populated {args.incidents} incidents in {filled.seconds:.1f} s ({config.database});")
    print(f"  {filled.cases} cases")
    server.accounts.create_user("bench", PASSWORD, Role.INSPECTOR, "bench")
    for n in range(500):
        server.context.shops.create(
            ShopIn(
                id=f"shop-{n}",
                name=f"商户{n}",
                channel="email",
                target=f"s{n}@shop.example",
            ),
            "bench",
        )
    rng = random.Random(1)
    queue_urls = [
        "/queue",
        "/queue?camera=cam-07",
        "/queue?shop=shop-42&status=",
        "/queue?status=rejected",
        "/queue?zone=zone-3&from=2026-01-05",
        "/queue?page=3",
    ]
    with TestClient(server.app, base_url="https://bench") as client:
        log_in(client)
        csrf = client.get("/queue").text.split('data-csrf="')[1].split('"')[0]
        results = {}
        for label in ("with indexes", "without indexes"):
            with server.store.write() as db:
                (ensure_incident_indexes if label == "with indexes" else drop_incident_indexes)(db)
            urls = [queue_urls[i % len(queue_urls)] for i in range(args.requests)]
            results[f"queue page, {label}"] = timed(client, urls)
            results[f"queue page unfiltered, {label}"] = timed(client, ["/queue"] * (args.requests // 2))
            results[f"incident page, {label}"] = timed(
                client, [f"/incidents/{rng.choice(filled.ids)}" for _ in range(args.requests)]
            )
        with server.store.write() as db:
            ensure_incident_indexes(db)
        # Case heads waiting for a verdict (one verdict decides the whole case).
        pending = [
            r[0]
            for r in server.store.read().execute(
                "SELECT c.head_incident_id FROM cases c LEFT JOIN workflow w"
                " ON w.incident_id = c.head_incident_id WHERE w.incident_id IS NULL ORDER BY c.id LIMIT ?",
                [args.verdicts],
            )
        ]
        start = time.perf_counter()
        for n, iid in enumerate(pending):
            verdict = (
                {"verdict": "confirmed", "cleared_action": "remind"}  # some are cleared already
                if n % 2
                else {"verdict": "rejected", "reason": "permitted"}
            )
            response = client.post(
                f"/api/v1/incidents/{iid}/verdict", json=verdict, headers={"X-CSRF-Token": csrf}
            )
            assert response.status_code == 200, response.text
        elapsed = time.perf_counter() - start
    print(f"{'measure':45s} {'p50 ms':>8s} {'p95 ms':>8s}")
    for name, (p50, p95) in results.items():
        print(f"{name:45s} {p50:8.1f} {p95:8.1f}")
    print(
        f"case verdicts via API (half confirm + reminder row): {len(pending) / elapsed:.0f} /s "
        f"({len(pending)} in {elapsed:.2f} s)"
    )
    print(json.dumps({k: {"p50_ms": round(v[0], 1), "p95_ms": round(v[1], 1)} for k, v in results.items()}))
    server.store.close()


if __name__ == "__main__":
    main()
