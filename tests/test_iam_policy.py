"""`aws-collector iam-policy`: the printed policy, statement by statement, and proof that
it is enough and that each of its actions is needed, on an embedded AWS enforcing IAM."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
import yaml

from awscollector.config import parse_config
from awscollector.embedded.aws import EmbeddedAws
from awscollector.embedded.config import embedded_config
from awscollector.embedded.seed import (
    create_event_queue,
    create_s3_sqs,
    ec2_state_change_events,
    put_events,
    put_vpc_object,
    vpc_key,
)
from awscollector.iampolicy import queue_arn
from tests.vpc_helpers import queue_depth, run_cli, tagged_lines, unique

REGION = "us-east-1"
ACCOUNT = "123456789012"  # the embedded AWS's account
VPC_TABLE = "cloud.aws.vpc.flow"
EVENTS_TABLE = "cloud.aws.cloudwatch.events"
OBJECTS, LINES, EVENTS = 3, 40, 5


def _policy(config: dict, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    path = tmp_path / f"policy-{unique('c')}.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run([sys.executable, "-m", "awscollector", "iam-policy", "--config",
                           str(path), *args], capture_output=True, text=True, timeout=120)


def _printed(config: dict, tmp_path: Path, *args: str) -> dict:
    done = _policy(config, tmp_path, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _base(services: dict, **aws: Any) -> dict:
    return {
        "outputs": {"devo_1": {"type": "devo_platform",
                               "config": {"address": "127.0.0.1", "port": 9, "type": "TCP"}}},
        "inputs": {"aws": {"id": "my-collector", "regions": [REGION], "services": services,
                           **aws}},
    }


def _actions(document: dict) -> list[str]:
    return [a for s in document["Statement"] for a in s["Action"]]


# ------------------------------------------------------------ the printed document

TWO_SERVICES = _base(
    {"non-cloudwatch-logs": {"sqs_queue_name": "flow-logs", "regions": ["us-east-1", "eu-west-1"],
                             "s3_buckets": ["org-flow-logs", "org-flow-logs-eu"]},
     "service-events-all": {"sqs_queue_url":
                            "https://sqs.us-east-1.amazonaws.com/444455556666/aws-events"},
     "guardduty": {}},
    id="123456789012",
    credentials={"target_assume_role": "arn:aws:iam::111122223333:role/devo-collector",
                 "assume_role_external_id": "devo-xyz"})
TWO_SERVICES["globals"] = {"dead_letter": {"type": "sqs", "config": {
    "queue_url": "https://sqs.eu-west-1.amazonaws.com/111122223333/collector-dead-letters"}}}


def test_two_services_with_buckets_dead_letter_queue_and_an_assumed_role(tmp_path):
    role = "arn:aws:iam::111122223333:role/devo-collector"
    keys = _policy(TWO_SERVICES, tmp_path)
    assert keys.returncode == 0, keys.stderr
    # The keys only assume the role; everything else is the role's.
    assert json.loads(keys.stdout) == {"Version": "2012-10-17", "Statement": [
        {"Sid": "AssumeTargetRole", "Effect": "Allow", "Action": ["sts:AssumeRole"],
         "Resource": [role]}]}
    assert "--identity target-role" in keys.stderr
    assert "RUN-009" not in keys.stderr

    # Queues by name are in the role's account (GetQueueUrl looks in the caller's), not
    # in the 12-digit id's; a queue URL and the dead-letter URL name their own.
    flow = ["arn:aws:sqs:eu-west-1:111122223333:flow-logs",
            "arn:aws:sqs:us-east-1:111122223333:flow-logs"]
    events = "arn:aws:sqs:us-east-1:444455556666:aws-events"
    assert _printed(TWO_SERVICES, tmp_path, "--identity", "target-role") == {
        "Version": "2012-10-17", "Statement": [
            {"Sid": "ReadAndDeleteQueueMessages", "Effect": "Allow",
             "Action": ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage",
                        "sqs:ReceiveMessage"],
             "Resource": [*flow, events]},
            {"Sid": "FindQueuesByName", "Effect": "Allow", "Action": ["sqs:GetQueueUrl"],
             "Resource": flow},
            {"Sid": "ReadQueueDepthForUntilIdleOnFlink", "Effect": "Allow",
             "Action": ["sqs:GetQueueAttributes"], "Resource": [*flow, events]},
            {"Sid": "GetObjectsOfS3Buckets", "Effect": "Allow", "Action": ["s3:GetObject"],
             "Resource": ["arn:aws:s3:::org-flow-logs-eu/*", "arn:aws:s3:::org-flow-logs/*"]},
            # guardduty: the API calls of its puller, on every detector (found at run time).
            {"Sid": "PollApis", "Effect": "Allow",
             "Action": ["guardduty:GetFindings", "guardduty:ListDetectors",
                        "guardduty:ListFindings"], "Resource": ["*"]},
            {"Sid": "SendDeadLetters", "Effect": "Allow", "Action": ["sqs:SendMessage"],
             "Resource": ["arn:aws:sqs:eu-west-1:111122223333:collector-dead-letters"]},
        ]}


def test_a_chain_of_two_roles_gives_each_identity_the_next_role_only(tmp_path):
    base, target = "arn:aws:iam::111122223333:role/hop", "arn:aws:iam::999988887777:role/reader"
    config = _base({"cisco-umbrella": {"sqs_queue_name": "umbrella"}},
                   credentials={"base_assume_role": base, "target_assume_role": target})
    assert _printed(config, tmp_path)["Statement"] == [
        {"Sid": "AssumeBaseRole", "Effect": "Allow", "Action": ["sts:AssumeRole"],
         "Resource": [base]}]
    assert _printed(config, tmp_path, "--identity", "base-role")["Statement"] == [
        {"Sid": "AssumeTargetRole", "Effect": "Allow", "Action": ["sts:AssumeRole"],
         "Resource": [target]}]
    reader = _printed(config, tmp_path, "--identity", "target-role")["Statement"]
    assert reader[0]["Resource"] == ["arn:aws:sqs:us-east-1:999988887777:umbrella"]
    assert "sts:AssumeRole" not in [a for s in reader for a in s["Action"]]


def test_without_s3_buckets_any_bucket_and_without_an_account_any_account(tmp_path):
    config = _base({
        "non-cloudwatch-logs": {"sqs_queue_name": "flow", "s3_buckets": ["flow-bucket"]},
        "audit-events-all": {"sqs_queue_name": "trail", "types": ["audits_s3", "audit_apis"]},
        "custom-s3": {"sources": [
            {"name": "app", "sqs_queue_url": "http://localhost:4566/000000000000/app-q",
             "framing": "lines", "table": "my.app", "s3_buckets": ["app-bucket"]}]}})
    done = _policy(config, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"Version": "2012-10-17", "Statement": [
        {"Sid": "ReadAndDeleteQueueMessages", "Effect": "Allow",
         "Action": ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:ReceiveMessage"],
         "Resource": ["arn:aws:sqs:us-east-1:*:flow", "arn:aws:sqs:us-east-1:*:trail",
                      "arn:aws:sqs:us-east-1:000000000000:app-q"]},
        {"Sid": "FindQueuesByName", "Effect": "Allow", "Action": ["sqs:GetQueueUrl"],
         "Resource": ["arn:aws:sqs:us-east-1:*:flow", "arn:aws:sqs:us-east-1:*:trail"]},
        {"Sid": "ReadQueueDepthForUntilIdleOnFlink", "Effect": "Allow",
         "Action": ["sqs:GetQueueAttributes"],
         "Resource": ["arn:aws:sqs:us-east-1:*:flow", "arn:aws:sqs:us-east-1:*:trail",
                      "arn:aws:sqs:us-east-1:000000000000:app-q"]},
        # audit-events-all names no bucket: every bucket, and the Sid says why.
        {"Sid": "GetObjectsOfAnyBucketNoS3BucketsConfigured", "Effect": "Allow",
         "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::*/*"]},
        # audit_apis: CloudTrail's LookupEvents, which takes no narrower resource.
        {"Sid": "PollApis", "Effect": "Allow", "Action": ["cloudtrail:LookupEvents"],
         "Resource": ["*"]}]}
    notes = done.stderr.splitlines()
    assert not [n for n in notes if n.startswith("RUN-009")], notes
    assert any("audit-events-all has no s3_buckets" in n for n in notes), notes
    assert any("queue ARNs name any account ('*')" in n for n in notes), notes


@pytest.mark.parametrize("config", [
    TWO_SERVICES,
    _base({"non-cloudwatch-logs": {"sqs_queue_name": "q"}}),
    _base({"sqs-cloudwatch-consumer": {"sqs_queue_name": "findings", "readers": 3},
           "custom-s3": {"sources": [{"name": "a", "sqs_queue_name": "a", "framing": "lines",
                                      "table": "t.a"}]}},
          credentials={"base_assume_role": "arn:aws:iam::111122223333:role/b"}),
], ids=["two-services", "one-service", "base-role"])
def test_no_action_is_a_wildcard(config, tmp_path):
    for identity in ("keys", "base-role", "target-role"):
        done = _policy(config, tmp_path, "--identity", identity)
        if done.returncode == 2:  # an identity the config does not go through
            assert "the config has no" in done.stderr
            continue
        document = json.loads(done.stdout)
        assert document["Version"] == "2012-10-17" and document["Statement"]
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow" and statement["Sid"].isalnum()
            assert statement["Action"] and all("*" not in a for a in statement["Action"])
            # Only the polled APIs, most of which take no resource, are on "*".
            if statement["Sid"] != "PollApis":
                assert statement["Resource"] and "*" not in statement["Resource"]


def test_queue_arns_from_names_and_urls():
    assert queue_arn("logs", "eu-west-1", "123456789012") == \
        "arn:aws:sqs:eu-west-1:123456789012:logs"
    assert queue_arn("logs", "cn-north-1", "*") == "arn:aws-cn:sqs:cn-north-1:*:logs"
    # A URL names its own region and account, whatever the service's region.
    assert queue_arn("https://sqs.ap-southeast-2.amazonaws.com/210987654321/q.fifo",
                     "us-east-1", "*") == "arn:aws:sqs:ap-southeast-2:210987654321:q.fifo"
    assert queue_arn("https://eu-west-1.queue.amazonaws.com/210987654321/q", "us-east-1",
                     "*") == "arn:aws:sqs:eu-west-1:210987654321:q"
    assert queue_arn("https://queue.amazonaws.com/210987654321/q", "eu-west-1", "*") == \
        "arn:aws:sqs:us-east-1:210987654321:q"
    assert queue_arn("https://sqs.us-gov-west-1.amazonaws.com/210987654321/q", "us-east-1",
                     "*") == "arn:aws-us-gov:sqs:us-gov-west-1:210987654321:q"
    # Another endpoint (a VPC endpoint's DNS name, an emulator): the service's region.
    assert queue_arn("http://127.0.0.1:5000/123456789012/q", "eu-west-1", "*") == \
        "arn:aws:sqs:eu-west-1:123456789012:q"


# ------------------------------------------------------------------------ the CLI

def test_cli_prints_json_and_exits_2_on_a_bad_config(tmp_path):
    done = _policy(_base({"non-cloudwatch-logs": {"sqs_queue_name": "q"}}), tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["Version"] == "2012-10-17"

    bad = _base({"non-cloudwatch-logs": {"sqs_queue_name": "q", "sqs_queue_url": "https://x/1/q"}})
    done = _policy(bad, tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert "CFG-007" in done.stderr

    archived = _base({"non-cloudwatch-logs": {"sqs_queue_name": "q",
                                              "s3_buckets": ["flow-bucket"]}})
    archived["outputs"]["archive_1"] = {"type": "archive", "config": {
        "format": "parquet", "path": "s3://my-archive/aws-collector/"}}
    done = _policy(archived, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["Statement"][-1] == {
        "Sid": "WriteArchiveFiles", "Effect": "Allow", "Action": ["s3:PutObject"],
        "Resource": ["arn:aws:s3:::my-archive/aws-collector/*"]}

    only_apis = _base({"metrics-all": {}, "cloudwatch-logs": {}})
    only_apis["globals"] = {"persistence": {"type": "s3", "config": {
        "bucket": "state-bucket", "prefix": "collector"}}}
    done = _policy(only_apis, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["Statement"] == [
        {"Sid": "PollApis", "Effect": "Allow",
         "Action": ["cloudwatch:GetMetricData", "cloudwatch:ListMetrics",
                    "logs:DescribeLogGroups", "logs:FilterLogEvents"], "Resource": ["*"]},
        {"Sid": "KeepCheckpoints", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
         "Resource": ["arn:aws:s3:::state-bucket/collector/*"]}]

    done = _policy(_base({"non-cloudwatch-logs": {"sqs_queue_name": "q"}}), tmp_path,
                   "--identity", "target-role")
    assert done.returncode == 2 and done.stdout == ""
    assert "--identity target-role: the config has no target_assume_role" in done.stderr

    missing = subprocess.run([sys.executable, "-m", "awscollector", "iam-policy", "--config",
                              str(tmp_path / "nope.yaml")], capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stdout == ""


# ---------------------------------------- the policy on an embedded AWS enforcing IAM

# The embedded AWS authorizes two things unlike AWS: the batch calls under their own
# names (AWS authorizes DeleteMessageBatch as sqs:DeleteMessage, and so on), and
# sqs:GetQueueUrl against resource "*" rather than the queue. The printed policy is
# AWS's; only here, for the emulator, do those names get added, next to the action
# AWS checks, so that removing an action removes its alias too.
MOTO_ALIASES = {"sqs:DeleteMessage": "sqs:DeleteMessageBatch",
                "sqs:ChangeMessageVisibility": "sqs:ChangeMessageVisibilityBatch",
                "sqs:SendMessage": "sqs:SendMessageBatch"}


def for_emulator(document: dict, without: str | None = None) -> dict:
    """The printed document as the embedded AWS checks it, less the action ``without``."""
    statements = []
    for statement in copy.deepcopy(document["Statement"]):
        actions = [a for a in statement["Action"] if a != without]
        actions += [MOTO_ALIASES[a] for a in actions if a in MOTO_ALIASES]
        if not actions:
            continue
        statements.append({**statement, "Action": actions})
        if "sqs:GetQueueUrl" in actions:
            statements.append({"Sid": "EmulatorGetQueueUrl", "Effect": "Allow",
                               "Action": ["sqs:GetQueueUrl"], "Resource": "*"})
    return {**document, "Statement": statements}


class _Keys:
    """The embedded AWS seen with one IAM identity's keys."""

    def __init__(self, endpoint_url: str, key_id: str, secret: str) -> None:
        self.endpoint_url, self.key_id, self.secret = endpoint_url, key_id, secret

    def client(self, service: str, region: str = REGION):
        return boto3.client(service, region_name=region, endpoint_url=self.endpoint_url,
                            aws_access_key_id=self.key_id, aws_secret_access_key=self.secret)


