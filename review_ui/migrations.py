"""The review server's own tables, as the named migration set `review_ui`.

The incident tables (incidents, incident_events, nodes, cameras, dead_letters) belong to the
uplink ingest; we only add read indexes to them (`ensure_incident_indexes`), idempotently,
because the ingest may create its tables after our migrations ran.
"""

from __future__ import annotations

from pathlib import Path

from uplink.database import Database
from uplink.database.migrations import Migrations

migrations = Migrations(
    "review_ui",
    postgres_baseline=Path(__file__).with_name("schema_postgres.sql"),
    baseline_through="m010_verdict_username",
)


@migrations()
def m001_users_sessions(db: Database) -> None:
    db.execute(
        """CREATE TABLE users (
            username TEXT PRIMARY KEY,
            password_hash TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('admin', 'inspector', 'viewer')),
            locale TEXT,
            active INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL)"""
    )
    db.execute(
        """CREATE TABLE sessions (
            token_hash TEXT PRIMARY KEY,
            username TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
            csrf_token TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL)"""
    )
    db.execute(
        """CREATE TABLE api_tokens (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            username TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            revoked_at TEXT)"""
    )


@migrations()
def m002_shops(db: Database) -> None:
    db.execute(
        """CREATE TABLE shops (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            address TEXT NOT NULL DEFAULT '',
            operator TEXT NOT NULL DEFAULT '',
            contact TEXT NOT NULL DEFAULT '',
            channel TEXT NOT NULL CHECK (channel IN ('email', 'webhook', 'mqtt')),
            target TEXT NOT NULL,
            locale TEXT NOT NULL DEFAULT 'zh-CN')"""
    )


@migrations()
def m003_review(db: Database) -> None:
    db.execute(
        """CREATE TABLE verdicts (
            id INTEGER PRIMARY KEY,
            incident_id TEXT NOT NULL,
            verdict TEXT NOT NULL CHECK (verdict IN ('confirmed', 'rejected')),
            reason TEXT CHECK (reason IS NULL OR reason IN
                ('wrong_object', 'permitted', 'not_on_sidewalk', 'detector_error', 'other')),
            note TEXT NOT NULL DEFAULT '',
            user TEXT NOT NULL,
            at TEXT NOT NULL)"""
    )
    db.execute("CREATE INDEX verdicts_incident ON verdicts(incident_id)")
    db.execute(
        """CREATE TABLE workflow (
            incident_id TEXT PRIMARY KEY,
            status TEXT NOT NULL CHECK (status IN
                ('pending', 'confirmed', 'reminded', 'rectified', 'escalated', 'rejected')),
            updated_at TEXT NOT NULL,
            deadline_at TEXT)"""
    )
    db.execute("CREATE INDEX workflow_status ON workflow(status)")
    db.execute("CREATE INDEX workflow_updated ON workflow(updated_at)")
    db.execute(
        """CREATE TABLE reminders (
            id INTEGER PRIMARY KEY,
            incident_id TEXT NOT NULL,
            shop_id TEXT NOT NULL,
            channel TEXT NOT NULL CHECK (channel IN ('email', 'webhook', 'mqtt')),
            target TEXT NOT NULL,
            locale TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            last_error TEXT,
            deadline_at TEXT NOT NULL,
            created_at TEXT NOT NULL,
            sent_at TEXT)"""
    )
    db.execute("CREATE INDEX reminders_due ON reminders(status, next_attempt_at)")
    db.execute("CREATE INDEX reminders_incident ON reminders(incident_id)")
    db.execute(
        """CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            who TEXT NOT NULL,
            what TEXT NOT NULL,
            target TEXT NOT NULL DEFAULT '',
            at TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}',
            ip TEXT NOT NULL DEFAULT '')"""
    )
    db.execute(
        """CREATE TABLE zone_configs (
            id INTEGER PRIMARY KEY,
            node_id TEXT NOT NULL,
            camera_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            document TEXT NOT NULL,
            published_at TEXT NOT NULL,
            published_by TEXT NOT NULL,
            applied_at TEXT,
            UNIQUE (node_id, camera_id, version))"""
    )


