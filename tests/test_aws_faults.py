"""The S3+SQS pipeline when AWS misbehaves: throttling, 5xx, broken reads, denied objects.

The collector talks to the embedded AWS through a FaultProxy (its endpoint_url is the
proxy's), which answers chosen requests with AWS-shaped errors or cuts responses
mid-body. The data is seeded directly on the embedded AWS, so seeding never meets a
fault. Each test checks the contract's delivery guarantees: every event exactly once
(or the run fails with its code and the input stays in SQS), nothing dropped silently.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from awscollector.config import parse_config
from awscollector.embedded.aws import EmbeddedAws
from awscollector.embedded.seed import create_s3_sqs, vpc_key
from awscollector.errors import CollectorError
from awscollector.pipelines.collector import run_collector
from tests.faults import FaultProxy, FaultRule
from tests.vpc_helpers import (
    ENV,
    config,
    dead_letters,
    put_object,
    queue_depth,
    queue_keys,
    raw_config,
    run_cli,
    seed_objects,
    setup_queue,
    tagged_lines,
    unique,
    write_config,
)

TABLE = "cloud.aws.vpc.flow"
REGION = "us-east-1"
DEAD_LETTER_KEYS = {"time", "service", "region", "source", "code", "error", "notification"}


@pytest.fixture
def proxy(embedded_aws) -> Iterator[FaultProxy]:
    """A fault proxy in front of the session's embedded AWS (a new port per test, so the
    collector's cached clients, and their adaptive rate limiters, are new too)."""
    with FaultProxy(embedded_aws.endpoint_url) as p:
        yield p


def collect(endpoint, relay, pki, queue, workdir, **kwargs):
    """Runs the collector in this process against `endpoint` (anything with an
    endpoint_url: the proxy) until its queue has been idle for 2 s."""
    return run_collector(config(endpoint, relay, pki, queue, workdir, **kwargs), [],
                         idle_seconds=2)


def marker(n: int) -> str:
    """A substring of vpc_key(REGION, n) that no other object's key contains."""
    return f"_fl-0abc{n:04d}_"


def all_lines(objects: dict[int, list[str]]) -> list[str]:
    return sorted(line for lines in objects.values() for line in lines)


def visible(aws, url: str) -> int:
    attrs = aws.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"])


