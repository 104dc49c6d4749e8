"""``aws-collector demo``: the collector's main job against an embedded AWS and Devo.

It starts moto's server and a TLS Devo relay on loopback, seeds VPC Flow Logs
(gzip objects in default and custom formats, in several regions, announced by
real S3-to-SQS notifications, plus one truncated object that is dead-lettered
on purpose), runs ``aws-collector run --until-idle`` on a config pointing at
them, and prints the summary. The relay writes what it got to
``<out>/<table>.log``.

``--output http`` delivers to an embedded Devo HTTP endpoint instead (HTTPS, a
token, gzip bodies), which writes ``<out>/<table>.log`` just the same;
``--output both`` delivers to both, the HTTP endpoint writing to ``<out>/http/``.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

from awscollector.embedded.aws import EmbeddedAws
from awscollector.embedded.certs import make_test_pki
from awscollector.embedded.config import HTTP_TOKEN_VAR, embedded_config
from awscollector.embedded.http_endpoint import DevoHttpEndpoint
from awscollector.embedded.relay import DevoRelay
from awscollector.embedded.seed import (
    CUSTOM_FIELDS,
    create_s3_sqs,
    put_vpc_object,
    vpc_flow_lines,
    vpc_key,
    vpc_object,
)

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
QUEUE = "aws-logs"
OUTPUTS = ("syslog", "http", "both")


def seed(aws: EmbeddedAws) -> int:
    """VPC Flow Logs in every demo region; returns the number of good records."""
    records = 0
    for r, region in enumerate(REGIONS):
        s3, sqs = aws.client("s3", region), aws.client("sqs", region)
        bucket = f"demo-flow-logs-{region}"
        create_s3_sqs(s3, sqs, bucket, QUEUE, region)
        for n in range(3):
            lines = vpc_flow_lines(200, seed=r * 10 + n, region=region)
            put_vpc_object(s3, bucket, region, n, lines)
            records += len(lines)
        lines = vpc_flow_lines(150, CUSTOM_FIELDS, seed=r * 10 + 9, region=region)
        put_vpc_object(s3, bucket, region, 3, lines, CUSTOM_FIELDS)
        records += len(lines)
    # A truncated gzip object: its first lines are delivered, the object is dead-lettered.
    broken = vpc_object(vpc_flow_lines(2000, seed=99))
    aws.client("s3", REGIONS[0]).put_object(
        Bucket=f"demo-flow-logs-{REGIONS[0]}", Key=vpc_key(REGIONS[0], 99),
        Body=broken[: len(broken) // 2])
    return records


def run_demo(out: str = "demo-out", output: str = "syslog") -> int:
    """Runs the demo; ``output`` is "syslog" (the relay), "http" or "both"."""
    from awscollector.config import parse_config
    from awscollector.pipelines.collector import format_summary, run_collector

    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, not {output!r}")
    out_dir = Path(out)
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    workdir = Path(tempfile.mkdtemp(prefix="aws-collector-demo-"))
    pki = make_test_pki(workdir / "certs")
    token = secrets.token_urlsafe(24)  # the demo's own: not in the config file it writes
    with contextlib.ExitStack() as stack:
        aws = stack.enter_context(EmbeddedAws(in_process=False))
        print(f"embedded AWS at {aws.endpoint_url}")
        relay = endpoint = None
        if output in ("syslog", "both"):
            relay = stack.enter_context(DevoRelay(pki, out_dir=out_dir))
            print(f"Devo relay at {relay.address[0]}:{relay.address[1]} "
                  f"(TLS, client certificate)")
        if output in ("http", "both"):
            http_out = out_dir / "http" if relay is not None else out_dir
            endpoint = stack.enter_context(DevoHttpEndpoint(pki, token, out_dir=http_out))
            print(f"Devo HTTP endpoint at {endpoint.url} (TLS, token)")
        good = seed(aws)
        print(f"seeded {good} VPC Flow Log records in {len(REGIONS)} regions, "
              f"plus one truncated object")
        raw = embedded_config(aws.endpoint_url, relay.port if relay else None, pki, workdir,
                              QUEUE, REGIONS, dead_letter_dir=out_dir / "deadletter",
                              http_url=endpoint.url if endpoint else None)
        (out_dir / "collector.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               HTTP_TOKEN_VAR: token}
        config = parse_config(raw, workdir, environ=env)
        result = run_collector(config, [], idle_seconds=3)
    print()
    print(format_summary(result.rows))
    print()
    received = []
    if relay is not None:
        received.append(relay.total())
        print(f"the relay received {relay.total()} events: {out_dir}/<table>.log")
    if endpoint is not None:
        received.append(endpoint.total())
        where = out_dir / "http" if relay is not None else out_dir
        print(f"the HTTP endpoint received {endpoint.total()} events: {where}/<table>.log")
    print(f"dead letters: {out_dir / 'deadletter'}/<service>.jsonl")
    print(f"the config used: {out_dir / 'collector.yaml'}")
    return 0 if min(received) >= good else 1


if __name__ == "__main__":
    sys.exit(run_demo())
