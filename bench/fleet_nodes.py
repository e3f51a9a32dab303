"""One shard of bench.fleet's simulated edge nodes, in its own process.

    python -m bench.fleet_nodes --port P --first 0 --nodes 50 --cameras 4 --rate 16.7 --seconds 300 --folder F

Real edge nodes are one process each; the simulation packs them into shards because paho's
network loop uses select(), which cannot watch a socket numbered past 1024, and 250 nodes in one
process (two SQLite outbox connections of three files each, plus a socket, per node) go past
it: a quarter of the nodes then never connected and their events counted as lost.

Protocol on stdin/stdout (one line each): prints `ready` once every node is connected, waits
for `go`, produces Poisson events at --rate for --seconds, writes {incident_id/seq: sent time}
to F/sent-<first>.json and prints `produced`; on `stop` (or end of stdin) stops its nodes.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.fleet import Camera, T
from uplink.outbox import Outbox
from uplink.publisher import Publisher
from uplink.settings import MqttSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--first", type=int, required=True, help="number of this shard's first node")
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--cameras", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True, help="events per second over this shard")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--health-s", type=float, default=30.0)
    parser.add_argument("--ack-timeout-s", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    node_ids = [f"node-{n:04d}" for n in range(args.first, args.first + args.nodes)]
    cameras = [Camera(node_id, f"cam-{c:02d}") for node_id in node_ids for c in range(args.cameras)]
    edge = args.folder / "edge"
    edge.mkdir(parents=True, exist_ok=True)
    publishers = [
        Publisher(
            MqttSettings(port=args.port, client_id=node_id, keepalive_s=10, reconnect_max_s=2),
            edge / f"{node_id}.db",
            health_interval_s=args.health_s,
            ack_timeout_s=args.ack_timeout_s,
            resend_check_s=1.0,
        )
        for node_id in node_ids
    ]
    outboxes = {node_id: Outbox(edge / f"{node_id}.db") for node_id in node_ids}
    by_node = dict(zip(node_ids, publishers, strict=True))
    for publisher in publishers:
        publisher.start()
    try:
        if not all(publisher.wait_connected(60) for publisher in publishers):
            raise SystemExit(f"shard {args.first}: not every node connected within 60 s")
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            return
        sent_at = produce(args, cameras, outboxes, by_node)
        (args.folder / f"sent-{args.first}.json").write_text(json.dumps(sent_at))
        print("produced", flush=True)
        sys.stdin.readline()  # `stop`, or the parent went away
    finally:
        for publisher in publishers:
            publisher.stop(flush_timeout_s=1)
        for outbox in outboxes.values():
            outbox.close()


def produce(
    args: argparse.Namespace,
    cameras: list[Camera],
    outboxes: dict[str, Outbox],
    publishers: dict[str, Publisher],
) -> dict[str, float]:
    rng = random.Random(args.seed * 100_003 + args.first)
    sent_at: dict[str, float] = {}
    start = time.monotonic()
    next_at = start
    while (now := time.monotonic()) < start + args.seconds:
        if now < next_at:
            time.sleep(min(0.05, next_at - now))
            continue
        next_at += rng.expovariate(args.rate)  # Poisson arrivals over the shard
        camera = rng.choice(cameras)
        message = camera.next_event(rng, datetime.now(UTC))
        outboxes[camera.node_id].enqueue(message, T.incident(camera.node_id, camera.camera_id))
        publishers[camera.node_id].notify()  # as the edge's logic does after each event
        sent_at[f"{message.incident_id}/{message.seq}"] = time.time()
    return sent_at


if __name__ == "__main__":
    main()
