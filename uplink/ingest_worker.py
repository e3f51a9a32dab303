"""One ingest worker as its own process, for running several on one database and broker.

    python -m uplink.ingest_worker --db review.db --evidence-dir evidence \\
        --client-id ingest-1 --shared-group ingest [--host H] [--port P] [--prefix P]

Each worker needs its own client id (its persistent session); workers with the same
--shared-group split the stream. Prints "subscribed" once the broker granted the subscriptions;
SIGTERM commits and acknowledges what it received, then exits.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from pydantic import ValidationError

from uplink.ingest_service import IngestService
from uplink.settings import MqttSettings
from uplink.topics import DEFAULT_PREFIX


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m uplink.ingest_worker", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--db", required=True, help="review database: a SQLite path or a postgresql:// URL")
    parser.add_argument("--evidence-dir", required=True, help="where evidence JPEGs are written")
    parser.add_argument("--client-id", required=True, help="this worker's MQTT client id (one per worker)")
    parser.add_argument("--shared-group", default=None, help="$share group; omit for a single ingest")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--prefix", default=DEFAULT_PREFIX)
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        settings = MqttSettings.model_validate(
            {
                "host": args.host,
                "port": args.port,
                "prefix": args.prefix,
                "client_id": args.client_id,
                "shared_group": args.shared_group,
                "keepalive_s": 5,
                "reconnect_max_s": 2,
            }
        )
    except ValidationError as exc:
        parser.error(f"invalid settings: {exc}")  # exits with status 2
    service = IngestService(settings, args.db, args.evidence_dir, synchronous=args.synchronous)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    service.start()
    if not service.wait_subscribed(30):
        sys.stderr.write("not subscribed within 30 s (refused? see the log)\n")
        service.stop()
        return 1
    sys.stdout.write("subscribed\n")  # the line a supervisor or a test waits for
    sys.stdout.flush()
    stop.wait()
    service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
