"""Helpers for the S3+SQS pipeline tests: configs, seeding, and reading back a queue."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import unquote_plus

import yaml

from awscollector.config import parse_config
from awscollector.embedded.config import embedded_config
from awscollector.embedded.seed import (
    DEFAULT_FIELDS,
    create_s3_sqs,
    vpc_flow_lines,
    vpc_key,
    vpc_object,
)

ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def raw_config(aws, relay, pki, queue: str, workdir: Path, regions=("us-east-1",),
               readers: int = 1, types=("vpc_flow_logs",)) -> dict:
    return embedded_config(aws.endpoint_url, relay.port, pki, workdir, queue, tuple(regions),
                           readers, tuple(types))


def config(aws, relay, pki, queue, workdir, **kwargs):
    return parse_config(raw_config(aws, relay, pki, queue, workdir, **kwargs), workdir,
                        environ=ENV)


def write_config(aws, relay, pki, queue, workdir: Path, **kwargs) -> Path:
    path = workdir / "collector.yaml"
    path.write_text(yaml.safe_dump(raw_config(aws, relay, pki, queue, workdir, **kwargs)))
    return path


def run_cli(config_path: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`aws-collector run --config FILE --until-idle ...` as a user runs it."""
    env = {**os.environ, **ENV}
    return subprocess.run(
        [sys.executable, "-m", "awscollector", "run", "--config", str(config_path),
         "--until-idle", "--idle-seconds", "2", *args],
        capture_output=True, text=True, timeout=timeout, env=env)


def tagged_lines(obj: int, n: int, fields=DEFAULT_FIELDS) -> list[str]:
    """n flow records whose interface-id names the object, so each event is traceable."""
    lines = vpc_flow_lines(n, fields, seed=obj)
    out = []
    for i, line in enumerate(lines):
        parts = line.split(" ")
        parts[fields.index("interface-id")] = f"eni-{obj:06d}{i:09d}"
        out.append(" ".join(parts))
    return out


def object_of(line: str) -> int:
    """The object number of a line made by tagged_lines (default format)."""
    eni = line.split(" ")[2]
    return int(eni[4:10])


def setup_queue(aws, region: str = "us-east-1") -> tuple[str, str, str]:
    """A bucket notifying a new queue; returns (bucket, queue name, queue url)."""
    bucket, queue = unique("flow-logs"), unique("logs")
    url = create_s3_sqs(aws.client("s3", region), aws.client("sqs", region), bucket, queue,
                        region)
    return bucket, queue, url


def put_object(aws, bucket: str, key: str, lines: list[str], fields=DEFAULT_FIELDS,
               region: str = "us-east-1") -> None:
    body = vpc_object(lines, fields, compresslevel=1)
    aws.client("s3", region).put_object(Bucket=bucket, Key=key, Body=body)


def seed_objects(aws, bucket: str, n: int, m: int, region: str = "us-east-1",
                 first: int = 0, pause: float = 0.0) -> dict[int, list[str]]:
    """n objects of m tagged lines each, announced to the bucket's queue, ``pause``
    seconds apart (a steady stream while a collector runs)."""
    objects = {}
    for obj in range(first, first + n):
        if pause and obj > first:
            time.sleep(pause)
        objects[obj] = tagged_lines(obj, m)
        put_object(aws, bucket, vpc_key(region, obj), objects[obj], region=region)
    return objects


def queue_keys(aws, url: str, region: str = "us-east-1") -> set[str]:
    """Object keys announced by the messages in the queue, leaving them in it."""
    sqs = aws.client("sqs", region)
    keys: set[str] = set()
    seen: set[str] = set()
    for _ in range(20):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=2,
                                  WaitTimeSeconds=0).get("Messages", [])
        new = [m for m in got if m["MessageId"] not in seen]
        if not got or not new:
            break
        for m in new:
            seen.add(m["MessageId"])
            body = json.loads(m["Body"])
            for r in body.get("Records", []):
                keys.add(unquote_plus(r["s3"]["object"]["key"]))
    time.sleep(2.2)  # let them become visible again for the next reader
    return keys


def queue_depth(aws, url: str, region: str = "us-east-1") -> int:
    attrs = aws.client("sqs", region).get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                      "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"])


def dead_letters(workdir: Path) -> list[dict]:
    path = workdir / "deadletter" / "non-cloudwatch-logs.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]