def _user(iam, name: str, document: dict) -> tuple[str, str, str]:
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    iam.put_user_policy(UserName=name, PolicyName="only", PolicyDocument=json.dumps(document))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return arn, key["AccessKeyId"], key["SecretAccessKey"]


@pytest.fixture(scope="module")
def enforcing() -> _Keys:
    """An embedded AWS of its own that authorizes every request against the caller's IAM
    policies; yields an admin's keys (for seeding and checking)."""
    with EmbeddedAws(in_process=False) as aws:
        admin = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": ["iam:*", "s3:*", "sqs:*", "events:*"],
            "Resource": "*"}]}
        _, key_id, secret = _user(aws.client("iam"), "admin", admin)
        # From here on every request is checked: the dummy keys no longer pass.
        urllib.request.urlopen(urllib.request.Request(
            f"{aws.endpoint_url}/moto-api/reset-auth", data=b"0", method="POST",
            headers={"Content-Type": "text/plain"}), timeout=10)  # a form would hide the body
        with pytest.raises(Exception, match="InvalidClientTokenId|403"):
            aws.client("sqs").list_queues()
        yield _Keys(aws.endpoint_url, key_id, secret)


class Scenario:
    """A bucket of VPC Flow Logs (3 objects and a binary one) notifying its queue, an
    EventBridge-fed queue with EC2 events, and an SQS dead-letter queue; and the config
    of non-cloudwatch-logs and service-events-all reading them."""

    def __init__(self, admin: _Keys, relay, pki, workdir: Path) -> None:
        self.admin = admin
        s3, sqs = admin.client("s3"), admin.client("sqs")
        self.bucket, self.queue = unique("iam-flow"), unique("iam-logs")
        self.url = create_s3_sqs(s3, sqs, self.bucket, self.queue)
        self.lines = {n: tagged_lines(n, LINES) for n in range(OBJECTS)}
        for n, lines in self.lines.items():
            put_vpc_object(s3, self.bucket, REGION, n, lines)
        self.binary_key = vpc_key(REGION, 99)
        s3.put_object(Bucket=self.bucket, Key=self.binary_key, Body=b"\x00\x01\x02\x03" * 500)
        self.event_queue = unique("iam-events")
        self.event_url = create_event_queue(admin.client("events"), sqs, self.event_queue,
                                            "service-events-all")
        # EventBridge gives each event its id: those the relay must see.
        self.event_ids = sorted(put_events(admin.client("events"),
                                           ec2_state_change_events(EVENTS, seed=7)))
        self.dlq_url = sqs.create_queue(QueueName=unique("iam-dlq"))["QueueUrl"]
        # S3's test event, the 4 objects' notifications; the EventBridge events.
        assert queue_depth(admin, self.url) == OBJECTS + 2
        assert queue_depth(admin, self.event_url) == EVENTS
        raw = embedded_config(admin.endpoint_url, relay.port, pki, workdir, self.queue,
                              services={
                                  "non-cloudwatch-logs": {"sqs_queue_name": self.queue,
                                                          "s3_buckets": [self.bucket]},
                                  "service-events-all": {"sqs_queue_name": self.event_queue}})
        raw["inputs"]["aws"]["id"] = ACCOUNT
        del raw["inputs"]["aws"]["credentials"]  # run() gives each run its keys
        raw["globals"]["dead_letter"] = {"type": "sqs", "config": {"queue_url": self.dlq_url}}
        self.raw = raw
        self.workdir = workdir

    def policy(self, identity: str = "keys") -> dict:
        return _printed(self.raw, self.workdir, "--identity", identity)

    def run(self, key_id: str, secret: str, **credentials: str) -> subprocess.CompletedProcess:
        raw = copy.deepcopy(self.raw)
        raw["inputs"]["aws"]["credentials"] = {"access_key": key_id, "access_secret": secret,
                                               **credentials}
        path = self.workdir / "collector.yaml"
        path.write_text(yaml.safe_dump(raw))
        parse_config(raw, self.workdir)  # the config is valid as written
        return run_cli(path, timeout=240)

    def all_lines(self) -> list[str]:
        return sorted(line for lines in self.lines.values() for line in lines)

    def delivered_events(self, relay) -> list[str]:
        return sorted(json.loads(e)["id"] for e in relay.events(EVENTS_TABLE))

    def dead_letters(self) -> list[dict]:
        sqs, found = self.admin.client("sqs"), {}
        for _ in range(10):
            got = sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10,
                                      WaitTimeSeconds=0, VisibilityTimeout=30).get("Messages", [])
            if not got:
                break
            found.update({m["MessageId"]: json.loads(m["Body"]) for m in got})
        return list(found.values())

    def depth(self, url: str) -> int:
        return queue_depth(self.admin, url)


