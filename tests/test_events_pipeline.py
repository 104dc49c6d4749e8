"""The event services end to end: EventBridge rules -> SQS -> collector -> Devo relay.

Events are sent with PutEvents to the embedded AWS's default event bus, whose rules
(made from io/eventrules.py's patterns, as ``setup`` makes them) send them to SQS;
the collector runs in-process (run_collector) or as the command, and delivers over
TLS to the embedded relay.

What the embedded AWS (moto 5.2.5) does here: it accepts ``aws.*`` sources in
PutEvents (AWS refuses them from a client: only AWS services send them), matches
the ``{"prefix": "aws."}`` pattern, and sends each matching event to every rule's
SQS target, one message each. It has no SNS target for rules (PutEvents fails with
HTTP 500), so SNS-wrapped events are published to a topic the queue subscribes to,
which is what such a rule would do.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from awscollector.config import parse_config
from awscollector.embedded.config import embedded_config
from awscollector.embedded.seed import (
    asff_findings,
    create_event_queue,
    ec2_state_change_events,
    guardduty_finding_events,
    put_events,
    securityhub_findings_event,
    securityhub_insight_event,
)
from awscollector.errors import CollectorError
from awscollector.pipelines.collector import run_collector
from tests.vpc_helpers import ENV, queue_depth, unique

EVENTS_ALL = "service-events-all"
CONSUMER = "sqs-cloudwatch-consumer"
DEFAULT = "cloud.aws.cloudwatch.events"
FINDINGS = "cloud.aws.securityhub.findings"
GUARDDUTY = "cloud.aws.guardduty.findings"


def compact(doc) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def event_queue(aws, service: str, region: str = "us-east-1") -> tuple[str, str]:
    name = unique("events")
    return name, create_event_queue(aws.client("events", region), aws.client("sqs", region),
                                    name, service)


def collect(aws, relay, pki, workdir, services: dict, regions=("us-east-1",)):
    raw = embedded_config(aws.endpoint_url, relay.port, pki, workdir, "-", tuple(regions),
                          services=services)
    return run_collector(parse_config(raw, workdir, environ=ENV), [], idle_seconds=2)


def dead_letters(workdir, service: str) -> list[dict]:
    path = workdir / "deadletter" / f"{service}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def details(relay, table: str) -> list[str]:
    """The ``detail`` of each event a table received, compact, sorted."""
    return sorted(compact(json.loads(e)["detail"]) for e in relay.events(table))


@pytest.fixture(autouse=True)
def _clear_rules(embedded_aws):
    """Rules are per account and region, and the embedded AWS lives for the session:
    each test starts with none, so events reach only its own queues."""
    yield
    for region in ("us-east-1", "eu-west-1"):
        events = embedded_aws.client("events", region)
        for rule in events.list_rules()["Rules"]:
            ids = [t["Id"] for t in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]]
            if ids:
                events.remove_targets(Rule=rule["Name"], Ids=ids)
            events.delete_rule(Name=rule["Name"])


def test_service_events_in_two_regions_arrive_once(embedded_aws, relay, pki, tmp_path):
    queue, urls = None, {}
    sent = {}
    for n, region in enumerate(("us-east-1", "eu-west-1")):
        name = f"svc-events-{n}-{unique('q')}"
        queue = queue or name
        urls[region] = create_event_queue(embedded_aws.client("events", region),
                                          embedded_aws.client("sqs", region), queue,
                                          EVENTS_ALL)
        events = ec2_state_change_events(12 + n * 5, seed=n + 1, region=region)
        if region == "us-east-1":
            events += guardduty_finding_events(2, seed=3)
            events.append(securityhub_findings_event(asff_findings(4, seed=4)))
        put_events(embedded_aws.client("events", region), events)
        # Not an AWS service's event: the rule's {"prefix": "aws."} leaves it out.
        embedded_aws.client("events", region).put_events(Entries=[{
            "Source": "com.example.orders", "DetailType": "Order Placed",
            "Detail": json.dumps({"order": n})}])
        sent[region] = events
    result = collect(embedded_aws, relay, pki, tmp_path,
                     {EVENTS_ALL: {"sqs_queue_name": queue,
                                   "regions": ["us-east-1", "eu-west-1"]}})
    everything = [e for events in sent.values() for e in events]
    assert len(everything) == 12 + 17 + 3
    assert details(relay, DEFAULT) == sorted(compact(e["detail"]) for e in everything)
    assert relay.counts() == {DEFAULT: 32}
    received = [json.loads(e) for e in relay.events(DEFAULT)]
    assert {(e["source"], e["region"]) for e in received} == {
        ("aws.ec2", "us-east-1"), ("aws.ec2", "eu-west-1"), ("aws.guardduty", "us-east-1"),
        ("aws.securityhub", "us-east-1")}
    assert all(set(e) >= {"id", "time", "source", "detail-type", "detail", "resources"}
               for e in received)
    assert result.rows == [(EVENTS_ALL, "us-east-1", DEFAULT, 15, 0),
                           (EVENTS_ALL, "eu-west-1", DEFAULT, 17, 0)]
    for region, url in urls.items():
        assert queue_depth(embedded_aws, url, region) == 0
    assert dead_letters(tmp_path, EVENTS_ALL) == []


def test_auto_event_type_flatten_and_sns_wrapped(embedded_aws, relay, pki, tmp_path):
    queue, url = event_queue(embedded_aws, EVENTS_ALL)
    ec2 = ec2_state_change_events(6, seed=7)
    guardduty = guardduty_finding_events(3, seed=8)
    put_events(embedded_aws.client("events"), ec2 + guardduty)
    # EventBridge -> SNS -> SQS: the event arrives in an SNS envelope.
    sns = embedded_aws.client("sns")
    topic = sns.create_topic(Name=unique("events"))["TopicArn"]
    arn = embedded_aws.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    wrapped = ec2_state_change_events(4, seed=9)
    for event in wrapped:
        sns.publish(TopicArn=topic, Message=json.dumps(event))
    result = collect(embedded_aws, relay, pki, tmp_path,
                     {EVENTS_ALL: {"sqs_queue_name": queue, "auto_event_type": True,
                                   "flatten": True}})
    assert relay.counts() == {"cloud.aws.cloudwatch.ec2": 10,
                              "cloud.aws.cloudwatch.guardduty": 3}
    flat = [json.loads(e) for e in relay.events("cloud.aws.cloudwatch.ec2")]
    assert sorted(e["detail.instance-id"] for e in flat) == sorted(
        e["detail"]["instance-id"] for e in ec2 + wrapped)
    assert not any(isinstance(v, dict) and v for e in flat for v in e.values())
    # The SNS-wrapped ones are the events whole, as published (their id and time too).
    by_instance = {e["detail.instance-id"]: e for e in flat}
    for event in wrapped:
        got = by_instance[event["detail"]["instance-id"]]
        assert got["id"] == event["id"] and got["time"] == event["time"]
    guard = json.loads(relay.events("cloud.aws.cloudwatch.guardduty")[0])
    assert "detail.service.action.portProbeAction.portProbeDetails" in guard
    assert sorted(result.rows) == [
        (EVENTS_ALL, "us-east-1", "cloud.aws.cloudwatch.ec2", 10, 0),
        (EVENTS_ALL, "us-east-1", "cloud.aws.cloudwatch.guardduty", 3, 0)]
    assert queue_depth(embedded_aws, url) == 0


def test_findings_one_event_each_and_bad_messages_dead_lettered(embedded_aws, relay, pki,
                                                                tmp_path):
    queue, url = event_queue(embedded_aws, CONSUMER)
    events = embedded_aws.client("events")
    hundred = asff_findings(100, seed=11)
    more = asff_findings(7, seed=12)
    guardduty = guardduty_finding_events(3, seed=13)
    insight = securityhub_insight_event(seed=14)
    put_events(events, [securityhub_findings_event(hundred, seed=11),
                        securityhub_findings_event(more, seed=12,
                                                   detail_type="Security Hub Findings - "
                                                               "Custom Action"),
                        insight, *guardduty])
    # Partly malformed findings: the good ones are delivered, the rest dead-lettered.
    partly = asff_findings(5, seed=15)
    no_id = {k: v for k, v in partly[1].items() if k != "Id"}
    put_events(events, [securityhub_findings_event([partly[0], no_id, partly[2], "oops",
                                                    partly[3], partly[4]], seed=15)])
    # An EC2 event: not taken by this queue's rules, so it never arrives.
    put_events(events, ec2_state_change_events(2, seed=16))
    # Bodies that are not events, sent straight to the queue.
    sqs = embedded_aws.client("sqs")
    bad = {"not json": "SRC-011",
           json.dumps({"Records": [{"eventSource": "aws:s3"}]}): "SRC-012",
           json.dumps({"Type": "Notification", "Message": "{truncated"}): "SRC-011",
           json.dumps(ec2_state_change_events(1, seed=17)[0]): "SRC-013"}
    ids = {sqs.send_message(QueueUrl=url, MessageBody=body)["MessageId"]: code
           for body, code in bad.items()}
    result = collect(embedded_aws, relay, pki, tmp_path, {CONSUMER: {"sqs_queue_name": queue}})

    good = hundred + more + [partly[0], partly[2], partly[3], partly[4]]
    findings = [json.loads(e) for e in relay.events(FINDINGS)]
    assert sorted(compact(f) for f in findings if "Id" in f) == sorted(map(compact, good))
    [got_insight] = [f for f in findings if "Id" not in f]
    assert got_insight["detail"] == insight["detail"]
    assert got_insight["detail-type"] == "Security Hub Insight Results"
    assert sorted(relay.events(GUARDDUTY)) == sorted(compact(g["detail"]) for g in guardduty)
    assert relay.counts() == {FINDINGS: 112, GUARDDUTY: 3}
    entries = dead_letters(tmp_path, CONSUMER)
    by_message = {e["source"]["message_id"]: e for e in entries}
    for mid, code in ids.items():
        assert by_message[mid]["code"] == code
        assert by_message[mid]["source"]["queue_url"] == url
        assert f"message {mid}" in by_message[mid]["error"]
    [partial] = [e for e in entries if e["code"] == "SRC-014"]
    assert partial["source"]["rejected"] == 2
    assert partial["source"]["records"] == [no_id, "oops"]
    assert len(entries) == 5
    # The service's dead letters count on its region's first row.
    assert result.rows == [(CONSUMER, "us-east-1", GUARDDUTY, 3, 5),
                           (CONSUMER, "us-east-1", FINDINGS, 112, 0)]
    assert queue_depth(embedded_aws, url) == 0


def test_two_event_services_on_one_queue_share_it(embedded_aws, relay, pki, tmp_path):
    """Both services' rules on one queue: a Security Hub or GuardDuty event matches the
    rules of both (two messages); each goes to the service whose format takes it."""
    queue, url = event_queue(embedded_aws, EVENTS_ALL)
    sqs, events = embedded_aws.client("sqs"), embedded_aws.client("events")
    create_event_queue(events, sqs, queue, CONSUMER)  # the same queue: adds the rules
    put_events(events, ec2_state_change_events(5, seed=21)
               + [securityhub_findings_event(asff_findings(10, seed=22), seed=22)]
               + guardduty_finding_events(2, seed=23))
    result = collect(embedded_aws, relay, pki, tmp_path,
                     {EVENTS_ALL: {"sqs_queue_name": queue, "auto_event_type": True},
                      CONSUMER: {"sqs_queue_name": queue}})
    # Two messages per Security Hub and GuardDuty event (two rules matched), one per EC2.
    assert relay.counts() == {"cloud.aws.cloudwatch.ec2": 5, FINDINGS: 20, GUARDDUTY: 4}
    assert sorted(result.rows) == [
        (EVENTS_ALL, "us-east-1", "cloud.aws.cloudwatch.ec2", 5, 0),
        (CONSUMER, "us-east-1", GUARDDUTY, 4, 0),
        (CONSUMER, "us-east-1", FINDINGS, 20, 0)]
    assert queue_depth(embedded_aws, url) == 0


def test_an_s3_service_and_an_event_service_on_one_queue_are_refused(embedded_aws, relay,
                                                                     pki, tmp_path):
    services = {"non-cloudwatch-logs": {"types": ["vpc_flow_logs"], "sqs_queue_name": "shared"},
                EVENTS_ALL: {"sqs_queue_name": "shared"}}
    with pytest.raises(CollectorError) as err:
        collect(embedded_aws, relay, pki, tmp_path, services)
    assert err.value.code == "CFG-018"
    raw = embedded_config(embedded_aws.endpoint_url, relay.port, pki, tmp_path, "-",
                          services=services)
    path = tmp_path / "collector.yaml"
    path.write_text(yaml.safe_dump(raw))
    done = subprocess.run([sys.executable, "-m", "awscollector", "validate", "--config",
                           str(path)], capture_output=True, text=True, timeout=120,
                          env={**ENV, "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(
        "CFG-018 non-cloudwatch-logs and service-events-all read one SQS queue")


def test_the_command_collects_events(embedded_aws, relay, pki, tmp_path):
    queue, url = event_queue(embedded_aws, CONSUMER)
    put_events(embedded_aws.client("events"),
               [securityhub_findings_event(asff_findings(30, seed=31), seed=31)])
    raw = embedded_config(embedded_aws.endpoint_url, relay.port, pki, tmp_path, "-",
                          services={CONSUMER: {"sqs_queue_name": queue}})
    path = tmp_path / "collector.yaml"
    path.write_text(yaml.safe_dump(raw))
    done = subprocess.run([sys.executable, "-m", "awscollector", "run", "--config", str(path),
                           "--until-idle", "--idle-seconds", "2"], capture_output=True,
                          text=True, timeout=300, env={**ENV, "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert "RUN-002" not in done.stderr
    assert relay.counts() == {FINDINGS: 30}
    assert any(line.split()[:4] == [CONSUMER, "us-east-1", FINDINGS, "30"]
               for line in done.stdout.splitlines())
    assert queue_depth(embedded_aws, url) == 0
