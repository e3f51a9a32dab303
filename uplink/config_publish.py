"""The review server's side of the config topic: publish a node's zones as a retained message."""

from __future__ import annotations

import logging

from uplink.messages import ConfigMessage, to_json
from uplink.mqtt import ClientFactory, new_client
from uplink.settings import MqttSettings
from uplink.topics import Topics

log = logging.getLogger(__name__)


class ConfigPublishError(RuntimeError):
    """The broker did not acknowledge the config within the timeout."""


def publish_config(
    settings: MqttSettings,
    node_id: str,
    config: ConfigMessage,
    *,
    timeout_s: float = 10.0,
    client_factory: ClientFactory = new_client,
) -> None:
    """Connect, publish retained at QoS 1, wait for the PUBACK, disconnect. Raises
    ConfigPublishError when it cannot confirm delivery to the broker."""
    if config.node_id != node_id:
        raise ValueError(f"config is for node {config.node_id!r}, not {node_id!r}")
    topic = Topics(settings.prefix).node_config(node_id)
    client = client_factory(settings, clean_session=True)
    try:
        client.connect(settings.host, settings.port, keepalive=settings.keepalive_s)
    except OSError as exc:
        raise ConfigPublishError(f"cannot reach broker {settings.host}:{settings.port}: {exc}") from exc
    client.loop_start()
    try:
        info = client.publish(topic, to_json(config), qos=1, retain=True)
        try:
            info.wait_for_publish(timeout=timeout_s)
        except (RuntimeError, ValueError) as exc:
            raise ConfigPublishError(f"config version {config.version} for {node_id}: {exc}") from exc
        if not info.is_published():
            raise ConfigPublishError(
                f"config version {config.version} for {node_id}: no PUBACK in {timeout_s} s"
            )
        log.info("published config version %d for node %s", config.version, node_id)
    finally:
        client.disconnect()
        client.loop_stop()
