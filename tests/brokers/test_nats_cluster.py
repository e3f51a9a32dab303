"""A clustered centre: three nats-server 2.9 members with JetStream and the MQTT gateway, each on
deploy/brokers/nats-cluster.conf as written (addresses, ports, paths and secrets swapped), TLS and
per-node permissions included. The edge node reaches the cluster through a stand-in for the load
balancer (the Publisher dials one host); the ingest is on another member (docs/deploy.md,
"Brokers for a city")."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.brokers.city import Edge, config, dead_letters, incidents, keys, start_ingest, stored_events
from tests.support.forwarder import FirstAlive
from tests.support.nats_cluster import CENTRE_USER, NODE_USER, NatsCluster, password_of
from tests.support.tls import Certificates, make_certificates
from tests.uplink.helpers import wait_until
from uplink.config_publish import publish_config
from uplink.settings import MqttSettings, TlsSettings


@dataclass
class Cluster:
    nats: NatsCluster
    certs: Certificates

    def settings(self, port: int, user: str, client_id: str | None = None) -> MqttSettings:
        return MqttSettings(
            host="127.0.0.1",
            port=port,
            client_id=client_id or user,
            username=user,
            password=SecretStr(password_of(user)),
            tls=TlsSettings(ca_file=self.certs.ca_file),
            keepalive_s=5,
            reconnect_max_s=1,
        )


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    certs = make_certificates(tmp_path / "tls")
    nats = NatsCluster(tmp_path / "nats", certs)
    nats.start()
    try:
        yield Cluster(nats, certs)
    finally:
        nats.stop()


def test_a_member_dies_under_a_node_and_nothing_is_lost(cluster: Cluster, tmp_path: Path) -> None:
    """What this does not assert: that acks and configs reach the node again after the failover.
    A node or ingest that re-subscribes during JetStream's election gets a failed SUBACK and asks
    again every 2 s (uplink.publisher, uplink.ingest_service); how long the election takes varies
    with the machine's load. Each event is stored once, which is what is asserted."""
    first, second, third = cluster.nats.members
    db_path = tmp_path / "review.db"
    ingest = start_ingest(cluster.settings(third.port, CENTRE_USER, "review-ingest"), tmp_path)
    review = cluster.settings(third.port, CENTRE_USER, "review-config")
    publish_config(review, NODE_USER, config(NODE_USER, 1))
    balancer = FirstAlive([(first.host, first.port), (second.host, second.port)])
    edge = Edge.start(cluster.settings(balancer.port, NODE_USER), tmp_path / "edge", ack_timeout_s=3)
    before, during = incidents(NODE_USER, 10), incidents(NODE_USER, 10)
    in_flight = incidents(NODE_USER, 40, updates=2)
    try:
        assert balancer.served == [first.port]
        # Retained on the cluster, published on another member than the node's.
        assert edge.configs.get(timeout=15).version == 1
        edge.send(before)
        wait_until(edge.all_acknowledged, 20, "the first events stored and their acks back")
        assert stored_events(db_path) == keys(before)

        edge.send(in_flight)
        wait_until(lambda: edge.publisher.stats().acknowledged >= len(before) + 30, 10, "under way", 0.005)
        first.kill()
        edge.send(during)
        wait_until(lambda: balancer.served[-1] == second.port, 25, "the node on the second member")
        everything = before + in_flight + during
        wait_until(lambda: len(stored_events(db_path)) >= len(everything), 60, "every event stored")
        assert stored_events(db_path) == keys(everything)
        assert dead_letters(db_path) == []
    finally:
        edge.stop()
        balancer.close()
        ingest.stop()
