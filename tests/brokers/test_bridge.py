"""District brokers bridged to a central one: deploy/brokers/district-bridge.conf for the district
and deploy/mosquitto.conf.example for the centre, as written (only addresses, ports, paths and
secrets swapped), with TLS, passwords and the ACLs of deploy/. Real edge Publishers + Outboxes on
the district broker, a real IngestService on the central one (docs/deploy.md, "Brokers for a city")."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.brokers.city import (
    TOPICS,
    Edge,
    Watcher,
    config,
    dead_letters,
    incidents,
    keys,
    node_status,
    start_ingest,
    stored_events,
)
from tests.support.broker import free_port
from tests.support.templates import DEPLOY, TemplateMosquitto, render
from tests.support.tls import Certificates, make_certificates
from tests.uplink.helpers import wait_until
from uplink.config_publish import publish_config
from uplink.ingest_service import IngestService
from uplink.messages import ConfigMessage
from uplink.settings import MqttSettings, TlsSettings

CENTRE_USER = "review-server"  # deploy/mosquitto-acl.example
DISTRICT_USER = "district-gulou"  # deploy/brokers/central-acl-district.example
BRIDGE_STATE = "curbwatch/bridges/district-gulou/state"  # the bridge's notification_topic
NODES = ("gulou-node-01", "gulou-node-02")


def password_of(user: str) -> str:
    return f"pw-{user}"


@dataclass
class City:
    central: TemplateMosquitto
    district: TemplateMosquitto
    certs: Certificates

    def settings(self, broker: TemplateMosquitto, user: str, client_id: str | None = None) -> MqttSettings:
        return MqttSettings(
            host="127.0.0.1",
            port=broker.port,
            client_id=client_id or user,
            username=user,
            password=SecretStr(password_of(user)),
            tls=TlsSettings(ca_file=self.certs.ca_file),
            keepalive_s=5,
            reconnect_max_s=1,
        )

    def watch(self, broker: TemplateMosquitto, filters: list[str]) -> Watcher:
        return Watcher(self.settings(broker, CENTRE_USER, f"watch-{uuid.uuid4().hex[:8]}"), filters)


def _broker_files(workdir: Path, certs: Certificates, acl: str, users: tuple[str, ...]) -> dict[str, str]:
    """What both templates name: the listener, TLS files, passwords, the ACL, persistence."""
    workdir.mkdir(parents=True)
    (workdir / "acl").write_text(acl)
    passwd = workdir / "passwd"
    passwd.touch()
    for user in users:
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password_of(user)], check=True)
    return {
        "listener 8883": f"listener {free_port()} 127.0.0.1",
        "/etc/mosquitto/certs/broker.crt": str(certs.cert_file),
        "/etc/mosquitto/certs/broker.key": str(certs.key_file),
        "/etc/mosquitto/certs/ca.pem": str(certs.ca_file),
        "/etc/mosquitto/passwd": str(passwd),
        "/etc/mosquitto/curbwatch-acl": str(workdir / "acl"),
        "/var/lib/mosquitto/": f"{workdir}/",
    }


def _port(files: dict[str, str]) -> int:
    return int(files["listener 8883"].split()[1])


@pytest.fixture
def city(tmp_path: Path) -> Iterator[City]:
    certs = make_certificates(tmp_path / "tls")
    node_acl = (DEPLOY / "mosquitto-acl.example").read_text()
    district_acl = (DEPLOY / "brokers" / "central-acl-district.example").read_text()
    central_files = _broker_files(
        tmp_path / "central", certs, f"{node_acl}\n{district_acl}", (CENTRE_USER, DISTRICT_USER)
    )
    central = TemplateMosquitto(
        tmp_path / "central", render(DEPLOY / "mosquitto.conf.example", central_files), _port(central_files)
    )
    # The district's nodes are under deploy/mosquitto-acl.example as it is (no review server there).
    district_files = _broker_files(tmp_path / "district", certs, node_acl, NODES)
    district_config = render(
        DEPLOY / "brokers" / "district-bridge.conf",
        {
            **district_files,
            "central.example.org:8883": f"127.0.0.1:{central.port}",
            "remote_password CHANGE-ME": f"remote_password {password_of(DISTRICT_USER)}",
        },
    )
    district = TemplateMosquitto(tmp_path / "district", district_config, _port(district_files))
    central.start()
    district.start()
    try:
        yield City(central, district, certs)
    finally:
        district.stop()
        central.stop()


def wait_for_bridge(city: City) -> None:
    """The bridge's notification: retained 1 on the centre once it is connected."""
    watcher = city.watch(city.central, [BRIDGE_STATE])
    try:
        wait_until(lambda: b"1" in [m.payload for m in watcher.received(0.1)], 15, "the bridge up")
    finally:
        watcher.close()


