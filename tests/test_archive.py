"""The archive output: Avro and Parquet files of every event, local or in S3.

Transport tests write real files (and real S3 objects to the embedded AWS) and read
them back with fastavro and pyarrow; the end-to-end tests run the VPC flow pipeline
with the relay and an archive side by side.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import apache_beam as beam
import fastavro
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from awscollector.config import parse_config
from awscollector.config.problems import ConfigError
from awscollector.errors import CollectorError
from awscollector.io.access import AwsAccess
from awscollector.io.archive import (
    ArchiveTarget,
    ArchiveTransport,
    WriteToArchive,
    archive_name,
)
from awscollector.io.delivery import DeliveryFailed, EventBatch
from awscollector.pipelines.collector import run_collector
from tests.vpc_helpers import (
    ENV,
    dead_letters,
    queue_depth,
    raw_config,
    seed_objects,
    setup_queue,
    unique,
)

TABLE = "cloud.aws.vpc.flow"
NAME = re.compile(r"(?P<table>[^/]+)/(?P<y>\d{4})/(?P<m>\d\d)/(?P<d>\d\d)/(?P<h>\d\d)/"
                  r"(?P<start>\d{8}T\d{6}Z)-(?P<uuid>[0-9a-f]{32})\.(?P<ext>avro|parquet)")


def read_records(data: bytes, fmt: str) -> list[dict]:
    """A file's records as dicts, ``received`` as an aware datetime."""
    if fmt == "avro":
        reader = fastavro.reader(io.BytesIO(data))
        assert reader.codec == "deflate"
        assert reader.writer_schema["name"] == "com.devo.awscollector.archive.Event"
        return list(reader)
    parquet = pq.ParquetFile(io.BytesIO(data))
    assert parquet.metadata.row_group(0).column(1).compression == "ZSTD"
    return parquet.read().to_pylist()


def local_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def all_records(files: dict[str, bytes]) -> list[dict]:
    out = []
    for name, data in files.items():
        out.extend(read_records(data, NAME.fullmatch(name)["ext"]))
    return out


# ------------------------------------------------------------------------------- naming


def test_file_name_is_the_window_start_floored_in_utc() -> None:
    flushed = datetime(2026, 3, 4, 17, 47, 12, 500_000, UTC).timestamp()
    assert archive_name(TABLE, flushed, 60, "avro", "ab") == (
        f"{TABLE}/2026/03/04/17/20260304T170000Z-ab.avro")
    assert archive_name(TABLE, flushed, 15, "parquet", "cd") == (
        f"{TABLE}/2026/03/04/17/20260304T174500Z-cd.parquet")
    assert archive_name(TABLE, flushed, 1440, "avro", "ef") == (
        f"{TABLE}/2026/03/04/00/20260304T000000Z-ef.avro")
    # A table name never climbs out of the archive's directory.
    assert archive_name("../x/y", flushed, 60, "avro", "g").startswith("_x_y/2026/")


@pytest.mark.parametrize("fmt", ["avro", "parquet"])
def test_transport_writes_one_readable_file_per_table_and_flush(tmp_path: Path,
                                                                fmt: str) -> None:
    clock = datetime(2026, 1, 2, 3, 59, 59, 999_000, UTC).timestamp()
    transport = ArchiveTransport(ArchiveTarget(str(tmp_path), fmt, 30), clock=lambda: clock)
    msgs = [b"first", "caf\u00e9 \u2603".encode(), b"bad \xff byte", b""]
    payloads = [transport.prepare("a.b.c", msgs), transport.prepare("x.y", [b"other"])]
    receipt = transport.deliver(payloads)
    assert receipt.how == "file renamed"
    files = local_files(tmp_path)
    assert len(files) == 2
    names = {NAME.fullmatch(n)["table"]: NAME.fullmatch(n) for n in files}
    assert names["a.b.c"]["start"] == "20260102T033000Z"
    assert (names["a.b.c"]["y"], names["a.b.c"]["h"], names["a.b.c"]["ext"]) == ("2026", "03",
                                                                                  fmt)
    got = read_records(files[names["a.b.c"].group(0)], fmt)
    received = datetime(2026, 1, 2, 3, 59, 59, 999_000, UTC)
    assert got == [{"table": "a.b.c", "message": m, "received": received}
                   for m in ["first", "caf\u00e9 \u2603", "bad \ufffd byte", ""]]
    assert read_records(files[names["x.y"].group(0)], fmt) == [
        {"table": "x.y", "message": "other", "received": received}]
    # No temporary file is left behind.
    assert not [p for p in tmp_path.rglob(".*")]


