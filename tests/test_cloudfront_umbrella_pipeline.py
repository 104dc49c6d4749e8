"""CloudFront standard logs (non-cloudwatch-logs) and Cisco Umbrella logs (cisco-umbrella)
from S3+SQS to Devo, end to end over the embedded AWS and the embedded TLS relay."""

from __future__ import annotations

import gzip
import json

from awscollector.config import parse_config
from awscollector.embedded.seed import (
    CLOUDFRONT_FIELDS,
    CLOUDFRONT_FIELDS_2018,
    UMBRELLA_FOLDERS,
    cloudfront_key,
    cloudfront_lines,
    put_cloudfront_object,
    put_umbrella_object,
    umbrella_key,
    umbrella_lines,
    umbrella_object,
)
from awscollector.pipelines.collector import run_collector
from awscollector.transforms.cloudfront import TABLE as CLOUDFRONT
from tests.vpc_helpers import (
    ENV,
    put_object,
    queue_depth,
    raw_config,
    setup_queue,
    tagged_lines,
)

VPC = "cloud.aws.vpc.flow"


def dead_letters(workdir, service: str) -> list[dict]:
    path = workdir / "deadletter" / f"{service}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def test_cloudfront_objects_with_aws_keys_arrive_once_next_to_vpc_flow_logs(
        embedded_aws, relay, pki, tmp_path):
    s3 = embedded_aws.client("s3")
    bucket, queue, url = setup_queue(embedded_aws)
    expected = []
    for n in range(4):  # field lists of 2018 and of 2019 on, one per object
        fields = CLOUDFRONT_FIELDS if n % 2 else CLOUDFRONT_FIELDS_2018
        lines = cloudfront_lines(150, fields, seed=n)
        key = put_cloudfront_object(s3, bucket, n, lines, fields)
        assert key.split(".")[-2].isupper()  # EMLARXS9EXAMPLE.2026-11-27-12.<UPPER>.gz
        expected += lines
    # Bad lines among good ones; an object without its #Fields line.
    good = cloudfront_lines(20, seed=9)
    put_cloudfront_object(s3, bucket, 9, good[:10] + ["2026-11-27\t12:00:00\tshort"] + good[10:])
    expected += good
    no_fields = cloudfront_key(10, prefix="other/prefix/")
    s3.put_object(Bucket=bucket, Key=no_fields, Body=gzip.compress(
        b"#Version: 1.0\n" + "\n".join(cloudfront_lines(5, seed=10)).encode() + b"\n"))
    vpc = tagged_lines(1, 40)
    put_object(embedded_aws, bucket, "AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/11/27/"
                                     "123456789012_vpcflowlogs_us-east-1_fl-1_20261127T1205Z_1.log.gz",
               vpc)

    config = parse_config(raw_config(embedded_aws, relay, pki, queue, tmp_path,
                                     types=("vpc_flow_logs", "cloudfront_logs")),
                          tmp_path, environ=ENV)
    result = run_collector(config, [], idle_seconds=2)

    assert sorted(relay.events(CLOUDFRONT)) == sorted(expected)
    assert len(set(relay.events(CLOUDFRONT))) == len(expected)
    assert sorted(relay.events(VPC)) == sorted(vpc)
    assert queue_depth(embedded_aws, url) == 0
    entries = dead_letters(tmp_path, "non-cloudwatch-logs")
    assert sorted((e["code"], e["source"]["key"]) for e in entries) == [
        ("SRC-003", no_fields), ("SRC-004", cloudfront_key(9))]
    bad = next(e for e in entries if e["code"] == "SRC-004")
    assert bad["source"]["records"] == ["2026-11-27\t12:00:00\tshort"]
    rows = {row[2]: row[3] for row in result.rows}
    assert rows == {CLOUDFRONT: len(expected), VPC: 40}


def test_every_kind_of_umbrella_log_goes_to_its_table_once(embedded_aws, relay, pki, tmp_path):
    s3 = embedded_aws.client("s3")
    bucket, queue, url = setup_queue(embedded_aws)
    expected: dict[str, list[str]] = {}
    n = 0
    versions = {"dns": (10, 13, 16), "proxy": (26, 37, 49), "firewall": (16, 36), "dlp": (16, 25)}
    for kind in UMBRELLA_FOLDERS:
        for columns in versions.get(kind, (None,)):
            lines = umbrella_lines(kind, 60, columns, seed=n)
            header = '"ID","Time","Email","User","Type","Action","Logged in from","Before",' \
                     '"After"' if kind == "audit" else None
            put_umbrella_object(s3, bucket, kind, n, lines, header, prefix="cisco/org-7731002/")
            table = f"sig.cisco.umbrella.{kind}"
            # A record spanning lines (audit) arrives as one line, "\n" written out.
            expected.setdefault(table, []).extend(line.replace("\n", "\\n") for line in lines)
            n += 1
    # Bad records: a column count no version has, a quote left open; the rest flows.
    dns = umbrella_lines("dns", 10, seed=99)
    short = dns[3].rsplit('","', 4)[0] + '"'  # 12 columns: no dns log version has 12
    s3.put_object(Bucket=bucket, Key=umbrella_key("dns", 99, prefix="cisco/"),
                  Body=umbrella_object([*dns[:3], short, '"2026-11-27 12:00:00,"x', *dns[3:]]))
    expected["sig.cisco.umbrella.dns"] += dns
    # A kind this version does not know.
    unknown = "cisco/ravpnlogs/2026-11-27/2026-11-27-12-00-ab12.csv.gz"
    s3.put_object(Bucket=bucket, Key=unknown, Body=umbrella_object(dns[:2]))

    raw = raw_config(embedded_aws, relay, pki, queue, tmp_path)
    raw["inputs"]["aws"]["services"] = {"cisco-umbrella": {"sqs_queue_name": queue}}
    result = run_collector(parse_config(raw, tmp_path, environ=ENV), [], idle_seconds=2)

    for table, lines in expected.items():
        got = relay.events(table)
        assert sorted(got) == sorted(lines), table
        assert len(set(got)) == len(got), table
    assert relay.counts() == {t: len(v) for t, v in expected.items()}
    assert queue_depth(embedded_aws, url) == 0
    entries = dead_letters(tmp_path, "cisco-umbrella")
    bad_key = umbrella_key("dns", 99, prefix="cisco/")
    assert sorted((e["code"], e["source"]["key"]) for e in entries) == [
        ("SRC-004", bad_key), ("SRC-006", unknown), ("SRC-009", bad_key)]
    records = {e["code"]: e["source"].get("records") for e in entries}
    assert records["SRC-004"] == [short]
    assert records["SRC-009"] == ['"2026-11-27 12:00:00,"x']
    assert all(e["service"] == "cisco-umbrella" for e in entries)
    assert {row[2]: row[3] for row in result.rows} == {t: len(v) for t, v in expected.items()}