def _coded_lines(stderr: str, code: str) -> list[str]:
    return [line for line in stderr.splitlines() if code in line]


def test_the_printed_policy_is_enough(enforcing, relay, pki, tmp_path):
    s = Scenario(enforcing, relay, pki, tmp_path)
    printed = s.policy()
    assert [st["Sid"] for st in printed["Statement"]] == [
        "ReadAndDeleteQueueMessages", "FindQueuesByName", "ReadQueueDepthForUntilIdleOnFlink",
        "GetObjectsOfS3Buckets", "SendDeadLetters"]
    assert printed["Statement"][3]["Resource"] == [f"arn:aws:s3:::{s.bucket}/*"]
    assert printed["Statement"][4]["Resource"] == [
        queue_arn(s.dlq_url, REGION, ACCOUNT)]
    _, key_id, secret = _user(enforcing.client("iam"), unique("collector"),
                              for_emulator(printed))

    done = s.run(key_id, secret)

    assert done.returncode == 0, done.stderr
    assert sorted(relay.events(VPC_TABLE)) == s.all_lines()
    assert s.delivered_events(relay) == s.event_ids
    # The binary object went to the dead-letter queue, through the printed SendMessage.
    entries = s.dead_letters()
    assert [(e["code"], e["source"]["key"]) for e in entries] == [("SRC-002", s.binary_key)]
    assert s.depth(s.url) == 0 and s.depth(s.event_url) == 0
    assert "AccessDenied" not in done.stderr