def test_a_retried_flush_writes_the_same_file_not_a_second_one(tmp_path: Path) -> None:
    transport = ArchiveTransport(ArchiveTarget(str(tmp_path)))
    payload = transport.prepare("t", [b"m"])
    transport.deliver([payload])
    payload.written = False  # as if the confirmation had been lost
    payload.data = b"again"
    transport.deliver([payload])
    assert list(local_files(tmp_path).values()) == [b"again"]


def test_unwritable_directory_is_out_006_naming_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    transport = ArchiveTransport(ArchiveTarget(str(blocker)))
    payload = transport.prepare("t", [b"m"])
    with pytest.raises(DeliveryFailed) as err:
        transport.deliver([payload])
    assert err.value.code == "OUT-006"
    assert str(blocker) in err.value.message and "/t/" in err.value.message
    assert not payload.written


@pytest.mark.parametrize("fmt", ["avro", "parquet"])
def test_write_to_archive_in_a_pipeline(tmp_path: Path, fmt: str) -> None:
    before = datetime.now(UTC).timestamp()
    batches = [EventBatch("t.one", [f"e{i}".encode() for i in range(100)], "svc", "r1"),
               EventBatch("t.two", [b"x", b"y"], "svc", "r1")]
    with BeamTestPipeline() as p:
        out = (p | beam.Create(batches + [("t.one", "tuple")])
               | WriteToArchive(ArchiveTarget(str(tmp_path), fmt, 5), name="arch"))
        assert_that(out, equal_to([]))  # a sink: nothing comes out
    after = datetime.now(UTC).timestamp()
    files = local_files(tmp_path)
    records = all_records(files)
    assert sorted((r["table"], r["message"]) for r in records) == sorted(
        [("t.one", f"e{i}") for i in range(100)] + [("t.one", "tuple"), ("t.two", "x"),
                                                    ("t.two", "y")])
    for name in files:
        start = datetime.strptime(NAME.fullmatch(name)["start"], "%Y%m%dT%H%M%SZ").replace(
            tzinfo=UTC).timestamp()
        assert start % 300 == 0 and before - 300 < start <= after
    for r in records:
        assert before - 1 <= r["received"].timestamp() <= after + 1


def test_s3_path_needs_access() -> None:
    with pytest.raises(ValueError, match="needs access"):
        WriteToArchive(ArchiveTarget("s3://bucket/prefix"))


# ------------------------------------------------------------------------------- config


def parse(pki, tmp_path: Path, archive: dict):
    raw = raw_config(SimpleNamespace(endpoint_url="http://127.0.0.1:1"), SimpleNamespace(port=1),
                     pki, "q", tmp_path)
    raw["outputs"]["archive_1"] = archive
    return parse_config(raw, tmp_path, environ=ENV)


def test_config_defaults_and_relative_path(pki, tmp_path: Path) -> None:
    config = parse(pki, tmp_path, {"type": "archive", "config": {"path": "arch"}})
    c = config.outputs["archive_1"].config
    assert (c.format, c.path, c.window_minutes) == ("avro", str(tmp_path / "arch"), 60)
    s3 = parse(pki, tmp_path, {"type": "archive", "config": {
        "format": "parquet", "path": "s3://my-archive/aws-collector/", "window_minutes": 5}})
    target = ArchiveTarget.from_config(s3.outputs["archive_1"])
    assert target == ArchiveTarget("s3://my-archive/aws-collector", "parquet", 5)
    assert target.bucket_prefix() == ("my-archive", "aws-collector")


