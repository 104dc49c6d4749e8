"""`aws-collector setup`: what it creates on the embedded AWS, that the collector then
collects through it, that a second run and a dry run change nothing, and that what a
user had (a queue policy statement, a bucket's other notifications) survives.

Every check reads the structures back over the AWS API (moto's server over HTTP),
the way a user would see them in their account.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from awscollector.config import parse_config
from awscollector.embedded.config import embedded_config
from awscollector.embedded.seed import (
    asff_findings,
    ec2_state_change_events,
    guardduty_finding_events,
    put_events,
    securityhub_findings_event,
    vpc_key,
)
from awscollector.io.eventrules import RULES
from awscollector.pipelines.collector import run_collector
from awscollector.provision import run_setup
from awscollector.provision.needs import DEFAULT_MAX_RECEIVE_COUNT, queue_needs
from awscollector.provision.notifications import with_queue
from awscollector.provision.queues import (
    DLQ_RETENTION_SECONDS,
    redrive_max_receive_count,
    statement,
    uncovered,
)
from tests.vpc_helpers import ENV, put_object, queue_depth, tagged_lines, unique

ACCOUNT = "123456789012"  # the embedded AWS's account
VPC = "cloud.aws.vpc.flow"
EVENTS_ALL, CONSUMER, NCL = "service-events-all", "sqs-cloudwatch-consumer", "non-cloudwatch-logs"
SECRET = "SetupSecret987ZYX"


# ---------------------------------------------------------------------------- helpers


def name(prefix: str) -> str:
    return unique(f"setup-{prefix}")  # every rule of these tests starts with "setup-"


@pytest.fixture(autouse=True)
def _remove_our_rules(embedded_aws):
    """Rules live in the session's one account: leave none that catch other tests' events."""
    yield
    for region in ("us-east-1", "eu-west-1"):
        events = embedded_aws.client("events", region)
        for rule in events.list_rules(NamePrefix="setup-")["Rules"]:
            ids = [t["Id"] for t in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]]
            if ids:
                events.remove_targets(Rule=rule["Name"], Ids=ids)
            events.delete_rule(Name=rule["Name"])


def raw(aws, tmp_path: Path, services: dict, relay_port: int | None = None, pki=None,
        **aws_input) -> dict:
    doc = embedded_config(aws.endpoint_url, relay_port, pki, tmp_path, "-", services=services)
    if relay_port is None:  # setup alone: any output makes the config valid
        doc["outputs"] = {"devo_1": {"type": "devo_platform", "config": {
            "address": "127.0.0.1", "port": 1, "type": "TCP"}}}
    doc["inputs"]["aws"].update(aws_input)
    return doc


def load(doc: dict, tmp_path: Path):
    return parse_config(doc, tmp_path, environ=ENV)


def setup(aws, tmp_path, services, dry_run=False, **aws_input):
    lines, errors = [], []
    result = run_setup(load(raw(aws, tmp_path, services, **aws_input), tmp_path),
                       dry_run=dry_run, out=lines.append, err=errors.append)
    assert result.lines == lines
    return result, errors


def bucket(aws, region: str = "us-east-1") -> str:
    b = name("logs")
    kwargs = {} if region == "us-east-1" else {
        "CreateBucketConfiguration": {"LocationConstraint": region}}
    aws.client("s3", region).create_bucket(Bucket=b, **kwargs)
    return b


def url_of(aws, queue: str, region: str = "us-east-1") -> str:
    return aws.client("sqs", region).get_queue_url(QueueName=queue)["QueueUrl"]


def attrs(aws, queue: str, region: str = "us-east-1") -> dict:
    found = aws.client("sqs", region).get_queue_attributes(
        QueueUrl=url_of(aws, queue, region), AttributeNames=["All"])["Attributes"]
    return {k: v for k, v in found.items() if not k.startswith("Approximate")}


def policy(aws, queue: str, region: str = "us-east-1") -> dict:
    return json.loads(attrs(aws, queue, region)["Policy"])


def notification(aws, b: str, region: str = "us-east-1") -> dict:
    found = aws.client("s3", region).get_bucket_notification_configuration(Bucket=b)
    return {k: v for k, v in found.items() if k != "ResponseMetadata"}


def rule_state(aws, rule: str, region: str = "us-east-1") -> tuple[dict, list[dict]]:
    events = aws.client("events", region)
    found = {k: v for k, v in events.describe_rule(Name=rule).items()
             if k != "ResponseMetadata"}
    return found, events.list_targets_by_rule(Rule=rule)["Targets"]


def receive_all(aws, queue: str, region: str = "us-east-1") -> list[dict]:
    sqs, url = aws.client("sqs", region), url_of(aws, queue, region)
    bodies = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                  WaitTimeSeconds=1).get("Messages", [])
        if not got:
            return bodies
        for m in got:
            bodies.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def snapshot(aws, queues: list[str], rules: list[str], buckets: list[str]) -> dict:
    return {"queues": {q: attrs(aws, q) for q in queues},
            "rules": {r: rule_state(aws, r) for r in rules},
            "buckets": {b: notification(aws, b) for b in buckets}}


# -------------------------------------------------------- creating, then collecting


def test_setup_creates_what_the_s3_service_needs_and_the_collector_collects_through_it(
        embedded_aws, relay, pki, tmp_path):
    logs, queue = bucket(embedded_aws), name("flow")
    services = {NCL: {"types": ["vpc_flow_logs"], "sqs_queue_name": queue,
                      "s3_buckets": [logs]}}
    result, errors = setup(embedded_aws, tmp_path, services)
    assert errors == [] and result.exit_code == 0
    assert result.lines == [
        f"created  sqs dead-letter queue {queue}-dlq (us-east-1)",
        f"created  sqs queue {queue} (us-east-1)",
        f"created  sqs queue policy of {queue} for s3.amazonaws.com (us-east-1)",
        f"created  s3 bucket notification {logs} -> sqs queue {queue} (us-east-1)"]

    queue_arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:{queue}"
    found = attrs(embedded_aws, queue)
    assert found["QueueArn"] == queue_arn
    redrive = json.loads(found["RedrivePolicy"])
    assert redrive == {"deadLetterTargetArn": f"{queue_arn}-dlq",
                       "maxReceiveCount": DEFAULT_MAX_RECEIVE_COUNT + 5}
    assert redrive["maxReceiveCount"] > DEFAULT_MAX_RECEIVE_COUNT
    assert attrs(embedded_aws, f"{queue}-dlq")["MessageRetentionPeriod"] == str(
        DLQ_RETENTION_SECONDS)
    [st] = policy(embedded_aws, queue)["Statement"]
    assert st["Effect"] == "Allow" and st["Action"] == "sqs:SendMessage"
    assert st["Principal"] == {"Service": "s3.amazonaws.com"}
    assert st["Resource"] == queue_arn
    assert st["Condition"] == {"ArnEquals": {"aws:SourceArn": [f"arn:aws:s3:::{logs}"]},
                               "StringEquals": {"aws:SourceAccount": ACCOUNT}}
    assert notification(embedded_aws, logs)["QueueConfigurations"] == [{
        "Id": f"aws-collector-{queue}", "QueueArn": queue_arn,
        "Events": ["s3:ObjectCreated:*"]}]

    # The bucket now announces objects to the queue: the collector delivers every line
    # (and drops the s3:TestEvent S3 sent when the notification was configured).
    objects = {n: tagged_lines(n, 150) for n in range(4)}
    for n, lines in objects.items():
        put_object(embedded_aws, logs, vpc_key("us-east-1", n), lines)
    config = load(raw(embedded_aws, tmp_path, services, relay.port, pki), tmp_path)
    run = run_collector(config, [], idle_seconds=2)
    assert sorted(relay.events(VPC)) == sorted(line for ls in objects.values() for line in ls)
    assert run.rows == [(NCL, "us-east-1", VPC, 600, 0)]
    assert queue_depth(embedded_aws, url_of(embedded_aws, queue)) == 0


def test_setup_creates_the_event_rules_and_events_reach_the_collector(
        embedded_aws, relay, pki, tmp_path):
    events_q, findings_q = name("events"), name("findings")
    services = {EVENTS_ALL: {"sqs_queue_name": events_q},
                CONSUMER: {"sqs_queue_name": findings_q}}
    result, errors = setup(embedded_aws, tmp_path, services)
    assert errors == [] and result.exit_code == 0
    for queue, service in ((events_q, EVENTS_ALL), (findings_q, CONSUMER)):
        queue_arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:{queue}"
        rule_arns = []
        for rule in RULES[service]:
            found, targets = rule_state(embedded_aws, f"{queue}-{rule.suffix}")
            assert json.loads(found["EventPattern"]) == rule.pattern
            assert found["State"] == "ENABLED"
            assert [t["Arn"] for t in targets] == [queue_arn]
            rule_arns.append(found["Arn"])
            assert f"created  eventbridge rule {queue}-{rule.suffix} (us-east-1)" in result.lines
        [st] = policy(embedded_aws, queue)["Statement"]
        assert st["Principal"] == {"Service": "events.amazonaws.com"}
        assert st["Resource"] == queue_arn
        assert st["Condition"] == {"ArnEquals": {"aws:SourceArn": sorted(rule_arns)}}

    ec2 = ec2_state_change_events(3, seed=41)
    findings = securityhub_findings_event(asff_findings(2, seed=42), seed=42)
    guardduty = guardduty_finding_events(1, seed=43)
    events = embedded_aws.client("events")
    put_events(events, [*ec2, findings, *guardduty])
    events.put_events(Entries=[{"Source": "com.example.app", "DetailType": "x",
                                "Detail": "{}"}])  # no rule of ours takes it
    # Through the rules setup made: every AWS event to the first queue, only the
    # findings to the second.
    got = receive_all(embedded_aws, events_q)
    assert sorted(e["detail-type"] for e in got) == sorted(
        e["detail-type"] for e in [*ec2, findings, *guardduty])
    got = receive_all(embedded_aws, findings_q)
    assert sorted(e["detail-type"] for e in got) == ["GuardDuty Finding",
                                                    "Security Hub Findings - Imported"]

    # And the collector reads what the rules send.
    put_events(events, [*ec2, findings, *guardduty])
    config = load(raw(embedded_aws, tmp_path, services, relay.port, pki), tmp_path)
    run_collector(config, [], idle_seconds=2)
    assert relay.counts() == {"cloud.aws.cloudwatch.events": 5,
                              "cloud.aws.securityhub.findings": 2,
                              "cloud.aws.guardduty.findings": 1}
    for queue in (events_q, findings_q):
        assert queue_depth(embedded_aws, url_of(embedded_aws, queue)) == 0


# ----------------------------------------------------------- idempotence, dry run


def test_a_second_setup_reports_everything_present_and_changes_nothing(embedded_aws,
                                                                      tmp_path):
    logs, flow, events_q = bucket(embedded_aws), name("flow"), name("events")
    services = {NCL: {"sqs_queue_name": flow, "s3_buckets": [logs]},
                EVENTS_ALL: {"sqs_queue_name": events_q}}
    first, _ = setup(embedded_aws, tmp_path, services)
    assert first.exit_code == 0 and all(line.startswith("created  ") for line in first.lines)
    rule = f"{events_q}-{RULES[EVENTS_ALL][0].suffix}"
    queues = [flow, f"{flow}-dlq", events_q, f"{events_q}-dlq"]
    before = snapshot(embedded_aws, queues, [rule], [logs])
    second, errors = setup(embedded_aws, tmp_path, services)
    assert errors == [] and second.exit_code == 0
    assert second.lines == [line.replace("created  ", "present  ") for line in first.lines]
    assert snapshot(embedded_aws, queues, [rule], [logs]) == before
    assert len(policy(embedded_aws, flow)["Statement"]) == 1


def test_dry_run_on_an_empty_account_creates_nothing(embedded_aws, tmp_path):
    logs, flow, events_q = bucket(embedded_aws), name("flow"), name("events")
    services = {NCL: {"sqs_queue_name": flow, "s3_buckets": [logs]},
                EVENTS_ALL: {"sqs_queue_name": events_q}}
    result, errors = setup(embedded_aws, tmp_path, services, dry_run=True)
    assert errors == [] and result.exit_code == 0
    assert result.lines == [
        f"would create sqs dead-letter queue {flow}-dlq (us-east-1)",
        f"would create sqs queue {flow} (us-east-1)",
        f"would create sqs queue policy of {flow} for s3.amazonaws.com (us-east-1)",
        f"would create s3 bucket notification {logs} -> sqs queue {flow} (us-east-1)",
        f"would create sqs dead-letter queue {events_q}-dlq (us-east-1)",
        f"would create sqs queue {events_q} (us-east-1)",
        f"would create sqs queue policy of {events_q} for events.amazonaws.com (us-east-1)",
        f"would create eventbridge rule {events_q}-aws-service-events (us-east-1)",
        f"would create eventbridge target {events_q} of rule {events_q}-aws-service-events"
        " (us-east-1)"]
    sqs, events = embedded_aws.client("sqs"), embedded_aws.client("events")
    for prefix in (flow, events_q):
        assert sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", []) == []
    assert events.list_rules(NamePrefix=events_q)["Rules"] == []
    assert notification(embedded_aws, logs) == {}
    # A dry run after the real one: everything is present, nothing would be created.
    setup(embedded_aws, tmp_path, services)
    again, _ = setup(embedded_aws, tmp_path, services, dry_run=True)
    assert all(line.startswith("present  ") for line in again.lines)


# ---------------------------------------------------------- what the user had


def test_an_existing_queue_policy_and_bucket_notifications_survive(embedded_aws, tmp_path):
    s3, sqs, sns = (embedded_aws.client(s) for s in ("s3", "sqs", "sns"))
    logs, queue, other = bucket(embedded_aws), name("flow"), name("other")
    # The user's queue: no dead-letter queue, and a policy statement of theirs.
    url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    queue_arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:{queue}"
    theirs = {"Sid": "FromTheirTopic", "Effect": "Allow",
              "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
              "Resource": queue_arn, "Condition": {"ArnEquals": {
                  "aws:SourceArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:theirs"}}}
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(
        {"Version": "2012-10-17", "Id": "their-policy", "Statement": [theirs]})})
    # The bucket's notifications: deletions to another queue, restores to a topic.
    other_arn = sqs.get_queue_attributes(
        QueueUrl=sqs.create_queue(QueueName=other)["QueueUrl"],
        AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = sns.create_topic(Name=name("topic"))["TopicArn"]
    s3.put_bucket_notification_configuration(Bucket=logs, NotificationConfiguration={
        "QueueConfigurations": [{"Id": "deletions", "QueueArn": other_arn,
                                 "Events": ["s3:ObjectRemoved:*"]}],
        "TopicConfigurations": [{"Id": "restores", "TopicArn": topic,
                                 "Events": ["s3:ObjectRestore:Completed"]}]})
    before = notification(embedded_aws, logs)
    redrive_before = attrs(embedded_aws, queue).get("RedrivePolicy")

    result, errors = setup(embedded_aws, tmp_path, {NCL: {"sqs_queue_name": queue,
                                                          "s3_buckets": [logs]}})
    assert errors == [] and result.exit_code == 0
    assert result.lines == [
        f"note     sqs queue {queue} has no dead-letter queue; setup does not change an "
        "existing queue (us-east-1)",
        f"present  sqs queue {queue} (us-east-1)",
        f"created  sqs queue policy of {queue} for s3.amazonaws.com (us-east-1)",
        f"created  s3 bucket notification {logs} -> sqs queue {queue} (us-east-1)"]
    found = policy(embedded_aws, queue)
    assert found["Id"] == "their-policy"
    assert found["Statement"][0] == theirs
    assert found["Statement"][1]["Principal"] == {"Service": "s3.amazonaws.com"}
    assert len(found["Statement"]) == 2
    assert attrs(embedded_aws, queue).get("RedrivePolicy") == redrive_before  # not added
    after = notification(embedded_aws, logs)
    assert after["TopicConfigurations"] == before["TopicConfigurations"]
    assert after["QueueConfigurations"][:-1] == before["QueueConfigurations"]
    assert after["QueueConfigurations"][-1]["QueueArn"] == queue_arn
    assert after["QueueConfigurations"][-1]["Events"] == ["s3:ObjectCreated:*"]


def test_a_bucket_already_sending_object_created_elsewhere_is_left_and_reported(
        embedded_aws, tmp_path):
    sqs = embedded_aws.client("sqs")
    logs, taken, queue, other = bucket(embedded_aws), bucket(embedded_aws), name("q"), name("o")
    other_arn = sqs.get_queue_attributes(
        QueueUrl=sqs.create_queue(QueueName=other)["QueueUrl"],
        AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    embedded_aws.client("s3").put_bucket_notification_configuration(
        Bucket=taken, NotificationConfiguration={"QueueConfigurations": [
            {"Id": "theirs", "QueueArn": other_arn, "Events": ["s3:ObjectCreated:Put"],
             "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "app/"}]}}}]})
    before = notification(embedded_aws, taken)
    result, errors = setup(embedded_aws, tmp_path, {NCL: {
        "sqs_queue_name": queue, "s3_buckets": [taken, "setup-no-such-bucket-0", logs]}})
    assert result.exit_code == 1
    assert [e.split(" ", 1)[0] for e in errors] == ["AWS-012", "AWS-010"]
    assert f"s3 bucket {taken} already sends ObjectCreated events to {other_arn}" in errors[0]
    assert "s3 bucket setup-no-such-bucket-0" in errors[1]
    assert notification(embedded_aws, taken) == before
    # The rest is done.
    assert (f"created  s3 bucket notification {logs} -> sqs queue {queue} (us-east-1)"
            in result.lines)


def test_a_bucket_in_another_region_than_its_queue_is_reported(embedded_aws, tmp_path):
    far = bucket(embedded_aws, "eu-west-1")
    result, errors = setup(embedded_aws, tmp_path, {NCL: {
        "sqs_queue_name": name("q"), "s3_buckets": [far], "regions": ["us-east-1"]}})
    assert result.exit_code == 1
    [error] = errors
    assert error.startswith(f"AWS-011 s3 bucket {far} is in eu-west-1")
    assert notification(embedded_aws, far, "eu-west-1") == {}


def test_a_queue_given_by_url_must_exist(embedded_aws, tmp_path):
    sqs = embedded_aws.client("sqs")
    mine = sqs.create_queue(QueueName=name("url"))["QueueUrl"]
    gone = f"{embedded_aws.endpoint_url}/{ACCOUNT}/setup-not-there"
    result, errors = setup(embedded_aws, tmp_path, {
        EVENTS_ALL: {"sqs_queue_url": mine}, CONSUMER: {"sqs_queue_url": gone}})
    assert result.exit_code == 1
    [error] = errors
    assert error.startswith(f"AWS-005 sqs queue {gone} (us-east-1) does not exist")
    qname = mine.rsplit("/", 1)[1]
    assert f"present  sqs queue {qname} (us-east-1)" in result.lines
    assert f"created  eventbridge rule {qname}-aws-service-events (us-east-1)" in result.lines
    assert sqs.list_queues(QueueNamePrefix=f"{qname}-dlq").get("QueueUrls", []) == []
    assert not any("setup-not-there" in line for line in result.lines)


def test_an_assumed_role_reaches_the_same_account(embedded_aws, tmp_path):
    queue = name("role")
    result, errors = setup(embedded_aws, tmp_path, {EVENTS_ALL: {"sqs_queue_name": queue}},
                           credentials={
                               "access_key": "testing", "access_secret": SECRET,
                               "target_assume_role": f"arn:aws:iam::{ACCOUNT}:role/collector",
                               "assume_role_external_id": "ext-id-42"})
    assert errors == [] and result.exit_code == 0
    assert f"created  sqs queue {queue} (us-east-1)" in result.lines
    assert not any(SECRET in line or "ext-id-42" in line for line in result.lines)


# ------------------------------------------------------------------ the command


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "awscollector", *args], capture_output=True,
                          text=True, timeout=180, env={**os.environ, **ENV})


def test_the_command_exit_codes(embedded_aws, tmp_path):
    logs, queue = bucket(embedded_aws), name("cli")
    doc = raw(embedded_aws, tmp_path, {NCL: {"sqs_queue_name": queue, "s3_buckets": [logs]},
                                       EVENTS_ALL: {"sqs_queue_name": name("cli-events")}})
    doc["inputs"]["aws"]["credentials"]["access_secret"] = SECRET
    path = tmp_path / "collector.yaml"
    path.write_text(yaml.safe_dump(doc))

    dry = _cli("setup", "--config", str(path), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[0] == f"would create sqs dead-letter queue {queue}-dlq " \
                                         "(us-east-1)"
    assert embedded_aws.client("sqs").list_queues(QueueNamePrefix=queue).get("QueueUrls",
                                                                            []) == []
    done = _cli("setup", "--config", str(path))
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 9
    assert all(line.startswith("created  ") for line in done.stdout.splitlines())
    again = _cli("setup", "--config", str(path))
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [line.replace("created  ", "present  ")
                                         for line in done.stdout.splitlines()]
    for run in (dry, done, again):
        assert SECRET not in run.stdout + run.stderr

    # 1: a bucket that does not exist, reported after the rest is done.
    doc["inputs"]["aws"]["services"][NCL]["s3_buckets"] = ["setup-no-such-bucket-1", logs]
    path.write_text(yaml.safe_dump(doc))
    missing = _cli("setup", "--config", str(path))
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1].startswith(
        "AWS-010 s3 bucket setup-no-such-bucket-1")
    assert len(missing.stdout.splitlines()) == 9
    # 1: AWS unreachable.
    doc["inputs"]["aws"]["endpoint_url"] = "http://127.0.0.1:9"
    path.write_text(yaml.safe_dump(doc))
    unreachable = _cli("setup", "--config", str(path))
    assert unreachable.returncode == 1
    assert unreachable.stderr.strip().splitlines()[-1].startswith("AWS-006 ")
    # 2: a bad config, and bad usage.
    doc["inputs"]["aws"]["services"][NCL]["s3_bucket"] = [logs]
    path.write_text(yaml.safe_dump(doc))
    bad = _cli("setup", "--config", str(path))
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith(
        "CFG-003 inputs.aws.services.non-cloudwatch-logs.s3_bucket")
    assert _cli("setup", "--config", str(path), "--dry-run", "--nonsense").returncode == 2
    assert _cli("setup", "--config", str(path), "--bogus").returncode == 2


# ------------------------------------------------------------------- the parts


def test_the_redrive_count_is_above_the_collectors():
    for count in (1, 5, 20):
        assert redrive_max_receive_count(count) > count
    assert redrive_max_receive_count(0) == DEFAULT_MAX_RECEIVE_COUNT + 5


def test_a_statement_covers_what_it_allows():
    queue = f"arn:aws:sqs:us-east-1:{ACCOUNT}:q"
    rule_a = f"arn:aws:events:us-east-1:{ACCOUNT}:rule/q-a"
    rule_b = f"arn:aws:events:us-east-1:{ACCOUNT}:rule/q-b"
    ours = statement("events.amazonaws.com", queue, [rule_a])
    assert uncovered({"Statement": [ours]}, "events.amazonaws.com", queue,
                     [rule_a, rule_b]) == [rule_b]
    assert uncovered(None, "events.amazonaws.com", queue, [rule_a]) == [rule_a]
    unconditional = {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                     "Action": "sqs:*", "Resource": queue}
    assert uncovered({"Statement": unconditional}, "events.amazonaws.com", queue,
                     [rule_a, rule_b]) == []
    like = {**unconditional, "Condition": {"ArnLike": {
        "aws:SourceArn": f"arn:aws:events:us-east-1:{ACCOUNT}:rule/q-*"}}}
    assert uncovered({"Statement": [like]}, "events.amazonaws.com", queue, [rule_b]) == []
    for not_enough in ({**unconditional, "Effect": "Deny"},
                       {**unconditional, "Principal": {"Service": "sns.amazonaws.com"}},
                       {**unconditional, "Action": "sqs:ReceiveMessage"},
                       {**unconditional, "Resource": queue + "-other"},
                       {**unconditional, "Condition": {"IpAddress": {"aws:SourceIp": "1.2.3.4"}}}):
        assert uncovered({"Statement": [not_enough]}, "events.amazonaws.com", queue,
                         [rule_a]) == [rule_a]
    s3 = statement("s3.amazonaws.com", queue, ["arn:aws:s3:::b"], ACCOUNT)
    assert uncovered({"Statement": [s3]}, "s3.amazonaws.com", queue, ["arn:aws:s3:::b"],
                     ACCOUNT) == []
    assert uncovered({"Statement": [s3]}, "s3.amazonaws.com", queue, ["arn:aws:s3:::b"],
                     "999999999999") == ["arn:aws:s3:::b"]


def test_our_queue_configuration_is_added_to_the_others():
    queue = f"arn:aws:sqs:us-east-1:{ACCOUNT}:q"
    lam = {"Id": "l", "LambdaFunctionArn": "arn:aws:lambda:us-east-1:1:function:f",
           "Events": ["s3:ObjectRemoved:*"]}
    current = {"ResponseMetadata": {}, "LambdaFunctionConfigurations": [lam],
               "EventBridgeConfiguration": {}}
    merged = with_queue(current, queue, "ours")
    assert merged == {"LambdaFunctionConfigurations": [lam], "EventBridgeConfiguration": {},
                      "QueueConfigurations": [{"Id": "ours", "QueueArn": queue,
                                               "Events": ["s3:ObjectCreated:*"]}]}
    assert with_queue(merged, queue, "ours") is None
    filtered = {"QueueConfigurations": [{"QueueArn": queue, "Events": ["s3:ObjectCreated:Put"],
                                         "Filter": {}}]}
    assert with_queue(filtered, queue, "ours") is None  # already sends to this queue
    with pytest.raises(ValueError, match="function:g"):
        with_queue({"LambdaFunctionConfigurations": [{
            "LambdaFunctionArn": "arn:aws:lambda:us-east-1:1:function:g",
            "Events": ["s3:ObjectCreated:*"]}]}, queue, "ours")


def test_queue_needs_from_the_config(embedded_aws, tmp_path):
    doc = raw(embedded_aws, tmp_path, {
        NCL: {"sqs_queue_name": "shared", "s3_buckets": ["b-one"]},
        "audit-events-all": {"sqs_queue_name": "shared", "s3_buckets": ["b-two", "b-one"]},
        "cisco-umbrella": {"sqs_queue_name": "umbrella", "regions": ["eu-west-1"]},
        "custom-s3": {"sources": [
            {"name": "app", "sqs_queue_name": "app", "s3_buckets": ["b-app"],
             "framing": "lines", "table": "my.app", "regions": ["us-east-1", "eu-west-1"]}]},
        "guardduty": {},
        CONSUMER: {"sqs_queue_name": "findings"}})
    needs, nothing = queue_needs(load(doc, tmp_path))
    by = {(n.region, n.queue): n for n in needs}
    assert nothing == ["guardduty"]
    shared = by[("us-east-1", "shared")]
    assert shared.services == [NCL, "audit-events-all"]
    assert shared.buckets == ["b-one", "b-two"]
    assert shared.max_receive_count == DEFAULT_MAX_RECEIVE_COUNT
    assert by[("eu-west-1", "umbrella")].unlisted_s3 == ["cisco-umbrella"]
    assert {r for r, q in by if q == "app"} == {"us-east-1", "eu-west-1"}
    assert by[("us-east-1", "app")].services == ["custom-s3/app"]
    assert [r.suffix for r in by[("us-east-1", "findings")].rules] == [
        r.suffix for r in RULES[CONSUMER]]
