"""A publisher in its own process, so tests can kill it with SIGKILL (crash, Last Will).

    python -m tests.uplink.publisher_process PORT NODE_ID OUTBOX_PATH [WINDOW]

Prints "connected" once the broker accepted it, then drains until killed.
"""

from __future__ import annotations

import logging
import sys
import threading

from uplink.publisher import Publisher
from uplink.settings import MqttSettings


def main() -> None:
    port, node_id, outbox_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    window = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    logging.basicConfig(level=logging.WARNING)
    settings = MqttSettings(port=port, client_id=node_id, keepalive_s=5)
    publisher = Publisher(settings, outbox_path, window=window, health_interval_s=3600)
    publisher.start()
    if not publisher.wait_connected(10):
        sys.exit("publisher did not connect")
    print("connected", flush=True)
    threading.Event().wait()  # until SIGKILL: no clean shutdown on purpose


if __name__ == "__main__":
    main()