@pytest.mark.parametrize(("config", "where"), [
    ({"path": "a", "format": "orc"}, "format"),
    ({"path": "a", "window_minutes": 0}, "window_minutes"),
    ({"path": "s3://Bad_Bucket/x"}, "path"),
    ({"path": "gs://bucket/x"}, "path"),
    ({"path": ""}, "path"),
])
def test_bad_config_values_are_cfg_004(pki, tmp_path: Path, config: dict, where: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(pki, tmp_path, {"type": "archive", "config": config})
    assert [(p.code, p.path) for p in err.value.problems] == [
        ("CFG-004", f"outputs.archive_1.config.{where}")]


# ------------------------------------------------------------------------------- end to end


def archive_config(aws, relay, pki, queue, tmp_path: Path, archive: dict):
    raw = raw_config(aws, relay, pki, queue, tmp_path)
    raw["outputs"]["archive_1"] = {"type": "archive", "config": archive}
    return parse_config(raw, tmp_path, environ=ENV)


def s3_files(aws, bucket: str, prefix: str) -> dict[str, bytes]:
    s3 = aws.client("s3")
    files = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            name = obj["Key"][len(prefix):]
            files[name] = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return files


def test_every_event_in_the_relay_and_a_local_avro_archive(embedded_aws, relay, pki,
                                                            tmp_path: Path) -> None:
    bucket, queue, url = setup_queue(embedded_aws)
    objects = seed_objects(embedded_aws, bucket, n=5, m=200)
    archive = tmp_path / "archive"
    config = archive_config(embedded_aws, relay, pki, queue, tmp_path,
                            {"format": "avro", "path": str(archive), "window_minutes": 60})
    result = run_collector(config, [], idle_seconds=2)
    expected = sorted(line for lines in objects.values() for line in lines)
    assert sorted(relay.events(TABLE)) == expected
    files = local_files(archive)
    assert files and all(NAME.fullmatch(n)["ext"] == "avro" for n in files)
    records = all_records(files)
    assert sorted(r["message"] for r in records) == expected
    assert {r["table"] for r in records} == {TABLE}
    assert queue_depth(embedded_aws, url) == 0
    assert dead_letters(tmp_path) == []
    # The summary counts the first output (the relay).
    assert result.rows == [("non-cloudwatch-logs", "us-east-1", TABLE, 1000, 0)]


def test_every_event_in_the_relay_and_a_parquet_archive_in_s3(embedded_aws, relay, pki,
                                                               tmp_path: Path) -> None:
    bucket, queue, url = setup_queue(embedded_aws)
    objects = seed_objects(embedded_aws, bucket, n=4, m=150)
    archive_bucket = unique("archive")
    embedded_aws.client("s3").create_bucket(Bucket=archive_bucket)
    config = archive_config(embedded_aws, relay, pki, queue, tmp_path, {
        "format": "parquet", "path": f"s3://{archive_bucket}/aws-collector",
        "window_minutes": 10})
    run_collector(config, [], idle_seconds=2)
    expected = sorted(line for lines in objects.values() for line in lines)
    assert sorted(relay.events(TABLE)) == expected
    files = s3_files(embedded_aws, archive_bucket, "aws-collector/")
    assert files and all(NAME.fullmatch(n)["ext"] == "parquet" for n in files)
    assert all(int(NAME.fullmatch(n)["start"][11:13]) % 10 == 0 for n in files)
    records = all_records(files)
    assert sorted(r["message"] for r in records) == expected
    assert queue_depth(embedded_aws, url) == 0


def test_missing_bucket_fails_the_run_with_out_006_and_deletes_nothing(embedded_aws, relay,
                                                                        pki, tmp_path: Path,
                                                                        caplog) -> None:
    bucket, queue, url = setup_queue(embedded_aws)
    seed_objects(embedded_aws, bucket, n=3, m=20)
    missing = unique("no-such-archive")
    config = archive_config(embedded_aws, relay, pki, queue, tmp_path,
                            {"path": f"s3://{missing}/p"})
    with pytest.raises(CollectorError) as err:
        run_collector(config, [], idle_seconds=2)
    assert err.value.code == "OUT-006"
    assert f"s3://{missing}/p/{TABLE}/" in str(err.value)
    assert "NoSuchBucket" in str(err.value)
    assert queue_depth(embedded_aws, url) == 4  # 3 notifications + the s3:TestEvent
    assert "testing" not in caplog.text + str(err.value)  # no secret in logs or errors


def test_access_pickles_with_the_transform() -> None:
    import pickle

    access = AwsAccess(SimpleNamespace(endpoint_url="http://127.0.0.1:1", credentials=None))
    transform = WriteToArchive(ArchiveTarget("s3://b/p"), access=access)
    assert pickle.loads(pickle.dumps(transform._fn))._make_transport.target.path == "s3://b/p"
