"""``aws-collector demo``: the collector's main job against an embedded AWS and Devo.

It starts moto's server and a TLS Devo relay on loopback, seeds every kind of S3
source the collector supports (objects written through the S3 API, announced by
real S3-to-SQS notifications), runs the collector until idle on a config pointing
at them (``<out>/collector.yaml``), and prints the summary. The relay writes what
it got to ``<out>/<table>.log``.

What it seeds, in three regions:

- In the first region, a mixed "log-archive" bucket whose objects are all
  announced on the queue ``aws-logs``, read by two services at once:
  ``non-cloudwatch-logs`` (every type, its default) collects VPC Flow Logs (text in
  the default and a custom format, Parquet, Transit Gateway flow logs), CloudFront
  standard logs, Application, Network and Classic Load Balancer access logs, S3
  server access logs, AWS WAF, Network Firewall (alert, flow) and Route 53 Resolver
  query logs, AWS Config history and snapshot files (and skips Config's writability
  check file), and CloudWatch Logs delivered by Firehose (one object: a control
  message, skipped, VPC Flow Logs lines and an application's logs);
  ``audit-events-all`` (``types: [audits_s3]``) collects CloudTrail log files and an
  Insights file, and skips a CloudTrail-Digest file. One truncated VPC object is
  dead-lettered on purpose (its first lines are delivered).
- In the other regions, VPC Flow Logs (text) on their own ``aws-logs`` queue.
  ``audit-events-all`` reads those queues too (services on one queue read it in the
  same regions), so the summary has its rows there, with nothing delivered.
- Cisco Umbrella dns, ip, proxy and cloud firewall logs (``cisco-umbrella``), and
  JSON lines of an application (a ``custom-s3`` source, ``table:
  my.app.{record.kind}``), each on a bucket and queue of their own.
- EventBridge events, put on the default event bus as the AWS services would, and
  sent by the event services' rules (io/eventrules.py) to their queues: EC2
  instance state changes in two regions, a Security Hub import of several
  findings and a GuardDuty finding in the first. ``service-events-all``
  (``auto_event_type: true``) reads ``aws-events`` in both regions and gets every
  one of them (its rule takes every ``aws.*`` event), a table per service;
  ``sqs-cloudwatch-consumer`` reads ``security-findings`` and gets the Security
  Hub findings (one event each) and the GuardDuty finding.

The exit code is 0 only if every output received at least every good record
and event seeded, table by table (digest files and the truncated object are not
counted).

``--output http`` delivers to an embedded Devo HTTP endpoint instead (HTTPS, a
token, gzip bodies), which writes ``<out>/<table>.log`` just the same;
``--output both`` delivers to both, the HTTP endpoint writing to ``<out>/http/``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from awscollector.embedded.aws import EmbeddedAws
from awscollector.embedded.certs import make_test_pki
from awscollector.embedded.config import HTTP_TOKEN_VAR, embedded_config
from awscollector.embedded.http_endpoint import DevoHttpEndpoint
from awscollector.embedded.relay import DevoRelay
from awscollector.embedded.seed import (
    CLOUDFRONT_FIELDS,
    CLOUDFRONT_FIELDS_2018,
    CUSTOM_FIELDS,
    app_events,
    asff_findings,
    cloudfront_lines,
    cloudtrail_digest_key,
    cloudtrail_digest_object,
    cloudtrail_insight_records,
    cloudtrail_key,
    cloudtrail_object,
    cloudtrail_records,
    create_event_queue,
    create_s3_sqs,
    ec2_state_change_events,
    guardduty_finding_events,
    guardduty_findings,
    lookup_events_records,
    put_cloudfront_object,
    put_cloudtrail_object,
    put_events,
    put_json_lines_object,
    put_tgw_object,
    put_umbrella_object,
    put_vpc_object,
    put_vpc_parquet_object,
    securityhub_findings_event,
    tgw_flow_lines,
    umbrella_lines,
    vpc_flow_lines,
    vpc_key,
    vpc_object,
)
from awscollector.embedded.seed_apis import put_log_group, put_metric_series
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
    resolver_object,
    resolver_records,
    waf_key,
    waf_object,
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

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
QUEUE = "aws-logs"  # in every region; in the first, shared by two services
UMBRELLA_QUEUE = "umbrella-logs"
APP_QUEUE = "myapp-logs"
EVENTS_QUEUE = "aws-events"  # service-events-all, in EVENT_REGIONS
FINDINGS_QUEUE = "security-findings"  # sqs-cloudwatch-consumer, in the first region
EVENT_REGIONS = REGIONS[:2]
EC2_EVENTS = {REGIONS[0]: 8, REGIONS[1]: 4}  # EC2 state changes per region
SECURITY_HUB_FINDINGS = 5  # in one Security Hub import event
OUTPUTS = ("syslog", "http", "both")

VPC_TABLE = "cloud.aws.vpc.flow"
CLOUDTRAIL_TABLE = "cloud.aws.cloudtrail.events"
CLOUDFRONT_TABLE = "cloud.aws.cloudfront.web_1"
UMBRELLA_KINDS = {"dns": 120, "ip": 80, "proxy": 80, "firewall": 60}  # records per kind
APP_TABLE = "my.app.{record.kind}"
LOGS_TABLE = "cloud.aws.cloudwatch.logs"
METRICS_TABLE = "cloud.aws.cloudwatch.metrics"
LOG_GROUPS = {"/demo/lambda/orders": 400, "/demo/lambda/payments": 250, "/demo/ecs/web": 300}
METRIC_NAMESPACES = {"Demo/Web": [("Requests", {"Service": "web"}),
                                  ("Errors", {"Service": "web"})],
                     "Demo/Queue": [("Depth", {"Queue": "orders"})]}
METRIC_PERIODS = 12  # five-minute periods with data, the last ending at least 5 min ago
STATISTICS = ["Sum", "Maximum"]
API_HOURS = 6  # the API services' start_time: this many hours back
TRAIL_API_EVENTS = 180  # CloudTrail management events LookupEvents lists: 4 pages
GUARDDUTY_FINDINGS = 60  # findings of one detector: 2 pages of ListFindings


@dataclass(frozen=True)
class Seeded:
    """One source seeded: what it is, and its good records per Devo table."""

    what: str
    tables: dict[str, int]


def archive_bucket(region: str) -> str:
    """The first region's bucket holds every kind of AWS log; the others, flow logs."""
    return f"demo-log-archive-{region}" if region == REGIONS[0] else f"demo-flow-logs-{region}"


