"""An organization's log-archive bucket holding everything AWS writes to S3: VPC Flow
Logs (text, Parquet), CloudFront, CloudTrail (and its digest), load balancer and S3
server access logs, WAF, Network Firewall, Route 53 Resolver, AWS Config, and CloudWatch
Logs delivered by Firehose, announced on ONE queue that non-cloudwatch-logs (every type,
its default) and audit-events-all read together, over the embedded AWS and the
embedded TLS relay.

Every record must arrive once, in its table, as seeded; what AWS writes that holds no
events is skipped and counted; a malformed line is dead-lettered with its code, bucket
and key while the rest of its object flows; the queue ends empty.
"""

from __future__ import annotations

import gzip
import json

from awscollector.config import parse_config
from awscollector.embedded.seed import (
    CUSTOM_FIELDS,
    cloudfront_lines,
    cloudtrail_digest_key,
    cloudtrail_digest_object,
    cloudtrail_key,
    cloudtrail_object,
    cloudtrail_records,
    put_cloudfront_object,
    put_vpc_object,
    put_vpc_parquet_object,
    vpc_flow_lines,
)
from awscollector.embedded.seed_firehose import (
    config_history_key,
    config_history_object,
    config_items,
    config_snapshot_key,
    config_snapshot_object,
    config_writability_key,
    control_payload,
    firehose_key,
    firehose_object,
    log_events,
    subscription_payload,
)
from awscollector.embedded.seed_jsonlogs import (
    firewall_key,
    firewall_object,
    firewall_records,
    resolver_key,
    resolver_records,
    waf_key,
    waf_records,
)
from awscollector.embedded.seed_lb import (
    alb_key,
    alb_lines,
    alb_object,
    classic_key,
    classic_lines,
    classic_object,
    nlb_key,
    nlb_lines,
    nlb_object,
    s3_access_key,
    s3_access_lines,
    s3_access_object,
)
from awscollector.pipelines import collector
from awscollector.pipelines.collector import run_collector
from tests.test_log_archive import dead_letters, flow_json
from tests.vpc_helpers import ENV, queue_depth, raw_config, setup_queue

ORG = "o-a1b2c3d4e5"
REGION = "us-east-1"
VPC = "cloud.aws.vpc.flow"
CLOUDTRAIL = "cloud.aws.cloudtrail.events"
LOGS = "cloud.aws.cloudwatch.logs"


def compact(record) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def json_lines(records: list, *bad: bytes) -> bytes:
    """A gzip'd JSON lines object as AWS writes them, with ``bad`` lines in the middle."""
    lines = [compact(r).encode() for r in records]
    middle = len(lines) // 2
    return gzip.compress(b"\n".join(lines[:middle] + list(bad) + lines[middle:]) + b"\n")


def seed_archive(aws, bucket: str) -> tuple[dict[str, list], dict[str, tuple[str, str]]]:
    """Every kind into one bucket, under AWS's keys (an organization's prefix on some);
    returns (table -> expected messages, key -> (code, record) of each malformed line)."""
    s3 = aws.client("s3")
    expected: dict[str, list] = {}
    malformed: dict[str, tuple[str, str]] = {}

    def want(table: str, messages) -> None:
        expected.setdefault(table, []).extend(messages)

    def put(key: str, body: bytes) -> str:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        return key

    # The kinds collected before: VPC Flow Logs text and Parquet, CloudFront, CloudTrail.
    default = vpc_flow_lines(40, seed=1)
    put_vpc_object(s3, bucket, REGION, 1, default)
    want(VPC, default)
    parquet = vpc_flow_lines(30, CUSTOM_FIELDS, seed=2)
    put_vpc_parquet_object(s3, bucket, REGION, 2, parquet)
    want(VPC, [flow_json(line, CUSTOM_FIELDS) for line in parquet])
    cloudfront = cloudfront_lines(20, seed=3)
    put_cloudfront_object(s3, bucket, 3, cloudfront, prefix="cloudfront/EMLARXS9EXAMPLE/")
    want("cloud.aws.cloudfront.web_1", cloudfront)
    trail = cloudtrail_records(30, seed=4)
    trail_key = put(cloudtrail_key(REGION, 4, org=ORG), cloudtrail_object(trail))
    want(CLOUDTRAIL, [compact(r) for r in trail])
    put(cloudtrail_digest_key(REGION), cloudtrail_digest_object(bucket, [trail_key]))  # skipped

    # Load balancers: an ALB file with a line cut short (SRC-004), NLB, Classic; an ALB
    # connection log (skipped: no table for its layout).
    alb = alb_lines(25, seed=5)
    cut = 'https 2026-11-27T12:00:00.000000Z app/web-prod/50dc6c495c0c9188 "GET /'
    key = put(alb_key(REGION, 5, org=ORG), alb_object(alb[:10] + [cut] + alb[10:]))
    malformed[key] = ("SRC-004", cut)
    want("web.aws.alb.access", alb)
    put(alb_key(REGION, 6, connection_log=True), alb_object(alb[:3]))
    nlb = nlb_lines(10, seed=7)
    put(nlb_key(REGION, 7), nlb_object(nlb))
    want("web.aws.nlb.access", nlb)
    classic = classic_lines(10, seed=8)
    put(classic_key(REGION, 8), classic_object(classic))
    want("web.aws.elb.access", classic)

    # S3 server access logs, under a target prefix of the bucket's own; a short line.
    access = s3_access_lines(15, seed=9)
    short = access[0][:100]
    key = put(s3_access_key(9, prefix="s3-access/"), s3_access_object(access + [short]))
    malformed[key] = ("SRC-004", short)
    want("web.aws.s3.access", access)

    # WAF (one line cut: SRC-007), Network Firewall alert and flow (a tls file: skipped),
    # Route 53 Resolver (a line that is not JSON: SRC-007).
    waf = waf_records(12, seed=10)
    bad_waf = b'{"timestamp":1795000000000,"formatVersion":1,"webaclId":"arn:aws:wafv2:us-'
    key = put(waf_key(REGION, org=ORG), json_lines(waf, bad_waf))
    malformed[key] = ("SRC-007", bad_waf.decode())
    want("cloud.aws.waf.logs", [compact(r) for r in waf])
    for kind, table, n in (("alert", "cloud.aws.firewall.alert", 8),
                           ("flow", "cloud.aws.firewall.netflow", 12)):
        records = firewall_records(kind, n, seed=11)
        put(firewall_key(kind, REGION), firewall_object(records))
        want(table, [compact(r) for r in records])
    put(firewall_key("tls", REGION), firewall_object(firewall_records("tls", 4, seed=12)))
    queries = resolver_records(15, seed=13)
    key = put(resolver_key(org=ORG), json_lines(queries, b"query log line, not JSON"))
    malformed[key] = ("SRC-007", "query log line, not JSON")
    want("dns.aws.route53", [compact(r) for r in queries])

    # AWS Config: a history file (one item that is no object: SRC-008), a snapshot, and
    # the writability check file (skipped).
    history = config_items(6, seed=14, resource_type="AWS::EC2::Instance")
    key = put(config_history_key(REGION, org=ORG),
              config_history_object(history[:3] + ["oops"] + history[3:]))
    malformed[key] = ("SRC-008", "oops")
    snapshot = config_items(9, seed=15)
    put(config_snapshot_key(REGION), config_snapshot_object(snapshot))
    put(config_writability_key(org=ORG), b"")
    want("cloud.aws.configlogs.events", [compact(i) for i in history + snapshot])

    # CloudWatch Logs through Firehose: a control message (skipped), a flow log's lines
    # (to the VPC table, as lines), an application's events (the cloudwatch-logs message).
    flows = log_events(10, seed=16, messages=vpc_flow_lines(10, seed=16))
    app = log_events(8, seed=17)
    put(firehose_key("cwl-to-s3", prefix="firehose/"), firehose_object([
        control_payload(),
        subscription_payload("/vpc/flow-logs", "eni-0a1b2c3d4e5f60718-all", flows),
        subscription_payload("/app/web", "i-0a1b2c3d4e5f60718", app)]))
    want(VPC, [e["message"] for e in flows])
    want(LOGS, [compact({"logGroup": "/app/web", "logStream": "i-0a1b2c3d4e5f60718",
                         "eventId": e["id"], "timestamp": e["timestamp"],
                         "ingestionTime": None, "message": e["message"]}) for e in app])
    return expected, malformed


