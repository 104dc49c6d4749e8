"""The SQS reader's pieces against the embedded AWS over HTTP: the visibility keeper,
the release of in-flight messages, and the mapping of AWS errors to our codes."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator

import apache_beam as beam
import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from awscollector.awserrors import aws_error
from awscollector.io.sqs import VisibilityKeeper
from tests.faults import FaultProxy, FaultRule


@pytest.fixture
def sqs(embedded_aws):
    return embedded_aws.client("sqs")


@pytest.fixture
def queue(sqs) -> Iterator[str]:
    """A new queue holding one message."""
    url = sqs.create_queue(QueueName=f"keeper-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    yield url
    sqs.delete_queue(QueueUrl=url)


@pytest.fixture
def keepers() -> Iterator[list[VisibilityKeeper]]:
    """Keepers made by a test, closed after it (their threads stop)."""
    made: list[VisibilityKeeper] = []
    yield made
    for keeper in made:
        keeper.close()


def receive(sqs, url: str, visibility: int = 2) -> list[dict]:
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                               VisibilityTimeout=visibility).get("Messages", [])


def receive_within(sqs, url: str, seconds: float) -> tuple[list[dict], float]:
    """Polls until a message is received or `seconds` pass; returns it and the wait."""
    started = time.monotonic()
    while True:
        got = receive(sqs, url)
        waited = time.monotonic() - started
        if got or waited >= seconds:
            return got, waited
        time.sleep(0.1)


def test_keeper_extends_visibility_until_released(sqs, queue, keepers):
    keeper = VisibilityKeeper(timeout=2)
    keepers.append(keeper)
    got = receive(sqs, queue, visibility=2)
    assert [m["Body"] for m in got] == ["hello"]
    keeper.track(sqs, queue, got)
    # Without the keeper the message would be back after 2 s.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        assert receive(sqs, queue) == [], "the message came back while tracked"
        time.sleep(0.5)
    keeper.release_all()
    again, waited = receive_within(sqs, queue, 1.0)
    assert [m["MessageId"] for m in again] == [got[0]["MessageId"]]
    assert waited < 1.0  # at once, not after a visibility timeout


def test_forget_stops_extending(sqs, queue, keepers):
    keeper = VisibilityKeeper(timeout=2)
    keepers.append(keeper)
    got = receive(sqs, queue, visibility=2)
    keeper.track(sqs, queue, got)
    time.sleep(2.5)
    assert receive(sqs, queue) == []  # extended past its first 2 s
    keeper.forget(queue, [got[0]["MessageId"]])
    # No longer extended: back within the timeout (2 s) plus one keeper interval (1 s).
    again, waited = receive_within(sqs, queue, 5.0)
    assert [m["MessageId"] for m in again] == [got[0]["MessageId"]], f"not back in {waited}s"
    # forget() is not a release: the message was not made visible at once.
    assert waited > 0.5


def test_release_all_makes_tracked_messages_visible_again(sqs, queue, keepers):
    keeper = VisibilityKeeper(timeout=60)
    keepers.append(keeper)
    sqs.send_message(QueueUrl=queue, MessageBody="second")
    got = []
    for _ in range(5):  # moto may hand out fewer than asked for
        got += receive(sqs, queue, visibility=60)
        if len(got) == 2:
            break
    assert sorted(m["Body"] for m in got) == ["hello", "second"]
    keeper.track(sqs, queue, got)
    assert receive(sqs, queue) == []
    assert keeper.in_flight() == 2

    keeper.release_all()

    again: list[dict] = []
    for _ in range(5):
        again += receive(sqs, queue, visibility=30)
        if len(again) == 2:
            break
    assert sorted(m["Body"] for m in again) == ["hello", "second"]
    # Released ones are no longer tracked: a second release does not touch them.
    assert keeper.in_flight() == 0
    keeper.release_all()
    assert receive(sqs, queue) == []


class _Explode(beam.DoFn):
    def process(self, message):
        raise ValueError("a step after the reader fails")


def test_a_failed_pipeline_gives_back_what_its_reader_received(embedded_aws, sqs, queue):
    """The reader's worker releases its undeleted messages when it goes away, so the
    next run gets them at once instead of after the visibility timeout (60 s here)."""
    from types import SimpleNamespace

    from awscollector.io.access import AwsAccess
    from awscollector.io.sqs import ReadFromSqs, SqsQueue

    access = AwsAccess(SimpleNamespace(endpoint_url=embedded_aws.endpoint_url,
                                       credentials=SimpleNamespace(access_key="testing",
                                                                   access_secret="testing")))
    reader = SqsQueue("test", "us-east-1", queue)
    with pytest.raises(Exception, match="a step after the reader fails"):
        with beam.Pipeline() as p:
            (p | ReadFromSqs([reader], access, idle_seconds=2, visibility_timeout=60)
               | beam.ParDo(_Explode()))
    again, waited = receive_within(sqs, queue, 3.0)
    assert [m["Body"] for m in again] == ["hello"], f"not back after {waited:.1f}s"


def test_stop_signal_ends_the_read_and_what_was_received_is_deleted(embedded_aws, sqs, queue):
    from types import SimpleNamespace

    from awscollector.io.access import AwsAccess
    from awscollector.io.sqs import ReadFromSqs, SqsQueue
    from awscollector.io.stop import StopSignal

    access = AwsAccess(SimpleNamespace(endpoint_url=embedded_aws.endpoint_url,
                                       credentials=SimpleNamespace(access_key="testing",
                                                                   access_secret="testing")))
    stop = StopSignal()
    _SEEN.clear()
    _STOPS["stop"] = stop
    # Unbounded (no idle_seconds): only the stop request ends it.
    with beam.Pipeline() as p:
        (p | ReadFromSqs([SqsQueue("test", "us-east-1", queue)], access, stop=stop,
                         bundle_seconds=0.5)
           | beam.ParDo(_StopAfterFirst()))
    assert _SEEN == ["hello"]
    assert receive(sqs, queue) == []
    attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "0"  # deleted, not hidden


_SEEN: list[str] = []
_STOPS: dict = {}


class _StopAfterFirst(beam.DoFn):
    """Records the message, then asks the run to stop (as SIGTERM's handler does)."""

    def process(self, message):
        _SEEN.append(message.body)
        _STOPS["stop"].request()


def test_keeper_survives_a_failed_extension(embedded_aws, sqs, queue, keepers, caplog):
    """One refused ChangeMessageVisibilityBatch: logged as AWS-008, the next extends again."""
    with FaultProxy(embedded_aws.endpoint_url) as proxy:
        via_proxy = boto3.client("sqs", region_name="us-east-1",
                                 endpoint_url=proxy.endpoint_url, aws_access_key_id="testing",
                                 aws_secret_access_key="testing",
                                 config=Config(retries={"total_max_attempts": 1}))
        refused = proxy.add(FaultRule(match_target="ChangeMessageVisibilityBatch", times=1,
                                      protocol="json", status=400, code="AccessDenied"))
        keeper = VisibilityKeeper(timeout=3)  # extends every second
        keepers.append(keeper)
        got = receive(sqs, queue, visibility=3)
        with caplog.at_level(logging.WARNING, logger="awscollector.io.sqs"):
            keeper.track(via_proxy, queue, got)
            # The extension at ~1 s is refused; the ones at ~2 s and later succeed. Without
            # them the message would be back at 3 s.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                assert receive(sqs, queue) == [], "the message came back while tracked"
                time.sleep(0.5)
        assert refused.hits == 1
        assert len(proxy.seen("ChangeMessageVisibilityBatch")) >= 3
        assert any(r.getMessage().startswith("AWS-008 extending SQS visibility failed")
                   for r in caplog.records)
        keeper.release_all()
        assert [m["Body"] for m in receive(sqs, queue)] == ["hello"]


# -- aws_error: AWS error codes -> our codes -----------------------------------------------

def _client_error(code: str, message: str = "m") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "AnyOperation")