@migrations()
def m004_workflow_opened_at(db: Database) -> None:
    """A copy of the incident's opened_at, so a status view sorts on one index (status, opened_at)."""
    db.execute("ALTER TABLE workflow ADD COLUMN opened_at TEXT")
    if "incidents" in db.table_names():
        db.execute(
            "UPDATE workflow SET opened_at = (SELECT COALESCE(i.opened_at, i.first_seen_at)"
            " FROM incidents i WHERE i.incident_id = workflow.incident_id)"
        )
    db.execute("CREATE INDEX workflow_status_opened ON workflow(status, opened_at)")


@migrations()
def m005_cases(db: Database) -> None:
    """Repeat incidents of one shop grouped into one case (review_ui.cases); `head` is the newest."""
    db.execute(
        """CREATE TABLE cases (
            id INTEGER PRIMARY KEY,
            shop_id TEXT NOT NULL,
            first_opened_at TEXT NOT NULL,
            last_opened_at TEXT NOT NULL,
            occurrences INTEGER NOT NULL,
            head_incident_id TEXT NOT NULL)"""
    )
    db.execute("CREATE INDEX cases_shop ON cases(shop_id, last_opened_at)")
    db.execute(
        """CREATE TABLE case_incidents (
            incident_id TEXT PRIMARY KEY,
            case_id INTEGER NOT NULL REFERENCES cases(id))"""
    )
    db.execute("CREATE INDEX case_incidents_case ON case_incidents(case_id)")


@migrations()
def m006_reminder_channels(db: Database) -> None:
    """SMS for shops; group robots and the city's case system for the escalation ladder.

    SQLite cannot alter a CHECK, so both tables are rebuilt. A reminder row now names its ladder
    `step` and keeps what the provider answered (`provider_ref`: SMS BizId / SerialNo, the case
    number) and the SMS delivery receipt; `deadline_at` is empty for inspector notices."""
    db.execute(
        """CREATE TABLE shops_new (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            address TEXT NOT NULL DEFAULT '',
            operator TEXT NOT NULL DEFAULT '',
            contact TEXT NOT NULL DEFAULT '',
            channel TEXT NOT NULL CHECK (channel IN ('email', 'webhook', 'mqtt', 'sms')),
            target TEXT NOT NULL,
            locale TEXT NOT NULL DEFAULT 'zh-CN')"""
    )
    db.execute(
        "INSERT INTO shops_new (id, name, address, operator, contact, channel, target, locale)"
        " SELECT id, name, address, operator, contact, channel, target, locale FROM shops"
    )
    db.execute("DROP TABLE shops")
    db.execute("ALTER TABLE shops_new RENAME TO shops")
    db.execute(
        """CREATE TABLE reminders_new (
            id INTEGER PRIMARY KEY,
            incident_id TEXT NOT NULL,
            shop_id TEXT NOT NULL,
            channel TEXT NOT NULL CHECK (channel IN
                ('email', 'webhook', 'mqtt', 'sms', 'wecom', 'dingtalk', 'case_push')),
            target TEXT NOT NULL,
            locale TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            last_error TEXT,
            deadline_at TEXT NOT NULL,
            created_at TEXT NOT NULL,
            sent_at TEXT,
            step TEXT NOT NULL DEFAULT 'reminder' CHECK (step IN
                ('reminder', 'second_reminder', 'inspector_group', 'case_push', 'new_incident')),
            provider_ref TEXT,
            delivery TEXT CHECK (delivery IS NULL OR delivery IN ('delivered', 'undelivered')),
            delivery_detail TEXT,
            delivered_at TEXT,
            receipt_checked_at TEXT)"""
    )
    db.execute(
        "INSERT INTO reminders_new (id, incident_id, shop_id, channel, target, locale, status, attempts,"
        " next_attempt_at, last_error, deadline_at, created_at, sent_at)"
        " SELECT id, incident_id, shop_id, channel, target, locale, status, attempts, next_attempt_at,"
        " last_error, deadline_at, created_at, sent_at FROM reminders"
    )
    db.execute("DROP TABLE reminders")
    db.execute("ALTER TABLE reminders_new RENAME TO reminders")
    db.execute("CREATE INDEX reminders_due ON reminders(status, next_attempt_at)")
    db.execute("CREATE INDEX reminders_incident ON reminders(incident_id, step)")
    db.execute("CREATE INDEX reminders_shop_sent ON reminders(shop_id, channel, sent_at)")


