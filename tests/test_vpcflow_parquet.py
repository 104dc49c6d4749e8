"""VPC Flow Logs in Parquet: messages equal to the text format's, the odd cases, the
framing's memory, and the format in Beam pipelines (ReadS3Records + ParseBatches)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from awscollector.embedded.seed import (
    CUSTOM_FIELDS,
    put_vpc_parquet_object,
    vpc_flow_lines,
    vpc_parquet_key,
    vpc_parquet_object,
    vpc_parquet_table,
)
from awscollector.errors import CollectorError
from awscollector.io.deadletter import DEAD_LETTER
from awscollector.io.s3 import FormatBatch, ObjectTask, ReadS3Records
from awscollector.io.sqs import SqsMessage
from awscollector.pipelines.s3_sqs import ParseBatches
from awscollector.transforms import vpcflow, vpcflow_parquet
from awscollector.transforms.formats import SNIFF, RecordBatch
from awscollector.transforms.framing import parquet_rows
from awscollector.transforms.notifications import ObjectRef
from awscollector.transforms.registry import default_registry
from awscollector.transforms.vpcflow_parquet import to_messages

SAMPLES = Path(__file__).parent / "samples"
TABLE = "cloud.aws.vpc.flow"
MB = 1 << 20


def sample(name: str) -> tuple[tuple[str, ...], list[str]]:
    header, *lines = (SAMPLES / name).read_text().splitlines()
    return tuple(header.split(" ")), lines


def batches_of(data: bytes) -> list[pa.RecordBatch]:
    return list(parquet_rows(io.BytesIO(data), "s3://b/k.parquet"))


def text_messages(fields: tuple[str, ...], lines: list[str]) -> list[bytes]:
    messages, bad = vpcflow.to_messages(vpcflow.parse_header(" ".join(fields).encode()),
                                        [line.encode() for line in lines])
    assert bad == []
    return messages


# --- messages -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["vpcflow_custom_v8_all.log", "vpcflow_custom_v5.log",
                                  "tgwflow_default_v6.log", "tgwflow_custom.log"])
def test_parquet_messages_equal_the_text_formats(name):
    """The same records as AWS's text and as its Parquet give the same messages."""
    fields, lines = sample(name)
    [batch] = batches_of(vpc_parquet_object(lines, fields))
    assert batch.schema.names[:3] == [f.replace("-", "_") for f in fields[:3]]
    messages, rejected = to_messages(batch)
    assert rejected == []
    assert messages == text_messages(fields, lines)
    records = [json.loads(m) for m in messages]
    assert all(list(r) == list(fields) for r in records)  # AWS's names, column order


def test_types_and_nulls_of_a_v8_record():
    fields, lines = sample("vpcflow_custom_v8_all.log")
    [batch] = batches_of(vpc_parquet_object(lines, fields))
    records = [json.loads(m) for m in to_messages(batch)[0]]
    first = records[0]
    assert first["version"] == 8 and first["srcport"] == 40112 and first["bytes"] == 73421
    assert first["account-id"] == "111122223333" and first["traffic-path"] == 8
    assert first["ecs-cluster-name"] == "payments" and first["ecs-second-container-id"] is None
    assert records[2]["reject-reason"] == "BPA"
    nodata = records[5]
    assert nodata["log-status"] == "NODATA" and nodata["srcaddr"] is None
    assert nodata["packets"] is None and nodata["start"] == 1715680260


def test_column_wise_and_row_wise_agree_on_a_realistic_batch():
    lines = vpc_flow_lines(5000, CUSTOM_FIELDS, seed=3)
    [batch] = batches_of(vpc_parquet_object(lines, CUSTOM_FIELDS))
    plan = vpcflow_parquet._plan(batch.schema)
    fast = vpcflow_parquet._columnwise(plan, batch)
    assert fast is not None
    assert fast == vpcflow_parquet._rowwise(plan, batch)[0]
    assert fast == text_messages(CUSTOM_FIELDS, lines)


