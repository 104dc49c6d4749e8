"""audit-events-all with ``audit_apis``: CloudTrail LookupEvents -> collector -> Devo relay.

The embedded AWS answers LookupEvents with its emulator (moto lacks it): AWS's wire
protocol, 50 events a page newest first, 2 calls per second per account and region
(ThrottlingException above), and events that become visible late, as CloudTrail's
are. The collector runs in-process (run_collector) or as the command, which a test
kills with SIGKILL mid-backfill.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from awscollector.config import parse_config
from awscollector.embedded.aws import EmbeddedAws
from awscollector.embedded.config import embedded_config
from awscollector.embedded.seed import cloudtrail_records
from awscollector.io.pullers import PULLERS, ApiStream
from awscollector.io.ratelimit import SharedLimits
from awscollector.pipelines.collector import run_collector
from tests.flink_cluster import wait_until
from tests.vpc_helpers import ENV

SERVICE = "audit-events-all"
TABLE = "cloud.aws.cloudtrail.events"
ACCOUNT = "123456789012"
REGION = "us-east-1"


@pytest.fixture
def aws():
    """An embedded AWS of the test's own: the emulator's request log and rate budget
    are then the test's alone."""
    with EmbeddedAws(apis=True) as embedded:
        yield embedded


def iso(ms: float) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat()