def services_config() -> dict:
    """The ``inputs.aws.services`` block of the demo's config."""
    first = REGIONS[0]
    return {
        # No `types`: every type it has, so the log-archive queue reaches every table.
        "non-cloudwatch-logs": {"sqs_queue_name": QUEUE},
        # The same queue as non-cloudwatch-logs, so in the same regions (services on one
        # queue read it together, each object going to the service of its type).
        # audits_s3: CloudTrail's files; audit_apis: its event history (LookupEvents).
        "audit-events-all": {"types": ["audits_s3", "audit_apis"], "sqs_queue_name": QUEUE,
                             "start_time": _hours_back(API_HOURS), "lag_seconds": 0},
        "cisco-umbrella": {"sqs_queue_name": UMBRELLA_QUEUE, "regions": [first]},
        "custom-s3": {"sources": [{
            "name": "app", "sqs_queue_name": APP_QUEUE, "regions": [first],
            "include": [r"^app/.*\.jsonl\.gz$"], "framing": "json_lines",
            "table": APP_TABLE}]},
        "service-events-all": {"sqs_queue_name": EVENTS_QUEUE, "regions": list(EVENT_REGIONS),
                               "auto_event_type": True},
        "sqs-cloudwatch-consumer": {"sqs_queue_name": FINDINGS_QUEUE, "regions": [first]},
        # The API pullers: from API_HOURS back up to now (no lag: the demo's data is all
        # there when the run starts).
        "cloudwatch-logs": {"log_group_prefixes": ["/demo/"], "regions": [first],
                            "start_time": _hours_back(API_HOURS), "lag_seconds": 0},
        "guardduty": {"regions": [first], "start_time": _hours_back(API_HOURS),
                      "lag_seconds": 0},
        "metrics-all": {"namespaces": list(METRIC_NAMESPACES), "period_seconds": 300,
                        "statistics": STATISTICS, "regions": [first],
                        "start_time": _hours_back(API_HOURS), "lag_seconds": 0},
    }