def test_the_keys_assume_the_role_and_the_role_reads(enforcing, relay, pki, tmp_path):
    """The keys' policy (sts:AssumeRole only) and the role's (the rest) together are
    enough, and the keys alone cannot read the queue."""
    s = Scenario(enforcing, relay, pki, tmp_path)
    role_name, external_id = unique("reader"), "devo-external-id"
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{role_name}"
    s.raw["inputs"]["aws"]["credentials"] = {"target_assume_role": role_arn,
                                             "assume_role_external_id": external_id}
    keys_policy, role_policy = s.policy("keys"), s.policy("target-role")
    assert _actions(keys_policy) == ["sts:AssumeRole"]
    assert "sts:AssumeRole" not in _actions(role_policy)
    iam = enforcing.client("iam")
    user_arn, key_id, secret = _user(iam, unique("collector"), keys_policy)
    iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": external_id}}}]}))
    iam.put_role_policy(RoleName=role_name, PolicyName="only",
                        PolicyDocument=json.dumps(for_emulator(role_policy)))
    with pytest.raises(Exception, match="not authorized to perform: sqs:ReceiveMessage"):
        _Keys(enforcing.endpoint_url, key_id, secret).client("sqs").receive_message(
            QueueUrl=s.url)

    done = s.run(key_id, secret, target_assume_role=role_arn,
                 assume_role_external_id=external_id)

    assert done.returncode == 0, done.stderr
    assert sorted(relay.events(VPC_TABLE)) == s.all_lines()
    assert s.delivered_events(relay) == s.event_ids
    assert [e["code"] for e in s.dead_letters()] == ["SRC-002"]
    assert s.depth(s.url) == 0 and s.depth(s.event_url) == 0


