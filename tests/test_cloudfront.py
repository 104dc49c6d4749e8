"""CloudFront standard logs: keys, sniff, field lists old and new, bad lines."""

from __future__ import annotations

import doctest
import gzip
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
from awscollector.pipelines.s3_sqs import ParseBatches
from awscollector.transforms import cloudfront
from awscollector.transforms.cloudfront import TABLE, field_names, looks_like_log, parse
from awscollector.transforms.formats import SKIP, SNIFF, RecordBatch
from awscollector.transforms.framing import frame_lines
from awscollector.transforms.notifications import ObjectRef
from awscollector.transforms.registry import default_registry

SAMPLES = Path(__file__).parent / "samples"
TYPES = ("vpc_flow_logs", "cloudfront_logs")


def framed(name: str, batch_bytes: int = 1 << 20) -> list[RecordBatch]:
    """A sample file cut into batches as the S3 reader cuts it."""
    data = (SAMPLES / name).read_bytes()
    return [RecordBatch(f"s3://b/{name}", name, i, lines, header)
            for i, (header, lines) in enumerate(frame_lines([data], "comment_lines",
                                                            batch_bytes))]


def test_doctest():
    assert doctest.testmod(cloudfront).failed == 0


# --- keys and sniff ------------------------------------------------------------------


@pytest.mark.parametrize("key", [
    "EMLARXS9EXAMPLE.2019-11-14-20.RT4KCN4SGK9.gz",  # upper-case unique ID (since 2019)
    "logs/cdn/EMLARXS9EXAMPLE.2019-11-14-20.RT4KCN4SGK9.gz",
    "E2QWRUHAPOMQZL.2014-05-08-20.6a8a4f43.gz",  # lower-case hex unique ID (older)
    "a/b/c/E1ABCDEF0GHIJK.2026-11-27-00.0A1B2C3D.gz",
])
def test_keys_as_aws_names_them_are_cloudfront(key):
    found = default_registry().classify(key, TYPES)
    assert found.kind == "cloudfront_logs"


@pytest.mark.parametrize("key", [
    "EMLARXS9EXAMPLE.2019-11-14.RT4KCN4SGK9.gz",  # no hour
    "emlarxs9example.2019-11-14-20.RT4KCN4SGK9.gz",  # distribution IDs are upper-case
    "EMLARXS9EXAMPLE.2019-11-14-20.RT4KCN4SGK9.gz.tmp",
])
def test_other_keys_are_sniffed(key):
    assert default_registry().classify(key, TYPES).kind == SNIFF


def test_a_service_without_cloudfront_skips_its_objects():
    found = default_registry().classify("EMLARXS9EXAMPLE.2019-11-14-20.RT4KCN4SGK9.gz",
                                        ("vpc_flow_logs",))
    assert found.kind == SKIP and "cloudfront_logs" in found.reason


def test_sniff_recognizes_the_two_header_lines():
    head = (SAMPLES / "cloudfront_2019.log").read_bytes()[:4096]
    assert looks_like_log(head)
    assert default_registry().sniff(head, TYPES) is cloudfront.FORMAT
    assert default_registry().sniff(gzip.decompress(gzip.compress(head)), TYPES).name == \
        "cloudfront_logs"
    assert not looks_like_log(b"#Fields: date time\n#Version: 1.0\n")
    assert not looks_like_log(b"version account-id interface-id\n")
    vpc = b"version account-id interface-id srcaddr dstaddr srcport dstport protocol " \
          b"packets bytes start end action log-status\n"
    assert default_registry().sniff(vpc, TYPES).name == "vpc_flow_logs"


# --- parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize("name,fields", [("cloudfront_2018.log", 24),
                                         ("cloudfront_2019.log", 33)])
def test_every_line_of_a_sample_is_one_event_unchanged(name, fields):
    lines = (SAMPLES / name).read_bytes().splitlines()
    (batch,) = framed(name)
    assert len(field_names(batch.header)) == fields
    parsed = parse(batch, {})
    assert parsed.rejected == []
    assert parsed.events == {TABLE: lines[2:]}  # the two header lines are no events
    for event in parsed.events[TABLE]:
        assert event.count(b"\t") == fields - 1