def test_s3_getobject_throttled_and_5xx_then_every_event_once(embedded_aws, proxy, relay,
                                                              pki, tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    objects = seed_objects(embedded_aws, bucket, n=6, m=200)
    slow_1 = proxy.add(FaultRule(match_target="GetObject", match_path=marker(1), times=1))
    slow_3 = proxy.add(FaultRule(match_target="GetObject", match_path=marker(3), times=2))
    error_4 = proxy.add(FaultRule(match_target="GetObject", match_path=marker(4), times=2,
                                  status=500, code="InternalError"))

    result = collect(proxy, relay, pki, queue, tmp_path)

    assert sorted(relay.events(TABLE)) == all_lines(objects)
    assert (slow_1.hits, slow_3.hits, error_4.hits) == (1, 2, 2)
    assert queue_depth(embedded_aws, url) == 0
    assert dead_letters(tmp_path) == []
    assert result.rows == [("non-cloudwatch-logs", REGION, TABLE, 6 * 200, 0)]
    # boto3 retried the refused GETs; once answered, each object was read exactly once.
    gets = Counter(r.path for r in proxy.seen("GetObject"))
    assert sorted(gets.values()) == [1, 1, 1, 2, 3, 3]
    assert all(r.range is None for r in proxy.seen("GetObject"))


def test_sqs_receive_and_delete_throttled_then_every_event_once(embedded_aws, proxy, relay,
                                                                pki, tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    objects = seed_objects(embedded_aws, bucket, n=5, m=150)
    receive = proxy.add(FaultRule(match_target="ReceiveMessage", times=2, protocol="json",
                                  status=400, code="ThrottlingException"))
    # SQS's own modeled throttling error (ReceiveMessage, DeleteMessageBatch, ...).
    delete = proxy.add(FaultRule(match_target="DeleteMessageBatch", times=1, protocol="json",
                                 status=400, code="RequestThrottled"))

    collect(proxy, relay, pki, queue, tmp_path)

    assert sorted(relay.events(TABLE)) == all_lines(objects)
    assert receive.hits == 2 and delete.hits == 1
    assert queue_depth(embedded_aws, url) == 0
    assert dead_letters(tmp_path) == []
    # The JSON protocol: the proxy saw the operations as botocore names them.
    assert {r.target for r in proxy.seen("ReceiveMessage")} == {"AmazonSQS.ReceiveMessage"}


def test_s3_body_cut_mid_stream_resumes_with_ranged_gets(embedded_aws, proxy, relay, pki,
                                                        tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    big = tagged_lines(7, 180_000)  # about 5 MB gzip'd
    put_object(embedded_aws, bucket, vpc_key(REGION, 7), big)
    small = seed_objects(embedded_aws, bucket, n=2, m=100, first=8)
    size = embedded_aws.client("s3").head_object(Bucket=bucket,
                                                 Key=vpc_key(REGION, 7))["ContentLength"]
    assert size > 4_500_000
    cut_at = 1_500_000
    cut = proxy.add(FaultRule(match_target="GetObject", match_path=marker(7), times=3,
                              cut_body_after=cut_at))

    collect(proxy, relay, pki, queue, tmp_path)

    events = relay.events(TABLE)
    assert len(events) == len(set(events)), "an event was delivered twice"
    assert sorted(events) == sorted(big + [line for lines in small.values() for line in lines])
    assert cut.hits == 3
    assert queue_depth(embedded_aws, url) == 0
    assert dead_letters(tmp_path) == []
    # One full GET, then one ranged GET per cut, each starting where the last one stopped
    # (at a chunk boundary at or before the cut) and moving forward.
    reads = [r.range for r in proxy.seen("GetObject") if marker(7) in r.path]
    assert reads[0] is None and len(reads) == 4, reads
    offsets = [0] + [int(r.removeprefix("bytes=").rstrip("-")) for r in reads[1:]]
    assert all(r.startswith("bytes=") and r.endswith("-") for r in reads[1:]), reads
    for before, after in zip(offsets, offsets[1:], strict=False):
        assert before < after <= before + cut_at, offsets


def test_s3_body_cut_more_often_than_resumes_fails_the_run_with_aws_008(
        embedded_aws, proxy, relay, pki, tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    seed_objects(embedded_aws, bucket, n=3, m=100)
    # Cut before any byte of the body: no progress, so the resumes run out.
    cut = proxy.add(FaultRule(match_target="GetObject", match_path=marker(1),
                              cut_body_after=0))

    with pytest.raises(CollectorError) as failed:
        collect(proxy, relay, pki, queue, tmp_path)

    assert failed.value.code == "AWS-008", failed.value
    assert f"s3://{bucket}/{vpc_key(REGION, 1)}" in failed.value.message
    assert cut.hits == 4  # the first read and 3 resumes in a row, all without progress
    assert dead_letters(tmp_path) == []  # transient: not a dead letter, the run fails
    # The message of the broken object stays in SQS, visible at once for the next run.
    assert vpc_key(REGION, 1) in queue_keys(embedded_aws, url)


@pytest.mark.slow  # about a minute: the product's own backoff over 11 attempts
def test_persistent_throttling_fails_the_run_and_keeps_the_messages(embedded_aws, proxy,
                                                                   relay, pki, tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    seed_objects(embedded_aws, bucket, n=3, m=50)
    throttle = proxy.add(FaultRule(match_target="GetObject"))  # 503 SlowDown, always
    path = write_config(proxy, relay, pki, queue, tmp_path)

    started = time.monotonic()
    done = run_cli(path, timeout=300)
    took = time.monotonic() - started

    assert done.returncode == 1, done.stderr[-3000:]
    assert "AWS-004" in done.stderr, done.stderr[-3000:]
    assert "SlowDown" in done.stderr
    # Adaptive retries: 10 attempts of the first object, then the run stops.
    assert 10 <= throttle.hits <= 11  # ({"max_attempts": 10} is 10 retries: 11 attempts)
    assert relay.counts() == {}
    assert dead_letters(tmp_path) == []
    # 3 notifications and the s3:TestEvent, all still there and visible again at once
    # (released on failure, not left to the 120 s visibility timeout).
    assert queue_depth(embedded_aws, url) == 4
    assert visible(embedded_aws, url) == 4
    print(f"persistent throttling: exit 1 after {took:.1f}s, {throttle.hits} GetObject refused")


def test_sqs_dead_letter_queue_gets_the_contract_entries(embedded_aws, proxy, relay, pki,
                                                         tmp_path):
    sqs, s3 = embedded_aws.client("sqs"), embedded_aws.client("s3")
    bucket, queue, url = setup_queue(embedded_aws)
    dlq = sqs.create_queue(QueueName=unique("dead-letters"))["QueueUrl"]
    good = tagged_lines(1, 120)
    put_object(embedded_aws, bucket, vpc_key(REGION, 1), good)
    s3.put_object(Bucket=bucket, Key=vpc_key(REGION, 2), Body=gzip.compress(os.urandom(20_000)))
    put_object(embedded_aws, bucket, vpc_key(REGION, 3), tagged_lines(3, 10))
    s3.delete_object(Bucket=bucket, Key=vpc_key(REGION, 3))  # a stale notification
    sqs.send_message(QueueUrl=url, MessageBody="not a notification")
    # The dead-letter writer meets throttling too, and retries.
    throttled = proxy.add(FaultRule(match_target="SendMessageBatch", times=1, protocol="json",
                                    status=400, code="ThrottlingException"))
    raw = raw_config(proxy, relay, pki, queue, tmp_path)
    raw["globals"]["dead_letter"] = {"type": "sqs", "config": {"queue_url": dlq}}

    result = run_collector(parse_config(raw, tmp_path, environ=ENV), [], idle_seconds=2)

    assert sorted(relay.events(TABLE)) == sorted(good)
    assert queue_depth(embedded_aws, url) == 0
    assert throttled.hits == 1
    entries = []
    for _ in range(10):
        got = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                  VisibilityTimeout=30).get("Messages", [])
        if not got:
            break
        entries += [json.loads(m["Body"]) for m in got]
    assert len(entries) == 3, entries
    by_code = {e["code"]: e for e in entries}
    assert set(by_code) == {"SRC-002", "AWS-007", "SRC-005"}
    for e in entries:
        assert set(e) == DEAD_LETTER_KEYS
        assert e["service"] == "non-cloudwatch-logs" and e["region"] == REGION
        assert e["error"]
    for code, n in (("SRC-002", 2), ("AWS-007", 3)):
        source = by_code[code]["source"]
        assert (source["bucket"], source["key"]) == (bucket, vpc_key(REGION, n))
        # The queue's URL as the collector got it (moto builds it from the proxy's host).
        assert source["queue_url"].endswith("/" + queue) and source["message_id"]
        assert by_code[code]["notification"]["Records"][0]["s3"]["object"]["size"] > 0
    assert by_code["SRC-005"]["notification"] == "not a notification"
    assert not (tmp_path / "deadletter").exists()  # nothing went to the filesystem
    assert result.rows[0][3:] == (120, 3)


def test_sqs_dead_letter_queue_refused_fails_the_run_with_out_003(embedded_aws, proxy, relay,
                                                                  pki, tmp_path):
    sqs, s3 = embedded_aws.client("sqs"), embedded_aws.client("s3")
    bucket, queue, url = setup_queue(embedded_aws)
    dlq = sqs.create_queue(QueueName=unique("dead-letters"))["QueueUrl"]
    s3.put_object(Bucket=bucket, Key=vpc_key(REGION, 2), Body=gzip.compress(os.urandom(20_000)))
    refused = proxy.add(FaultRule(match_target="SendMessageBatch", protocol="json", status=400,
                                  code="AccessDenied"))
    raw = raw_config(proxy, relay, pki, queue, tmp_path)
    raw["globals"]["dead_letter"] = {"type": "sqs", "config": {"queue_url": dlq}}

    with pytest.raises(CollectorError) as failed:
        run_collector(parse_config(raw, tmp_path, environ=ENV), [], idle_seconds=2)

    assert failed.value.code == "OUT-003", failed.value
    assert refused.hits >= 1
    # The bad object's notification was not deleted: nothing is lost.
    assert vpc_key(REGION, 2) in queue_keys(embedded_aws, url)


def test_a_multi_line_aws_answer_fails_the_run_with_one_line(embedded_aws, proxy, relay, pki,
                                                             tmp_path):
    """XML (not SQS's JSON) with a message over several lines: the run's error is one
    line, with AWS's code, and no traceback."""
    bucket, queue, url = setup_queue(embedded_aws)
    seed_objects(embedded_aws, bucket, n=1, m=10)
    denied = proxy.add(FaultRule(match_target="ReceiveMessage", protocol="query", status=403,
                                 code="AccessDenied",
                                 message="User: arn:aws:iam::123456789012:user/collector\n"
                                         "  is not authorized to perform:\n\tsqs:receivemessage"))
    done = run_cli(write_config(proxy, relay, pki, queue, tmp_path), timeout=120)

    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith("AWS-003 sqs ReceiveMessage on "), done.stderr[-3000:]
    assert ("failed: AccessDenied: User: arn:aws:iam::123456789012:user/collector is not "
            "authorized to perform: sqs:receivemessage") in last
    assert denied.hits == 1  # not retried: a refusal, not a throttle
    assert relay.counts() == {}
    assert queue_depth(embedded_aws, url) == 2


def test_delete_refused_keeps_delivered_messages_with_aws_009(embedded_aws, proxy, relay, pki,
                                                             tmp_path, caplog):
    bucket, queue, url = setup_queue(embedded_aws)
    objects = seed_objects(embedded_aws, bucket, n=3, m=40)
    refused = proxy.add(FaultRule(match_target="DeleteMessageBatch", protocol="json",
                                  status=400, code="AccessDenied"))

    with caplog.at_level(logging.WARNING, logger="awscollector.io.sqs"):
        collect(proxy, relay, pki, queue, tmp_path)

    assert sorted(relay.events(TABLE)) == all_lines(objects)
    assert refused.hits >= 1
    assert any(r.getMessage().startswith("AWS-009") for r in caplog.records)
    # Not deleted: they come back after their visibility timeout (a duplicate delivery).
    assert queue_depth(embedded_aws, url) == 4


def test_a_dead_letter_larger_than_an_sqs_message_does_not_block_the_queue(
        embedded_aws, proxy, relay, pki, tmp_path):
    sqs = embedded_aws.client("sqs")
    bucket, queue, url = setup_queue(embedded_aws)
    dlq = sqs.create_queue(QueueName=unique("dead-letters"))["QueueUrl"]
    good = tagged_lines(1, 10)
    bad = [f"{'x' * 15_000} {i}" for i in range(100)]  # 100 lines kept in one SRC-004 entry
    put_object(embedded_aws, bucket, vpc_key(REGION, 1), good + bad)
    raw = raw_config(proxy, relay, pki, queue, tmp_path)
    raw["globals"]["dead_letter"] = {"type": "sqs", "config": {"queue_url": dlq}}

    run_collector(parse_config(raw, tmp_path, environ=ENV), [], idle_seconds=2)

    assert sorted(relay.events(TABLE)) == sorted(good)
    assert queue_depth(embedded_aws, url) == 0
    got = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
    entries = [json.loads(m["Body"]) for m in got]
    # One entry per batch of lines with bad lines (the 1.5 MB of them span two batches).
    assert entries and {e["code"] for e in entries} == {"SRC-004"}
    assert sum(e["source"]["rejected"] for e in entries) == 100


# -- AccessDenied on one object, with an IAM-enforcing moto ---------------------------------

class _As:
    """The embedded AWS seen with one IAM user's keys (for the vpc_helpers functions)."""

    def __init__(self, aws: EmbeddedAws, endpoint_url: str, keys: tuple[str, str]) -> None:
        self._aws, self.endpoint_url, self.keys = aws, endpoint_url, keys

    def client(self, service: str, region: str = REGION):
        return boto3.client(service, region_name=region, endpoint_url=self.endpoint_url,
                            aws_access_key_id=self.keys[0], aws_secret_access_key=self.keys[1])


# The first requests moto lets through unchecked: CreateUser, PutUserPolicy and
# CreateAccessKey for each of the two users. Every later request is authorized.
UNCHECKED_REQUESTS = 6


def _user(iam, name: str, statements: list[dict]) -> tuple[str, str]:
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": statements}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def test_access_denied_object_is_dead_lettered_and_the_rest_delivered(relay, pki, tmp_path):
    bucket, queue = unique("iam-flow-logs"), unique("iam-logs")
    denied_prefix = "denied/"
    with EmbeddedAws(in_process=False,
                     env={"INITIAL_NO_AUTH_ACTION_COUNT": str(UNCHECKED_REQUESTS)}) as aws, \
            FaultProxy(aws.endpoint_url) as proxy:
        iam = aws.client("iam")
        seeder = _user(iam, "seeder", [
            {"Effect": "Allow", "Action": ["s3:*", "sqs:*"], "Resource": "*"}])
        collector = _user(iam, "collector", [
            {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"},
            {"Effect": "Deny", "Action": "s3:GetObject",
             "Resource": f"arn:aws:s3:::{bucket}/{denied_prefix}*"}])
        # IAM is enforced from here on: the dummy keys are refused.
        with pytest.raises(Exception, match="InvalidClientTokenId|403"):
            aws.client("sqs").list_queues()

        as_seeder = _As(aws, aws.endpoint_url, seeder)
        url = create_s3_sqs(as_seeder.client("s3"), as_seeder.client("sqs"), bucket, queue)
        objects = {n: tagged_lines(n, 80) for n in (1, 2, 3)}
        for n, lines in objects.items():
            put_object(as_seeder, bucket, vpc_key(REGION, n), lines)
        denied_key = vpc_key(REGION, 4, prefix=denied_prefix)
        put_object(as_seeder, bucket, denied_key, tagged_lines(4, 80))
        # The collector's own keys really are refused that one object.
        as_collector = _As(aws, proxy.endpoint_url, collector)
        with pytest.raises(Exception, match="AccessDenied"):
            as_collector.client("s3").get_object(Bucket=bucket, Key=denied_key)

        environ = {"AWS_ACCESS_KEY_ID": collector[0], "AWS_SECRET_ACCESS_KEY": collector[1]}
        cfg = parse_config(raw_config(proxy, relay, pki, queue, tmp_path), tmp_path,
                           environ=environ)
        result = run_collector(cfg, [], idle_seconds=2)

        assert sorted(relay.events(TABLE)) == all_lines(objects)
        entries = dead_letters(tmp_path)
        assert len(entries) == 1, entries
        entry = entries[0]
        assert set(entry) == DEAD_LETTER_KEYS
        assert entry["code"] == "AWS-003"
        assert (entry["source"]["bucket"], entry["source"]["key"]) == (bucket, denied_key)
        assert f"s3://{bucket}/{denied_key}" in entry["error"]
        assert "AccessDenied" in entry["error"]
        assert entry["notification"]["Records"][0]["s3"]["bucket"]["name"] == bucket
        assert queue_depth(as_seeder, url) == 0
        assert result.rows == [("non-cloudwatch-logs", REGION, TABLE, 3 * 80, 1)]


def test_fault_proxy_streams_and_keeps_unmatched_requests_intact(embedded_aws, proxy):
    """The proxy itself: what it forwards arrives unchanged, in both directions, and each
    kind of fault looks to botocore as AWS's own would."""

    s3 = boto3.client("s3", region_name=REGION, endpoint_url=proxy.endpoint_url,
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    bucket = unique("proxy-check")
    s3.create_bucket(Bucket=bucket)
    body = os.urandom(3_000_000)
    s3.put_object(Bucket=bucket, Key="a b/ñ.bin", Body=body)
    assert s3.get_object(Bucket=bucket, Key="a b/ñ.bin")["Body"].read() == body
    ranged = s3.get_object(Bucket=bucket, Key="a b/ñ.bin", Range="bytes=100-199")
    assert ranged["Body"].read() == body[100:200]
    assert s3.head_object(Bucket=bucket, Key="a b/ñ.bin")["ContentLength"] == len(body)
    denied = proxy.add(FaultRule(match_method="HEAD", times=1, status=403,
                                 code="AccessDenied"))
    with pytest.raises(Exception, match="403"):
        s3.head_object(Bucket=bucket, Key="a b/ñ.bin")
    assert denied.hits == 1 and proxy.log[-1].kind == "403 AccessDenied"
    assert proxy.counts() == {"[method='HEAD'] -> 403 AccessDenied": 1}
    every = proxy.add(FaultRule(match_target="GetObject", every=2, times=None, status=500,
                                code="InternalError"))
    for _ in range(4):
        s3.get_object(Bucket=bucket, Key="a b/ñ.bin")["Body"].read()
    # Matches 2, 4, 6 failed (each then retried by boto3, the retry being the next match):
    # 4 reads, 7 requests.
    assert (every.seen, every.hits) == (7, 3)
    proxy.clear()
    # A connection closed before any answer: boto3 retries it as a broken connection.
    dropped = proxy.add(FaultRule(match_target="GetObject", times=1, drop=True))
    assert s3.get_object(Bucket=bucket, Key="a b/ñ.bin")["Body"].read() == body
    assert dropped.hits == 1
    # A query-protocol API (STS): the operation is the form's Action=, the error an
    # <ErrorResponse>, which botocore reads as AWS's own.
    sts = boto3.client("sts", region_name=REGION, endpoint_url=proxy.endpoint_url,
                       aws_access_key_id="testing", aws_secret_access_key="testing",
                       config=Config(retries={"total_max_attempts": 1}))
    proxy.add(FaultRule(match_target="GetCallerIdentity", times=1, protocol="query",
                        status=400, code="Throttling"))
    with pytest.raises(ClientError) as throttled:
        sts.get_caller_identity()
    assert throttled.value.response["Error"]["Code"] == "Throttling"
    assert sts.get_caller_identity()["Account"]