@pytest.mark.parametrize("action", ["sqs:ReceiveMessage", "sqs:GetQueueUrl"])
def test_without_reading_the_queue_the_run_fails_and_keeps_every_message(
        action, enforcing, relay, pki, tmp_path):
    s = Scenario(enforcing, relay, pki, tmp_path)
    _, key_id, secret = _user(enforcing.client("iam"), unique("collector"),
                              for_emulator(s.policy(), without=action))

    done = s.run(key_id, secret)

    assert done.returncode == 1, done.stderr
    call = "ReceiveMessage on " if action == "sqs:ReceiveMessage" else "GetQueueUrl "
    [line] = _coded_lines(done.stderr, "AWS-003")
    assert line.startswith(f"AWS-003 sqs {call}"), line
    assert f"AccessDenied: User: arn:aws:iam::{ACCOUNT}:user/" in line
    assert line.endswith(f"is not authorized to perform: {action}"), line
    assert relay.events(VPC_TABLE) == [] and relay.events(EVENTS_TABLE) == []
    assert s.depth(s.url) == OBJECTS + 2 and s.depth(s.event_url) == EVENTS
    assert s.dead_letters() == []


def test_without_delete_events_are_delivered_and_messages_stay_for_a_duplicate(
        enforcing, relay, pki, tmp_path):
    """A message is deleted only after delivery; when the delete is refused, the run
    goes on (AWS-009, a warning): the message comes back, a duplicate, never a loss."""
    s = Scenario(enforcing, relay, pki, tmp_path)
    _, key_id, secret = _user(enforcing.client("iam"), unique("collector"),
                              for_emulator(s.policy(), without="sqs:DeleteMessage"))

    done = s.run(key_id, secret)

    assert done.returncode == 0, done.stderr
    assert sorted(relay.events(VPC_TABLE)) == s.all_lines()
    assert s.delivered_events(relay) == s.event_ids
    warnings = _coded_lines(done.stderr, "AWS-009")
    assert warnings and all("could not delete" in w for w in warnings), done.stderr
    # The emulator names the batch call's own action, where AWS names sqs:DeleteMessage.
    assert all("is not authorized to perform: sqs:DeleteMessageBatch" in w
               for w in warnings), warnings
    assert s.depth(s.url) == OBJECTS + 2 and s.depth(s.event_url) == EVENTS


