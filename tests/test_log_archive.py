"""An organization's log-archive bucket: every kind of object announced on ONE queue that
four services read together, end to end over the embedded AWS and the embedded TLS relay.

Each event must arrive once, in its table; what no service collects is skipped (counted)
or dead-lettered with a reason, never dropped silently; the queue ends empty.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import yaml

from awscollector.config import parse_config
from awscollector.embedded.seed import (
    CUSTOM_FIELDS,
    app_events,
    cloudfront_lines,
    cloudtrail_digest_key,
    cloudtrail_digest_object,
    cloudtrail_insight_records,
    cloudtrail_key,
    cloudtrail_object,
    cloudtrail_records,
    put_cloudfront_object,
    put_json_lines_object,
    put_tgw_object,
    put_umbrella_object,
    put_vpc_object,
    put_vpc_parquet_object,
    tgw_flow_lines,
    umbrella_lines,
    vpc_flow_lines,
)
from awscollector.pipelines import collector
from awscollector.pipelines.collector import run_collector
from awscollector.transforms.vpcflow import INTEGER_FIELDS, TGW_FIELDS
from tests.vpc_helpers import ENV, queue_depth, raw_config, setup_queue

VPC = "cloud.aws.vpc.flow"
CLOUDTRAIL = "cloud.aws.cloudtrail.events"
CLOUDFRONT = "cloud.aws.cloudfront.web_1"
ACCOUNT = "123456789012"


def compact(record: dict) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def flow_json(line: str, fields: tuple[str, ...]) -> dict:
    """A custom-format flow record as the collector must send it, from AWS's docs:
    integer fields as numbers, "-" as null, AWS's field names as keys."""
    return {f: None if v == "-" else int(v) if f in INTEGER_FIELDS else v
            for f, v in zip(fields, line.split(" "), strict=True)}


