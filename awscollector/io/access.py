"""AwsAccess: what a Beam DoFn needs to reach AWS, small enough to pickle.

A DoFn keeps an ``AwsAccess`` and calls ``access.client("s3", region)`` in its
methods. The clients are made once per worker process (boto3 clients cannot be
pickled and are costly to create) and shared by every DoFn of that process that
got the same ``AwsAccess``, through Beam's ``Shared`` handle: the state travels
with the DoFn, not in a module of ours, so it holds on every runner.
"""

from __future__ import annotations

import hashlib
import json

from apache_beam.utils.shared import Shared

from awscollector.aws import ClientFactory


class AwsAccess:
    """The ``inputs.aws`` config of a run, and the connection pool size to use."""

    def __init__(self, aws_input, max_pool_connections: int = 10) -> None:
        self._aws_input = aws_input
        self._pool = max_pool_connections
        self._key = self._cache_key(aws_input, max_pool_connections)
        self._shared = Shared()
        self._factory: ClientFactory | None = None

    @staticmethod
    def _cache_key(aws_input, pool: int) -> str:
        # Secrets go into a digest only, never into anything printable.
        creds = getattr(aws_input, "credentials", None)
        parts = [getattr(aws_input, "endpoint_url", None), pool]
        if creds is not None:
            for name in ("access_key", "access_secret", "base_assume_role",
                         "target_assume_role", "assume_role_external_id"):
                value = getattr(creds, name, None)
                if hasattr(value, "get_secret_value"):
                    value = value.get_secret_value()
                parts.append(value)
        return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()

    def factory(self) -> ClientFactory:
        """This process's factory for the config (made on first use)."""
        if self._factory is None:
            # Held here: Shared keeps an object only while someone references it.
            self._factory = self._shared.acquire(
                lambda: ClientFactory.from_config(self._aws_input, self._pool), tag=self._key)
        return self._factory

    def client(self, service: str, region: str):
        return self.factory().client(service, region)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_factory"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._factory = None

    def __repr__(self) -> str:
        return f"AwsAccess(endpoint_url={getattr(self._aws_input, 'endpoint_url', None)!r})"
