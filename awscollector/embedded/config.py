"""A collector config pointing at the embedded AWS and relay (demo, tests, benchmarks)."""

from __future__ import annotations

from pathlib import Path

from awscollector.embedded.certs import TestPki

HTTP_TOKEN_VAR = "DEVO_HTTP_TOKEN"


def embedded_config(endpoint_url: str, relay_port: int | None, pki: TestPki, workdir: Path,
                    queue: str, regions: tuple[str, ...] = ("us-east-1",), readers: int = 1,
                    types: tuple[str, ...] = ("vpc_flow_logs",),
                    dead_letter_dir: Path | None = None, *,
                    http_url: str | None = None, services: dict | None = None) -> dict:
    """The config (as loaded YAML) of a VPC Flow Logs collection from the embedded AWS.

    ``services`` (the ``inputs.aws.services`` block) replaces that collection by any
    services: queue, readers and types are then the services' own.

    Outputs: ``devo_1`` (syslog to the relay at relay_port) unless relay_port is None,
    and ``devo_http_1`` (the embedded HTTP endpoint at http_url) when http_url is given.
    Credentials are left as ``${AWS_ACCESS_KEY_ID}``/``${AWS_SECRET_ACCESS_KEY}``, the
    HTTP token as ``${DEVO_HTTP_TOKEN}``.
    """
    outputs: dict = {}
    if relay_port is not None:
        outputs["devo_1"] = {"type": "devo_platform", "config": {
            "address": "127.0.0.1", "port": relay_port, "type": "SSL",
            "chain": str(pki.ca_cert), "cert": str(pki.client_cert),
            "key": str(pki.client_key)}}
    if http_url is not None:
        outputs["devo_http_1"] = {"type": "devo_http", "config": {
            "endpoint": http_url, "domain": "demo", "token": "${" + HTTP_TOKEN_VAR + "}",
            "host": "aws-collector", "chain": str(pki.ca_cert)}}
    return {
        "globals": {
            "persistence": {"type": "filesystem",
                            "config": {"directory_name": str(workdir / "state")}},
            "dead_letter": {"type": "filesystem", "config": {
                "directory_name": str(dead_letter_dir or workdir / "deadletter")}},
        },
        "outputs": outputs,
        "inputs": {"aws": {
            "id": "100001", "enabled": True, "endpoint_url": endpoint_url,
            "credentials": {"access_key": "${AWS_ACCESS_KEY_ID}",
                            "access_secret": "${AWS_SECRET_ACCESS_KEY}"},
            "regions": list(regions),
            "services": services if services is not None else {"non-cloudwatch-logs": {
                "types": list(types), "sqs_queue_name": queue, "readers": readers}},
        }},
    }
