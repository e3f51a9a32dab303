"""Building paho clients from MqttSettings: the one place that knows paho's setup calls."""

from __future__ import annotations

import logging
import ssl
from typing import Any, Protocol

import paho.mqtt.client as mqtt

from uplink.settings import MqttSettings

log = logging.getLogger(__name__)


class ClientFactory(Protocol):
    """A seam for tests: build (but do not connect) a paho client."""

    def __call__(
        self, settings: MqttSettings, *, clean_session: bool = True, manual_ack: bool = False
    ) -> mqtt.Client: ...


def new_client(
    settings: MqttSettings, *, clean_session: bool = True, manual_ack: bool = False
) -> mqtt.Client:
    """A configured, unconnected MQTT 3.1.1 client (Mosquitto, EMQX and bridges all speak it)."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=settings.client_id,
        clean_session=clean_session,
        protocol=mqtt.MQTTv311,
        manual_ack=manual_ack,
    )
    if settings.username is not None:
        password = settings.password.get_secret_value() if settings.password is not None else None
        client.username_pw_set(settings.username, password)
    if settings.tls is not None:
        client.tls_set(
            ca_certs=str(settings.tls.ca_file),
            certfile=str(settings.tls.cert_file) if settings.tls.cert_file else None,
            keyfile=str(settings.tls.key_file) if settings.tls.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    client.reconnect_delay_set(settings.reconnect_min_s, settings.reconnect_max_s)

    def on_connect_fail(_client: mqtt.Client, _userdata: Any) -> None:
        # Without this an unreachable broker (refused, no route, TLS handshake) is silent.
        log.warning(
            "%s: cannot connect to broker %s:%d; retrying, backing off up to %d s",
            settings.client_id,
            settings.host,
            settings.port,
            settings.reconnect_max_s,
        )

    client.on_connect_fail = on_connect_fail
    return client