def trail(n: int, start_ms: float, end_ms: float, seed: int = 1) -> list[dict]:
    """n CloudTrail records with event times spread over [start_ms, end_ms) (seconds)."""
    records = cloudtrail_records(n, seed=seed, region=REGION)
    step = (end_ms - start_ms) / n
    for i, r in enumerate(records):
        t = int((start_ms + i * step) // 1000)
        r["eventTime"] = dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        r["eventID"] = f"{seed:04d}-{i:06d}-{r['eventID'][:8]}"
    return records


def config(aws, relay, pki, workdir: Path, **service) -> dict:
    return embedded_config(aws.endpoint_url, relay.port, pki, workdir, "-", services={
        SERVICE: {"types": ["audit_apis"], **service}})


def collect(aws, relay, pki, workdir: Path, **service):
    raw = config(aws, relay, pki, workdir, **service)
    return run_collector(parse_config(raw, workdir, environ=ENV), [], idle_seconds=1)


def ids(relay) -> list[str]:
    return [json.loads(e)["eventID"] for e in relay.events(TABLE)]


def test_backfill_of_many_pages_exactly_once_then_nothing_again(aws, relay, pki, tmp_path):
    now = time.time() * 1000
    records = trail(620, now - 5 * 3_600_000, now - 60_000, seed=3)  # 13+ pages, 5 windows
    aws.apis.add_trail_events(records, region=REGION, account=ACCOUNT)
    result = collect(aws, relay, pki, tmp_path, start_time=iso(now - 6 * 3_600_000),
                     lag_seconds=0)
    assert sorted(ids(relay)) == sorted(r["eventID"] for r in records)
    # The message is the record, as in CloudTrail's S3 files.
    by_id = {r["eventID"]: r for r in records}
    for line in relay.events(TABLE)[:20]:
        event = json.loads(line)
        assert event == by_id[event["eventID"]]
    assert [r[3] for r in result.rows if r[0] == SERVICE] == [620]

    relay.reset()
    collect(aws, relay, pki, tmp_path, start_time=iso(now - 6 * 3_600_000), lag_seconds=0)
    assert ids(relay) == []


def test_auto_event_type_and_events_of_two_regions(aws, relay, pki, tmp_path):
    now = time.time() * 1000
    east = trail(80, now - 3_600_000, now - 60_000, seed=5)
    west = trail(40, now - 3_600_000, now - 60_000, seed=6)
    aws.apis.add_trail_events(east, region=REGION, account=ACCOUNT)
    aws.apis.add_trail_events(west, region="eu-west-1", account=ACCOUNT)
    raw = config(aws, relay, pki, tmp_path, start_time=iso(now - 2 * 3_600_000), lag_seconds=0,
                 auto_event_type=True, regions=[REGION, "eu-west-1"])
    run_collector(parse_config(raw, tmp_path, environ=ENV), [], idle_seconds=1)
    got = collections.Counter()
    for table, n in relay.counts().items():
        assert table.startswith("cloud.aws.cloudtrail.") and table != TABLE
        got[table] += n
    want = collections.Counter("cloud.aws.cloudtrail." + r["eventSource"].split(".")[0]
                               for r in east + west)
    assert got == want


def test_late_events_are_collected_once_their_lag_has_passed(aws, relay, pki, tmp_path):
    """CloudTrail shows an event up to ~15 minutes after it happened; the collector reads
    ``lag_seconds`` behind now, so a window is read once its late events are there."""
    lag = 6
    now = time.time() * 1000
    early = trail(30, now - 600_000, now - 60_000, seed=7)
    late = trail(5, now - 2_000, now - 1_000, seed=8)  # happened just now, visible in 3 s
    aws.apis.add_trail_events(early, region=REGION, account=ACCOUNT)
    aws.apis.add_trail_events(late, region=REGION, account=ACCOUNT, visible_after_seconds=3)
    service = {"start_time": iso(now - 3_600_000), "lag_seconds": lag}

    collect(aws, relay, pki, tmp_path, **service)
    assert sorted(ids(relay)) == sorted(r["eventID"] for r in early)  # the late ones: not yet
    wait_until(lambda: time.time() * 1000 > now + lag * 1000 + 500, 30, "the lag to pass")
    relay.reset()
    collect(aws, relay, pki, tmp_path, **service)
    assert sorted(ids(relay)) == sorted(r["eventID"] for r in late)


def test_lookup_events_rate_stays_at_two_per_second_with_several_readers(aws):
    """Four threads read one account and region through one process's shared limiter:
    the emulator sees at most 2 calls in any second, and never throttles."""
    now = time.time() * 1000
    aws.apis.add_trail_events(trail(1000, now - 3_600_000, now - 1000, seed=9),
                              region=REGION, account=ACCOUNT)
    puller = PULLERS["cloudtrail_lookup"]
    limits = SharedLimits()
    stream = ApiStream(SERVICE, puller.name, ACCOUNT, REGION, "events", 0, 0, 1.0)
    client = aws.client("cloudtrail", REGION)
    seen = collections.Counter()

    def reader(part: int) -> None:
        limiter = limits.get(puller.limit_key(stream), puller.rate)
        # From a whole second at or before the first event (event times are seconds).
        start = int((now - 3_600_000) // 1000 * 1000) + part * 900_000
        token = None
        while True:
            limiter.acquire()
            page = puller.fetch(client, stream, start, start + 900_000, token)
            seen.update(r["eventID"] for r in page.records)
            token = page.token
            if not token:
                return

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sum(seen.values()) == 1000 and max(seen.values()) == 1
    calls = sorted(r.time for r in aws.apis.requests("LookupEvents"))
    assert len(calls) >= 20
    assert not [r for r in aws.apis.requests("LookupEvents") if r.throttled]
    # In every 1 s window starting at a call: at most 2 calls (plus a little clock slack).
    most = max(sum(1 for t in calls if c <= t < c + 0.98) for c in calls)
    rate = (len(calls) - 1) / (calls[-1] - calls[0])
    print(f"LookupEvents: {len(calls)} calls, {rate:.2f}/s overall, at most {most} in 1 s")
    assert most <= 2 and rate <= 2.05


def test_throttling_is_survived(aws, relay, pki, tmp_path):
    """The emulator allows only 1 call per second (below what the collector aims at):
    throttled calls are retried with backoff, and every event still arrives once."""
    aws.apis.set_rate_limit("LookupEvents", rate=1.0, burst=1)
    now = time.time() * 1000
    records = trail(300, now - 2 * 3_600_000, now - 60_000, seed=10)
    aws.apis.add_trail_events(records, region=REGION, account=ACCOUNT)
    collect(aws, relay, pki, tmp_path, start_time=iso(now - 3 * 3_600_000), lag_seconds=0)
    assert sorted(ids(relay)) == sorted(r["eventID"] for r in records)
    assert [r for r in aws.apis.requests("LookupEvents") if r.throttled]


def test_access_denied_names_the_call(aws, relay, pki, tmp_path):
    aws.apis.deny("LookupEvents")
    raw = config(aws, relay, pki, tmp_path, lag_seconds=0)
    path = tmp_path / "collector.yaml"
    path.write_text(yaml.safe_dump(raw))
    done = subprocess.run([sys.executable, "-m", "awscollector", "run", "--config", str(path),
                           "--until-idle", "--idle-seconds", "1"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **ENV})
    assert done.returncode == 1, done.stderr
    assert "AWS-003 cloudtrail LookupEvents events in us-east-1 failed: AccessDenied" \
        in done.stderr


def test_a_killed_run_resumes_with_at_most_one_page_again(aws, relay, pki, tmp_path):
    """SIGKILL at random moments of a backfill, three times; each restart goes on from
    the checkpoint: every event arrives, and only the page in flight comes twice."""
    rnd = random.Random(11)
    now = time.time() * 1000
    records = trail(1200, now - 4 * 3_600_000, now - 60_000, seed=12)  # 24+ pages: 12+ s
    aws.apis.add_trail_events(records, region=REGION, account=ACCOUNT)
    raw = config(aws, relay, pki, tmp_path, start_time=iso(now - 5 * 3_600_000), lag_seconds=0)
    path = tmp_path / "collector.yaml"
    path.write_text(yaml.safe_dump(raw))
    cmd = [sys.executable, "-m", "awscollector", "run", "--config", str(path), "--until-idle",
           "--idle-seconds", "1"]
    env = {**os.environ, **ENV}
    kills = []
    for attempt in range(3):
        before = relay.total()
        log = open(tmp_path / f"run{attempt}.log", "w")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            wait_until(lambda b=before: relay.total() > b + 50, 60, "events of this run")
            time.sleep(rnd.uniform(0.2, 3.0))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            kills.append(relay.total() - before)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
            log.close()
    assert relay.total() < len(records)  # every kill landed before the backfill's end
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    got = collections.Counter(ids(relay))
    want = collections.Counter(r["eventID"] for r in records)
    assert not want - got, f"{sum((want - got).values())} events lost"
    duplicates = sum((got - want).values())
    print(f"killed after {kills} events; {duplicates} duplicates over 3 kills")
    assert duplicates <= 3 * 50  # at most the page in flight, per kill
