"""AWS Config history and snapshot files: keys, sniffing, messages, streaming, and the
format in Beam pipelines reading from the embedded S3."""

from __future__ import annotations

import doctest
import gzip
import json
import tracemalloc
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from awscollector.embedded.seed import ACCOUNT
from awscollector.embedded.seed_firehose import (
    config_history_key,
    config_history_object,
    config_items,
    config_snapshot_key,
    config_snapshot_object,
    config_writability_key,
)
from awscollector.errors import CollectorError
from awscollector.io.deadletter import DEAD_LETTER
from awscollector.io.s3 import ReadS3Records
from awscollector.pipelines.s3_sqs import ExtractObjects, ParseBatches
from awscollector.transforms import aws_config, cloudtrail
from awscollector.transforms.aws_config import TABLE, looks_like_config, parse
from awscollector.transforms.decompress import decompressed_chunks
from awscollector.transforms.flatten import flatten as flat
from awscollector.transforms.formats import SKIP, SNIFF, RecordBatch, Registry
from awscollector.transforms.framing import json_records
from tests.s3_steps import embedded_access, notification

SAMPLES = Path(__file__).parent / "samples"
REGISTRY = Registry((aws_config.FORMAT, cloudtrail.FORMAT))
ORG = "o-a1b2c3d4e5"


def sample(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text())


def compact(record) -> bytes:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()


def test_module_examples():
    assert doctest.testmod(aws_config).failed == 0


