"""max_receive_count: a message SQS handed out more often than that was left unfinished
every time, and goes to the dead letter (SRC-015) instead of holding up its queue."""

from __future__ import annotations

import json
from urllib.parse import unquote_plus

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from awscollector.config import ConfigError, parse_config
from awscollector.embedded.seed import vpc_key
from awscollector.io.deadletter import DEAD_LETTER
from awscollector.io.sqs import SqsMessage, SqsQueue
from awscollector.pipelines.collector import run_collector
from awscollector.pipelines.context import ServicePlan
from awscollector.pipelines.s3_services import shared_readers
from awscollector.pipelines.s3_sqs import ExtractObjects
from awscollector.pipelines.sqs_events import DecodeEvents
from awscollector.transforms.registry import default_registry
from tests.vpc_helpers import (
    ENV,
    dead_letters,
    put_object,
    queue_depth,
    raw_config,
    setup_queue,
    tagged_lines,
)


def _s3_body(key: str) -> str:
    return json.dumps({"Records": [
        {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "awsRegion": "us-east-1",
         "s3": {"bucket": {"name": "bkt"}, "object": {"key": key, "size": 1}}}]})


EVENT = json.dumps({"version": "0", "id": "e-1", "source": "aws.ec2", "account": "1",
                    "detail-type": "EC2 Instance State-change Notification",
                    "time": "2026-11-27T12:00:00Z", "region": "us-east-1", "resources": [],
                    "detail": {"instance-id": "i-1", "state": "running"}})


def _message(body: str, receive_count: int, max_count: int | None = 5) -> SqsMessage:
    return SqsMessage("svc", "us-east-1", "https://q", f"m-{receive_count}", body,
                      receive_count, max_count)


def test_received_too_often_only_past_the_limit():
    assert not _message("{}", 5).received_too_often()
    assert _message("{}", 6).received_too_often()
    assert not _message("{}", 99, None).received_too_often()  # no limit given


def test_extract_objects_dead_letters_a_message_received_too_often():
    key = vpc_key("us-east-1", 1)
    with TestPipeline() as p:
        out = (p | beam.Create([_message(_s3_body(key), 5), _message(_s3_body(key), 6)])
               | beam.ParDo(ExtractObjects(default_registry(), ["vpc_flow_logs"]))
               .with_outputs(DEAD_LETTER, main="tasks"))
        assert_that(out.tasks | beam.Map(lambda t: t.message.message_id), equal_to(["m-5"]),
                    label="tasks")
        assert_that(out[DEAD_LETTER] | beam.Map(lambda d: (d.code, d.source["message_id"],
                                                           d.source["receive_count"])),
                    equal_to([("SRC-015", "m-6", 6)]), label="dead letters")


def test_decode_events_dead_letters_a_message_received_too_often():
    with TestPipeline() as p:
        out = (p | beam.Create([_message(EVENT, 2, 1), _message(EVENT, 1, 1)])
               | beam.ParDo(DecodeEvents(default_registry(), ["service_events"]))
               .with_outputs(DEAD_LETTER, main="batches"))
        assert_that(out.batches | beam.Map(lambda b: b.task.message.message_id),
                    equal_to(["m-1"]), label="batches")
        assert_that(out[DEAD_LETTER] | beam.Map(lambda d: d.code), equal_to(["SRC-015"]),
                    label="dead letters")


def test_a_shared_queue_takes_the_lowest_limit():
    def plan(name, count):
        return ServicePlan(name, None, ["us-east-1"], [SqsQueue(name, "us-east-1", "q", 0, count)])

    [reader] = shared_readers([plan("a", 7), plan("b", 3)])
    assert reader.max_receive_count == 3


def test_config_default_and_range(embedded_aws, relay, pki, tmp_path):
    raw = raw_config(embedded_aws, relay, pki, "q", tmp_path)
    service = raw["inputs"]["aws"]["services"]["non-cloudwatch-logs"]
    assert parse_config(raw, tmp_path, environ=ENV).inputs.aws.services[
        "non-cloudwatch-logs"].max_receive_count == 5
    service["max_receive_count"] = 0
    with pytest.raises(ConfigError) as e:
        parse_config(raw, tmp_path, environ=ENV)
    assert any(str(p).startswith("CFG-004 inputs.aws.services.non-cloudwatch-logs."
                                 "max_receive_count") for p in e.value.problems), e.value.problems


def test_a_message_left_unfinished_too_often_is_dead_lettered_and_the_rest_flows(
        embedded_aws, relay, pki, tmp_path):
    sqs = embedded_aws.client("sqs")
    bucket, queue, url = setup_queue(embedded_aws)
    for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])  # s3:TestEvent
    poison = tagged_lines(0, 30)
    put_object(embedded_aws, bucket, vpc_key("us-east-1", 0), poison)
    # Three earlier runs received it and never finished (their receives count in SQS).
    for _ in range(3):
        [m] = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0,
                                  AttributeNames=["ApproximateReceiveCount"])["Messages"]
    assert m["Attributes"]["ApproximateReceiveCount"] == "3"
    good = {obj: tagged_lines(obj, 40) for obj in (1, 2)}
    for obj, lines in good.items():
        put_object(embedded_aws, bucket, vpc_key("us-east-1", obj), lines)

    raw = raw_config(embedded_aws, relay, pki, queue, tmp_path)
    raw["inputs"]["aws"]["services"]["non-cloudwatch-logs"]["max_receive_count"] = 3
    result = run_collector(parse_config(raw, tmp_path, environ=ENV), [], idle_seconds=2)

    assert sorted(relay.events("cloud.aws.vpc.flow")) == sorted(good[1] + good[2])
    [entry] = dead_letters(tmp_path)
    assert entry["code"] == "SRC-015"
    assert entry["source"]["receive_count"] == 4
    assert "received 4 times (max_receive_count 3)" in entry["error"]
    key = entry["notification"]["Records"][0]["s3"]["object"]["key"]  # URL-encoded, as S3 sends
    assert unquote_plus(key) == vpc_key("us-east-1", 0)
    assert queue_depth(embedded_aws, url) == 0
    assert [row[4] for row in result.rows] == [1]
