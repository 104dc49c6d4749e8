"""Statistics as a user sees them: `aws-collector run` as a child process, over the
embedded AWS and the embedded TLS Devo relay.

- a streaming run (no --until-idle, stopped by SIGTERM) logs a line per service
  and region every `globals.stats_interval_seconds`, with the real counts, and
  serves the same counts on `--metrics-port`;
- `run --until-idle` in a terminal (a pty) draws the progress line; in a pipe it
  does not.
"""

from __future__ import annotations

import logging
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from awscollector.config import parse_config
from awscollector.embedded.aws import free_port
from awscollector.embedded.seed import vpc_key
from awscollector.io.stats import human_bytes
from awscollector.io.stop import StopSignal
from awscollector.pipelines.collector import run_collector
from tests.test_cli import TABLE, Collector, _all_lines, _summary_total
from tests.vpc_helpers import (
    ENV,
    put_object,
    queue_depth,
    raw_config,
    run_cli,
    seed_objects,
    setup_queue,
)

LINE = re.compile(r"^.* stats non-cloudwatch-logs us-east-1: (.*)$", re.MULTILINE)


def _config(aws, relay, pki, queue: str, workdir: Path, interval: int) -> Path:
    raw = raw_config(aws, relay, pki, queue, workdir)
    raw["globals"]["stats_interval_seconds"] = interval
    path = workdir / "collector.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _last_line(stderr: str) -> dict[str, str] | None:
    """The fields of the newest statistics line: key -> value, and "tables" -> (...)."""
    found = LINE.findall(stderr)
    if not found:
        return None
    fields = dict(re.findall(r"(\w+)=(\S+)", re.sub(r"\(.*?\)", "", found[-1])))
    tables = re.search(r"\((.*?)\)", found[-1])
    fields["tables"] = tables.group(1) if tables else ""
    return fields


def _scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line.startswith("awscollector_")}


def test_a_streaming_run_logs_and_serves_its_real_counts(embedded_aws, relay, pki, tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    path = _config(embedded_aws, relay, pki, queue, tmp_path, interval=1)
    port = free_port()
    run = Collector(tmp_path, "--config", str(path), "--metrics-port", str(port))
    try:
        # The bucket's s3:TestEvent: received, skipped, deleted.
        run.wait_until(lambda: queue_depth(embedded_aws, url) == 0, 60, "the s3:TestEvent")
        objects = seed_objects(embedded_aws, bucket, n=3, m=200)
        stored = sum(embedded_aws.client("s3").head_object(Bucket=bucket, Key=vpc_key(
            "us-east-1", obj))["ContentLength"] for obj in objects)
        run.wait_until(lambda: relay.total() >= 600, 60, "the first 600 events")

        def settled() -> bool:
            line = _last_line(run.stderr)
            return bool(line) and line["events"] == "600" and line["oldest_unacked"] == "0s" \
                and queue_depth(embedded_aws, url) == 0
        run.wait_until(settled, 30, "a statistics line with the 600 events")
        first = _last_line(run.stderr)
        metrics = _scrape(port)

        # An object that is no VPC Flow Log: dead-lettered, and counted so.
        put_object(embedded_aws, bucket, vpc_key("us-east-1", 99), ["not a flow log"])
        run.wait_until(lambda: (_last_line(run.stderr) or {}).get("dead_lettered") == "1",
                       60, "a statistics line with the dead letter")
        second = _last_line(run.stderr)
        took = run.signal_and_wait(signal.SIGTERM, timeout=30)
    finally:
        run.stop()

    assert run.proc.returncode == 0, run.stderr
    assert took < 20
    assert first == {"messages": "4", "objects": "3", "bytes": human_bytes(stored),
                     "events": "600", "tables": f"{TABLE}=600", "dead_lettered": "0",
                     "skipped": "1", "oldest_unacked": "0s", "rss": first["rss"]}
    assert 50 < int(first["rss"].removesuffix("MB")) < 4000
    assert (second["messages"], second["events"], second["dead_lettered"]) == ("5", "600", "1")
    # What the relay received, and the run's final summary, agree with the lines.
    assert sorted(relay.events(TABLE)) == sorted(_all_lines(objects))
    assert _summary_total(run.stdout) == (600, 1)
    # The endpoint served the same counts, during the run.
    labels = 'region="us-east-1",service="non-cloudwatch-logs"'
    assert metrics[f"awscollector_messages_received_total{{{labels}}}"] == 4
    assert metrics[f"awscollector_objects_read_total{{{labels}}}"] == 3
    assert metrics[f"awscollector_bytes_read_total{{{labels}}}"] == stored
    assert metrics[f"awscollector_skipped_total{{{labels}}}"] == 1
    assert metrics[f'awscollector_events_delivered_total{{output="devo_1",{labels},'
                   f'table="{TABLE}"}}'] == 600
    # The reporter's lines came every second or so, through the run.
    stamps = re.findall(r"^\S+ (\d\d):(\d\d):(\d\d),\d+ .* stats non-cloudwatch-logs ",
                        run.stderr, re.MULTILINE)
    seconds = [int(h) * 3600 + int(m) * 60 + int(s) for h, m, s in stamps]
    assert len(seconds) >= 2, run.stderr
    assert all(0 <= b - a <= 3 for a, b in zip(seconds, seconds[1:], strict=False)), stamps


@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_run_by_hand_in_a_terminal_shows_the_progress_line(embedded_aws, relay, pki,
                                                             tmp_path, processes):
    """With 2 processes the supervisor draws it, from both processes' counts."""
    bucket, queue, url = setup_queue(embedded_aws)
    seed_objects(embedded_aws, bucket, n=3, m=200)
    path = _config(embedded_aws, relay, pki, queue, tmp_path, interval=300)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "awscollector", "run", "--config", str(path), "--until-idle",
         "--idle-seconds", "2", "--processes", processes], stdout=subprocess.PIPE,
        stderr=slave, text=True, env={**os.environ, **ENV})
    os.close(slave)
    seen = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        stdout, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(timeout=10)
        os.close(master)
    terminal = seen.decode("utf-8", "replace")
    assert proc.returncode == 0, terminal
    assert _summary_total(stdout) == (600, 0)
    # Redrawn in place (carriage returns), ending with the run's real totals.
    assert "\r" in terminal
    final = re.findall(r"collecting: (\d+) events \[[^\]]*events/s, objects=(\d+) "
                       r"dead_lettered=(\d+)\]", terminal)
    assert final and final[-1] == ("600", "3", "0"), repr(terminal[-2000:])
    # Log lines still reach the terminal, above the line.
    assert "idle for" in terminal


