"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from awscollector.embedded.aws import EmbeddedAws
from awscollector.embedded.certs import TestPki, make_test_pki
from awscollector.embedded.relay import DevoRelay


@pytest.fixture(scope="session")
def embedded_aws() -> Iterator[EmbeddedAws]:
    """moto's server in this process, on a free loopback port, for the whole session."""
    aws = EmbeddedAws().start()
    try:
        yield aws
    finally:
        aws.stop()


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> TestPki:
    """A throwaway CA with relay (server) and collector (client) certificates."""
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def relay(pki) -> Iterator[DevoRelay]:
    """A TLS Devo relay on loopback that requires our client certificate."""
    with DevoRelay(pki) as r:
        yield r