@pytest.mark.parametrize(("key", "kind"), [
    (config_history_key("us-east-1"), "config_logs"),
    (config_history_key("eu-west-1", "AWS::S3::Bucket", prefix="archive/", org=ORG),
     "config_logs"),
    (config_snapshot_key("ap-southeast-2"), "config_logs"),
    (config_snapshot_key("us-east-1", prefix="a/b/", org=ORG), "config_logs"),
    (f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/11/27/x.json.gz", SKIP),  # not ours
    ("exports/2026/config.json.gz", SNIFF),  # a key that says nothing
])
def test_objects_are_told_by_the_key_config_writes(key, kind):
    assert REGISTRY.classify(key, ["config_logs"]).kind == kind


@pytest.mark.parametrize("key", [
    config_writability_key(),
    config_writability_key(prefix="config/", org=ORG),
    f"AWSLogs/{ACCOUNT}/Config/us-west-2/2026/11/27/OversizedChangeNotification/"
    f"AWS::EC2::Instance/i-0c5e2a9f7b3d14e86/{ACCOUNT}_Config_us-west-2_ChangeNotification_"
    f"AWS::EC2::Instance_i-0c5e2a9f7b3d14e86_20261127T120531Z_1795781131000.json.gz",
])
def test_writability_checks_and_oversized_notifications_are_skipped_with_a_reason(key):
    found = REGISTRY.classify(key, ["config_logs"])
    assert found.kind == SKIP and "AWS Config" in found.reason
    # a service of another type skips Config objects too, as of a type it does not collect
    other = REGISTRY.classify(config_history_key("us-east-1"), ["audits_s3"])
    assert other.kind == SKIP and "config_logs" in other.reason


def test_sniff_recognizes_history_and_snapshot_documents_only():
    assert looks_like_config((SAMPLES / "config_history.json").read_bytes()[:4096])
    assert looks_like_config((SAMPLES / "config_snapshot.json").read_bytes()[:4096])
    assert not looks_like_config(b'{"Records": [{"eventVersion": "1.08"}]}')
    assert not looks_like_config(b'{"fileVersion": "1.0", "other": []}')
    assert REGISTRY.sniff(b'{"fileVersion":"1.0","configurationItems":[',
                          ["config_logs"]) is aws_config.FORMAT


@pytest.mark.parametrize("name", ["config_history.json", "config_snapshot.json"])
def test_every_item_is_its_compact_json_in_aws_order(name):
    doc = (SAMPLES / name).read_bytes()
    items = sample(name)["configurationItems"]
    [records] = list(json_records([doc], "configurationItems", "s3://b/k"))
    parsed = parse(RecordBatch("s3://b/k", "k", 0, records), {})
    assert parsed.rejected == [] and parsed.skipped == {}
    assert parsed.events == {TABLE: [compact(i) for i in items]}
    assert b'"configurationItemStatus":"ResourceDeleted"' in b"".join(
        parse(RecordBatch("s3://b/k", "k", 0, sample("config_history.json")[
            "configurationItems"]), {}).events[TABLE])


def test_items_that_are_not_objects_are_src_008_the_others_delivered():
    items = sample("config_history.json")["configurationItems"]
    parsed = parse(RecordBatch("s3://b/k", "k", 0, [items[0], None, [1], items[1]]), {})
    assert parsed.events[TABLE] == [compact(items[0]), compact(items[1])]
    assert [(r.code, r.record) for r in parsed.rejected] == [("SRC-008", None),
                                                             ("SRC-008", [1])]


def test_a_truncated_small_file_delivers_the_items_before_the_fault_src_001():
    items = config_items(30, seed=4)
    raw = config_history_object(items)  # a few KiB: all of it in the first read of text
    got = []
    with pytest.raises(CollectorError) as err:
        for records in json_records(decompressed_chunks([raw[:-20]], "s3://b/k"),
                                    "configurationItems", "s3://b/k"):
            got += records
    assert err.value.code == "SRC-001" and "s3://b/k" in err.value.message
    assert 20 < len(got) < 30 and got == items[:len(got)]


def _streamed(n: int) -> tuple[int, int, int, int]:
    """(items delivered, batches, peak traced memory, decompressed size) of a snapshot of
    n items read the way the S3 reader reads it: 64 KiB chunks, gunzipped as they come."""
    raw = config_snapshot_object(config_items(n, seed=3, region="eu-west-1"))
    size = len(gzip.decompress(raw))
    chunks = decompressed_chunks(raw[i:i + 65536] for i in range(0, len(raw), 65536))
    count = batches = 0
    tracemalloc.start()
    try:
        for records in json_records(chunks, "configurationItems", "s3://b/k",
                                    batch_bytes=256 << 10):
            parsed = parse(RecordBatch("s3://b/k", "k", batches, records), {})
            count += len(parsed.events[TABLE])
            batches += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return count, batches, peak, size


def test_a_big_snapshot_streams_in_bounded_batches_not_held_whole():
    count, batches, small_peak, _ = _streamed(3000)
    assert count == 3000
    count, batches, peak, size = _streamed(16_000)
    assert count == 16_000 and batches > 40 and size > 12 << 20
    # memory holds a batch or two and the text read ahead, whatever the document's size
    assert peak < small_peak * 1.3 and peak < size / 2, (small_peak, peak, size)


# --- in Beam pipelines, from the embedded S3 -------------------------------------------


@pytest.fixture
def s3_access(embedded_aws):
    return embedded_access(embedded_aws)


def _more_than(n: int):
    def check(got):
        assert got[0] > n, got
    return check


@pytest.mark.parametrize("flatten", [False, True])
def test_config_files_from_s3_to_events(embedded_aws, s3_access, flatten):
    s3 = embedded_aws.client("s3")
    bucket = f"config-pipeline-{int(flatten)}"
    s3.create_bucket(Bucket=bucket)
    history = config_items(40, seed=1, resource_type="AWS::EC2::SecurityGroup")
    snapshot = config_items(3000, seed=2)
    keys = {
        "history": config_history_key("us-east-1", "AWS::EC2::SecurityGroup"),
        "snapshot": config_snapshot_key("us-east-1", prefix="org/", org=ORG),
        "check": config_writability_key(),
        "cut": config_history_key("us-east-1", "AWS::IAM::Role", n=2),
        "odd": "exports/config-copy.json.gz",  # no Config key: sniffed
    }
    whole = gzip.decompress(config_history_object(history[:5])).decode()
    cut_at = whole.index('"configurationItemVersion"', 3000)  # inside an item
    cut_good = [i for i in history[:5]
                if whole.index(compact(i).decode()) + len(compact(i)) <= cut_at]
    assert 0 < len(cut_good) < 5
    bodies = {
        "history": config_history_object(history),
        "snapshot": config_snapshot_object(snapshot),
        "check": b"",
        "cut": gzip.compress(whole[:cut_at].encode()),
        "odd": config_history_object(history[:2]),
    }
    for name, key in keys.items():
        s3.put_object(Bucket=bucket, Key=key, Body=bodies[name])
    p = TestPipeline()
    tasks = (p | beam.Create([notification(bucket, list(keys.values()))])
             | beam.ParDo(ExtractObjects(REGISTRY, ["config_logs"])).with_outputs(
                 DEAD_LETTER, main="tasks"))
    read = tasks.tasks | beam.ParDo(ReadS3Records(
        s3_access, REGISTRY, ["config_logs"], batch_bytes=64 << 10)).with_outputs(
        DEAD_LETTER, main="batches")
    parsed = read.batches | beam.ParDo(ParseBatches(REGISTRY, {"flatten": flatten})
                                       ).with_outputs(DEAD_LETTER, main="events")
    def shown(item):
        return compact(flat(item) if flatten else item)

    expected = [shown(i) for i in history + snapshot + history[:2] + cut_good]
    assert_that(parsed.events | beam.FlatMap(lambda e: [(e.table, m) for m in e.messages]),
                equal_to([(TABLE, m) for m in expected]))
    assert_that(parsed.events | "Batches" >> beam.combiners.Count.Globally(),
                _more_than(10), label="the snapshot in many batches")
    assert_that(tasks[DEAD_LETTER], equal_to([]), label="no notification dead letters")
    assert_that(read[DEAD_LETTER] | beam.Map(lambda d: (d.code, d.source["key"])),
                equal_to([("SRC-007", keys["cut"])]), label="the cut document")
    assert_that(parsed[DEAD_LETTER], equal_to([]), label="no parse dead letters")
    result = p.run()
    result.wait_until_finish()
    skipped = result.metrics().query(MetricsFilter().with_name("skipped"))["counters"]
    assert sum(c.committed for c in skipped) == 1  # the writability check
