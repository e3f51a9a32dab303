"""Connection settings shared by the edge publisher, the ingest and the config publisher."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from uplink.topics import DEFAULT_PREFIX


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsSettings(_Strict):
    ca_file: Path = Field(description="CA bundle that signed the broker's certificate")
    cert_file: Path | None = Field(None, description="client certificate (mutual TLS)")
    key_file: Path | None = Field(None, description="private key of cert_file")

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls.cert_file and tls.key_file must be given together")
        return self


class MqttSettings(_Strict):
    host: str = Field("127.0.0.1", description="broker host name or address")
    port: int = Field(1883, ge=1, le=65535, description="1883 plain, 8883 TLS by convention")
    client_id: str = Field(
        min_length=1,
        max_length=64,
        description="the node id on the edge (the broker ACL uses it), a fixed id for the ingest",
    )
    prefix: str = Field(DEFAULT_PREFIX, description="topic prefix, carries the contract version")
    username: str | None = None
    password: SecretStr | None = Field(None, description="never logged; SecretStr hides it in reprs")
    tls: TlsSettings | None = None
    keepalive_s: int = Field(30, ge=5, le=3600, description="the broker fires the Last Will after 1.5x")
    reconnect_min_s: int = Field(1, ge=1, le=60, description="first reconnect delay; doubles per failure")
    reconnect_max_s: int = Field(30, ge=1, le=3600, description="reconnect delay ceiling")
    shared_group: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="ingest only: subscribe as $share/<group>/... so ingest workers with this group "
        "(each with its own client_id) split the stream; needs a broker with shared subscriptions "
        "(Mosquitto, EMQX; not NATS or RabbitMQ, see docs/brokers.md)",
    )

    @model_validator(mode="after")
    def _delays_ordered(self) -> MqttSettings:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        if self.password is not None and self.username is None:
            raise ValueError("password given without username")
        return self