@pytest.mark.parametrize("aws_code, ours", [
    ("AccessDenied", "AWS-003"),
    ("AccessDeniedException", "AWS-003"),
    ("Forbidden", "AWS-003"),
    ("403", "AWS-003"),
    ("InvalidClientTokenId", "AWS-001"),
    ("UnrecognizedClientException", "AWS-001"),
    ("SignatureDoesNotMatch", "AWS-001"),
    ("ExpiredToken", "AWS-001"),
    ("InvalidAccessKeyId", "AWS-001"),
    ("AWS.SimpleQueueService.NonExistentQueue", "AWS-005"),
    ("QueueDoesNotExist", "AWS-005"),
    ("NoSuchKey", "AWS-007"),
    ("404", "AWS-007"),
    ("NotFound", "AWS-007"),
    ("NoSuchBucket", "AWS-007"),
    ("Throttling", "AWS-004"),
    ("ThrottlingException", "AWS-004"),
    ("SlowDown", "AWS-004"),
    ("RequestLimitExceeded", "AWS-004"),
    ("InternalError", "AWS-008"),
    ("ServiceUnavailable", "AWS-008"),
    ("503", "AWS-008"),
    ("PreconditionFailed", "AWS-008"),
])
def test_aws_error_maps_client_errors(aws_code, ours):
    error = aws_error(_client_error(aws_code, "details here"), "sqs ReceiveMessage on Q")
    assert error.code == ours
    assert error.message == f"sqs ReceiveMessage on Q failed: {aws_code}: details here"
    assert str(error).startswith(f"{ours} sqs ReceiveMessage on Q failed")


