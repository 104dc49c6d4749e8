"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from awscollector.embedded.aws import EmbeddedAws


@pytest.fixture(scope="session")
def embedded_aws() -> Iterator[EmbeddedAws]:
    """moto's server in this process, on a free loopback port, for the whole session."""
    aws = EmbeddedAws().start()
    try:
        yield aws
    finally:
        aws.stop()
