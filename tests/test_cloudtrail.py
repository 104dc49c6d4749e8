"""CloudTrail log files (type audits_s3): keys, sniff, parser, flatten, the generic steps."""

from __future__ import annotations

import doctest
import gzip
import json
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from awscollector.errors import CollectorError
from awscollector.io.deadletter import DEAD_LETTER
from awscollector.io.delivery import EventBatch
from awscollector.io.s3 import FormatBatch, ObjectTask
from awscollector.io.sqs import SqsMessage
from awscollector.pipelines.s3_sqs import ExtractObjects, ParseBatches
from awscollector.transforms import cloudtrail
from awscollector.transforms.decompress import decompressed_chunks
from awscollector.transforms.flatten import flatten_message
from awscollector.transforms.formats import SKIP, SNIFF, RecordBatch
from awscollector.transforms.framing import json_records
from awscollector.transforms.notifications import ObjectRef
from awscollector.transforms.registry import default_registry

SAMPLES = Path(__file__).parent / "samples"
TABLE = "cloud.aws.cloudtrail.events"
ACCOUNT = "111122223333"
LOG_KEY = (f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/11/27/"
           f"{ACCOUNT}_CloudTrail_us-east-1_20261127T1205Z_Ab12Cd34Ef56Gh78.json.gz")
ORG_KEY = (f"trails/AWSLogs/o-a1b2c3d4e5/{ACCOUNT}/CloudTrail/eu-west-1/2026/11/27/"
           f"{ACCOUNT}_CloudTrail_eu-west-1_20261127T1210Z_Zz98Yy76Xx54Ww32.json.gz")
INSIGHT_KEY = (f"AWSLogs/{ACCOUNT}/CloudTrail-Insight/us-east-1/2026/11/27/"
               f"{ACCOUNT}_CloudTrail-Insight_us-east-1_20261127T1215Z_Qq11Rr22Ss33Tt44.json.gz")
DIGEST_KEY = (f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/2026/11/27/"
              f"{ACCOUNT}_CloudTrail-Digest_us-east-1_org-trail_us-east-1_20261127T120000Z"
              f".json.gz")
ORG_DIGEST_KEY = (f"AWSLogs/o-a1b2c3d4e5/{ACCOUNT}/CloudTrail-Digest/eu-west-1/2026/11/27/"
                  f"{ACCOUNT}_CloudTrail-Digest_eu-west-1_org-trail_us-east-1_20261127T120000Z"
                  f".json.gz")
VPC_KEY = (f"AWSLogs/{ACCOUNT}/vpcflowlogs/us-east-1/2026/11/27/"
           f"{ACCOUNT}_vpcflowlogs_us-east-1_fl-0abc_20261127T1205Z_1a2b3c4d.log.gz")


def sample_records(name: str) -> list:
    return json.loads((SAMPLES / name).read_text())["Records"]


def framed(doc: bytes, batch_bytes: int = 1 << 20) -> list[list]:
    return list(json_records([doc], "Records", "s3://b/k", batch_bytes))


def parse(records: list, **options) -> dict[str, list[bytes]]:
    parsed = cloudtrail.parse(RecordBatch("s3://b/k", "k", 0, records), options)
    assert parsed.rejected == []
    return parsed.events


def test_module_examples():
    assert doctest.testmod(cloudtrail).failed == 0


# -- keys and sniff


@pytest.mark.parametrize(("key", "kind"), [
    (LOG_KEY, "cloudtrail"),
    (ORG_KEY, "cloudtrail"),  # an organization trail, under a prefix
    (INSIGHT_KEY, "cloudtrail"),
    (DIGEST_KEY, SKIP),
    (ORG_DIGEST_KEY, SKIP),
    (VPC_KEY, SKIP),  # a log-archive bucket: another type's object
    ("exports/2026/11/27/trail-0001.json.gz", SNIFF),  # a key that says nothing
])
def test_objects_are_told_by_aws_key_layout(key, kind):
    assert default_registry().classify(key, ["audits_s3"]).kind == kind


def test_digest_files_are_skipped_with_a_reason_and_others_ignore_them():
    registry = default_registry()
    found = registry.classify(DIGEST_KEY, ["audits_s3"])
    assert "digest" in found.reason
    # A VPC service on the same bucket skips CloudTrail's objects, digests included.
    assert registry.classify(LOG_KEY, ["vpc_flow_logs"]).kind == SKIP
    assert registry.classify(DIGEST_KEY, ["vpc_flow_logs"]).kind == SKIP


def test_sniff_recognizes_a_records_document_only():
    registry = default_registry()
    doc = (SAMPLES / "cloudtrail_log.json").read_bytes()
    assert registry.sniff(doc[:4096], ["audits_s3"]) is cloudtrail.FORMAT
    assert registry.sniff(b'\n  {\n  "Records" : [', ["audits_s3"]) is cloudtrail.FORMAT
    assert registry.sniff((SAMPLES / "cloudtrail_digest.json").read_bytes(),
                          ["audits_s3"]) is None
    assert registry.sniff(b'{"records": []}', ["audits_s3"]) is None
    assert registry.sniff(b"version account-id", ["audits_s3"]) is None


