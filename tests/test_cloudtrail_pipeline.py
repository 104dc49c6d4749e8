"""CloudTrail files from S3+SQS to Devo (audit-events-all), end to end over real sockets.

The embedded AWS (moto's server) and relay (TLS, client certificates) as in
test_vpc_pipeline.py; the collector runs in-process (run_collector) or as the
command.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import zlib

import pytest
import yaml

from awscollector.config import parse_config
from awscollector.embedded.seed import (
    cloudtrail_digest_key,
    cloudtrail_digest_object,
    cloudtrail_insight_records,
    cloudtrail_key,
    cloudtrail_object,
    cloudtrail_records,
)
from awscollector.pipelines import collector
from awscollector.pipelines.collector import run_collector
from tests.test_memory import MB, peak_rss_of_run
from tests.vpc_helpers import (
    ENV,
    put_object,
    queue_depth,
    raw_config,
    setup_queue,
    tagged_lines,
)

SERVICE = "audit-events-all"
TABLE = "cloud.aws.cloudtrail.events"
ORG = "o-a1b2c3d4e5"


def audit_raw_config(aws, relay, pki, queue, workdir, types=("audits_s3",), **options) -> dict:
    raw = raw_config(aws, relay, pki, queue, workdir)
    raw["inputs"]["aws"]["services"] = {SERVICE: {"types": list(types),
                                                  "sqs_queue_name": queue, **options}}
    return raw


def collect(aws, relay, pki, queue, workdir, monkeypatch, **options):
    """run_collector on an audit-events-all config; returns (result, the run's counters)."""
    counters = {}
    real = collector.beam_counters

    def keep(result):
        counters.update(real(result))
        return counters

    monkeypatch.setattr(collector, "beam_counters", keep)
    raw = audit_raw_config(aws, relay, pki, queue, workdir, **options)
    result = run_collector(parse_config(raw, workdir, environ=ENV), [], idle_seconds=2)
    return result, counters


def compact(record) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def dead_letters(workdir) -> list[dict]:
    path = workdir / "deadletter" / f"{SERVICE}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def seed_trail(aws, bucket: str) -> dict[str, list[dict]]:
    """CloudTrail files under AWS's key layouts, and a digest file; returns key -> records."""
    s3 = aws.client("s3")
    files = {
        cloudtrail_key("us-east-1", 1): cloudtrail_records(300, seed=1),
        cloudtrail_key("us-east-1", 2): cloudtrail_records(250, seed=2),
        cloudtrail_key("eu-west-1", 3, org=ORG, prefix="org-trail/"): cloudtrail_records(
            120, seed=3, region="eu-west-1"),
        cloudtrail_key("us-east-1", 4, kind="CloudTrail-Insight"): cloudtrail_insight_records(
            6, seed=4),
        cloudtrail_key("us-east-1", 5): [],  # AWS writes empty files too
    }
    for key, records in files.items():
        s3.put_object(Bucket=bucket, Key=key, Body=cloudtrail_object(records))
    s3.put_object(Bucket=bucket, Key=cloudtrail_digest_key("us-east-1"),
                  Body=cloudtrail_digest_object(bucket, list(files)))
    return files


def test_every_record_arrives_once_and_digest_files_are_skipped(embedded_aws, relay, pki,
                                                                 tmp_path, monkeypatch, caplog):
    bucket, queue, url = setup_queue(embedded_aws)
    files = seed_trail(embedded_aws, bucket)
    caplog.set_level(logging.INFO)
    result, counters = collect(embedded_aws, relay, pki, queue, tmp_path, monkeypatch)
    expected = [compact(r) for records in files.values() for r in records]
    assert len(expected) == 676
    assert sorted(relay.events(TABLE)) == sorted(expected)
    assert relay.counts() == {TABLE: 676}
    assert result.rows == [(SERVICE, "us-east-1", TABLE, 676, 0)]
    assert counters[("s3_sqs", "skipped")] == 2  # the bucket's s3:TestEvent and the digest
    digest = cloudtrail_digest_key("us-east-1")
    assert any(digest in r.getMessage() and "digest file" in r.getMessage()
               for r in caplog.records)
    assert queue_depth(embedded_aws, url) == 0
    assert dead_letters(tmp_path) == []


def test_auto_event_type_and_flatten(embedded_aws, relay, pki, tmp_path, monkeypatch):
    bucket, queue, url = setup_queue(embedded_aws)
    files = seed_trail(embedded_aws, bucket)
    result, _ = collect(embedded_aws, relay, pki, queue, tmp_path, monkeypatch,
                        auto_event_type=True, flatten=True)
    expected: dict[str, int] = {}
    for records in files.values():
        for r in records:
            source = r.get("eventSource") or r["insightDetails"]["eventSource"]
            table = "cloud.aws.cloudtrail." + source.split(".")[0]
            expected[table] = expected.get(table, 0) + 1
    assert len(expected) == 6  # ec2 s3 sts iam kms signin
    assert relay.counts() == expected
    assert {row[2]: row[3] for row in result.rows} == expected
    event = json.loads(relay.events("cloud.aws.cloudtrail.sts")[0])
    assert event["eventName"] == "AssumeRole" and "userIdentity.type" in event
    assert not any(isinstance(v, dict) and v for v in event.values())
    assert isinstance(event["resources"], list)
    assert queue_depth(embedded_aws, url) == 0


def test_bad_documents_are_dead_lettered_and_the_rest_delivered(embedded_aws, relay, pki,
                                                                tmp_path, monkeypatch):
    s3 = embedded_aws.client("s3")
    bucket, queue, url = setup_queue(embedded_aws)
    good = cloudtrail_records(40, seed=7)
    s3.put_object(Bucket=bucket, Key=cloudtrail_key("us-east-1", 1),
                  Body=cloudtrail_object(good))
    # Malformed mid-document: the 25 records before the fault are delivered.
    broken_records = cloudtrail_records(60, seed=8)
    text = gzip.decompress(cloudtrail_object(broken_records))
    cut = text.index(compact(broken_records[25]).encode())
    s3.put_object(Bucket=bucket, Key=cloudtrail_key("us-east-1", 2),
                  Body=gzip.compress(text[:cut] + b'{"eventVersion":"1.09","userIdentity":{]'))
    # Records that are not events, among good ones.
    mixed = cloudtrail_records(10, seed=9)
    s3.put_object(Bucket=bucket, Key=cloudtrail_key("us-east-1", 3),
                  Body=cloudtrail_object(mixed[:5] + [17, "x"] + mixed[5:]))
    # A document without Records (a digest file under a log file's key).
    s3.put_object(Bucket=bucket, Key=cloudtrail_key("us-east-1", 4),
                  Body=cloudtrail_digest_object(bucket, ["k"]))
    # A key that says nothing: sniffed.
    custom = cloudtrail_records(15, seed=10)
    s3.put_object(Bucket=bucket, Key="exports/trail-0001.json.gz", Body=cloudtrail_object(custom))
    # A key that says nothing, and content that is no CloudTrail file.
    put_object(embedded_aws, bucket, "exports/other.log.gz", tagged_lines(1, 5))

    result, _ = collect(embedded_aws, relay, pki, queue, tmp_path, monkeypatch)

    expected = good + broken_records[:25] + mixed + custom
    assert sorted(relay.events(TABLE)) == sorted(compact(r) for r in expected)
    entries = dead_letters(tmp_path)
    codes = sorted((e["source"]["key"], e["code"]) for e in entries)
    assert codes == sorted([(cloudtrail_key("us-east-1", 2), "SRC-007"),
                            (cloudtrail_key("us-east-1", 3), "SRC-008"),
                            (cloudtrail_key("us-east-1", 4), "SRC-007"),
                            ("exports/other.log.gz", "SRC-006")])
    by_code = {e["code"] + e["source"]["key"][-20:]: e for e in entries}
    malformed = by_code["SRC-007" + cloudtrail_key("us-east-1", 2)[-20:]]
    assert malformed["source"]["records_read"] == 25
    assert f"s3://{bucket}/{cloudtrail_key('us-east-1', 2)}" in malformed["error"]
    assert by_code["SRC-008" + cloudtrail_key("us-east-1", 3)[-20:]]["source"]["records"] == [
        17, "x"]
    assert queue_depth(embedded_aws, url) == 0
    assert result.rows[0][3:] == (len(expected), 4)


# -- memory


@pytest.fixture
def relay_counting(pki):
    from awscollector.embedded.relay import DevoRelay

    with DevoRelay(pki, keep_events=False) as r:
        yield r


def cloudtrail_stream(block: bytes, total: int) -> tuple[bytes, int]:
    """gzip of a Records document of ``block`` (records joined by commas) repeated up to
    ``total`` bytes; returns it and how many times the block is in it."""
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)
    times = max(1, total // (len(block) + 1))
    out = [comp.compress(b'{"Records":[' + block)]
    for _ in range(times - 1):
        out.append(comp.compress(b"," + block))
    out.append(comp.compress(b"]}"))
    out.append(comp.flush())
    return b"".join(out), times


@pytest.mark.slow
def test_peak_memory_is_bounded_on_a_200_mb_cloudtrail_file(embedded_aws, relay_counting, pki,
                                                             tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    s3 = embedded_aws.client("s3")
    records = cloudtrail_records(2000, seed=5)
    block = ",".join(compact(r) for r in records).encode()

    # A small file first: the collector's own footprint, measured the same way.
    body, times = cloudtrail_stream(block, 1 * MB)
    s3.put_object(Bucket=bucket, Key=cloudtrail_key("us-east-1", 1), Body=body)
    path = tmp_path / "collector.yaml"
    path.write_text(yaml.safe_dump(audit_raw_config(embedded_aws, relay_counting, pki, queue,
                                                    tmp_path)))
    small_peak, _ = peak_rss_of_run(path)
    small_events = relay_counting.total()
    assert small_events == times * 2000
    relay_counting.reset()

    big = int(os.environ.get("MEMTEST_MB", "200")) * MB
    body, times = cloudtrail_stream(block, big)
    s3.put_object(Bucket=bucket, Key=cloudtrail_key("us-east-1", 2), Body=body)
    del body
    big_peak, _ = peak_rss_of_run(path)
    events = times * 2000
    assert relay_counting.total() == events
    assert queue_depth(embedded_aws, url) == 0
    size = times * (len(block) + 1)
    print(f"peak RSS: {small_peak / MB:.0f} MB for {small_events} records, "
          f"{big_peak / MB:.0f} MB for {events} records ({size / MB:.0f} MB uncompressed)")
    # Holding the document, its records or their messages would add well over its size;
    # streaming adds a few batches (~1 MB of JSON each, several times that as objects).
    assert big_peak - small_peak < 100 * MB
