"""The review database on SQLite (one box, the demo) or PostgreSQL (a centre past one machine).

Code above this package writes one SQL: `?` or `:name` placeholders, and only what both
engines run (SQLite >= 3.35: ON CONFLICT ... DO UPDATE, RETURNING, FILTER, IS NOT DISTINCT
FROM). `open_database` takes a path or a URL (`sqlite:///path`, `postgresql://...`).
"""

from uplink.database.connection import Cursor, Database, open_database
from uplink.database.url import DatabaseUrl, parse_url

__all__ = ["Cursor", "Database", "DatabaseUrl", "open_database", "parse_url"]
