"""The pieces of the run's statistics: the aggregate, its lines, the reporter thread,
the progress totals and the Prometheus exposition (io/stats.py, io/progress.py,
io/prometheus.py). Runs that show them are in test_stats_run.py."""

from __future__ import annotations

import gc
import logging
import pickle
import threading
import time
import urllib.request

import pytest

from awscollector.config import parse_config
from awscollector.embedded.aws import free_port
from awscollector.errors import CollectorError
from awscollector.io.progress import progress_totals
from awscollector.io.prometheus import serving
from awscollector.io.stats import (
    API,
    EVENTS,
    S3,
    Counts,
    ProcessStats,
    StatsHandle,
    StatsRow,
    format_line,
    human_bytes,
    human_seconds,
    report_lines,
)
from awscollector.pipelines.collector import plan_services, stats_rows

VPC = StatsRow("non-cloudwatch-logs", "us-east-1", frozenset({S3}))


def _reporters() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "collector-stats"]


def test_human_sizes_and_ages():
    assert [human_bytes(n) for n in (0, 1023, 1536, 3.4 * 1024 ** 2, 250 * 1024 ** 2,
                                     5 * 1024 ** 4)] == ["0B", "1023B", "1.5KB", "3.4MB",
                                                          "250MB", "5120GB"]
    assert [human_seconds(s) for s in (0, 3.9, 59, 60, 185, 3599, 3600, 7380)] == [
        "0s", "3s", "59s", "1m00s", "3m05s", "59m59s", "1h00m", "2h03m"]


def test_an_s3_line_has_every_field_in_a_stable_order():
    counts = Counts(messages=12, objects=12, bytes=int(3.4 * 1024 ** 2), skipped=1,
                    events={("devo", "cloud.aws.vpc.flow"): 12000, ("archive", "x"): 5},
                    oldest_unacked=3.7)
    assert format_line(VPC, counts, "devo", 210.4) == (
        "stats non-cloudwatch-logs us-east-1: messages=12 objects=12 bytes=3.4MB "
        "events=12000 (cloud.aws.vpc.flow=12000) dead_lettered=0 skipped=1 "
        "oldest_unacked=3s rss=210MB")


def test_a_service_that_did_nothing_yet_has_its_line_with_zeros():
    row = StatsRow("sqs-cloudwatch-consumer", "eu-west-1", frozenset({EVENTS}))
    assert format_line(row, None, "devo", 99) == (
        "stats sqs-cloudwatch-consumer eu-west-1: messages=0 events=0 dead_lettered=0 "
        "skipped=0 oldest_unacked=0s rss=99MB")


def test_an_api_line_shows_pages_records_and_the_worst_lag_of_its_streams():
    row = StatsRow("cloudwatch-logs", "us-east-1", frozenset({API}))
    counts = Counts(pages=4, records=40, events={("devo", "cloud.aws.cloudwatch.logs"): 39},
                    dead_lettered=1, lags={"/app/a": 65.0, "/app/b": 5.2})
    assert format_line(row, counts, "devo", 120) == (
        "stats cloudwatch-logs us-east-1: pages=4 records=40 events=39 "
        "(cloud.aws.cloudwatch.logs=39) dead_lettered=1 skipped=0 lag=1m05s "
        "(/app/a=1m05s, /app/b=5s) rss=120MB")
    assert "lag=-" in format_line(row, Counts(), "devo", 1)  # no checkpoint saved yet