@pytest.mark.parametrize("exc", [
    EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
    ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"),
    ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
])
def test_aws_error_maps_unreachable_to_aws_006(exc):
    error = aws_error(exc, "s3 GetObject s3://b/k")
    assert error.code == "AWS-006"
    assert "127.0.0.1:1" in error.message


@pytest.mark.parametrize("aws_code", ["RequestThrottled", "KmsThrottled",
                                      "TooManyRequestsException", "ThrottledException",
                                      "RequestThrottledException", "BandwidthLimitExceeded"])
def test_aws_error_maps_every_throttling_code_to_aws_004(aws_code):
    assert aws_error(_client_error(aws_code), "x").code == "AWS-004"


@pytest.mark.parametrize("code, status, ours", [
    ("ThrottlingException", 400, "AWS-004"),
    ("AccessDenied", 403, "AWS-003"),
    ("AWS.SimpleQueueService.NonExistentQueue", 400, "AWS-005"),
    ("InternalError", 500, "AWS-008"),
])
def test_aws_error_of_errors_as_botocore_parses_them_from_the_wire(embedded_aws, code, status,
                                                                   ours):
    """SQS's JSON protocol: the code botocore reports comes from x-amzn-query-error."""
    with FaultProxy(embedded_aws.endpoint_url) as proxy:
        client = boto3.client("sqs", region_name="us-east-1", endpoint_url=proxy.endpoint_url,
                              aws_access_key_id="testing", aws_secret_access_key="testing",
                              config=Config(retries={"total_max_attempts": 1}))
        proxy.add(FaultRule(match_target="GetQueueUrl", protocol="json", status=status,
                            code=code))
        with pytest.raises(ClientError) as raised:
            client.get_queue_url(QueueName="anything")
    assert raised.value.response["Error"]["Code"] == code
    assert aws_error(raised.value, "sqs GetQueueUrl anything").code == ours


def test_a_huge_dead_letter_is_shortened_to_fit_an_sqs_message():
    from awscollector.io.deadletter import MAX_ENTRY_BYTES, DeadLetter

    entry = DeadLetter("svc", "us-east-1", {"key": "k", "lines": ["x" * 50_000] * 100},
                       "SRC-004", "e" * 5000, {"Records": ["y" * 300_000]})
    line = entry.to_json()
    assert len(line.encode()) <= MAX_ENTRY_BYTES
    doc = json.loads(line)
    assert doc["source"]["truncated"] is True and doc["source"]["key"] == "k"
    assert doc["code"] == "SRC-004" and doc["source"]["lines"]


def test_dead_letters_are_sent_in_batches_sqs_accepts():
    from awscollector.io.deadletter import _sqs_batches

    lines = ["a" * 100_000] * 5 + ["b"] * 25
    batches = _sqs_batches(lines)
    assert [x for b in batches for x in b] == lines
    assert all(len(b) <= 10 and sum(map(len, b)) <= 250_000 for b in batches)