def test_without_get_object_each_object_is_dead_lettered_with_its_reason(
        enforcing, relay, pki, tmp_path):
    s = Scenario(enforcing, relay, pki, tmp_path)
    _, key_id, secret = _user(enforcing.client("iam"), unique("collector"),
                              for_emulator(s.policy(), without="s3:GetObject"))

    done = s.run(key_id, secret)

    # Not the run's failure: an object refused is dead-lettered (AWS-003, with bucket
    # and key), its message deleted, and the rest keeps flowing.
    assert done.returncode == 0, done.stderr
    assert relay.events(VPC_TABLE) == []
    assert s.delivered_events(relay) == s.event_ids
    entries = sorted(s.dead_letters(), key=lambda e: e["source"]["key"])
    keys = sorted([vpc_key(REGION, n) for n in range(OBJECTS)] + [s.binary_key])
    assert [(e["code"], e["source"]["bucket"], e["source"]["key"]) for e in entries] == \
        [("AWS-003", s.bucket, key) for key in keys]
    for entry in entries:
        # S3 answers a bare "Access Denied"; the error names the call, s3 GetObject.
        key = entry["source"]["key"]
        assert entry["error"] == f"s3 GetObject s3://{s.bucket}/{key} failed: AccessDenied: " \
                                 "Access Denied"
        assert unquote_plus(entry["notification"]["Records"][0]["s3"]["object"]["key"]) == key
    assert s.depth(s.url) == 0 and s.depth(s.event_url) == 0