def start_central_ingest(city: City, tmp_path: Path) -> IngestService:
    return start_ingest(city.settings(city.central, CENTRE_USER, "review-ingest"), tmp_path)


def start_node(city: City, node: str, workdir: Path, ack_timeout_s: float) -> Edge:
    return Edge.start(city.settings(city.district, node), workdir, ack_timeout_s)


def test_incidents_acks_and_retained_configs_cross_the_bridge_once(city: City, tmp_path: Path) -> None:
    node = NODES[0]
    db_path = tmp_path / "review.db"
    wait_for_bridge(city)
    ingest = start_central_ingest(city, tmp_path)
    on_central = city.watch(city.central, [f"{TOPICS.prefix}/+/+/incident", TOPICS.node_config(node)])
    review = city.settings(city.central, CENTRE_USER, "review-config")
    # Published on the centre before the node ever connected: retained there, carried over the
    # bridge with its retain flag (try_private), retained on the district broker.
    publish_config(review, node, config(node, 1))
    edge = start_node(city, node, tmp_path / node, ack_timeout_s=60)
    messages = incidents(node, 15)
    try:
        assert edge.configs.get(timeout=10).version == 1
        publish_config(review, node, config(node, 2))
        assert edge.configs.get(timeout=10).version == 2  # and live, while the node is connected
        edge.send(messages)
        wait_until(lambda: len(stored_events(db_path)) >= len(messages), 20, "every event stored")
        wait_until(edge.all_acknowledged, 20, "the centre's acks back through the bridge")
        assert stored_events(db_path) == keys(messages)
        assert node_status(db_path, node) == "online"  # the node's retained status crossed too
        assert dead_letters(db_path) == []
        seen = on_central.received()
        assert len([m for m in seen if m.topic.endswith("/incident")]) == len(messages), "lost or doubled"
        # Each config went into the district once and did not come back out of it.
        configs = [m for m in seen if m.topic == TOPICS.node_config(node)]
        assert [ConfigMessage.model_validate_json(m.payload).version for m in configs] == [1, 2]
    finally:
        edge.stop()
        ingest.stop()
        on_central.close()


def test_a_cut_link_loses_nothing(city: City, tmp_path: Path) -> None:
    """The central broker SIGKILLed and restarted. What the district took while the link was down
    waits there for the bridge (node 01 never re-sends within the test: ack timeout 600 s); what
    the centre had taken but not stored when it died is re-sent by the edge (node 02: 3 s)."""
    db_path = tmp_path / "review.db"
    wait_for_bridge(city)
    ingest = start_central_ingest(city, tmp_path)
    quiet = start_node(city, NODES[0], tmp_path / "quiet", ack_timeout_s=600)
    busy = start_node(city, NODES[1], tmp_path / "busy", ack_timeout_s=3)
    warm_up, during = incidents(NODES[0], 5), incidents(NODES[0], 20)
    in_flight = incidents(NODES[1], 60, updates=2)
    try:
        quiet.send(warm_up)
        wait_until(quiet.all_acknowledged, 20, "the first events stored and acknowledged")
        # The centre queues for the ingest after a crash only if it saved the ingest's session
        # (autosave_interval 5 s): wait for one save, as a broker that ran a while has.
        saved = city.central.workdir / "mosquitto.db"
        after = time.time()
        wait_until(lambda: saved.exists() and saved.stat().st_mtime > after, 10, "the centre's autosave")
        busy.send(in_flight)
        wait_until(lambda: busy.publisher.stats().acknowledged >= 40, 10, "the busy node under way", 0.005)
        city.central.kill()
        quiet.send(during)
        wait_until(lambda: quiet.outbox.backlog() == 0, 10, "the district taking events meanwhile")
        assert quiet.outbox.unacked()[0] == len(during), "acknowledged with no centre to store them"
        time.sleep(1)
        city.central.start()
        everything = warm_up + in_flight + during
        wait_until(lambda: len(stored_events(db_path)) >= len(everything), 25, "every event stored")
        wait_until(lambda: quiet.all_acknowledged() and busy.all_acknowledged(), 20, "acks after the cut")
        assert stored_events(db_path) == keys(everything)
        assert quiet.publisher.stats().published == len(warm_up + during), "node 01 had to re-send"
    finally:
        quiet.stop()
        busy.stop()
        ingest.stop()