def test_dashes_in_string_columns_are_null_like_in_text():
    batch = pa.record_batch({"version": pa.array([5, None], pa.int32()),
                             "pkt_src_aws_service": ["-", "S3"], "action": ["ACCEPT", "-"]})
    assert [json.loads(m) for m in to_messages(batch)[0]] == [
        {"version": 5, "pkt-src-aws-service": None, "action": "ACCEPT"},
        {"version": None, "pkt-src-aws-service": "S3", "action": None}]


def test_values_that_need_escaping_go_row_by_row():
    batch = pa.record_batch({"version": pa.array([5, 5, 5], pa.int32()),
                             "ecs_service_name": ['say "hi"\\', "caf\u00e9\ttab", "plain"]})
    messages, rejected = to_messages(batch)
    assert rejected == []
    assert [json.loads(m) for m in messages] == [
        {"version": 5, "ecs-service-name": 'say "hi"\\'},
        {"version": 5, "ecs-service-name": "caf\u00e9\ttab"},
        {"version": 5, "ecs-service-name": "plain"}]
    assert "café".encode() in messages[1]  # UTF-8 as it is, like the text format


def test_an_integer_field_written_as_text_is_checked_row_by_row():
    batch = pa.record_batch({"version": ["5", "x5", "-"], "srcport": ["443", "443", "22"],
                             "action": ["ACCEPT", "REJECT", "ACCEPT"]})
    messages, rejected = to_messages(batch)
    assert [json.loads(m) for m in messages] == [
        {"version": 5, "srcport": 443, "action": "ACCEPT"},
        {"version": None, "srcport": 22, "action": "ACCEPT"}]
    assert len(rejected) == 1 and "version" in rejected[0][0]
    assert rejected[0][1] == {"version": "x5", "srcport": "443", "action": "REJECT"}


def test_dictionary_large_string_and_undocumented_columns():
    batch = pa.record_batch({
        "version": pa.array([5, 5], pa.int64()),
        "log_status": pa.array(["OK", "NODATA"]).dictionary_encode(),
        "region": pa.array(["us-east-1", None], pa.large_string()),
        "new_field_2027": pa.array([1.5, None]),  # a column AWS may add one day
    })
    assert [json.loads(m) for m in to_messages(batch)[0]] == [
        {"version": 5, "log-status": "OK", "region": "us-east-1", "new-field-2027": 1.5},
        {"version": 5, "log-status": "NODATA", "region": None, "new-field-2027": None}]


def test_a_parquet_file_that_is_not_a_flow_log_is_src_003():
    with pytest.raises(CollectorError) as err:
        to_messages(pa.record_batch({"name": ["a"], "size": [1]}))
    assert err.value.code == "SRC-003" and "no flow log field" in err.value.message
    with pytest.raises(CollectorError, match="SRC-003 .*twice"):
        to_messages(pa.record_batch({"account_id": ["1"], "account-id": ["1"]}))


def test_parse_names_the_object_and_rejects_with_src_004():
    batch = pa.record_batch({"version": ["5", "five"], "action": ["ACCEPT", "REJECT"]})
    parsed = vpcflow_parquet.parse(RecordBatch("s3://b/k.parquet", "k.parquet", 0, batch), {})
    assert parsed.events == {TABLE: [b'{"version":5,"action":"ACCEPT"}']}
    assert [(r.code, r.record) for r in parsed.rejected] == [
        ("SRC-004", {"version": "five", "action": "REJECT"})]
    with pytest.raises(CollectorError, match=r"SRC-003 s3://b/k\.parquet: not VPC Flow Logs"):
        vpcflow_parquet.parse(RecordBatch("s3://b/k.parquet", "k.parquet", 0,
                                          pa.record_batch({"x": [1]})), {})


# --- the format in the registry -----------------------------------------------------


