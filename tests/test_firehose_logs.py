"""CloudWatch Logs delivered by Firehose to S3: the json_documents framing over gzip
members, the messages (the same as the cloudwatch-logs API service's), control messages
skipped and counted, VPC Flow Logs routed to their table, and the format in Beam
pipelines reading from the embedded S3."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from awscollector.embedded.seed import CUSTOM_FIELDS, vpc_flow_lines
from awscollector.embedded.seed_firehose import (
    control_payload,
    firehose_key,
    firehose_object,
    log_events,
    subscription_payload,
)
from awscollector.errors import CollectorError
from awscollector.io.deadletter import DEAD_LETTER
from awscollector.io.s3 import ReadS3Records
from awscollector.pipelines.s3_sqs import ExtractObjects, ParseBatches
from awscollector.transforms import cloudtrail, cloudwatch_logs, firehose_logs, vpcflow
from awscollector.transforms.decompress import decompressed_chunks
from awscollector.transforms.firehose_logs import TABLE, VPC_TABLE, looks_like_payload, parse
from awscollector.transforms.formats import SKIP, SNIFF, RecordBatch, Registry
from awscollector.transforms.framing import json_documents
from tests.s3_steps import embedded_access, notification

SAMPLES = Path(__file__).parent / "samples"
REGISTRY = Registry((vpcflow.FORMAT, cloudtrail.FORMAT, firehose_logs.FORMAT))
TYPES = ["firehose_cloudwatch_logs"]
FLOW_HEADER = " ".join(vpcflow.DEFAULT_FIELDS).encode()


def payloads() -> list[dict]:
    return json.loads((SAMPLES / "firehose_cwl_payloads.json").read_text())


def documents(data: bytes, chunk: int = 1 << 16) -> list:
    """The documents of an object as the S3 reader frames them (the object in chunks)."""
    chunks = decompressed_chunks(data[i:i + chunk] for i in range(0, len(data), chunk))
    return [d for batch in json_documents(decompressed_chunks(chunks), "s3://b/k", 4096)
            for d in batch]


def api_messages(doc: dict) -> list[bytes]:
    """What the cloudwatch-logs service sends for the same events (FilterLogEvents)."""
    return cloudwatch_logs.parse([
        {"logGroupName": doc["logGroup"], "logStreamName": doc["logStream"],
         "eventId": e["id"], "timestamp": e["timestamp"], "message": e["message"]}
        for e in doc["logEvents"]]).events[TABLE]


def flow_messages(lines: list[str]) -> list[bytes]:
    """What the VPC Flow Logs format gives for these lines in a file of its own."""
    return vpcflow.parse(RecordBatch("s3://b/f", "f", 0, [x.encode() for x in lines],
                                     (FLOW_HEADER,)), {}).events[vpcflow.TABLE]


def test_module_examples():
    assert doctest.testmod(firehose_logs).failed == 0


# --- framing --------------------------------------------------------------------------


@pytest.mark.parametrize("how", [{}, {"decompressed": True},
                                 {"decompressed": True, "newline": True},
                                 {"compressed": True}])
@pytest.mark.parametrize("chunk", [7, 1 << 16])
def test_every_document_of_every_kind_of_object_in_any_chunking(how, chunk):
    docs = payloads() + [subscription_payload("/app", f"s{n}", log_events(50, seed=n))
                         for n in range(20)]
    data = firehose_object(docs, **how)
    if not how:
        assert data.count(b"\x1f\x8b\x08") >= len(docs)  # one gzip member per document
    assert documents(data, chunk) == docs


def test_documents_come_in_bounded_batches():
    docs = [subscription_payload("/app", "s", log_events(20, seed=n)) for n in range(300)]
    data = firehose_object(docs)
    chunks = decompressed_chunks(data[i:i + 4096] for i in range(0, len(data), 4096))
    sizes = [len(b) for b in json_documents(chunks, "s3://b/k", batch_bytes=20_000)]
    assert sum(sizes) == 300 and len(sizes) > 10 and max(sizes) < 20


def test_a_truncated_last_member_is_src_001_after_the_good_members():
    docs = [subscription_payload("/app", "s", log_events(30, seed=n)) for n in range(5)]
    data = firehose_object(docs)
    got = []
    with pytest.raises(CollectorError) as err:
        chunks = decompressed_chunks([data[:-40]], "s3://b/k")
        for batch in json_documents(chunks, "s3://b/k"):
            got += batch
    assert got == docs[:4]
    assert err.value.code == "SRC-001" and "s3://b/k" in err.value.message


@pytest.mark.parametrize(("tail", "why"), [
    (b'{"messageType": "DATA_MESSAGE", "logEvents": [', "malformed JSON"),
    (b'{"messageType": "DATA_MESSAGE", "logEvents": [}]}' + b'{"a": 1}', "malformed JSON"),
    (b'{"messageType": "DATA_\xff"}', "not UTF-8"),
])
def test_a_broken_document_is_src_007_after_the_good_ones(tail, why):
    docs = payloads()
    data = firehose_object(docs, decompressed=True, newline=True)
    got = []
    with pytest.raises(CollectorError) as err:  # (bytes that are no UTF-8 lose their chunk)
        for batch in json_documents([data[:100], data[100:], tail], "s3://b/k"):
            got += batch
    assert got == docs
    assert err.value.code == "SRC-007" and why in err.value.message


# --- messages -------------------------------------------------------------------------


def test_messages_are_those_of_the_cloudwatch_logs_service():
    _, app, flows = payloads()
    parsed = parse(RecordBatch("s3://b/k", "k", 0, [app]), {})
    assert parsed.events == {TABLE: api_messages(app)}
    first = json.loads(parsed.events[TABLE][1])
    assert list(first) == ["logGroup", "logStream", "eventId", "timestamp", "ingestionTime",
                           "message"]
    assert first["message"] == app["logEvents"][1]["message"]  # the text, as it was
    assert first["ingestionTime"] is None and first["logGroup"] == "/aws/lambda/orders-api"


def test_control_messages_are_skipped_and_counted_not_rejected():
    control, app, _ = payloads()
    parsed = parse(RecordBatch("s3://b/k", "k", 0, [control, app, control_payload()]), {})
    assert sum(parsed.skipped.values()) == 2 and "control messages" in next(iter(
        parsed.skipped))
    assert parsed.rejected == [] and len(parsed.events[TABLE]) == 3


def test_vpc_flow_log_events_go_to_the_flow_table_as_the_flow_format_gives_them():
    _, app, flows = payloads()
    lines = [e["message"] for e in flows["logEvents"]]
    v5 = ["5" + line[1:] for line in lines[:2]]  # the default fields, under a later version
    custom = vpc_flow_lines(2, CUSTOM_FIELDS, seed=4)  # no header in CloudWatch Logs: as is
    lookalike = ["2 words that are not a flow log"]
    messages = lines + v5 + custom + lookalike
    doc = subscription_payload("vpc-flow-logs", "eni-1-all",
                               log_events(len(messages), messages=messages))
    parsed = parse(RecordBatch("s3://b/k", "k", 0, [flows, app, doc]), {})
    assert parsed.events[VPC_TABLE] == flow_messages(lines + lines + v5)
    assert parsed.events[VPC_TABLE][0] == lines[0].encode()  # the original line
    others = [json.loads(m)["message"] for m in parsed.events[TABLE]]
    assert others == [e["message"] for e in app["logEvents"]] + custom + lookalike
    assert parsed.rejected == []


@pytest.mark.parametrize(("doc", "why"), [
    ([1, 2], "a JSON list, not an object"),
    ({"messageType": "OTHER"}, "messageType 'OTHER'"),
    ({"Records": []}, "messageType 'None'"),
    ({"messageType": "DATA_MESSAGE", "logGroup": "/g", "logEvents": {}}, "no logEvents list"),
    ({"messageType": "DATA_MESSAGE", "logEvents": []}, "no logGroup"),
])
def test_documents_that_are_not_subscription_payloads_are_src_022(doc, why):
    _, app, _ = payloads()
    parsed = parse(RecordBatch("s3://b/k", "k", 0, [app, doc]), {})
    assert parsed.events == {TABLE: api_messages(app)}
    [rejected] = parsed.rejected
    assert rejected.code == "SRC-022" and why in rejected.reason and rejected.record == doc


def test_log_events_without_a_message_are_src_022_the_others_delivered():
    doc = subscription_payload("/g", "s", [{"id": "1", "timestamp": 1, "message": "ok"},
                                           {"id": "2", "timestamp": 2}, "x"])
    parsed = parse(RecordBatch("s3://b/k", "k", 0, [doc]), {})
    assert [json.loads(m)["message"] for m in parsed.events[TABLE]] == ["ok"]
    assert [(r.code, r.record["logEvent"]) for r in parsed.rejected] == [
        ("SRC-022", {"id": "2", "timestamp": 2}), ("SRC-022", "x")]


# --- recognition ----------------------------------------------------------------------


def test_objects_are_recognized_by_their_first_bytes_not_firehose_keys():
    key = firehose_key("orders-logs", prefix="cwl/")
    assert key.startswith("cwl/2026/11/27/12/orders-logs-1-2026-11-27-12-05-31-")
    assert REGISTRY.classify(key, TYPES).kind == SNIFF
    assert REGISTRY.classify(firehose_key(extension=".gz"), TYPES).kind == SNIFF
    # a VPC Flow Logs key is another type's, skipped here
    assert REGISTRY.classify("AWSLogs/1/vpcflowlogs/x.log.gz", TYPES).kind == SKIP
    for how in ({}, {"decompressed": True}, {"compressed": True}):
        data = firehose_object(payloads(), **how)
        head = next(decompressed_chunks([data]))[:4096]  # decompressed once, as the reader
        assert looks_like_payload(head), how
        assert REGISTRY.sniff(head, TYPES + ["vpc_flow_logs"]) is firehose_logs.FORMAT
    assert not looks_like_payload(b'{"Records": []}')
    assert not looks_like_payload(b"\x1f\x8b" + b"\0" * 30)


# --- in Beam pipelines, from the embedded S3 -------------------------------------------


@pytest.fixture
def s3_access(embedded_aws):
    return embedded_access(embedded_aws)


@pytest.mark.parametrize("flatten", [False, True])
def test_firehose_objects_from_s3_to_events(embedded_aws, s3_access, flatten):
    s3 = embedded_aws.client("s3")
    bucket = f"firehose-pipeline-{int(flatten)}"
    s3.create_bucket(Bucket=bucket)
    control, app, flows = payloads()
    many = [subscription_payload("/ecs/web", f"web/{n}", log_events(200, seed=n))
            for n in range(30)]
    truncated = firehose_object(many[:3])
    objects = {  # key -> (body, documents whose events arrive)
        firehose_key(n=1): (firehose_object([control, app, flows] + many), [app, flows] + many),
        firehose_key(n=2): (firehose_object([app], decompressed=True), [app]),
        firehose_key(n=3): (firehose_object([flows, app], decompressed=True, newline=True),
                            [flows, app]),
        firehose_key(n=4, extension=".gz"): (firehose_object([control, app], compressed=True),
                                             [app]),
        firehose_key(n=5): (truncated[:-30], many[:2]),
        firehose_key(n=6): (firehose_object([app], decompressed=True) + b'{"messageType": "DA',
                            [app]),
    }
    for key, (body, _) in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    p = TestPipeline()
    tasks = (p | beam.Create([notification(bucket, list(objects))])
             | beam.ParDo(ExtractObjects(REGISTRY, TYPES)).with_outputs(DEAD_LETTER,
                                                                       main="tasks"))
    read = tasks.tasks | beam.ParDo(ReadS3Records(
        s3_access, REGISTRY, TYPES, batch_bytes=32 << 10)).with_outputs(
        DEAD_LETTER, main="batches")
    parsed = read.batches | beam.ParDo(ParseBatches(REGISTRY, {"flatten": flatten})
                                       ).with_outputs(DEAD_LETTER, main="events")
    expected = []
    for _, docs in objects.values():
        for doc in docs:
            if doc is flows:
                expected += [(VPC_TABLE, m) for m in flow_messages(
                    [e["message"] for e in doc["logEvents"]])]
            else:
                expected += [(TABLE, m) for m in api_messages(doc)]  # flat already
    assert_that(parsed.events | beam.FlatMap(lambda e: [(e.table, m) for m in e.messages]),
                equal_to(expected))
    assert_that(read[DEAD_LETTER] | beam.Map(lambda d: (d.code, d.source["key"])),
                equal_to([("SRC-001", firehose_key(n=5)), ("SRC-007", firehose_key(n=6))]),
                label="the truncated and the broken object")
    assert_that(tasks[DEAD_LETTER], equal_to([]), label="no notification dead letters")
    assert_that(parsed[DEAD_LETTER], equal_to([]), label="no parse dead letters")
    result = p.run()
    result.wait_until_finish()
    skipped = result.metrics().query(MetricsFilter().with_name("skipped"))["counters"]
    assert sum(c.committed for c in skipped) == 2  # the two control messages
    assert len(expected) > 6000