def test_the_aggregate_adds_per_service_and_region_and_ages_what_it_holds():
    stats = ProcessStats()
    stats.add("messages", "a", "r1", 3)
    stats.add("messages", "a", "r1", 2)
    stats.add("messages", "a", "r2")
    stats.add("dead_lettered", "b", "r1", 0)  # nothing: no row made for it
    stats.delivered("devo", "a", "r1", "t1", 10)
    stats.delivered("devo", "a", "r1", "t1", 5)
    stats.delivered("devo", "a", "r1", "t2", 1)
    stats.delivered("http", "a", "r1", "t1", 15)
    stats.hold("a", "r1", "q", ["m1", "m2"], now=100.0)
    stats.hold("a", "r1", "q", ["m3"], now=104.0)
    stats.checkpoint("c", "r1", "s1", end_ms=50_000)
    snap = stats.snapshot(now=110.0, wall_ms=80_000)
    assert set(snap) == {("a", "r1"), ("a", "r2"), ("c", "r1")}
    assert snap[("a", "r1")].messages == 5 and snap[("a", "r2")].messages == 1
    assert snap[("a", "r1")].delivered("devo") == {"t1": 15, "t2": 1}
    assert snap[("a", "r1")].delivered("http") == {"t1": 15}
    assert snap[("a", "r1")].oldest_unacked == 10.0
    assert snap[("a", "r2")].oldest_unacked is None
    assert snap[("c", "r1")].lags == {"s1": 30.0}
    stats.release("a", "r1", "q", ["m1", "m2"])  # deleted: the oldest is now m3
    assert stats.snapshot(now=110.0)[("a", "r1")].oldest_unacked == 6.0
    stats.hold("b", "r1", "other", ["m9"], now=105.0)
    stats.release_queues(["q"])  # its reader went away: what it held went back
    assert stats.oldest_unacked("a", "r1") == 0.0
    assert stats.oldest_unacked("b", "r1", now=110.0) == 5.0
    # A snapshot is a copy: counting on does not change it.
    stats.add("messages", "a", "r1")
    assert snap[("a", "r1")].messages == 5