@pytest.mark.parametrize(("key", "kind"), [
    (vpc_parquet_key("us-east-1", 1), "vpc_flow_logs_parquet"),
    (vpc_parquet_key("eu-west-1", 2, hive=True), "vpc_flow_logs_parquet"),
    (vpc_parquet_key("us-east-1", 1).replace(".log.parquet", ".log.gz"), "vpc_flow_logs"),
    ("p/AWSLogs/aws-account-id=1/aws-service=vpcflowlogs/aws-region=us-east-1/year=2026/"
     "month=11/day=27/1_vpcflowlogs_us-east-1_fl-1_20261127T1205Z_ab.log.gz", "vpc_flow_logs"),
    ("exports/flows.parquet", SNIFF),
])
def test_keys_of_parquet_and_text_objects(key, kind):
    assert default_registry().classify(key, ["vpc_flow_logs"]).kind == kind


def test_sniff_takes_parquet_by_its_raw_magic_before_the_text_format():
    registry = default_registry()
    assert registry.sniff(b"", ["vpc_flow_logs"], raw=b"PAR1\x15\x04").name == (
        "vpc_flow_logs_parquet")
    header = " ".join(vpcflow.DEFAULT_FIELDS).encode() + b"\n"
    assert registry.sniff(header, ["vpc_flow_logs"], raw=b"\x1f\x8b").name == "vpc_flow_logs"