def test_url_encoded_values_are_kept_as_written():
    (batch,) = framed("cloudfront_2019.log")
    events = parse(batch, {}).events[TABLE]
    assert any(b"/img/caf%C3%A9%20menu.jpg" in e and b"note=a%2520b" in e for e in events)
    assert any(b"consent=%7B%22ads%22:false%7D" in e for e in events)


def test_each_object_has_its_own_field_list():
    old, new = framed("cloudfront_2018.log")[0], framed("cloudfront_2019.log")[0]
    assert len(parse(old, {}).events[TABLE]) == 5
    assert len(parse(new, {}).events[TABLE]) == 5
    # A new-format line in an old-format object does not fit its #Fields.
    mixed = RecordBatch(old.source, old.key, 0, old.records + new.records[:1], old.header)
    parsed = parse(mixed, {})
    assert len(parsed.events[TABLE]) == 5
    assert [(r.code, r.record) for r in parsed.rejected] == [("SRC-004", new.records[0])]
    assert "(24)" in parsed.rejected[0].reason


def test_later_batches_keep_the_header_of_the_object():
    batches = framed("cloudfront_2019.log", batch_bytes=600)
    assert len(batches) > 2
    events = []
    for batch in batches:
        assert len(field_names(batch.header)) == 33
        parsed = parse(batch, {})
        assert parsed.rejected == []
        events += parsed.events[TABLE]
    assert events == (SAMPLES / "cloudfront_2019.log").read_bytes().splitlines()[2:]


def test_lines_with_more_or_fewer_values_are_rejected():
    (batch,) = framed("cloudfront_2018.log")
    good = batch.records
    bad = [good[0] + b"\textra", good[1].rsplit(b"\t", 1)[0], b"garbage"]
    parsed = parse(RecordBatch(batch.source, batch.key, 0, [bad[0], *good, *bad[1:]],
                               batch.header), {})
    assert parsed.events == {TABLE: good}
    assert [r.record for r in parsed.rejected] == bad
    assert {r.code for r in parsed.rejected} == {"SRC-004"}


def test_an_object_without_fields_line_is_rejected_whole():
    batch = RecordBatch("s3://b/k.gz", "k.gz", 0, [b"2019-12-04\t21:02:31"], (b"#Version: 1.0",))
    with pytest.raises(CollectorError) as e:
        parse(batch, {})
    assert e.value.code == "SRC-003" and "s3://b/k.gz" in e.value.message


def test_concatenated_files_header_lines_are_no_events_and_fields_may_change():
    old = (SAMPLES / "cloudfront_2018.log").read_bytes()
    new = (SAMPLES / "cloudfront_2019.log").read_bytes()
    batches = [RecordBatch("s3://b/k", "k", i, lines, header)
               for i, (header, lines) in enumerate(frame_lines([old + new], "comment_lines"))]
    parsed = [parse(b, {}) for b in batches]
    events = [e for p in parsed for e in p.events.get(TABLE, [])]
    assert events == old.splitlines()[2:] + new.splitlines()[2:]
    assert [r for p in parsed for r in p.rejected] == []


# --- the generic parse step, with Beam ---------------------------------------------------


def test_parse_batches_sends_lines_and_dead_letters_bad_ones():
    (batch,) = framed("cloudfront_2019.log")
    key = "cf/EMLARXS9EXAMPLE.2019-12-04-21.RT4KCN4SGK9.gz"
    records = [*batch.records, b"2019-12-04\tshort"]
    batch = RecordBatch(f"s3://b/{key}", key, 0, records, batch.header)
    message = SqsMessage("non-cloudwatch-logs", "us-east-1", "https://q", "m-1", "{}")
    task = ObjectTask(message, ObjectRef("b", key), "cloudfront_logs")
    with TestPipeline() as p:
        out = (p | beam.Create([FormatBatch(task, "cloudfront_logs", batch)])
               | beam.ParDo(ParseBatches(default_registry())).with_outputs(DEAD_LETTER,
                                                                          main="events"))
        assert_that(out.events, equal_to([EventBatch(TABLE, records[:-1],
                                                     "non-cloudwatch-logs", "us-east-1")]),
                    label="events")
        assert_that(out[DEAD_LETTER] | beam.Map(
            lambda d: (d.code, d.source["key"], d.source["records"])),
            equal_to([("SRC-004", key, ["2019-12-04\tshort"])]), label="dead letters")
