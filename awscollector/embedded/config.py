"""A collector config pointing at the embedded AWS and relay (demo, tests, benchmarks)."""

from __future__ import annotations

from pathlib import Path

from awscollector.embedded.certs import TestPki


def embedded_config(endpoint_url: str, relay_port: int, pki: TestPki, workdir: Path,
                    queue: str, regions: tuple[str, ...] = ("us-east-1",), readers: int = 1,
                    types: tuple[str, ...] = ("vpc_flow_logs",),
                    dead_letter_dir: Path | None = None) -> dict:
    """The config (as loaded YAML) of a VPC Flow Logs collection from the embedded AWS.

    Credentials are left as ``${AWS_ACCESS_KEY_ID}``/``${AWS_SECRET_ACCESS_KEY}``.
    """
    return {
        "globals": {
            "persistence": {"type": "filesystem",
                            "config": {"directory_name": str(workdir / "state")}},
            "dead_letter": {"type": "filesystem", "config": {
                "directory_name": str(dead_letter_dir or workdir / "deadletter")}},
        },
        "outputs": {"devo_1": {"type": "devo_platform", "config": {
            "address": "127.0.0.1", "port": relay_port, "type": "SSL",
            "chain": str(pki.ca_cert), "cert": str(pki.client_cert),
            "key": str(pki.client_key)}}},
        "inputs": {"aws": {
            "id": "100001", "enabled": True, "endpoint_url": endpoint_url,
            "credentials": {"access_key": "${AWS_ACCESS_KEY_ID}",
                            "access_secret": "${AWS_SECRET_ACCESS_KEY}"},
            "regions": list(regions),
            "services": {"non-cloudwatch-logs": {
                "types": list(types), "sqs_queue_name": queue, "readers": readers}},
        }},
    }
