"""The format registry, the framings, flattening, and the generic steps that use them."""

from __future__ import annotations

import gzip
import io
import json

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from awscollector.errors import CollectorError
from awscollector.io.deadletter import DEAD_LETTER
from awscollector.io.delivery import EventBatch
from awscollector.io.s3 import FormatBatch, ObjectTask
from awscollector.io.sqs import SqsMessage
from awscollector.pipelines.s3_sqs import ExtractObjects, ParseBatches
from awscollector.transforms.decompress import decompressed_chunks
from awscollector.transforms.flatten import flatten_message
from awscollector.transforms.formats import (
    COMMENT_LINES,
    FIRST_LINE,
    JSON_LINES,
    SKIP,
    SNIFF,
    Format,
    Parsed,
    RecordBatch,
    Registry,
)
from awscollector.transforms.framing import frame_lines, json_records, parquet_rows
from awscollector.transforms.notifications import ObjectRef


def _words(batch, options):
    parsed = Parsed()
    for line in batch.records:
        if line.startswith(b"bad"):
            parsed.reject("SRC-004", "a bad word", line)
        else:
            parsed.add(options.get("table", "t.words"), line)
    return parsed


def _json(batch, options):
    parsed = Parsed()
    for line in batch.records:
        parsed.add("t.json", line)
    return parsed


def _refuse(batch, options):
    raise CollectorError("SRC-003", f"{batch.source}: not my header")


A = Format("a_logs", "a", "t.a", _words, keys=(r"/a-logs/",),
           skip=lambda key: "a digest" if "digest" in key else None)
B = Format("b_logs", "b", "t.b", _words, keys=(r"/b-logs/",),
           sniff=lambda head: head.startswith(b"B!"))
C = Format("c_any", "c", "t.c", _words)  # no key patterns: takes any key of its service
J = Format("j_logs", "j", "t.json", _json, framing=JSON_LINES, keys=(r"\.jsonl$",),
           json_messages=True)
R = Format("r_logs", "r", "t.r", _refuse, keys=(r"/r-logs/",), header=FIRST_LINE)
REGISTRY = Registry([A, B, C, J, R])


# -- classification


@pytest.mark.parametrize(("key", "types", "kind"), [
    ("x/a-logs/1.gz", ["a"], "a_logs"),
    ("x/a-logs/digest/1.gz", ["a"], SKIP),  # the format's own skip
    ("x/b-logs/1.gz", ["a"], SKIP),  # another type's: not ours
    ("x/unknown/1.gz", ["a", "b"], SNIFF),  # b can sniff
    ("x/unknown/1.gz", ["c"], "c_any"),  # c takes any key
    ("x/b-logs/1.gz", ["c"], SKIP),  # ... but not another type's
])
def test_classify(key, types, kind):
    assert REGISTRY.classify(key, types).kind == kind


def test_classify_gives_up_with_src_006_naming_the_key():
    with pytest.raises(CollectorError) as err:
        REGISTRY.classify("x/unknown/1.gz", ["a"])
    assert err.value.code == "SRC-006" and "x/unknown/1.gz" in err.value.message


def test_sniff_and_registration():
    assert REGISTRY.sniff(b"B! hello", ["a", "b"]) is B
    assert REGISTRY.sniff(b"hello", ["a", "b"]) is None
    with pytest.raises(ValueError):
        Registry([A, A])
    assert REGISTRY.types() == ("a", "b", "c", "j", "r")


def test_builtin_formats_are_sound():
    from awscollector.transforms.registry import default_registry

    registry = default_registry()
    names = [f.name for f in registry]
    assert len(names) == len(set(names)) and "vpc_flow_logs" in names
    for fmt in registry:
        assert fmt.table and callable(fmt.parse)


# -- framings


def test_frame_lines_takes_each_kind_of_header_once():
    text = [b"#Version: 1.0\n#Fields: a b\n1 2\n", b"3 4\n"]
    assert list(frame_lines(text, COMMENT_LINES, batch_bytes=4)) == [
        ((b"#Version: 1.0", b"#Fields: a b"), [b"1 2"]),
        ((b"#Version: 1.0", b"#Fields: a b"), [b"3 4"])]
    assert list(frame_lines([b"h\n1\n"], FIRST_LINE)) == [((b"h",), [b"1"])]
    assert list(frame_lines([b"1\n2\n"])) == [((), [b"1", b"2"])]


def test_json_records_streams_any_chunking_and_other_keys():
    records = [{"n": n, "s": "é" * (n % 7), "f": 1.25e3} for n in range(300)]
    doc = json.dumps({"Version": 1, "Records": records, "After": {"x": [1, 2]}}).encode()
    for size in (3, 1000, len(doc)):
        chunks = (doc[i:i + size] for i in range(0, len(doc), size))
        got = [r for batch in json_records(chunks, "Records", batch_bytes=2000) for r in batch]
        assert got == records


@pytest.mark.parametrize(("doc", "good", "why"), [
    (b'{"Records": [{"a": 1}, {"a": }]}', 1, "malformed JSON"),
    (b'{"Records": [{"a": 1}, {"a": 2}', 2, "expected ',' or ']'"),
    (b'{"Other": []}', 0, "no 'Records' array"),
    (b'[{"a": 1}]', 0, "expected a JSON object"),
    (b'{"Records": [{"a": "\xff"}]}', 0, "not UTF-8"),
])
def test_json_records_faults_come_after_the_good_records(doc, good, why):
    got = []
    with pytest.raises(CollectorError) as err:
        for batch in json_records([doc], "Records", "s3://b/k"):
            got += batch
    assert len(got) == good
    assert err.value.code == "SRC-007" and why in err.value.message
    assert "s3://b/k" in err.value.message


