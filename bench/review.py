"""Review server latency with a big database: queue page, incident page, verdicts per second.

    .venv/bin/python -m bench.review [--incidents 100000] [--requests 200] [--verdicts 500]

Incidents are bulk-inserted in the ingest's schema (uplink.review_db), 10 % already reviewed,
then grouped into cases as the review server does (review_ui.cases, window 24 h).
The queue and incident pages are timed in-process over ASGI (no network), with and without the
read indexes review_ui adds (review_ui.migrations.INCIDENT_INDEXES).
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from review_ui.auth import Role
from review_ui.clock import iso
from review_ui.config import ReviewConfig
from review_ui.migrations import drop_incident_indexes, ensure_incident_indexes
from review_ui.service import ReviewServer
from review_ui.shops import ShopIn
from uplink.review_db import open_review_database

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PASSWORD = "queue timing secret 1"  # the policy: 12+ characters, not the user name


def populate(db_path: Path, n: int) -> list[str]:
    db = open_review_database(db_path, synchronous="OFF")
    rng = random.Random(7)
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(n)]
    incidents, events, workflow = [], [], []
    for i, iid in enumerate(ids):
        at = iso(T0 + timedelta(seconds=30 * i))
        camera = f"cam-{i % 40:02d}"
        incidents.append(
            {
                "incident_id": iid,
                "node_id": f"node-{i % 10}",
                "camera_id": camera,
                "zone_id": f"zone-{i % 120}",
                "shop_id": f"shop-{i % 500}",
                "shop_name": f"商户{i % 500}",
                "label": "chair",
                "confidence": 0.8,
                "bbox": "[0.1, 0.5, 0.3, 0.9]",
                "objects": "[]",
                "state": "open" if i % 3 else "cleared",
                "first_seen_at": at,
                "opened_at": at,
                "updated_at": at,
                "cleared_at": None,
                "last_seq": 0,
                "evidence_path": None,
                "received_at": at,
            }
        )
        events.append(
            {"incident_id": iid, "seq": 0, "event": "opened", "at": at, "payload": "{}", "received_at": at}
        )
        if i % 10 == 0:
            workflow.append(
                {
                    "incident_id": iid,
                    "status": "rejected",
                    "updated_at": at,
                    "deadline_at": None,
                    "opened_at": at,
                }
            )
    with db.atomic():
        db["incidents"].insert_all(incidents, batch_size=2000)
        db["incident_events"].insert_all(events, batch_size=2000)
    db.close()
    return ids, workflow  # type: ignore[return-value]


def timed(client: TestClient, urls: list[str]) -> tuple[float, float]:
    samples = []
    for url in urls:
        start = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--verdicts", type=int, default=500)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="curbwatch-bench-"))
    (folder / "secret.key").write_text(secrets.token_hex(32))
    config = ReviewConfig.model_validate(
        {
            "db_path": folder / "review.db",
            "evidence_dir": folder / "evidence",
            "secret_key_file": folder / "secret.key",
        }
    )
    start = time.perf_counter()
    ids, workflow = populate(config.db_path, args.incidents)  # type: ignore[misc]
    server = ReviewServer(config)
    with server.store.write() as db:
        db["workflow"].insert_all(workflow, batch_size=2000)
    cases = 0
    while assigned := server.cases.run_once():  # a shop's repeats within cases.window_h: one case
        cases += assigned
    case_rows = server.store.read().execute("SELECT count(*) FROM cases").fetchone()[0]
    print(f"populated {args.incidents} incidents in {time.perf_counter() - start:.1f} s ({folder});")
    print(f"  {cases} assigned to {case_rows} cases")
    server.accounts.create_user("bench", PASSWORD, Role.INSPECTOR, "bench")
    for n in range(500):
        server.context.shops.create(
            ShopIn(
                id=f"shop-{n}",
                name=f"商户{n}",
                channel="email",  # type: ignore[arg-type]
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
        page = client.get("/login")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        client.post("/login", data={"username": "bench", "password": PASSWORD, "csrf_token": token})
        csrf = client.get("/queue").text.split('data-csrf="')[1].split('"')[0]
        results = {}
        for label in ("with indexes", "without indexes"):
            with server.store.write() as db:
                (ensure_incident_indexes if label == "with indexes" else drop_incident_indexes)(db)
            urls = [queue_urls[i % len(queue_urls)] for i in range(args.requests)]
            results[f"queue page, {label}"] = timed(client, urls)
            results[f"queue page unfiltered, {label}"] = timed(client, ["/queue"] * (args.requests // 2))
            results[f"incident page, {label}"] = timed(
                client, [f"/incidents/{rng.choice(ids)}" for _ in range(args.requests)]
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