def test_the_framing_reads_row_groups_in_batches_and_faults_with_src_007():
    lines = vpc_flow_lines(2500, CUSTOM_FIELDS)
    data = vpc_parquet_object(lines, CUSTOM_FIELDS, row_group_rows=1000)
    batches = list(parquet_rows(io.BytesIO(data), "s3://b/k.parquet", batch_rows=600))
    assert all(isinstance(b, pa.RecordBatch) for b in batches)
    assert sum(b.num_rows for b in batches) == 2500 and max(b.num_rows for b in batches) <= 600
    with pytest.raises(CollectorError) as err:
        list(parquet_rows(io.BytesIO(data[: len(data) // 2]), "s3://b/k.parquet"))
    assert err.value.code == "SRC-007" and "s3://b/k.parquet" in err.value.message


# --- in Beam pipelines ----------------------------------------------------------------


def _message() -> SqsMessage:
    return SqsMessage("non-cloudwatch-logs", "us-east-1", "https://q", "m-1", "{}")


def test_parse_batches_in_a_pipeline_carries_arrow_batches():
    fields, lines = sample("vpcflow_custom_v8_all.log")
    [batch] = batches_of(vpc_parquet_object(lines, fields))
    key = vpc_parquet_key("us-east-1", 1)
    task = ObjectTask(_message(), ObjectRef("b", key), "vpc_flow_logs_parquet")
    items = [FormatBatch(task, "vpc_flow_logs_parquet",
                         RecordBatch(f"s3://b/{key}", key, i, part))
             for i, part in enumerate((batch.slice(0, 5), batch.slice(5)))]
    with TestPipeline() as p:
        out = (p | beam.Create(items)
               | beam.ParDo(ParseBatches(default_registry(), {"flatten": True})).with_outputs(
                   DEAD_LETTER, main="events"))
        assert_that(out.events | beam.FlatMap(lambda e: [(e.table, m) for m in e.messages]),
                    equal_to([(TABLE, m) for m in text_messages(fields, lines)]))
        assert_that(out[DEAD_LETTER], equal_to([]), label="no dead letters")


@pytest.fixture
def s3_access(embedded_aws):
    from awscollector.io.access import AwsAccess

    return AwsAccess(SimpleNamespace(endpoint_url=embedded_aws.endpoint_url,
                                     credentials=SimpleNamespace(access_key="testing",
                                                                 access_secret="testing")))


def test_read_and_parse_parquet_objects_from_s3_in_a_pipeline(embedded_aws, s3_access):
    s3 = embedded_aws.client("s3")
    bucket = "parquet-pipeline"
    s3.create_bucket(Bucket=bucket)
    lines = vpc_flow_lines(3000, CUSTOM_FIELDS, seed=5)
    by_key = put_vpc_parquet_object(s3, bucket, "us-east-1", 1, lines[:2000], hive=True)
    sniffed = "exports/2026/flows-0001.parquet"  # a key that says nothing: sniffed
    s3.put_object(Bucket=bucket, Key=sniffed, Body=vpc_parquet_object(lines[2000:]))
    broken = "AWSLogs/1/vpcflowlogs/us-east-1/2026/11/27/broken.log.parquet"
    s3.put_object(Bucket=bucket, Key=broken, Body=b"PAR1" + os.urandom(5000) + b"PAR1")
    tasks = [ObjectTask(_message(), ObjectRef(bucket, by_key), "vpc_flow_logs_parquet"),
             ObjectTask(_message(), ObjectRef(bucket, sniffed), SNIFF),
             ObjectTask(_message(), ObjectRef(bucket, broken), "vpc_flow_logs_parquet")]
    registry = default_registry()
    with TestPipeline() as p:
        read = (p | beam.Create(tasks)
                | beam.ParDo(ReadS3Records(s3_access, registry, ["vpc_flow_logs"])).with_outputs(
                    DEAD_LETTER, main="batches"))
        parsed = read.batches | beam.ParDo(ParseBatches(registry)).with_outputs(
            DEAD_LETTER, main="events")
        assert_that(parsed.events | beam.FlatMap(lambda e: e.messages),
                    equal_to(text_messages(CUSTOM_FIELDS, lines)))
        assert_that(read[DEAD_LETTER] | beam.Map(lambda d: (d.code, d.source["key"])),
                    equal_to([("SRC-007", broken)]), label="the broken object")


# --- memory ---------------------------------------------------------------------------


def _peak_of_run(config) -> int:
    from tests.vpc_helpers import ENV

    done = subprocess.run(
        [sys.executable, "-m", "awscollector", "run", "--config", str(config),
         "--until-idle", "--idle-seconds", "2"],
        capture_output=True, text=True, env={**os.environ, **ENV}, timeout=900)
    assert done.returncode == 0, done.stderr
    return int(re.search(r"peak memory: (\d+) MB", done.stderr).group(1)) * MB


def _put_parquet(s3, bucket: str, key: str, path: Path, table: pa.Table, copies: int) -> int:
    with pq.ParquetWriter(path, table.schema, compression="none") as writer:
        for _ in range(copies):
            writer.write_table(table)
    with path.open("rb") as body:  # one PUT: a multipart upload may be announced twice
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    size = path.stat().st_size
    path.unlink()
    return size


@pytest.mark.slow
def test_peak_memory_is_bounded_on_a_big_parquet_object(embedded_aws, pki, tmp_path):
    """A Parquet object of a few hundred MB through the collector: it is spooled to disk
    and read page by page, so the peak memory grows far less than the object's size
    over that of a small object, and every row arrives."""
    from awscollector.embedded.relay import DevoRelay
    from tests.vpc_helpers import queue_depth, setup_queue, write_config

    s3 = embedded_aws.client("s3")
    bucket, queue, url = setup_queue(embedded_aws)
    table = vpc_parquet_table(vpc_flow_lines(50_000, CUSTOM_FIELDS, seed=9), CUSTOM_FIELDS)
    copies = int(os.environ.get("MEMTEST_PARQUET_COPIES", "40"))
    with DevoRelay(pki, keep_events=False) as relay:
        config = write_config(embedded_aws, relay, pki, queue, tmp_path)
        _put_parquet(s3, bucket, vpc_parquet_key("us-east-1", 1), tmp_path / "small.parquet",
                     table, 1)
        small_peak = _peak_of_run(config)
        assert relay.total() == table.num_rows
        relay.reset()
        size = _put_parquet(s3, bucket, vpc_parquet_key("us-east-1", 2),
                            tmp_path / "big.parquet", table, copies)
        big_peak = _peak_of_run(config)
        assert relay.total() == copies * table.num_rows
    assert queue_depth(embedded_aws, url) == 0
    print(f"peak RSS {small_peak / MB:.0f} MB for {table.num_rows} rows, {big_peak / MB:.0f} MB "
          f"for a {size / MB:.0f} MB Parquet object of {copies * table.num_rows} rows")
    assert size > 200 * MB
    assert big_peak - small_peak < 100 * MB  # holding the object would add over 200 MB
