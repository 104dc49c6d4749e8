"""Shared fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from awscollector.embedded.aws import EmbeddedAws
from awscollector.embedded.certs import TestPki, make_test_pki
from awscollector.embedded.relay import DevoRelay

# `run` has a process per core by default. The suite's runs (and the subprocesses
# they start, which inherit this) test one pipeline unless they ask for more:
# tests/test_processes.py tests the default itself, without this variable.
os.environ["AWS_COLLECTOR_PROCESSES"] = "1"


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