def test_in_a_pipe_there_is_no_progress_line(embedded_aws, relay, pki, tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    seed_objects(embedded_aws, bucket, n=2, m=100)
    done = run_cli(_config(embedded_aws, relay, pki, queue, tmp_path, interval=300))
    assert done.returncode == 0, done.stderr
    assert _summary_total(done.stdout) == (200, 0)
    assert "collecting:" not in done.stderr and "\r" not in done.stderr
    assert "events/s" not in done.stdout + done.stderr


def test_a_run_stopped_by_its_stop_signal_reports_and_leaves_no_thread(
        embedded_aws, relay, pki, tmp_path, caplog):
    """In process, as a program embedding the collector runs it: the lines, the
    endpoint, and once run_collector returns, neither the reporter nor the server."""
    bucket, queue, url = setup_queue(embedded_aws)
    raw = raw_config(embedded_aws, relay, pki, queue, tmp_path)
    raw["globals"]["stats_interval_seconds"] = 1
    config = parse_config(raw, tmp_path, environ=ENV)
    caplog.set_level(logging.INFO, logger="awscollector")
    stop = StopSignal()
    port = free_port()
    before = set(threading.enumerate())
    outcome: list = []
    runner = threading.Thread(target=lambda: outcome.append(run_collector(
        config, [], stop=stop, metrics_port=port)))
    runner.start()
    try:
        seed_objects(embedded_aws, bucket, n=2, m=150)
        deadline = time.monotonic() + 60
        while "events=300 " not in caplog.text:
            assert runner.is_alive() and time.monotonic() < deadline, caplog.text
            time.sleep(0.1)
        assert _scrape(port)['awscollector_objects_read_total{region="us-east-1",'
                             'service="non-cloudwatch-logs"}'] == 2
    finally:
        stop.request()
        runner.join(timeout=60)
    assert not runner.is_alive()
    (result,) = outcome
    assert [r[3] for r in result.rows] == [300]
    line = next(r.getMessage() for r in caplog.records if "events=300 " in r.getMessage())
    assert line.startswith("stats non-cloudwatch-logs us-east-1: messages=3 objects=2 ")
    assert f"events=300 ({TABLE}=300) dead_lettered=0 skipped=1 " in line
    left = {t.name for t in set(threading.enumerate()) - before if t.is_alive()}
    assert not left & {"collector-stats", "collector-progress"}, left
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
