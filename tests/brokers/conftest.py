"""One broker of each kind per test session, anonymous and with per-node ACLs; tests run on each."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.brokers import BROKER_KINDS, ContractBroker

ACL_NODES = ("node-a", "node-b")


def _broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, secured: bool
) -> Iterator[ContractBroker]:
    kind = request.param
    prefix = f"cwacl{uuid.uuid4().hex[:6]}/v1"
    broker = BROKER_KINDS[kind](
        tmp_path_factory.mktemp(f"{kind}-{'acl' if secured else 'open'}"),
        prefix,
        ACL_NODES if secured else (),
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session", params=sorted(BROKER_KINDS))
def broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ContractBroker]:
    """An anonymous broker; each test uses its own topic prefix (RabbitMQ's is shared)."""
    yield from _broker(request, tmp_path_factory, secured=False)


@pytest.fixture(scope="session", params=sorted(BROKER_KINDS))
def acl_broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ContractBroker]:
    """Password logins; a node may write only under {prefix}/{its id}/ and read its config and ack."""
    yield from _broker(request, tmp_path_factory, secured=True)


@pytest.fixture
def prefix() -> str:
    return f"cw{uuid.uuid4().hex[:8]}/v1"