def test_without_send_message_the_run_fails_and_the_bad_object_stays_queued(
        enforcing, relay, pki, tmp_path):
    s = Scenario(enforcing, relay, pki, tmp_path)
    _, key_id, secret = _user(enforcing.client("iam"), unique("collector"),
                              for_emulator(s.policy(), without="sqs:SendMessage"))

    done = s.run(key_id, secret)

    assert done.returncode == 1, done.stderr
    [line] = [x for x in done.stderr.splitlines() if x.startswith("OUT-003")]
    assert line.startswith(f"OUT-003 cannot write dead letters to {s.dlq_url}: "), line
    # The emulator names the batch call's own action, where AWS names sqs:SendMessage.
    assert "is not authorized to perform: sqs:SendMessageBatch" in line, line
    assert s.dead_letters() == []
    # The binary object's notification was not deleted: it is still in the queue.
    assert s.binary_key in _queued_keys(s)


def _queued_keys(s: Scenario) -> set[str]:
    """The object keys of the messages in the flow-log queue, waiting for the binary
    object's (a message in flight comes back within its visibility timeout)."""
    sqs = s.admin.client("sqs")
    keys: set[str] = set()
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline and s.binary_key not in keys:
        for m in sqs.receive_message(QueueUrl=s.url, MaxNumberOfMessages=10,
                                     WaitTimeSeconds=1, VisibilityTimeout=0
                                     ).get("Messages", []):
            for record in json.loads(m["Body"]).get("Records", []):
                keys.add(unquote_plus(record["s3"]["object"]["key"]))
    return keys