@migrations()
def m007_fixture_proposals(db: Database) -> None:
    """A rejected object proposed as a fixture of its zone (review_ui.proposals)."""
    db.execute(
        """CREATE TABLE fixture_proposals (
            id INTEGER PRIMARY KEY,
            incident_id TEXT NOT NULL,
            node_id TEXT NOT NULL,
            camera_id TEXT NOT NULL,
            zone_id TEXT NOT NULL,
            fixtures TEXT NOT NULL,         -- JSON [{"class", "box": [x1, y1, x2, y2] normalised}]
            proposed_by TEXT NOT NULL,
            proposed_at TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'dismissed')),
            decided_by TEXT,
            decided_at TEXT,
            zone_version INTEGER)"""
    )
    db.execute("CREATE INDEX fixture_proposals_camera ON fixture_proposals(node_id, camera_id, status)")


@migrations()
def m008_case_waiting(db: Database) -> None:
    """The queue of cases waiting for a verdict along one index, and the assigner's progress.

    `decided` is kept by review.Reviewer (verdict: 1, undo: 0); `case_progress.last_rowid` is the
    newest incident rowid every incident up to which has a case, shared by all review processes."""
    db.execute("ALTER TABLE cases ADD COLUMN decided INTEGER NOT NULL DEFAULT 0")
    db.execute("UPDATE cases SET decided = 1 WHERE head_incident_id IN (SELECT incident_id FROM workflow)")
    db.execute("CREATE INDEX cases_waiting ON cases(decided, last_opened_at, id)")
    db.execute(
        "CREATE TABLE case_progress (id INTEGER PRIMARY KEY CHECK (id = 1), last_rowid INTEGER NOT NULL)"
    )
    last = 0
    if "incidents" in db.table_names():
        last = db.execute(
            "SELECT COALESCE(max(i.rowid), 0) FROM incidents i JOIN case_incidents ci"
            " ON ci.incident_id = i.incident_id"
        ).fetchone()[0]
        unassigned = db.execute(
            "SELECT min(i.rowid) FROM incidents i LEFT JOIN case_incidents ci"
            " ON ci.incident_id = i.incident_id WHERE ci.incident_id IS NULL"
        ).fetchone()[0]
        if unassigned is not None:
            last = min(last, unassigned - 1)
    db.execute("INSERT INTO case_progress (id, last_rowid) VALUES (1, ?)", [last])


@migrations()
def m009_case_heads(db: Database) -> None:
    """A filtered queue finds incidents first (camera, zone, shop), then whether each heads a case."""
    db.execute("CREATE INDEX cases_head ON cases(head_incident_id)")


@migrations()
def m010_verdict_username(db: Database) -> None:
    """`user` is a reserved word in PostgreSQL (unquoted it reads the session's user)."""
    db.execute("ALTER TABLE verdicts RENAME COLUMN user TO username")


@migrations()
def m011_shared_state(db: Database) -> None:
    """What several review processes on one database must share (docs/postgresql.md): who runs
    the background work (review_ui.leases) and the failed logins the limiter counts."""
    db.execute("CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at TEXT NOT NULL)")
    db.execute(
        "CREATE TABLE login_failures (kind TEXT NOT NULL CHECK (kind IN ('user', 'ip')),"
        " subject TEXT NOT NULL, at TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX login_failures_subject ON login_failures(kind, subject, at)")
    db.execute("CREATE INDEX login_failures_at ON login_failures(at)")


INCIDENT_INDEXES = {
    "review_incidents_opened": "incidents(opened_at, incident_id)",
    "review_incidents_shop": "incidents(shop_id, opened_at)",
    "review_incidents_camera": "incidents(camera_id, opened_at)",
    "review_incidents_zone": "incidents(zone_id, opened_at)",
    "review_incidents_received": "incidents(received_at)",  # new-incident notices (reminders.ladder)
    "review_events_received": "incident_events(received_at)",
}


def ensure_incident_indexes(db: Database) -> None:
    """Read indexes on the ingest's incidents table; a no-op until that table exists."""
    tables = set(db.table_names())
    for name, target in INCIDENT_INDEXES.items():
        if target.split("(")[0] not in tables:
            continue
        db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {target}")


def drop_incident_indexes(db: Database) -> None:
    """For the benchmark's with/without comparison."""
    for name in INCIDENT_INDEXES:
        db.execute(f"DROP INDEX IF EXISTS {name}")


def migrate(db: Database) -> None:
    with db.transaction():
        migrations.apply(db)
        ensure_incident_indexes(db)
