"""Memory stays bounded on a large object: it is streamed, never held whole."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zlib

import pytest

from awscollector.embedded.seed import DEFAULT_FIELDS, vpc_key
from tests.vpc_helpers import ENV, queue_depth, setup_queue, tagged_lines, write_config

MB = 1 << 20


def peak_rss_of_run(config_path) -> tuple[int, str]:
    """Runs the collector until idle; returns the peak RSS it reports (VmHWM) in bytes.

    (The child's getrusage ru_maxrss would include this test process's own
    high-water mark, inherited across fork and exec.)
    """
    done = subprocess.run(
        [sys.executable, "-m", "awscollector", "run", "--config", str(config_path),
         "--until-idle", "--idle-seconds", "2"],
        capture_output=True, text=True, env={**os.environ, **ENV}, timeout=600)
    assert done.returncode == 0, done.stderr
    match = re.search(r"peak memory: (\d+) MB", done.stderr)
    assert match, done.stderr
    return int(match.group(1)) * MB, done.stderr


def gzip_stream(header: bytes, block: bytes, total: int) -> bytes:
    """gzip of header + block repeated up to `total` bytes, compressed as a stream."""
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)
    out = [comp.compress(header)]
    for _ in range(total // len(block)):
        out.append(comp.compress(block))
    out.append(comp.flush())
    return b"".join(out)


@pytest.mark.slow
def test_peak_memory_is_bounded_on_a_200_mb_object(embedded_aws, relay_counting, pki,
                                                    tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    s3 = embedded_aws.client("s3")
    block = ("\n".join(tagged_lines(1, 2000)) + "\n").encode()
    header = (" ".join(DEFAULT_FIELDS) + "\n").encode()

    # A small object first: the collector's own footprint, measured the same way.
    s3.put_object(Bucket=bucket, Key=vpc_key("us-east-1", 1),
                  Body=gzip_stream(header, block, 1 * MB))
    path = write_config(embedded_aws, relay_counting, pki, queue, tmp_path)
    small_peak, _ = peak_rss_of_run(path)
    small_events = relay_counting.total()
    relay_counting.reset()

    big = int(os.environ.get("MEMTEST_MB", "200")) * MB
    s3.put_object(Bucket=bucket, Key=vpc_key("us-east-1", 2),
                  Body=gzip_stream(header, block, big))
    big_peak, stderr = peak_rss_of_run(path)
    lines = (big // len(block)) * 2000
    assert relay_counting.total() == lines
    assert queue_depth(embedded_aws, url) == 0
    print(f"peak RSS: {small_peak / MB:.0f} MB for {small_events} lines, "
          f"{big_peak / MB:.0f} MB for {lines} lines ({big / MB:.0f} MB uncompressed)")
    # Holding the object (or its lines) would add well over 200 MB; streaming adds
    # only a few batches of a few MB. The bound is generous for noise.
    assert big_peak - small_peak < 100 * MB


@pytest.fixture
def relay_counting(pki):
    from awscollector.embedded.relay import DevoRelay

    with DevoRelay(pki, keep_events=False) as r:
        yield r
