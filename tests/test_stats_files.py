"""`run --processes`: each process's statistics in a file, summed by the supervisor
into one report (io/stats_files.py). The runs that show it are in test_processes.py."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from awscollector.io.progress import progress_totals
from awscollector.io.stats import API, S3, ProcessStats, StatsRow, report_lines
from awscollector.io.stats_files import (
    StatsPublisher,
    SummedStats,
    read_json,
    stats_document,
    write_json,
)

VPC = StatsRow("non-cloudwatch-logs", "us-east-1", frozenset({S3}))
LOGS = StatsRow("cloudwatch-logs", "us-east-1", frozenset({API}))


def _process(objects: int, events: int, held_since: float | None = None,
             streams: dict[str, int] | None = None) -> ProcessStats:
    stats = ProcessStats()
    stats.add("messages", VPC.service, VPC.region, objects)
    stats.add("objects", VPC.service, VPC.region, objects)
    stats.add("bytes", VPC.service, VPC.region, 1000 * objects)
    stats.delivered("devo", VPC.service, VPC.region, "cloud.aws.vpc.flow", events)
    if held_since is not None:
        stats.hold(VPC.service, VPC.region, "q", ["m1"], now=held_since)
    for stream, end_ms in (streams or {}).items():
        stats.add("pages", LOGS.service, LOGS.region)
        stats.checkpoint(LOGS.service, LOGS.region, stream, end_ms)
    return stats


def _publish(path: Path, stats: ProcessStats) -> None:
    write_json(path, stats_document(stats, [VPC, LOGS], 300, "devo"))


def test_the_supervisor_sums_what_every_process_wrote(tmp_path):
    now_ms = int(time.time() * 1000)
    _publish(tmp_path / "0.json", _process(2, 200, held_since=time.monotonic() - 30,
                                           streams={"/app/a": now_ms - 60_000}))
    _publish(tmp_path / "1.json", _process(3, 300, held_since=time.monotonic() - 5,
                                           streams={"/app/b": now_ms - 5_000}))
    summed = SummedStats([tmp_path / "0.json", tmp_path / "1.json", tmp_path / "2.json"])

    assert summed.ready()  # the third has not written yet: the others count
    assert summed.rows == (VPC, LOGS)
    assert (summed.output, summed.interval_seconds) == ("devo", 300.0)
    vpc = summed.snapshot()[(VPC.service, VPC.region)]
    assert (vpc.messages, vpc.objects, vpc.bytes) == (5, 5, 5000)
    assert vpc.events == {("devo", "cloud.aws.vpc.flow"): 500}
    assert 29 <= vpc.oldest_unacked < 40  # the oldest held message of any process
    logs = summed.snapshot()[(LOGS.service, LOGS.region)]
    assert logs.pages == 2
    assert set(logs.lags) == {"/app/a", "/app/b"}  # each stream from its process
    assert 59 <= logs.lags["/app/a"] < 70 and 4 <= logs.lags["/app/b"] < 15
    assert summed.memory_mb() > 2 * 10  # both processes' memory (this one's, twice)
    assert progress_totals(summed.snapshot(), summed.output) == (5, 500, 0)
    (line, _) = report_lines(summed, summed.rows, summed.output)
    assert line.startswith("stats non-cloudwatch-logs us-east-1: messages=5 objects=5 "
                           "bytes=4.9KB events=500 (cloud.aws.vpc.flow=500) dead_lettered=0")


def test_before_any_process_wrote_the_view_is_empty(tmp_path):
    summed = SummedStats([tmp_path / "0.json"])
    assert not summed.ready()
    assert (summed.rows, summed.output, summed.interval_seconds) == ((), "", 0.0)
    assert summed.snapshot() == {} and summed.memory_mb() == 0


def test_a_file_is_replaced_whole_so_a_reader_never_sees_half(tmp_path):
    path = tmp_path / "0.json"
    stats = _process(1, 10)
    stop = threading.Event()
    seen: list[object] = []

    def read() -> None:
        while not stop.is_set():
            seen.append(read_json(path))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(300):
            stats.delivered("devo", VPC.service, VPC.region, "cloud.aws.vpc.flow", 1)
            _publish(path, stats)
    finally:
        stop.set()
        reader.join()
    documents = [d for d in seen if d is not None]
    assert documents, "the reader never read a document"
    assert all(d["counts"] and d["rows"] for d in documents)  # none half-written


def test_the_publisher_writes_at_start_and_a_last_time_when_stopped(tmp_path):
    path = tmp_path / "0.json"
    stats = _process(1, 10)
    publisher = StatsPublisher(stats, path, [VPC], 60, "devo")
    publisher.start()
    try:
        assert SummedStats([path]).snapshot()[(VPC.service, VPC.region)].objects == 1
        stats.add("objects", VPC.service, VPC.region, 4)
    finally:
        publisher.stop()
    assert SummedStats([path]).snapshot()[(VPC.service, VPC.region)].objects == 5
    assert not [t for t in threading.enumerate() if t.name == "collector-stats-file"]
