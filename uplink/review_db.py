"""The tables the ingest owns in the review database; review_ui reads them (docs/mqtt.md).

Timestamps are TEXT in one fixed format (uplink.clock.format_utc) so they sort in time order.
"""

from __future__ import annotations

from pathlib import Path

from uplink.database import Database, DatabaseUrl, open_database
from uplink.database.migrations import Migrations
from uplink.sqlite import Synchronous

migrations = Migrations(
    "curbwatch.uplink.review",
    postgres_baseline=Path(__file__).with_name("review_db_postgres.sql"),
    baseline_through="m005_evidence_objects",
)


@migrations()
def m001_ingest_tables(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE incidents (
            incident_id TEXT PRIMARY KEY,
            node_id TEXT NOT NULL,
            camera_id TEXT NOT NULL,
            zone_id TEXT NOT NULL,
            shop_id TEXT NOT NULL,
            shop_name TEXT NOT NULL,
            label TEXT NOT NULL,
            confidence REAL NOT NULL,
            bbox TEXT NOT NULL,            -- JSON [x1, y1, x2, y2], normalised
            objects TEXT NOT NULL,         -- JSON [{label, confidence, bbox}]
            state TEXT NOT NULL CHECK (state IN ('open', 'cleared')),
            first_seen_at TEXT NOT NULL,
            opened_at TEXT,                -- NULL until the 'opened' event arrives
            updated_at TEXT NOT NULL,      -- edge time of the newest event (highest seq)
            cleared_at TEXT,
            last_seq INTEGER NOT NULL,
            evidence_path TEXT,            -- relative to the evidence dir: {incident_id}/{seq}.jpg
            received_at TEXT NOT NULL      -- when the centre first heard of the incident
        );
        CREATE INDEX incidents_state_updated ON incidents(state, updated_at);
        CREATE INDEX incidents_node_camera ON incidents(node_id, camera_id);
        CREATE TABLE incident_events (
            incident_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            event TEXT NOT NULL CHECK (event IN ('opened', 'updated', 'cleared')),
            at TEXT NOT NULL,
            payload TEXT NOT NULL,         -- the message as JSON, evidence data left out
            received_at TEXT NOT NULL,
            PRIMARY KEY (incident_id, seq)
        );
        CREATE TABLE dead_letters (
            id INTEGER PRIMARY KEY,
            topic TEXT NOT NULL,
            received_at TEXT NOT NULL,
            reason TEXT NOT NULL,
            payload BLOB NOT NULL,         -- first 64 KiB only
            payload_size INTEGER NOT NULL
        );
        CREATE TABLE nodes (
            node_id TEXT PRIMARY KEY,
            status TEXT CHECK (status IN ('online', 'offline')),
            health TEXT,                   -- the last NodeHealth JSON
            config_version INTEGER,        -- applied version reported in health
            updated_at TEXT NOT NULL
        );
        CREATE TABLE cameras (
            node_id TEXT NOT NULL,
            camera_id TEXT NOT NULL,
            state TEXT CHECK (state IN ('streaming', 'reconnecting', 'offline')),
            last_frame_at TEXT,
            snapshot_path TEXT,            -- relative to the evidence dir: snapshots/{node}/{camera}.jpg
            updated_at TEXT NOT NULL,
            PRIMARY KEY (node_id, camera_id)
        );
        """
    )


@migrations()
def m002_camera_view(db: Database) -> None:
    # The scene model's view from curbwatch.camera-status/2: the tamper alarm of a camera.
    db.execute(
        "ALTER TABLE cameras ADD COLUMN view TEXT"
        " CHECK (view IN ('learning', 'watching', 'view_changed', 'obstructed'))"
    )


@migrations()
def m003_before_now(db: Database) -> None:
    # curbwatch.incident/2: the zone before (clean background) | now, beside the evidence.
    db.execute("ALTER TABLE incidents ADD COLUMN before_now_path TEXT")


@migrations()
def m004_zone_documents(db: Database) -> None:
    # curbwatch.zones/1: every zone document a camera has run, by its sha256, so the editor can
    # start from what the edge enforces and an old incident is drawn with its own zones;
    # curbwatch.incident/3 names that document on the incident.
    db.executescript(
        """
        CREATE TABLE zone_reports (
            node_id TEXT NOT NULL,
            camera_id TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            source TEXT NOT NULL CHECK (source IN ('file', 'config')),
            path TEXT,                     -- the zone file on the edge box (source 'file')
            config_version INTEGER,        -- source 'config'
            document TEXT,                 -- NULL when the edge could not send it (too long)
            at TEXT NOT NULL,              -- edge time the camera started running it
            received_at TEXT NOT NULL,
            PRIMARY KEY (node_id, camera_id, sha256)
        );
        ALTER TABLE cameras ADD COLUMN zones_sha256 TEXT;  -- the document it runs now
        ALTER TABLE incidents ADD COLUMN zones_sha256 TEXT;
        ALTER TABLE incidents ADD COLUMN zones_config_version INTEGER;
        """
    )


@migrations()
def m005_evidence_objects(db: Database) -> None:
    # curbwatch.incident/3: the objects as numbered in the stored evidence picture, JSON
    # [{label, confidence, bbox}] (tag 1 first); NULL when the picture came without them.
    db.execute("ALTER TABLE incidents ADD COLUMN evidence_objects TEXT")


def open_review_database(where: str | Path | DatabaseUrl, *, synchronous: Synchronous = "FULL") -> Database:
    """Open (creating and migrating if needed) the review database: a SQLite path or URL, or a
    postgresql:// URL (uplink.database)."""
    db = open_database(where, synchronous=synchronous)
    with db.transaction():
        migrations.apply(db)
    return db