def test_json_records_of_a_gzip_object_stream_in_bounded_batches():
    doc = json.dumps({"Records": [{"n": n, "pad": "x" * 100} for n in range(20_000)]})
    raw = gzip.compress(doc.encode())
    chunks = decompressed_chunks(raw[i:i + 65536] for i in range(0, len(raw), 65536))
    sizes = [len(batch) for batch in json_records(chunks, "Records", batch_bytes=100_000)]
    assert sum(sizes) == 20_000 and max(sizes) < 1000  # ~100 KB of records each


def test_parquet_rows_by_row_group():
    table = pa.table({"a": list(range(2500)), "b": [f"v{i}" for i in range(2500)]})
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=1000)
    buf.seek(0)
    rows = [r for batch in parquet_rows(buf, "s3://b/k.parquet") for r in batch.to_pylist()]
    assert rows[0] == {"a": 0, "b": "v0"} and len(rows) == 2500
    with pytest.raises(CollectorError) as err:
        list(parquet_rows(io.BytesIO(b"PAR1 not really"), "s3://b/k.parquet"))
    assert err.value.code == "SRC-007"


def test_flatten_message():
    flat = json.loads(flatten_message(
        b'{"a":{"b":{"c":1},"d":[{"e":2}]},"f":{},"g":null}'))
    assert flat == {"a.b.c": 1, "a.d": [{"e": 2}], "f": {}, "g": None}
    assert flatten_message(b"plain line") == b"plain line"
    assert flatten_message(b"{not json") == b"{not json"


# -- the generic steps, in pipelines


def _message(body: str) -> SqsMessage:
    return SqsMessage("svc", "us-east-1", "https://q", "m-1", body)


def _task(key: str, kind: str) -> ObjectTask:
    return ObjectTask(_message("{}"), ObjectRef("bkt", key), kind)


def _s3_event(*keys: str) -> str:
    return json.dumps({"Records": [
        {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "awsRegion": "us-east-1",
         "s3": {"bucket": {"name": "bkt"}, "object": {"key": k, "size": 1}}} for k in keys]})


def test_extract_objects_classifies_skips_and_dead_letters():
    body = _s3_event("x/a-logs/1.gz", "x/a-logs/digest/2.gz", "x/b-logs/3.gz",
                     "x/unknown/4.gz")
    with TestPipeline() as p:
        out = (p | beam.Create([_message(body), _message("not json")])
               | beam.ParDo(ExtractObjects(REGISTRY, ["a"])).with_outputs(DEAD_LETTER,
                                                                         main="tasks"))
        assert_that(out.tasks | beam.Map(lambda t: (t.ref.key, t.kind)),
                    equal_to([("x/a-logs/1.gz", "a_logs")]), label="tasks")
        assert_that(out[DEAD_LETTER] | beam.Map(lambda d: d.code),
                    equal_to(["SRC-006", "SRC-005"]), label="dead letters")


def test_parse_batches_events_per_table_and_rejects_per_code():
    batch = RecordBatch("s3://bkt/x/a-logs/1.gz", "x/a-logs/1.gz", 0,
                        [b"good 1", b"bad 2", b"good 3", b"bad 4"])
    with TestPipeline() as p:
        out = (p | beam.Create([FormatBatch(_task("x/a-logs/1.gz", "a_logs"), "a_logs", batch)])
               | beam.ParDo(ParseBatches(REGISTRY, {"table": "t.mine"})).with_outputs(
                   DEAD_LETTER, main="events"))
        assert_that(out.events, equal_to([
            EventBatch("t.mine", [b"good 1", b"good 3"], "svc", "us-east-1")]), label="events")
        assert_that(out[DEAD_LETTER] | beam.Map(
            lambda d: (d.code, d.source["rejected"], d.source["records"])),
            equal_to([("SRC-004", 2, ["bad 2", "bad 4"])]), label="dead letters")


def test_parse_batches_rejects_a_whole_object_once_and_flattens_json_formats():
    batches = [FormatBatch(_task("x/r-logs/1", "r_logs"), "r_logs",
                           RecordBatch("s3://bkt/x/r-logs/1", "x/r-logs/1", i, [b"1"],
                                       (b"hdr",))) for i in range(3)]
    batches.append(FormatBatch(_task("x/1.jsonl", "j_logs"), "j_logs", RecordBatch(
        "s3://bkt/x/1.jsonl", "x/1.jsonl", 0, [b'{"a":{"b":1}}'])))
    with TestPipeline() as p:
        out = (p | beam.Create(batches)
               | beam.ParDo(ParseBatches(REGISTRY, {"flatten": True})).with_outputs(
                   DEAD_LETTER, main="events"))
        assert_that(out.events, equal_to([
            EventBatch("t.json", [b'{"a.b":1}'], "svc", "us-east-1")]), label="events")
        assert_that(out[DEAD_LETTER] | beam.Map(lambda d: (d.code, d.source["header"])),
                    equal_to([("SRC-003", "hdr")]), label="one entry for the object")