def test_every_format_of_a_log_archive_bucket_through_one_queue(
        embedded_aws, relay, pki, tmp_path, monkeypatch):
    bucket, queue, url = setup_queue(embedded_aws)
    expected, malformed = seed_archive(embedded_aws, bucket)
    raw = raw_config(embedded_aws, relay, pki, queue, tmp_path)
    raw["inputs"]["aws"]["services"] = {
        "non-cloudwatch-logs": {"sqs_queue_name": queue, "readers": 2},  # every type
        "audit-events-all": {"sqs_queue_name": queue, "types": ["audits_s3"]},
    }
    counters: dict = {}
    real = collector.beam_counters
    monkeypatch.setattr(collector, "beam_counters",
                        lambda result: counters.update(real(result)) or counters)

    result = run_collector(parse_config(raw, tmp_path, environ=ENV), [], idle_seconds=2)

    # Each record once, in its table, as seeded; nothing else arrived.
    for table, messages in expected.items():
        got = relay.events(table)
        if table == VPC:  # default lines as they are, Parquet rows as JSON objects
            got = [json.loads(m) if m.startswith("{") else m for m in got]
            assert sorted(map(str, got)) == sorted(map(str, messages)), table
        else:
            assert sorted(got) == sorted(messages), table
    assert relay.counts() == {t: len(m) for t, m in expected.items()}
    assert len(expected) == 13  # tables: VPC, CloudFront, CloudTrail and the 10 new
    assert queue_depth(embedded_aws, url) == 0

    # The malformed lines: one dead letter each, with its code, bucket and key.
    dead = dead_letters(tmp_path, "non-cloudwatch-logs")
    assert sorted((d["source"]["key"], d["code"], d["source"]["records"]) for d in dead) == (
        sorted((key, code, [record]) for key, (code, record) in malformed.items()))
    assert {d["source"]["bucket"] for d in dead} == {bucket}
    assert all(d["source"]["key"] in d["error"] for d in dead)
    assert dead_letters(tmp_path, "audit-events-all") == []

    # The summary: each service's own tables, its dead letters.
    delivered = {(row[0], row[2]): row[3] for row in result.rows}
    assert delivered == {
        **{("non-cloudwatch-logs", t): len(m) for t, m in expected.items() if t != CLOUDTRAIL},
        ("audit-events-all", CLOUDTRAIL): len(expected[CLOUDTRAIL])}
    assert {row[0]: row[4] for row in result.rows if row[4]} == {"non-cloudwatch-logs": 5}
    # Skipped, counted: the bucket's s3:TestEvent, the CloudTrail digest, the ALB
    # connection log, the Network Firewall tls file, Config's writability check, and the
    # Firehose object's control message.
    assert counters[("s3_sqs", "skipped")] == 6