def test_the_aggregate_is_safe_across_threads():
    stats = ProcessStats()

    def count():
        for _ in range(5000):
            stats.add("objects", "a", "r")
            stats.delivered("devo", "a", "r", "t", 2)

    threads = [threading.Thread(target=count) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = stats.snapshot()[("a", "r")]
    assert (snap.objects, snap.delivered("devo")) == (20000, {"t": 40000})


def test_copies_of_a_handle_in_one_process_reach_one_aggregate():
    handle = StatsHandle([VPC], 0, "devo")
    copy = pickle.loads(pickle.dumps(handle))  # as Beam ships it to a step
    copy.get().add("objects", "s", "r", 7)
    assert handle.get().snapshot()[("s", "r")].objects == 7
    other = StatsHandle([VPC], 0, "devo")  # another run: its own aggregate
    assert other.get().snapshot() == {}


def test_the_handle_that_made_the_aggregate_keeps_it_when_the_steps_copies_go():
    handle = StatsHandle([VPC], 0, "devo")
    copy = pickle.loads(pickle.dumps(handle))
    copy.get().add("objects", "s", "r")
    del copy
    StatsHandle()  # Beam's Shared keeps alive only the newest object of its own
    gc.collect()
    assert handle.get().snapshot()[("s", "r")].objects == 1


def test_the_reporter_logs_every_interval_and_is_joined_when_the_run_ends(caplog):
    handle = StatsHandle([VPC], 0.05, "devo")
    caplog.set_level(logging.INFO, logger="awscollector.io.stats")
    with handle.reporting() as stats:
        stats.add("messages", VPC.service, VPC.region, 2)
        deadline = time.monotonic() + 5
        while "messages=2" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(_reporters()) == 1
    assert _reporters() == []
    line = next(r.getMessage() for r in caplog.records if "messages=2" in r.getMessage())
    assert line.startswith("stats non-cloudwatch-logs us-east-1: messages=2 objects=0 bytes=0B")


def test_no_interval_no_reporter():
    with StatsHandle([VPC], 0, "devo").reporting():
        assert _reporters() == []


def test_in_a_worker_process_the_steps_start_and_stop_its_reporter():
    """On Flink the steps run in processes that did not make the handle: the first step
    to attach starts that process's reporter, the last to detach joins it."""
    handle = pickle.loads(pickle.dumps(StatsHandle([VPC], 60, "devo")))
    handle.owner_pid = -1  # as seen from a worker process
    first, second = handle.attach(), handle.attach()
    assert first is second and len(_reporters()) == 1
    handle.detach()
    assert len(_reporters()) == 1
    handle.detach()
    assert _reporters() == []
    # In the process that made the handle, steps leave reporting to the run.
    own = StatsHandle([VPC], 60, "devo")
    own.attach()
    assert _reporters() == []
    own.detach()


def test_a_report_has_every_row_then_what_no_row_names():
    stats = ProcessStats()
    stats.add("objects", "custom-s3.other", "us-east-1", 2)
    lines = report_lines(stats, [VPC], "devo")
    assert lines[0].startswith("stats non-cloudwatch-logs us-east-1: messages=0 objects=0 ")
    assert lines[1].startswith("stats custom-s3.other us-east-1: messages=0 objects=2 ")
    assert all(" rss=" in line for line in lines)


def test_stats_rows_one_per_service_and_region_of_the_plans(pki, tmp_path):
    raw = {"outputs": {"devo": {"type": "devo_platform", "config": {
        "address": "127.0.0.1", "port": 1, "type": "SSL", "chain": str(pki.ca_cert),
        "cert": str(pki.client_cert), "key": str(pki.client_key)}}},
        "inputs": {"aws": {"id": "1", "enabled": True, "regions": ["us-east-1", "eu-west-1"],
                           "credentials": {"access_key": "k", "access_secret": "s"},
                           "services": {
                               "non-cloudwatch-logs": {"types": ["vpc_flow_logs"],
                                                       "sqs_queue_name": "q"},
                               "cloudwatch-logs": {"log_group_names": ["/app"],
                                                   "regions": ["us-east-1"]}}}}}
    config = parse_config(raw, tmp_path)
    rows = stats_rows(plan_services(config, warn=False))
    assert rows == [StatsRow("non-cloudwatch-logs", "us-east-1", frozenset({S3})),
                    StatsRow("non-cloudwatch-logs", "eu-west-1", frozenset({S3})),
                    StatsRow("cloudwatch-logs", "us-east-1", frozenset({API}))]
    assert config.globals.stats_interval_seconds == 300


def test_progress_totals_sum_every_service_for_the_shown_output():
    snap = {("a", "r"): Counts(objects=2, dead_lettered=1,
                                events={("devo", "t"): 10, ("http", "t"): 10}),
            ("b", "r"): Counts(objects=1, events={("devo", "u"): 5})}
    assert progress_totals(snap, "devo") == (3, 15, 1)


def test_the_metrics_endpoint_serves_the_same_counts(tmp_path):
    handle = StatsHandle([VPC], 0, "devo")
    stats = handle.get()
    stats.add("messages", VPC.service, VPC.region, 4)
    stats.add("bytes", VPC.service, VPC.region, 1234)
    stats.delivered("devo", VPC.service, VPC.region, "cloud.aws.vpc.flow", 600)
    stats.checkpoint("cloudwatch-logs", "us-east-1", "/app", int(time.time() * 1000) - 60_000)
    with serving(handle, free_port(), addr="127.0.0.1") as port:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read() \
            .decode()
    labels = 'region="us-east-1",service="non-cloudwatch-logs"'
    assert f"awscollector_messages_received_total{{{labels}}} 4.0" in text
    assert f"awscollector_bytes_read_total{{{labels}}} 1234.0" in text
    assert f"awscollector_objects_read_total{{{labels}}} 0.0" in text
    assert ('awscollector_events_delivered_total{output="devo",region="us-east-1",'
            'service="non-cloudwatch-logs",table="cloud.aws.vpc.flow"} 600.0') in text
    lag = [line for line in text.splitlines()
           if line.startswith("awscollector_api_lag_seconds{")]
    assert len(lag) == 1 and 59 <= float(lag[0].split()[-1]) < 70
    assert "process_resident_memory_bytes" in text
    with pytest.raises(OSError):  # served no more
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_a_port_in_use_is_run_012():
    handle = StatsHandle([VPC], 0, "devo")
    with serving(handle, free_port(), addr="127.0.0.1") as port:
        with pytest.raises(CollectorError) as e, serving(handle, port, addr="127.0.0.1"):
            pass
    assert e.value.code == "RUN-012" and str(port) in str(e.value)
