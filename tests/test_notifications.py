"""S3 notifications in SQS message bodies: direct, SNS, EventBridge, test events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from awscollector.errors import CollectorError
from awscollector.transforms.notifications import Notification, ObjectRef, parse_notification

SAMPLES = Path(__file__).parent / "samples"
PREFIX = "AWSLogs/111122223333/vpcflowlogs/us-east-1/2024/05/14/111122223333_vpcflowlogs_"
KEY_1 = PREFIX + "us-east-1_fl-0a1b2c3d4e5f67890_20240514T1010Z_5c2e9a41.log.gz"
KEY_2 = PREFIX + "us-east-1_fl-0a1b2c3d4e5f67890_20240514T1015Z_0d7f3b12.log.gz"


def body(name: str) -> str:
    return (SAMPLES / name).read_text()


def test_s3_event_with_two_records():
    got = parse_notification(body("s3_event_two_records.json"))
    assert got == Notification(
        objects=(
            ObjectRef(
                bucket="acme-network-logs",
                key=KEY_1,
                size=48213,
                etag="9f1c2e7a4b5d6e8f0a1b2c3d4e5f6071",
                event_time="2024-05-14T10:15:32.417Z",
            ),
            ObjectRef(
                bucket="acme-network-logs",
                key=KEY_2,
                size=51877,
                etag="1a2b3c4d5e6f708192a3b4c5d6e7f809",
                event_time="2024-05-14T10:15:33.052Z",
            ),
        ),
        kind="s3",
    )


def test_keys_are_url_decoded_and_non_created_records_ignored():
    got = parse_notification(body("s3_event_special_keys.json"))
    assert got.kind == "s3"
    assert [o.key for o in got.objects] == [
        "uploads/red flower+1.log",  # "+" is a space, "%2B" a plus
        "café/日本 2024.log",  # percent-encoded UTF-8
        "exports/run=7/part:1.csv",
    ]  # the ObjectRemoved:Delete record gives nothing
    assert got.objects[2].size == 2048


def test_sns_wrapped_s3_event():
    got = parse_notification(body("sns_s3_event.json"))
    assert got.kind == "sns"
    assert got.objects == (
        ObjectRef(
            "acme-network-logs",
            KEY_1,
            48213,
            "9f1c2e7a4b5d6e8f0a1b2c3d4e5f6071",
            "2024-05-14T10:15:32.417Z",
        ),
    )


def test_sns_raw_message_delivery_is_the_plain_s3_shape():
    sns = json.loads(body("sns_s3_event.json"))
    assert parse_notification(sns["Message"]).kind == "s3"


def test_eventbridge_object_created_key_is_kept_verbatim():
    got = parse_notification(body("eventbridge_object_created.json"))
    assert got == Notification(
        objects=(
            ObjectRef(
                bucket="acme-network-logs",
                key="exports/2024-05-14T10:15:00 summary+final.csv",
                size=7342,
                etag="5e6f708192a3b4c5d6e7f8091a2b3c4d",
                event_time="2024-05-14T10:15:32Z",
            ),
        ),
        kind="eventbridge",
    )


def test_eventbridge_as_moto_sends_it():
    # moto: "eTag" instead of "etag", a Unix timestamp for "time", key not encoded.
    event = json.loads(body("eventbridge_object_created.json"))
    event["time"] = 1715681732.0
    event["detail"]["object"] = {"key": "a b+c%41.log", "size": 3, "eTag": "abc"}
    (obj,) = parse_notification(json.dumps(event)).objects
    assert obj == ObjectRef("acme-network-logs", "a b+c%41.log", 3, "abc", "2024-05-14T10:15:32Z")


def test_eventbridge_other_s3_events_give_no_objects():
    event = json.loads(body("eventbridge_object_created.json"))
    event["detail-type"] = "Object Deleted"
    assert parse_notification(json.dumps(event)) == Notification((), "eventbridge")


@pytest.mark.parametrize("name", ["s3_test_event.json", "sns_s3_test_event.json"])
def test_s3_test_event(name):
    assert parse_notification(body(name)) == Notification((), "test")


def test_optional_fields_may_be_missing():
    event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Copy",
                "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}},
            }
        ]
    }
    assert parse_notification(json.dumps(event)).objects == (ObjectRef("b", "k"),)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json at all",
        "[1, 2]",
        '"Records"',
        "{}",
        '{"Records": []}',
        '{"Records": "x"}',
        '{"Records": [{"eventSource": "aws:sqs", "eventName": "x"}]}',
        '{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}]}',
        '{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",'
        ' "s3": {"bucket": {"name": "b"}, "object": {"key": 7}}}]}',
        '{"Type": "Notification", "Message": "not json"}',
        '{"Type": "Notification", "Message": {"Records": []}}',
        '{"Type": "SubscriptionConfirmation", "Message": "You have chosen to subscribe"}',
        '{"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification"}',
        '{"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {}}}',
    ],
)
def test_anything_else_is_src_005(text):
    with pytest.raises(CollectorError) as err:
        parse_notification(text)
    assert err.value.code == "SRC-005"
    shown = text[:200] if text.strip() else "the message body is empty"
    assert err.value.message == " ".join(f"not an S3 notification: {shown}".split())


def test_error_message_shows_at_most_200_chars():
    text = "x" * 500
    with pytest.raises(CollectorError) as err:
        parse_notification(text)
    assert err.value.message == "not an S3 notification: " + "x" * 200