def dead_letters(workdir, service: str) -> list[dict]:
    path = workdir / "deadletter" / f"{service}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def seed_archive(aws, bucket: str) -> tuple[dict[str, list], dict]:
    """Every kind into one bucket; returns (table -> expected messages, special objects)."""
    s3 = aws.client("s3")
    expected: dict[str, list] = {}

    def want(table: str, messages) -> None:
        expected.setdefault(table, []).extend(messages)

    # VPC Flow Logs: default text, custom text, Parquet, Transit Gateway.
    default = vpc_flow_lines(120, seed=1)
    put_vpc_object(s3, bucket, "us-east-1", 1, default)
    want(VPC, default)
    custom = vpc_flow_lines(80, CUSTOM_FIELDS, seed=2)
    put_vpc_object(s3, bucket, "us-east-1", 2, custom, CUSTOM_FIELDS)
    want(VPC, [flow_json(line, CUSTOM_FIELDS) for line in custom])
    parquet = vpc_flow_lines(90, CUSTOM_FIELDS, seed=3)
    put_vpc_parquet_object(s3, bucket, "us-east-1", 3, parquet)
    want(VPC, [flow_json(line, CUSTOM_FIELDS) for line in parquet])
    tgw = tgw_flow_lines(70, seed=4)
    put_tgw_object(s3, bucket, "us-east-1", 4, tgw)
    want(VPC, [flow_json(line, TGW_FIELDS) for line in tgw])

    # CloudFront standard logs: the original lines.
    cloudfront = cloudfront_lines(60, seed=5)
    put_cloudfront_object(s3, bucket, 5, cloudfront, prefix="cloudfront/EMLARXS9EXAMPLE/")
    want(CLOUDFRONT, cloudfront)

    # CloudTrail: two log files, an Insights file, a digest (skipped), a truncated file.
    trail = {cloudtrail_key("us-east-1", 6): cloudtrail_records(150, seed=6),
             cloudtrail_key("us-east-1", 7, org="o-a1b2c3d4e5"): cloudtrail_records(50, seed=7),
             cloudtrail_key("us-east-1", 8, kind="CloudTrail-Insight"):
                 cloudtrail_insight_records(4, seed=8)}
    for key, records in trail.items():
        s3.put_object(Bucket=bucket, Key=key, Body=cloudtrail_object(records))
        want(CLOUDTRAIL, [compact(r) for r in records])
    digest = cloudtrail_digest_key("us-east-1")
    s3.put_object(Bucket=bucket, Key=digest, Body=cloudtrail_digest_object(bucket, list(trail)))
    truncated = cloudtrail_key("us-east-1", 9)
    cut_records = cloudtrail_records(400, seed=9)
    whole = cloudtrail_object(cut_records, compresslevel=1)
    s3.put_object(Bucket=bucket, Key=truncated, Body=whole[: len(whole) // 2])

    # Cisco Umbrella, exported to the same bucket.
    for n, kind in enumerate(("dns", "proxy")):
        lines = umbrella_lines(kind, 50, seed=10 + n)
        put_umbrella_object(s3, bucket, kind, n, lines, prefix="umbrella/")
        want(f"sig.cisco.umbrella.{kind}", lines)

    # An application's own logs (custom-s3), one table per kind.
    events = app_events(45, seed=12)
    put_json_lines_object(s3, bucket, "app/2026/11/27/events.jsonl.gz", events)
    for event in events:
        want(f"my.app.{event['kind']}", [compact(event)])

    # What no service collects: AWS Config and ELB files are skipped by name; an object
    # no one can tell is dead-lettered (SRC-006).
    config_key = (f"AWSLogs/{ACCOUNT}/Config/us-east-1/2026/11/27/ConfigSnapshot/"
                  f"{ACCOUNT}_Config_us-east-1_ConfigSnapshot_20261127T120500Z_ab12.json.gz")
    s3.put_object(Bucket=bucket, Key=config_key, Body=gzip.compress(
        b'{"fileVersion":"1.0","configurationItems":[]}'))
    elb_key = (f"AWSLogs/{ACCOUNT}/elasticloadbalancing/us-east-1/2026/11/27/"
               f"{ACCOUNT}_elasticloadbalancing_us-east-1_app.web.1_20261127T1205Z_ip_x.log.gz")
    s3.put_object(Bucket=bucket, Key=elb_key, Body=gzip.compress(b"h2 2026-11-27T12:05:00Z\n"))
    unknown = "exports/2026/notes.txt"
    s3.put_object(Bucket=bucket, Key=unknown, Body=b"quarterly notes, not a log\n")
    return expected, {"truncated": truncated, "unknown": unknown, "digest": digest,
                      "cut_records": [compact(r) for r in cut_records]}


def test_a_log_archive_bucket_through_one_queue_read_by_four_services(
        embedded_aws, relay, pki, tmp_path, monkeypatch):
    bucket, queue, url = setup_queue(embedded_aws)
    expected, keys = seed_archive(embedded_aws, bucket)
    raw = raw_config(embedded_aws, relay, pki, queue, tmp_path)
    raw["inputs"]["aws"]["services"] = {
        "non-cloudwatch-logs": {"sqs_queue_name": queue, "readers": 2,
                                "types": ["vpc_flow_logs", "cloudfront_logs"]},
        "audit-events-all": {"sqs_queue_name": queue, "types": ["audits_s3"]},
        "cisco-umbrella": {"sqs_queue_name": queue},
        "custom-s3": {"sources": [{"name": "app", "sqs_queue_name": queue,
                                   "include": [r"^app/.*\.jsonl\.gz$"],
                                   "framing": "json_lines", "table": "my.app.{record.kind}"}]},
    }
    counters: dict = {}
    real = collector.beam_counters
    monkeypatch.setattr(collector, "beam_counters",
                        lambda result: counters.update(real(result)) or counters)

    result = run_collector(parse_config(raw, tmp_path, environ=ENV), [], idle_seconds=2)

    # The truncated CloudTrail file: dead-lettered, the records before the fault delivered.
    [broken] = dead_letters(tmp_path, "audit-events-all")
    assert (broken["code"], broken["source"]["key"]) == ("SRC-001", keys["truncated"])
    assert 0 < broken["source"]["records_read"] < len(keys["cut_records"])
    expected[CLOUDTRAIL] += keys["cut_records"][:broken["source"]["records_read"]]

    # Each event once, in its table; nothing else arrived.
    for table, messages in expected.items():
        got = relay.events(table)
        if table == VPC:  # default lines as they are, the others as JSON objects
            got = [json.loads(m) if m.startswith("{") else m for m in got]
            assert sorted(map(str, got)) == sorted(map(str, messages)), table
        else:
            assert sorted(got) == sorted(messages), table
    assert relay.counts() == {t: len(m) for t, m in expected.items()}
    assert queue_depth(embedded_aws, url) == 0

    # The summary: each service's rows, with its own tables and dead letters.
    delivered = {(row[0], row[2]): row[3] for row in result.rows}
    assert delivered == {
        ("non-cloudwatch-logs", VPC): len(expected[VPC]),
        ("non-cloudwatch-logs", CLOUDFRONT): len(expected[CLOUDFRONT]),
        ("audit-events-all", CLOUDTRAIL): len(expected[CLOUDTRAIL]),
        ("cisco-umbrella", "sig.cisco.umbrella.dns"): 50,
        ("cisco-umbrella", "sig.cisco.umbrella.proxy"): 50,
        **{("custom-s3.app", t): len(m) for t, m in expected.items() if t.startswith("my.app")},
    }
    dead = {row[0]: row[4] for row in result.rows if row[4]}
    # The truncated CloudTrail file is its service's; the object no one can tell goes to
    # the first service on the queue, which received its message.
    assert dead == {"audit-events-all": 1, "non-cloudwatch-logs": 1}
    [unknown] = dead_letters(tmp_path, "non-cloudwatch-logs")
    assert (unknown["code"], unknown["source"]["key"]) == ("SRC-006", keys["unknown"])
    # Skipped, counted: the bucket's s3:TestEvent, the digest, the Config and ELB files.
    assert counters[("s3_sqs", "skipped")] == 4
    assert keys["digest"] not in json.dumps(relay.events(CLOUDTRAIL))


def test_services_on_one_queue_in_different_regions_are_refused(embedded_aws, relay, pki,
                                                                 tmp_path):
    raw = raw_config(embedded_aws, relay, pki, "archive", tmp_path,
                     regions=("us-east-1", "eu-west-1"))
    raw["inputs"]["aws"]["services"] = {
        "non-cloudwatch-logs": {"sqs_queue_name": "archive", "types": ["vpc_flow_logs"]},
        "audit-events-all": {"sqs_queue_name": "archive", "types": ["audits_s3"],
                             "regions": ["us-east-1"]},
    }
    config = parse_config(raw, tmp_path, environ=ENV)
    try:
        run_collector(config, [], idle_seconds=1)
    except Exception as e:  # noqa: BLE001 - checked below
        error = e
    else:
        raise AssertionError("a run with services on one queue in other regions started")
    assert getattr(error, "code", None) == "CFG-017", error
    assert "non-cloudwatch-logs and audit-events-all read one SQS queue" in str(error)


def test_validate_refuses_services_on_one_queue_in_different_regions(embedded_aws, relay, pki,
                                                                     tmp_path):
    raw = raw_config(embedded_aws, relay, pki, "archive", tmp_path,
                     regions=("us-east-1", "eu-west-1"))
    raw["inputs"]["aws"]["services"] = {
        "non-cloudwatch-logs": {"sqs_queue_name": "archive", "types": ["vpc_flow_logs"]},
        "custom-s3": {"sources": [{"name": "app", "regions": ["eu-west-1"],
                                   "sqs_queue_name": "archive", "framing": "lines",
                                   "table": "my.app.lines"}]},
    }
    path = tmp_path / "collector.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    done = subprocess.run([sys.executable, "-m", "awscollector", "validate", "--config",
                           str(path)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **ENV})
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("CFG-017 non-cloudwatch-logs and custom-s3.app read one SQS "
                                  "queue, but not in the same regions"), done.stderr
    # In the same regions, the same config is fine.
    raw["inputs"]["aws"]["services"]["custom-s3"]["sources"][0].pop("regions")
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    done = subprocess.run([sys.executable, "-m", "awscollector", "validate", "--config",
                           str(path)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **ENV})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "config OK: 2 services, 2 regions"