# -- the parser, on files in AWS's format


def test_every_record_becomes_its_compact_json_in_aws_order():
    doc = (SAMPLES / "cloudtrail_log.json").read_bytes()
    records = [r for batch in framed(doc) for r in batch]
    assert records == sample_records("cloudtrail_log.json")
    events = parse(records)
    assert list(events) == [TABLE]
    messages = events[TABLE]
    assert len(messages) == 7
    # AWS writes its files compact: each message is that record's text, byte for byte.
    inner = doc.decode().strip()[len('{"Records":['):-len("]}")]
    assert b",".join(messages).decode() == inner
    first = json.loads(messages[0])
    assert list(first) == list(records[0])  # key order kept
    assert first["userIdentity"]["sessionContext"]["sessionIssuer"]["userName"] == "OpsAdmin"
    assert "café-worker ñ 1" in messages[0].decode()  # UTF-8, not \u escapes
    assert b"\n" not in b"".join(messages)


def test_whitespace_in_the_document_does_not_reach_the_messages():
    records = sample_records("cloudtrail_log.json")
    pretty = json.dumps({"Records": records}, indent=4).encode()
    got = parse([r for batch in framed(pretty, batch_bytes=3000) for r in batch])
    assert [json.loads(m) for m in got[TABLE]] == records
    assert all(b": " not in m[:20] and not m.startswith(b"{ ") for m in got[TABLE])


def test_auto_event_type_routes_by_event_source():
    records = sample_records("cloudtrail_log.json")
    events = parse(records, auto_event_type=True)
    assert {t: len(m) for t, m in events.items()} == {
        "cloud.aws.cloudtrail.ec2": 1, "cloud.aws.cloudtrail.iam": 1,
        "cloud.aws.cloudtrail.sts": 1, "cloud.aws.cloudtrail.s3": 1,
        "cloud.aws.cloudtrail.signin": 1, "cloud.aws.cloudtrail.kms": 1,
        "cloud.aws.cloudtrail.elasticloadbalancing": 1}
    assert json.loads(events["cloud.aws.cloudtrail.s3"][0])["eventName"] == "GetObject"
    # One service only: one table, messages in order.
    ec2 = [r for r in records if r["eventSource"] == "ec2.amazonaws.com"] * 3
    assert list(parse(ec2, auto_event_type=True)) == ["cloud.aws.cloudtrail.ec2"]


@pytest.mark.parametrize(("source", "table"), [
    ("ec2.amazonaws.com", "cloud.aws.cloudtrail.ec2"),
    ("EC2.amazonaws.com", "cloud.aws.cloudtrail.ec2"),
    ("s3-outposts.amazonaws.com", "cloud.aws.cloudtrail.s3-outposts"),
    ("ssm", "cloud.aws.cloudtrail.ssm"),
    ("", TABLE),
    ("two words.amazonaws.com", TABLE),
    ("evil: tag.amazonaws.com", TABLE),
    (".amazonaws.com", TABLE),
    (None, TABLE),
    (42, TABLE),
    (["ec2.amazonaws.com"], TABLE),
    ({"a": 1}, TABLE),
])
def test_records_without_a_usable_event_source_go_to_the_default_table(source, table):
    record = {"eventVersion": "1.08", "eventSource": source, "eventName": "X"}
    other = {"eventSource": "iam.amazonaws.com", "eventName": "Y"}
    events = parse([record, other], auto_event_type=True)
    assert events[table] == [json.dumps(record, separators=(",", ":")).encode()]
    assert len(events["cloud.aws.cloudtrail.iam"]) == 1
    assert parse([{"eventName": "no source"}], auto_event_type=True) == {
        TABLE: [b'{"eventName":"no source"}']}


def test_insights_go_beside_the_calls_of_their_service():
    doc = (SAMPLES / "cloudtrail_insight.json").read_bytes()
    records = [r for batch in framed(doc) for r in batch]
    assert all(r["eventType"] == "AwsCloudTrailInsight" for r in records)
    assert parse(records) == {TABLE: [json.dumps(r, separators=(",", ":")).encode()
                                      for r in records]}
    events = parse(records, auto_event_type=True)
    assert {t: len(m) for t, m in events.items()} == {"cloud.aws.cloudtrail.ec2": 2,
                                                       "cloud.aws.cloudtrail.iam": 1}


def test_records_that_are_not_objects_are_rejected_the_others_delivered():
    records = [{"eventName": "A"}, 7, "text", None, [1], {"eventName": "B"}]
    parsed = cloudtrail.parse(RecordBatch("s3://b/k", "k", 0, records), {})
    assert parsed.events == {TABLE: [b'{"eventName":"A"}', b'{"eventName":"B"}']}
    assert [(r.code, r.record) for r in parsed.rejected] == [
        ("SRC-008", 7), ("SRC-008", "text"), ("SRC-008", None), ("SRC-008", [1])]
    assert parsed.rejected[0].reason == "4 records are not JSON objects"
    only_bad = cloudtrail.parse(RecordBatch("s3://b/k", "k", 0, [1, 2]), {"auto_event_type": 1})
    assert only_bad.events == {} and len(only_bad.rejected) == 2