def _hours_back(hours: int) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)).isoformat(timespec="seconds")


def seed(aws: EmbeddedAws) -> list[Seeded]:
    """Every source of the demo, through the AWS APIs; what was seeded, source by source."""
    first = REGIONS[0]
    s3 = aws.client("s3", first)
    archive = archive_bucket(first)

    vpc = 0
    for r, region in enumerate(REGIONS):
        rs3, sqs = aws.client("s3", region), aws.client("sqs", region)
        bucket = archive_bucket(region)
        create_s3_sqs(rs3, sqs, bucket, QUEUE, region)
        for n in range(3):
            lines = vpc_flow_lines(200, seed=r * 10 + n, region=region)
            put_vpc_object(rs3, bucket, region, n, lines)
            vpc += len(lines)
        lines = vpc_flow_lines(150, CUSTOM_FIELDS, seed=r * 10 + 9, region=region)
        put_vpc_object(rs3, bucket, region, 3, lines, CUSTOM_FIELDS)
        vpc += len(lines)
    # A truncated gzip object: its first lines are delivered, the object is dead-lettered.
    broken = vpc_object(vpc_flow_lines(2000, seed=99))
    s3.put_object(Bucket=archive, Key=vpc_key(first, 99), Body=broken[: len(broken) // 2])
    seeded = [Seeded(f"{vpc} VPC Flow Log records (text, default and custom formats) in "
                     f"{len(REGIONS)} regions, plus one truncated object (dead-lettered on "
                     f"purpose)", {VPC_TABLE: vpc})]

    # The rest of the log-archive bucket, announced on the same queue.
    parquet = vpc_flow_lines(200, CUSTOM_FIELDS, seed=40, region=first)
    put_vpc_parquet_object(s3, archive, first, 10, parquet[:120])
    put_vpc_parquet_object(s3, archive, first, 11, parquet[120:], hive=True)
    seeded.append(Seeded(f"{len(parquet)} VPC Flow Log records in Parquet (2 files, one under "
                         f"Hive-compatible prefixes) in {first}", {VPC_TABLE: len(parquet)}))
    tgw = tgw_flow_lines(200, seed=41, region=first)
    put_tgw_object(s3, archive, first, 20, tgw)
    seeded.append(Seeded(f"{len(tgw)} Transit Gateway flow log records in {first}",
                         {VPC_TABLE: len(tgw)}))

    cloudfront = 0
    for n, (fields, count) in enumerate(((CLOUDFRONT_FIELDS, 150),
                                         (CLOUDFRONT_FIELDS_2018, 100))):
        lines = cloudfront_lines(count, fields, seed=50 + n)
        put_cloudfront_object(s3, archive, n, lines, fields)
        cloudfront += len(lines)
    seeded.append(Seeded(f"{cloudfront} CloudFront standard log records (2 files, AWS's key "
                         f"names, field lists of 2019 and 2018) in {first}",
                         {CLOUDFRONT_TABLE: cloudfront}))

    trail_keys = []
    events = 0
    for n, count in ((1, 120), (2, 80)):
        records = cloudtrail_records(count, seed=60 + n, region=first)
        trail_keys.append(put_cloudtrail_object(s3, archive, first, n, records))
        events += len(records)
    insights = cloudtrail_insight_records(6, seed=63, region=first)
    key = cloudtrail_key(first, 3, kind="CloudTrail-Insight")
    s3.put_object(Bucket=archive, Key=key, Body=cloudtrail_object(insights))
    trail_keys.append(key)
    s3.put_object(Bucket=archive, Key=cloudtrail_digest_key(first),
                  Body=cloudtrail_digest_object(archive, trail_keys))
    seeded.append(Seeded(f"{events + len(insights)} CloudTrail events ({events} in 2 log files, "
                         f"{len(insights)} in an Insights file; +1 digest file, skipped) in "
                         f"{first}", {CLOUDTRAIL_TABLE: events + len(insights)}))

    seeded += seed_more_aws_logs(aws)

    # Cisco Umbrella: a bucket and queue of its own, Cisco's layout.
    create_s3_sqs(s3, aws.client("sqs", first), "demo-umbrella-logs", UMBRELLA_QUEUE, first)
    umbrella = {}
    for n, (kind, count) in enumerate(UMBRELLA_KINDS.items()):
        lines = umbrella_lines(kind, count, seed=70 + n)
        put_umbrella_object(s3, "demo-umbrella-logs", kind, n, lines)
        umbrella[f"sig.cisco.umbrella.{kind}"] = len(lines)
    seeded.append(Seeded(f"{sum(umbrella.values())} Cisco Umbrella records ("
                         + ", ".join(f"{k} {c}" for k, c in UMBRELLA_KINDS.items())
                         + f") on their own bucket and queue in {first}", umbrella))

    # custom-s3: an application's JSON lines, a table per kind of event.
    create_s3_sqs(s3, aws.client("sqs", first), "demo-myapp-logs", APP_QUEUE, first)
    app: Counter[str] = Counter()
    for n, count in ((1, 150), (2, 90)):
        records = app_events(count, seed=80 + n)
        put_json_lines_object(s3, "demo-myapp-logs", f"app/2026/11/27/events-{n}.jsonl.gz",
                              records)
        app.update(f"my.app.{r['kind']}" for r in records)
    seeded.append(Seeded(f"{app.total()} custom-s3 records (source app: JSON lines, table "
                         f"{APP_TABLE}) on their own bucket and queue in {first}", dict(app)))
    return seeded + seed_events(aws) + seed_apis(aws)


def seed_more_aws_logs(aws: EmbeddedAws) -> list[Seeded]:
    """The other logs AWS writes to the log-archive bucket, a few records of each, under
    AWS's keys (announced on the shared queue like the rest)."""
    first = REGIONS[0]
    s3 = aws.client("s3", first)
    archive = archive_bucket(first)

    def put(key: str, body: bytes) -> None:
        s3.put_object(Bucket=archive, Key=key, Body=body)

    alb, nlb, classic = alb_lines(20, seed=120), nlb_lines(10, seed=121), classic_lines(10,
                                                                                   seed=122)
    put(alb_key(first, 1), alb_object(alb))
    put(nlb_key(first, 2), nlb_object(nlb))
    put(classic_key(first, 3), classic_object(classic))
    access = s3_access_lines(15, seed=123)
    put(s3_access_key(1), s3_access_object(access))
    waf = waf_records(12, seed=124, region=first)
    put(waf_key(first), waf_object(waf))
    alerts = firewall_records("alert", 8, seed=125, region=first)
    flows = firewall_records("flow", 12, seed=126, region=first)
    put(firewall_key("alert", first), firewall_object(alerts))
    put(firewall_key("flow", first), firewall_object(flows))
    queries = resolver_records(15, seed=127, region=first)
    put(resolver_key(), resolver_object(queries))
    history = config_items(6, seed=128, region=first, resource_type="AWS::EC2::Instance")
    snapshot = config_items(8, seed=129, region=first)
    put(config_history_key(first), config_history_object(history))
    put(config_snapshot_key(first), config_snapshot_object(snapshot))
    put(config_writability_key(), b"")  # skipped: Config's check it may write, no items
    # CloudWatch Logs through Firehose: a control message (skipped), VPC Flow Logs that
    # went to a log group (to the VPC table, as lines) and an application's logs.
    flow_events = log_events(10, seed=130, messages=vpc_flow_lines(10, seed=130,
                                                                   region=first))
    app_logs = log_events(8, seed=131)
    put(firehose_key("cwl-to-s3", prefix="firehose/"), firehose_object([
        control_payload(),
        subscription_payload("/demo/vpc/flow-logs", "eni-0a1b2c3d4e5f60718-all", flow_events),
        subscription_payload("/demo/app/web", "i-0a1b2c3d4e5f60718", app_logs)]))
    return [
        Seeded(f"Load Balancer access logs ({len(alb)} Application, {len(nlb)} Network, "
               f"{len(classic)} Classic) and {len(access)} S3 server access log records in "
               f"{first}", {"web.aws.alb.access": len(alb), "web.aws.nlb.access": len(nlb),
                            "web.aws.elb.access": len(classic),
                            "web.aws.s3.access": len(access)}),
        Seeded(f"{len(waf)} AWS WAF, {len(alerts)} Network Firewall alert, {len(flows)} "
               f"Network Firewall flow and {len(queries)} Route 53 Resolver query log records "
               f"in {first}", {"cloud.aws.waf.logs": len(waf),
                               "cloud.aws.firewall.alert": len(alerts),
                               "cloud.aws.firewall.netflow": len(flows),
                               "dns.aws.route53": len(queries)}),
        Seeded(f"{len(history) + len(snapshot)} AWS Config configuration items (a history and "
               f"a snapshot file; +1 writability check file, skipped) in {first}",
               {"cloud.aws.configlogs.events": len(history) + len(snapshot)}),
        Seeded(f"a Firehose object of CloudWatch Logs: {len(flow_events)} VPC Flow Logs lines, "
               f"{len(app_logs)} application log events and a control message (skipped) in "
               f"{first}", {VPC_TABLE: len(flow_events), LOGS_TABLE: len(app_logs)}),
    ]


def seed_apis(aws: EmbeddedAws) -> list[Seeded]:
    """What the API pullers read: log groups and metrics of the last hours."""
    first = REGIONS[0]
    logs = aws.client("logs", first)
    now = int(time.time() * 1000)
    start = now - (API_HOURS - 1) * 3_600_000
    for n, (group, count) in enumerate(LOG_GROUPS.items()):
        put_log_group(logs, group, count, start, now - 60_000, seed=100 + n)
    trail = lookup_events_records(TRAIL_API_EVENTS, seed=105, region=first,
                                  start=(start - 3_600_000) / 1000, end=now / 1000 - 60)
    aws.apis.add_trail_events(trail, region=first)
    detector = aws.client("guardduty", first).create_detector(Enable=True)["DetectorId"]
    aws.apis.add_findings(detector, guardduty_findings(
        GUARDDUTY_FINDINGS, seed=106, region=first, detector_id=detector,
        start=start / 1000, end=now / 1000 - 60), region=first)
    cw = aws.client("cloudwatch", first)
    series = sum(put_metric_series(cw, ns, metrics, METRIC_PERIODS, seed=110 + n)
                 for n, (ns, metrics) in enumerate(METRIC_NAMESPACES.items()))
    return [
        Seeded(f"{len(trail)} CloudTrail management events in the event history "
               f"(LookupEvents) of {first}, to audit-events-all (audit_apis)",
               {CLOUDTRAIL_TABLE: len(trail)}),
        Seeded(f"{GUARDDUTY_FINDINGS} GuardDuty findings of a detector in {first}, to "
               f"guardduty (ListFindings, GetFindings)",
               {"cloud.aws.guardduty.findings": GUARDDUTY_FINDINGS}),
        Seeded(f"{sum(LOG_GROUPS.values())} CloudWatch Logs events in {len(LOG_GROUPS)} log "
               f"groups over {API_HOURS - 1} hours in {first}, to cloudwatch-logs",
               {LOGS_TABLE: sum(LOG_GROUPS.values())}),
        Seeded(f"{series} five-minute periods of {sum(map(len, METRIC_NAMESPACES.values()))} "
               f"CloudWatch metrics in {len(METRIC_NAMESPACES)} namespaces in {first}, to "
               f"metrics-all ({len(STATISTICS)} statistics: a datapoint each)",
               {METRICS_TABLE: series * len(STATISTICS)}),
    ]


def seed_events(aws: EmbeddedAws) -> list[Seeded]:
    """EventBridge events through the rules of the event services to their queues."""
    first = REGIONS[0]
    for region in EVENT_REGIONS:
        create_event_queue(aws.client("events", region), aws.client("sqs", region),
                           EVENTS_QUEUE, "service-events-all")
    create_event_queue(aws.client("events", first), aws.client("sqs", first), FINDINGS_QUEUE,
                       "sqs-cloudwatch-consumer")
    for n, (region, count) in enumerate(EC2_EVENTS.items()):
        put_events(aws.client("events", region),
                   ec2_state_change_events(count, seed=90 + n, region=region))
    findings = asff_findings(SECURITY_HUB_FINDINGS, seed=95, region=first)
    put_events(aws.client("events", first),
               [securityhub_findings_event(findings, region=first, seed=95),
                *guardduty_finding_events(1, seed=96, region=first)])
    return [
        Seeded(f"{sum(EC2_EVENTS.values())} EC2 instance state-change events (EventBridge) in "
               f"{', '.join(EVENT_REGIONS)}, to service-events-all",
               {"cloud.aws.cloudwatch.ec2": sum(EC2_EVENTS.values())}),
        # Both services' rules take these: one message on each queue.
        Seeded(f"a Security Hub import of {len(findings)} findings and a GuardDuty finding "
               f"(EventBridge) in {first}, to sqs-cloudwatch-consumer (a Devo event per "
               f"finding) and to service-events-all (a Devo event per event)",
               {"cloud.aws.securityhub.findings": len(findings),
                "cloud.aws.guardduty.findings": 1, "cloud.aws.cloudwatch.securityhub": 1,
                "cloud.aws.cloudwatch.guardduty": 1}),
    ]


def expected_tables(seeded: list[Seeded]) -> dict[str, int]:
    """The good records seeded, per Devo table."""
    expected: Counter[str] = Counter()
    for source in seeded:
        expected.update(source.tables)
    return dict(expected)


def missing(expected: dict[str, int], received: dict[str, int]) -> list[str]:
    """Tables that received fewer events than the good records seeded for them."""
    return [f"{table}: {received.get(table, 0)} of {n}" for table, n in sorted(expected.items())
            if received.get(table, 0) < n]


def run_demo(out: str = "demo-out", output: str = "syslog") -> int:
    """Runs the demo; ``output`` is "syslog" (the relay), "http" or "both"."""
    from awscollector.config import parse_config
    from awscollector.pipelines.collector import run_collector
    from awscollector.pipelines.summary import format_summary

    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, not {output!r}")
    out_dir = Path(out)
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    workdir = Path(tempfile.mkdtemp(prefix="aws-collector-demo-"))
    pki = make_test_pki(workdir / "certs")
    token = secrets.token_urlsafe(24)  # the demo's own: not in the config file it writes
    with contextlib.ExitStack() as stack:
        aws = stack.enter_context(EmbeddedAws(in_process=False, apis=True))
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
        seeded = seed(aws)
        for source in seeded:
            print(f"seeded {source.what}")
        print(f"the log-archive bucket of {REGIONS[0]} announces all its objects on queue "
              f"{QUEUE}, read by non-cloudwatch-logs and audit-events-all")
        raw = embedded_config(aws.endpoint_url, relay.port if relay else None, pki, workdir,
                              QUEUE, REGIONS, dead_letter_dir=out_dir / "deadletter",
                              http_url=endpoint.url if endpoint else None,
                              services=services_config())
        (out_dir / "collector.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               HTTP_TOKEN_VAR: token}
        config = parse_config(raw, workdir, environ=env)
        result = run_collector(config, [], idle_seconds=3)
    print()
    print(format_summary(result.rows))
    print()
    expected = expected_tables(seeded)
    short = []
    receivers = [(name, server, where) for name, server, where in (
        ("the relay", relay, out_dir),
        ("the HTTP endpoint", endpoint, out_dir / "http" if relay is not None else out_dir))
        if server is not None]
    for name, server, where in receivers:
        print(f"{name} received {server.total()} events: {where}/<table>.log")
        short += [f"{name}, {m}" for m in missing(expected, server.counts())]
    print(f"dead letters: {out_dir / 'deadletter'}/<service>.jsonl")
    print(f"the config used: {out_dir / 'collector.yaml'}")
    if short:
        print(f"NOT every good record seeded was received ({sum(expected.values())} seeded):")
        for line in short:
            print(f"  {line}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_demo())
