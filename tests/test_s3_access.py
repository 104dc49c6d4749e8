"""S3 server access logs: keys (plain and date-partitioned), sniff, every field list,
quoted fields, malformed lines."""

from __future__ import annotations

import doctest
import random

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from awscollector.embedded.seed_lb import (
    alb_key,
    classic_key,
    s3_access_key,
    s3_access_lines,
    s3_access_object,
)
from awscollector.io.deadletter import DEAD_LETTER
from awscollector.io.delivery import EventBatch
from awscollector.io.s3 import FormatBatch, ObjectTask
from awscollector.io.sqs import SqsMessage
from awscollector.pipelines.s3_sqs import ParseBatches
from awscollector.transforms import cloudfront, cloudtrail, elb, s3_access, vpcflow
from awscollector.transforms.decompress import decompressed_chunks
from awscollector.transforms.formats import SKIP, SNIFF, RecordBatch, Registry
from awscollector.transforms.framing import frame_lines
from awscollector.transforms.notifications import ObjectRef
from awscollector.transforms.quoted_fields import count_fields
from awscollector.transforms.s3_access import FIELDS, FORMAT, TABLE, looks_like_log, parse

TYPES = ("s3_access_logs",)


def registry() -> Registry:
    return Registry((vpcflow.FORMAT, cloudtrail.FORMAT, cloudfront.FORMAT, *elb.FORMATS,
                     FORMAT))


def batch(lines: list[bytes], key: str = "k") -> RecordBatch:
    return RecordBatch(f"s3://logs/{key}", key, 0, lines)


def test_doctest():
    assert doctest.testmod(s3_access).failed == 0


# --- keys ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [
    "logs/2026-11-27-21-32-16-E568B2907131C0C0",
    "2026-11-27-21-32-16-E568B2907131C0C0",  # no target prefix
    "access-logs-2026-11-27-21-32-16-E568B2907131C0C0",  # a prefix without "/"
    "a/b/c/2019-02-06-00-00-38-0123456789ABCDEF",
    # date-based partitioning: <prefix><account>/<region>/<bucket>/YYYY/MM/DD/<name>
    "logs/123456789012/us-east-1/amzn-s3-demo-bucket1/2026/11/27/"
    "2026-11-27-21-32-16-E568B2907131C0C0",
    "123456789012/eu-west-3/my.dotted.bucket/2026/11/27/2026-11-27-00-00-01-0A0B0C0D0E0F1011",
    s3_access_key(4),
    s3_access_key(4, prefix="", partitioned=True),
])
def test_keys_as_s3_names_them(key):
    assert registry().classify(key, TYPES).kind == "s3_access_logs"


@pytest.mark.parametrize("key", [
    "logs/2026-11-27-21-32-16-e568b2907131c0c0",  # lower-case unique string
    "logs/2026-11-27-21-32-16-E568B2907131C0C",  # 15 characters
    "logs/2026-11-27-21-32-16-E568B2907131C0C0.gz",
    "logs/2026-11-27-21-32-E568B2907131C0C0",  # no seconds
    "logs/12026-11-27-21-32-16-E568B2907131C0C0",  # a digit before the year
    # a Firehose object: its name ends in a lower-case UUID
    "waf/2026/11/27/21/aws-waf-logs-x-1-2026-11-27-21-32-16-6f7d5a2c-1b2c-4d3e-9f0a-1b2c3d4e5f60",
])
def test_other_keys_are_sniffed_not_taken(key):
    assert not FORMAT.matches_key(key)
    assert registry().classify(key, TYPES).kind == SNIFF


def test_other_formats_keys_are_not_s3_access_logs():
    keys = [alb_key("us-east-1", 1), classic_key("us-east-1", 1),
            "AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/11/27/123456789012_vpcflowlogs_"
            "us-east-1_fl-0abc_20261127T1205Z_0000abcd.log.gz",
            "AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/27/123456789012_CloudTrail_"
            "us-east-1_20261127T1205Z_AbCdEfGhIjKlMnOp.json.gz",
            "EMLARXS9EXAMPLE.2026-11-27-21.RT4KCN4SGK9.gz"]
    for key in keys:
        assert not FORMAT.matches_key(key), key
        assert registry().classify(key, TYPES).kind == SKIP, key


