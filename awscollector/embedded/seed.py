"""Realistic sample data for the embedded AWS: VPC Flow Logs announced by S3 notifications.

Used by ``aws-collector demo``, the tests and the benchmarks. Everything is made
through the AWS APIs (boto3 over HTTP), as AWS itself would leave it.

Usage::

    with EmbeddedAws() as aws:
        url = create_s3_sqs(aws.client("s3"), aws.client("sqs"), "logs-bucket", "logs")
        put_vpc_object(aws.client("s3"), "logs-bucket", "123456789012", "us-east-1", 0,
                       vpc_flow_lines(1000))
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random

from awscollector.transforms.vpcflow import DEFAULT_FIELDS

ACCOUNT = "123456789012"

# A custom format with fields of versions 3 to 5 (as a user might configure it).
CUSTOM_FIELDS = ("version", "vpc-id", "subnet-id", "instance-id", "interface-id", "account-id",
                 "type", "srcaddr", "dstaddr", "srcport", "dstport", "pkt-srcaddr",
                 "pkt-dstaddr", "protocol", "bytes", "packets", "start", "end", "action",
                 "tcp-flags", "log-status", "region", "az-id", "flow-direction")


def vpc_flow_lines(n: int, fields: tuple[str, ...] = DEFAULT_FIELDS, seed: int = 1,
                   start: int = 1_795_000_000, region: str = "us-east-1") -> list[str]:
    """n records in the given format; about 1 in 50 is a NODATA or SKIPDATA record."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        t0 = start + i // 100
        status = "OK"
        if i % 50 == 49:
            status = "NODATA" if i % 100 == 99 else "SKIPDATA"
        values = {
            "version": "5" if fields != DEFAULT_FIELDS else "2",
            "account-id": ACCOUNT,
            "interface-id": f"eni-{rnd.getrandbits(64):016x}"[:21],
            "srcaddr": f"10.0.{rnd.randrange(256)}.{rnd.randrange(1, 255)}",
            "dstaddr": f"172.31.{rnd.randrange(256)}.{rnd.randrange(1, 255)}",
            "srcport": str(rnd.choice((443, 80, 22, 53, rnd.randrange(1024, 65535)))),
            "dstport": str(rnd.randrange(1024, 65535)),
            "protocol": rnd.choice(("6", "17", "1")),
            "packets": str(rnd.randrange(1, 500)),
            "bytes": str(rnd.randrange(40, 500_000)),
            "start": str(t0), "end": str(t0 + 60),
            "action": rnd.choice(("ACCEPT", "ACCEPT", "ACCEPT", "REJECT")),
            "log-status": status,
            "vpc-id": "vpc-0f1e2d3c4b5a69788", "subnet-id": "subnet-0a9b8c7d6e5f40312",
            "instance-id": f"i-{rnd.getrandbits(60):015x}"[:19], "type": "IPv4",
            "tcp-flags": rnd.choice(("2", "18", "19", "3")),
            "region": region, "az-id": "use1-az1",
            "flow-direction": rnd.choice(("ingress", "egress")),
        }
        values["pkt-srcaddr"], values["pkt-dstaddr"] = values["srcaddr"], values["dstaddr"]
        if status != "OK":
            keep = {"version", "account-id", "interface-id", "start", "end", "log-status",
                    "vpc-id", "subnet-id", "instance-id", "region", "az-id"}
            values = {k: (v if k in keep else "-") for k, v in values.items()}
        out.append(" ".join(values.get(f, "-") for f in fields))
    return out


def vpc_object(lines: list[str], fields: tuple[str, ...] = DEFAULT_FIELDS,
               compresslevel: int = 6) -> bytes:
    """A VPC Flow Logs file as AWS writes it: header line, records, gzip."""
    text = " ".join(fields) + "\n" + "\n".join(lines) + "\n"
    return gzip.compress(text.encode(), compresslevel=compresslevel)


def vpc_key(region: str, n: int, account: str = ACCOUNT, prefix: str = "",
            when: dt.datetime | None = None) -> str:
    when = when or dt.datetime(2026, 11, 27, 12, 5, tzinfo=dt.UTC)
    stamp = when.strftime("%Y%m%dT%H%MZ")
    return (f"{prefix}AWSLogs/{account}/vpcflowlogs/{region}/{when:%Y/%m/%d}/"
            f"{account}_vpcflowlogs_{region}_fl-0abc{n:04d}_{stamp}_{n:08x}.log.gz")


def create_s3_sqs(s3, sqs, bucket: str, queue: str, region: str = "us-east-1") -> str:
    """A bucket whose ObjectCreated events go to a queue; returns the queue URL.

    Like AWS, the bucket first sends an ``s3:TestEvent`` to the queue.
    """
    url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "sqs:SendMessage", "Resource": arn}]}
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    kwargs = {}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(Bucket=bucket, **kwargs)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    return url


def put_vpc_object(s3, bucket: str, region: str, n: int, lines: list[str],
                   fields: tuple[str, ...] = DEFAULT_FIELDS) -> str:
    """Writes one VPC Flow Logs object (its notification follows); returns its key."""
    key = vpc_key(region, n)
    s3.put_object(Bucket=bucket, Key=key, Body=vpc_object(lines, fields))
    return key