def test_values_json_cannot_round_trip_as_utf_8_stay_escaped():
    records = [{"a": "\ud800 lone surrogate"}, {"a": "é"}]
    assert parse(records) == {TABLE: [b'{"a":"\\ud800 lone surrogate"}', '{"a":"é"}'.encode()]}


def test_flatten_applies_to_cloudtrail_messages():
    assert cloudtrail.FORMAT.json_messages
    message = parse(sample_records("cloudtrail_log.json")[3:4])[TABLE][0]
    flat = json.loads(flatten_message(message))
    assert flat["userIdentity.sessionContext.sessionIssuer.arn"] == (
        f"arn:aws:iam::{ACCOUNT}:role/app-role")
    assert flat["userIdentity.sessionContext.attributes.mfaAuthenticated"] == "false"
    assert flat["requestParameters.bucketName"] == f"app-assets-{ACCOUNT}"
    assert flat["responseElements"] is None
    assert isinstance(flat["resources"], list) and flat["resources"][1]["type"] == (
        "AWS::S3::Bucket")  # lists stay lists
    assert not any(isinstance(v, dict) and v for v in flat.values())


def test_a_malformed_document_yields_the_records_before_the_fault():
    doc = (SAMPLES / "cloudtrail_log.json").read_bytes()
    cut = doc.index(b'{"eventVersion"', doc.index(b"sts.amazonaws.com"))  # the 4th record
    broken = gzip.compress(doc[:cut] + b'{"eventVersion":"1.08",,}]}')
    got = []
    with pytest.raises(CollectorError) as err:
        for batch in json_records(decompressed_chunks([broken]), "Records", "s3://b/k"):
            got += batch
    assert got == sample_records("cloudtrail_log.json")[:3]
    assert err.value.code == "SRC-007" and "s3://b/k" in err.value.message


# -- the generic steps, with this format


def _message(body: str) -> SqsMessage:
    return SqsMessage("audit-events-all", "us-east-1", "https://q", "m-1", body)


def _s3_event(*keys: str) -> str:
    return json.dumps({"Records": [
        {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "awsRegion": "us-east-1",
         "s3": {"bucket": {"name": "trail"}, "object": {"key": k, "size": 1}}} for k in keys]})


def test_extract_objects_skips_digest_files():
    registry = default_registry()
    body = _s3_event(LOG_KEY, DIGEST_KEY, INSIGHT_KEY, VPC_KEY)
    with TestPipeline() as p:
        out = (p | beam.Create([_message(body)])
               | beam.ParDo(ExtractObjects(registry, ["audits_s3"])).with_outputs(
                   DEAD_LETTER, main="tasks"))
        assert_that(out.tasks | beam.Map(lambda t: (t.ref.key, t.kind)),
                    equal_to([(LOG_KEY, "cloudtrail"), (INSIGHT_KEY, "cloudtrail")]))
        assert_that(out[DEAD_LETTER], equal_to([]), label="no dead letters")


def _batch(index: int, records: list) -> FormatBatch:
    task = ObjectTask(_message("{}"), ObjectRef("trail", LOG_KEY), "cloudtrail")
    return FormatBatch(task, "cloudtrail", RecordBatch(f"s3://trail/{LOG_KEY}", LOG_KEY,
                                                       index, records))


def test_parse_batches_routes_flattens_and_dead_letters():
    records = sample_records("cloudtrail_log.json")
    options = {"auto_event_type": True, "flatten": True}
    with TestPipeline() as p:
        out = (p | beam.Create([_batch(0, records[:2]), _batch(1, [records[2], 5])])
               | beam.ParDo(ParseBatches(default_registry(), options)).with_outputs(
                   DEAD_LETTER, main="events"))
        events = out.events | beam.Map(lambda e: (e.table, [json.loads(m) for m in e.messages],
                                                  e.service))
        assert_that(events, equal_to([
            ("cloud.aws.cloudtrail.ec2", [_flat(records[0])], "audit-events-all"),
            ("cloud.aws.cloudtrail.iam", [_flat(records[1])], "audit-events-all"),
            ("cloud.aws.cloudtrail.sts", [_flat(records[2])], "audit-events-all")]))
        dead = out[DEAD_LETTER] | beam.Map(lambda d: (d.code, d.source["key"],
                                                      d.source["batch"], d.source["records"]))
        assert_that(dead, equal_to([("SRC-008", LOG_KEY, 1, [5])]), label="dead letters")


def _flat(record: dict) -> dict:
    return json.loads(flatten_message(json.dumps(record).encode()))


def test_parse_batches_without_options_sends_the_default_table():
    records = sample_records("cloudtrail_insight.json")
    with TestPipeline() as p:
        out = (p | beam.Create([_batch(0, records)])
               | beam.ParDo(ParseBatches(default_registry(), {})).with_outputs(
                   DEAD_LETTER, main="events"))
        assert_that(out.events, equal_to([EventBatch(
            TABLE, [json.dumps(r, separators=(",", ":")).encode() for r in records],
            "audit-events-all", "us-east-1")]))