def test_a_service_without_s3_access_logs_skips_their_objects():
    found = registry().classify(s3_access_key(1), ("elb_logs",))
    assert found.kind == SKIP and "s3_access_logs" in found.reason


# --- records ---------------------------------------------------------------------------

OWNER = b"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"
# The oldest field list (17, up to user_agent), as S3 wrote it before object versions.
LINE_17 = (OWNER + b' awsexamplebucket1 [06/Feb/2009:00:00:38 +0000] 192.0.2.3 '
           + OWNER + b' 3E57427F3EXAMPLE REST.GET.VERSIONING - '
           b'"GET /awsexamplebucket1?versioning HTTP/1.1" 200 - 113 - 7 - "-" "S3Console/0.4"')
LINE_18 = LINE_17 + b" -"
# Today's 26 fields: a GET of a key with a space (URL-encoded), SigV4 over TLS 1.3.
LINE_26 = (OWNER + b' amzn-s3-demo-bucket1 [27/Nov/2026:21:32:16 +0000] 192.0.2.3 '
           b'arn:aws:iam::123456789012:user/analyst DD6CC733AEXAMPLE REST.GET.OBJECT '
           b'reports/q3%20final.pdf "GET /amzn-s3-demo-bucket1/reports/q3%20final.pdf '
           b'HTTP/1.1" 200 - 2662992 3462992 176 18 "https://console.aws.amazon.com/" '
           b'"aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64 command/s3.cp" - '
           b's9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= '
           b'SigV4 TLS_AES_128_GCM_SHA256 AuthHeader amzn-s3-demo-bucket1.s3.us-east-1.'
           b'amazonaws.com TLSv1.3 - Yes')
# A failed request: error code, no bytes, a user agent quoting a name.
LINE_ERROR = (OWNER + b' amzn-s3-demo-bucket1 [27/Nov/2026:21:32:17 +0000] 198.51.100.7 - '
              b'0A1B2C3D4E5F6A7B REST.GET.OBJECT secret.txt "GET /secret.txt HTTP/1.1" 403 '
              b'AccessDenied 243 - 12 - "-" "probe \\"night run\\" v1" - '
              b'aW4gdGhlIGxvZ3Mgb25seQ== - - - amzn-s3-demo-bucket1.s3.amazonaws.com - - -')


def test_every_field_list_is_an_event_unchanged():
    assert [count_fields(line.replace(b"[", b'"').replace(b"]", b'"'))
            for line in (LINE_17, LINE_18, LINE_26, LINE_ERROR)] == [17, 18, 26, 26]
    assert len(FIELDS) == 26
    later = LINE_26 + b' "a field of 2027" 7'
    lines = [LINE_17, LINE_18, LINE_26, LINE_ERROR, later]
    parsed = parse(batch(lines), {})
    assert parsed.events == {TABLE: lines} and parsed.rejected == []


def test_generated_lines_are_events():
    for fields in (17, 18, 21, 24, 26):
        lines = [line.encode() for line in s3_access_lines(500, seed=fields, fields=fields)]
        parsed = parse(batch(lines), {})
        assert parsed.rejected == [] and parsed.events == {TABLE: lines}


def test_legacy_bucket_names_are_accepted():
    line = LINE_26.replace(b" amzn-s3-demo-bucket1 [", b" Legacy_Bucket.Name [")
    assert parse(batch([line]), {}).events == {TABLE: [line]}


