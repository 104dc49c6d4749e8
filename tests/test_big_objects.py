"""1 GB objects (uncompressed) are collected within 400 MB of memory per process.

The collector runs as its own process (`aws-collector run --until-idle`), as a user
runs it, and reports its own high-water mark (VmHWM, "peak memory: N MB"); that is
the figure bounded here. The embedded AWS (moto's server) runs inside this test
process and may hold the whole compressed object in memory: that is moto's memory,
not the collector's. Each object is built as a stream (a block of records repeated,
each copy made distinct) through a gzip compressor into a file, then streamed up, so
the uncompressed data is never held anywhere.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import yaml

from awscollector.embedded.seed import (
    DEFAULT_FIELDS,
    cloudtrail_key,
    cloudtrail_records,
    vpc_key,
)
from tests.test_cloudtrail_pipeline import TABLE as CLOUDTRAIL_TABLE
from tests.test_cloudtrail_pipeline import audit_raw_config, compact
from tests.test_cloudtrail_pipeline import dead_letters as cloudtrail_dead_letters
from tests.test_memory import MB, peak_rss_of_run
from tests.vpc_helpers import dead_letters, queue_depth, setup_queue, tagged_lines, write_config

GB = 1 << 30
LIMIT = 400 * MB
VPC_TABLE = "cloud.aws.vpc.flow"


def put_gzip(s3, bucket: str, key: str, pieces: Iterable[bytes], spool: Path) -> int:
    """Puts the gzip (level 1) of the concatenated pieces, which announces it to the
    queue; returns its size. It is compressed into a file first and the file streamed
    up (a multipart upload would do, but moto announces it twice: as a Put and as a
    CompleteMultipartUpload)."""
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)
    with spool.open("wb") as out:
        for piece in pieces:
            out.write(comp.compress(piece))
        out.write(comp.flush())
    with spool.open("rb") as body:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    size = spool.stat().st_size
    spool.unlink()
    return size


def vpc_pieces(total: int) -> tuple[Iterator[bytes], int]:
    """A default-format VPC Flow Logs object of about `total` bytes: the header, then a
    block of 2000 lines repeated, each copy's interface-ids naming the copy (so no two
    lines are alike); returns the pieces and the number of lines."""
    block = ("\n".join(tagged_lines(0, 2000)) + "\n").encode()
    times = total // len(block)
    assert block.count(b"eni-000000") == 2000 and times < 1_000_000

    def pieces() -> Iterator[bytes]:
        yield (" ".join(DEFAULT_FIELDS) + "\n").encode()
        for copy in range(times):
            yield block.replace(b"eni-000000", b"eni-%06d" % copy)

    return pieces(), times * 2000


MARK = b"~~~~~~~~~~~~"  # stands for the last 12 hex digits of each eventID


def cloudtrail_pieces(total: int) -> tuple[Iterator[bytes], int]:
    """A CloudTrail file of about `total` bytes, ``{"Records":[...]}`` on one line as AWS
    writes it: 2000 records repeated, each copy's eventIDs ending in the copy's number
    (so every eventID is distinct); returns the pieces and the number of records."""
    records = cloudtrail_records(2000, seed=5)
    for r in records:
        r["eventID"] = r["eventID"][:-12] + MARK.decode()
    parts = ",".join(compact(r) for r in records).encode().split(MARK)
    assert len(parts) == 2001
    size = sum(map(len, parts)) + 2000 * 12 + 1
    times = max(1, total // size)

    def pieces() -> Iterator[bytes]:
        yield b'{"Records":['
        for copy in range(times):
            block = (b"%012x" % copy).join(parts)
            yield block if copy == 0 else b"," + block
        yield b"]}"

    return pieces(), times * 2000


def collect_once(config_path) -> tuple[int, float]:
    """Peak memory (bytes) and wall time (s) of one `run --until-idle`."""
    start = time.monotonic()
    peak, _ = peak_rss_of_run(config_path)
    return peak, time.monotonic() - start


@pytest.fixture
def relay_counting(pki):
    from awscollector.embedded.relay import DevoRelay

    with DevoRelay(pki, keep_events=False) as r:
        yield r


@pytest.mark.slow
def test_a_1_gb_vpc_flow_logs_object_within_400_mb(embedded_aws, relay_counting, pki,
                                                    tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    pieces, lines = vpc_pieces(GB)
    stored = put_gzip(embedded_aws.client("s3"), bucket, vpc_key("us-east-1", 1), pieces,
                      tmp_path / "object.gz")
    path = write_config(embedded_aws, relay_counting, pki, queue, tmp_path)

    peak, wall = collect_once(path)

    print(f"VPC Flow Logs, 1 GB ({stored / MB:.0f} MB gzip): {relay_counting.total()} of "
          f"{lines} events, peak memory {peak / MB:.0f} MB, {wall:.1f} s")
    assert relay_counting.counts() == {VPC_TABLE: lines}
    assert relay_counting.bad_lines() == []
    assert queue_depth(embedded_aws, url) == 0
    assert dead_letters(tmp_path) == []
    assert peak <= LIMIT


@pytest.mark.slow
def test_a_1_gb_cloudtrail_file_within_400_mb(embedded_aws, relay_counting, pki, tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    pieces, records = cloudtrail_pieces(GB)
    stored = put_gzip(embedded_aws.client("s3"), bucket, cloudtrail_key("us-east-1", 1),
                      pieces, tmp_path / "object.gz")
    path = tmp_path / "collector.yaml"
    path.write_text(yaml.safe_dump(audit_raw_config(embedded_aws, relay_counting, pki, queue,
                                                    tmp_path)))

    peak, wall = collect_once(path)

    print(f"CloudTrail, 1 GB ({stored / MB:.0f} MB gzip): {relay_counting.total()} of "
          f"{records} events, peak memory {peak / MB:.0f} MB, {wall:.1f} s")
    assert relay_counting.counts() == {CLOUDTRAIL_TABLE: records}
    assert relay_counting.bad_lines() == []
    assert queue_depth(embedded_aws, url) == 0
    assert cloudtrail_dead_letters(tmp_path) == []
    assert peak <= LIMIT
