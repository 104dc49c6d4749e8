"""A user's first run, as the README tells it, on an embedded AWS that enforces IAM:
an empty account but for the log bucket; `setup` creates the queues, rules and the
bucket's notification; the policy from `iam-policy` is attached to a new user; `run`
with that user's keys delivers VPC Flow Logs, service events and Security Hub findings."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

from awscollector.embedded.config import embedded_config
from awscollector.embedded.seed import (
    asff_findings,
    ec2_state_change_events,
    put_events,
    put_vpc_object,
    securityhub_findings_event,
)
from tests.test_iam_policy import (  # noqa: F401 - enforcing is a fixture
    ACCOUNT,
    REGION,
    _user,
    enforcing,
    for_emulator,
)
from tests.vpc_helpers import queue_depth, tagged_lines, unique


def _cli(*args: str, keys=None) -> subprocess.CompletedProcess:
    env = {**os.environ}
    if keys is not None:
        env.update(AWS_ACCESS_KEY_ID=keys[0], AWS_SECRET_ACCESS_KEY=keys[1])
    return subprocess.run([sys.executable, "-m", "awscollector", *args], capture_output=True,
                          text=True, timeout=240, env=env)


def test_setup_then_the_printed_policy_then_run(enforcing, relay, pki, tmp_path):  # noqa: F811
    admin = enforcing
    bucket = unique("first-flow")  # the user's log bucket: the one thing that exists
    admin.client("s3").create_bucket(Bucket=bucket)
    logs, events, findings = unique("logs"), unique("events"), unique("findings")
    raw = embedded_config(admin.endpoint_url, relay.port, pki, tmp_path, logs, services={
        "non-cloudwatch-logs": {"sqs_queue_name": logs, "s3_buckets": [bucket]},
        "service-events-all": {"sqs_queue_name": events},
        "sqs-cloudwatch-consumer": {"sqs_queue_name": findings}})
    raw["inputs"]["aws"]["id"] = ACCOUNT
    # Keys from the environment, as a user keeps them out of the file.
    raw["inputs"]["aws"]["credentials"] = {"access_key": "${AWS_ACCESS_KEY_ID}",
                                           "access_secret": "${AWS_SECRET_ACCESS_KEY}"}
    path = tmp_path / "collector.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    admin_keys = (admin.key_id, admin.secret)

    done = _cli("setup", "--config", str(path), keys=admin_keys)
    assert done.returncode == 0, done.stderr
    assert "created" in done.stdout and admin.secret not in done.stdout + done.stderr
    again = _cli("setup", "--config", str(path), keys=admin_keys)
    assert again.returncode == 0, again.stderr
    assert "created" not in again.stdout, again.stdout

    printed = _cli("iam-policy", "--config", str(path), keys=admin_keys)
    assert printed.returncode == 0, printed.stderr
    user_keys = _user(admin.client("iam"), unique("collector"),
                      for_emulator(json.loads(printed.stdout)))[1:]

    # AWS at work: flow logs land in the bucket, services send their events.
    lines = {n: tagged_lines(n, 50) for n in range(3)}
    for n, object_lines in lines.items():
        put_vpc_object(admin.client("s3"), bucket, REGION, n, object_lines)
    ec2 = put_events(admin.client("events"), ec2_state_change_events(4, seed=3))
    found = asff_findings(7, seed=4)
    put_events(admin.client("events"), [securityhub_findings_event(found, seed=4)])

    ran = _cli("run", "--config", str(path), "--until-idle", "--idle-seconds", "2",
               keys=user_keys)

    assert ran.returncode == 0, ran.stderr
    assert "AccessDenied" not in ran.stderr and user_keys[1] not in ran.stdout + ran.stderr
    assert sorted(relay.events("cloud.aws.vpc.flow")) == sorted(
        line for object_lines in lines.values() for line in object_lines)
    assert sorted(json.loads(e)["Id"] for e in relay.events("cloud.aws.securityhub.findings")
                  ) == sorted(f["Id"] for f in found)
    # service-events-all takes every AWS service event: EC2's, and Security Hub's too.
    got = [json.loads(e) for e in relay.events("cloud.aws.cloudwatch.events")]
    assert sorted(e["id"] for e in got if e["source"] == "aws.ec2") == sorted(ec2)
    assert [e["source"] for e in got if e["source"] != "aws.ec2"] == ["aws.securityhub"]
    for name in (logs, events, findings):
        url = admin.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]
        assert queue_depth(admin, url) == 0, name