@pytest.mark.parametrize("line,reason", [
    (LINE_26.replace(b'"https://console', b'https://console'), "a double quote is left open"),
    (LINE_17[:LINE_17.index(b' "S3Console')], "fewer than the 17 fields"),
    (b"- " + LINE_26[len(OWNER) + 1:], "not a bucket owner's canonical id"),
    (OWNER[:63] + LINE_26[64:], "not a bucket owner's canonical id"),
    (LINE_26.replace(b"[27/Nov/2026:21:32:16 +0000]", b"2026-11-27T21:32:16Z"),
     "the third field is not a time"),
    (LINE_26.replace(b" 2662992 ", b"  2662992 "), "not separated by single spaces"),
    (b"<html><body>Access Denied</body></html>", "not a bucket owner's canonical id"),
])
def test_malformed_lines_are_rejected_with_a_reason(line, reason):
    parsed = parse(batch([LINE_26, line, LINE_ERROR]), {})
    assert parsed.events == {TABLE: [LINE_26, LINE_ERROR]}
    (rejected,) = parsed.rejected
    assert rejected.code == "SRC-004" and rejected.record == line
    assert rejected.reason.startswith("not an S3 server access log line: ")
    assert reason in rejected.reason


def test_the_fast_check_keeps_exactly_what_the_expression_keeps():
    rnd = random.Random(11)
    source = [LINE_17, LINE_18, LINE_26, LINE_ERROR]
    shape = s3_access._LINES
    for _ in range(1500):
        lines = [rnd.choice(source) for _ in range(rnd.randrange(1, 10))]
        for i in range(len(lines)):
            if rnd.random() < 0.2:
                at = rnd.randrange(len(lines[i]) + 1)
                edit = rnd.choice((b'"', b" ", b"  ", b"\\", b"]", b"["))
                lines[i] = lines[i][:at] + edit + lines[i][at + rnd.choice((0, 1)):]
        assert shape.good(lines) == [line for line in lines if shape.line.fullmatch(line)]


# --- sniffing, objects, the parse step -----------------------------------------------------


def test_sniff_recognizes_a_record():
    assert looks_like_log(LINE_26 + b"\n" + LINE_17)
    assert registry().sniff(LINE_17 + b"\n", TYPES) is FORMAT
    assert not looks_like_log(b"version account-id interface-id\n")
    assert not looks_like_log(b'{"Records": []}')
    assert not looks_like_log(OWNER + b" bucket 2026-11-27T21:32:16Z 192.0.2.3")


def test_objects_are_plain_text_and_frame_whole():
    lines = s3_access_lines(3000)
    data = s3_access_object(lines)
    assert data[:64] == OWNER  # not compressed
    events = []
    for i, (_, records) in enumerate(frame_lines(decompressed_chunks([data], "k"),
                                                 batch_bytes=64 << 10)):
        parsed = parse(RecordBatch("s3://b/k", "k", i, records), {})
        assert parsed.rejected == []
        events += parsed.events[TABLE]
    assert events == [line.encode() for line in lines]


def test_parse_batches_sends_lines_and_dead_letters_bad_ones():
    key = s3_access_key(2, partitioned=True)
    records = [LINE_26, LINE_26[:300], LINE_ERROR]
    message = SqsMessage("non-cloudwatch-logs", "us-east-1", "https://q", "m-1", "{}")
    task = ObjectTask(message, ObjectRef("logs", key), "s3_access_logs")
    with TestPipeline() as p:
        out = (p | beam.Create([FormatBatch(task, "s3_access_logs",
                                            RecordBatch(f"s3://logs/{key}", key, 0, records))])
               | beam.ParDo(ParseBatches(registry())).with_outputs(DEAD_LETTER, main="events"))
        assert_that(out.events, equal_to([EventBatch(TABLE, [LINE_26, LINE_ERROR],
                                                     "non-cloudwatch-logs", "us-east-1")]),
                    label="events")
        assert_that(out[DEAD_LETTER] | beam.Map(
            lambda d: (d.code, d.source["key"], d.source["records"])),
            equal_to([("SRC-004", key, [LINE_26[:300].decode()])]), label="dead letters")
