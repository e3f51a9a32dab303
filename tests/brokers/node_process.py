"""An edge publisher in its own process, so a test can SIGKILL it and watch the Last Will.

    python -m tests.brokers.node_process HOST PORT PREFIX NODE_ID OUTBOX_PATH [USERNAME PASSWORD]

Prints "connected" once the broker accepted it, then waits to be killed.
"""

from __future__ import annotations

import sys
import threading

from pydantic import SecretStr

from uplink.publisher import Publisher
from uplink.settings import MqttSettings


def main() -> None:
    host, port, prefix, node_id, outbox_path = sys.argv[1], int(sys.argv[2]), *sys.argv[3:6]
    secured = len(sys.argv) > 7
    settings = MqttSettings(
        host=host,
        port=port,
        prefix=prefix,
        client_id=node_id,
        keepalive_s=5,
        username=sys.argv[6] if secured else None,
        password=SecretStr(sys.argv[7]) if secured else None,
    )
    publisher = Publisher(settings, outbox_path, health_interval_s=3600)
    publisher.start()
    if not publisher.wait_connected(10):
        sys.exit("publisher did not connect")
    print("connected", flush=True)
    threading.Event().wait()  # until SIGKILL: no clean shutdown, so the broker fires the will


if __name__ == "__main__":
    main()
