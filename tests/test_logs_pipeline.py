"""cloudwatch-logs end to end: CloudWatch Logs (moto's server) -> collector -> Devo relay.

Log groups are filled with PutLogEvents; the collector reads them with
FilterLogEvents over HTTP, a checkpoint per group, and delivers over TLS to the
embedded relay. Runs are bounded (``idle_seconds``): from ``start_time`` up to
now minus ``lag_seconds``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

from awscollector.config import parse_config
from awscollector.embedded.config import embedded_config
from awscollector.io.checkpoints import CheckpointKey, FileCheckpoints
from awscollector.pipelines.collector import run_collector
from tests.vpc_helpers import ENV, unique

TABLE = "cloud.aws.cloudwatch.logs"
ACCOUNT = "123456789012"


def fill_group(logs, group: str, n: int, start_ms: int, step_ms: int, streams: int = 2
               ) -> list[str]:
    """n events in ``group``, spread over ``streams`` streams; returns their messages."""
    logs.create_log_group(logGroupName=group)
    messages = []
    for s in range(streams):
        stream = f"stream-{s}"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        events = [{"timestamp": start_ms + i * step_ms, "message": f"{group} {stream} {i}"}
                  for i in range(s, n, streams)]
        for i in range(0, len(events), 5000):
            logs.put_log_events(logGroupName=group, logStreamName=stream,
                                logEvents=events[i:i + 5000])
        messages += [e["message"] for e in events]
    return messages


def logs_config(aws, relay, pki, workdir: Path, service: dict) -> dict:
    return embedded_config(aws.endpoint_url, relay.port, pki, workdir, "-",
                           services={"cloudwatch-logs": service})


def collect(aws, relay, pki, workdir: Path, service: dict):
    raw = logs_config(aws, relay, pki, workdir, service)
    return run_collector(parse_config(raw, workdir, environ=ENV), [], idle_seconds=1)


def delivered(relay) -> list[dict]:
    return [json.loads(line) for line in relay.events(TABLE)]


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat()


def test_groups_are_read_once_each_with_a_checkpoint_per_group(embedded_aws, relay, pki,
                                                               tmp_path):
    logs = embedded_aws.client("logs")
    prefix = f"/{unique('app')}/"
    now = int(time.time() * 1000)
    start = now - 5 * 3_600_000  # five hours: several windows per group
    expected = []
    for name in ("api", "worker", "cron"):
        expected += fill_group(logs, prefix + name, 3000, start + 1000, 5_000)
    fill_group(logs, f"/{unique('other')}/x", 50, start + 1000, 1000)  # not under the prefix
    service = {"log_group_prefixes": [prefix], "start_time": iso(start), "lag_seconds": 0}

    result = collect(embedded_aws, relay, pki, tmp_path, service)

    events = delivered(relay)
    assert sorted(e["message"] for e in events) == sorted(expected)
    first = events[0]
    assert set(first) == {"logGroup", "logStream", "eventId", "timestamp", "ingestionTime",
                          "message"}
    assert first["logGroup"].startswith(prefix)
    rows = {(r[0], r[2]): r[3] for r in result.rows}
    assert rows[("cloudwatch-logs", TABLE)] == len(expected)
    store = FileCheckpoints(tmp_path / "state")
    for name in ("api", "worker", "cron"):
        saved = store.load(CheckpointKey("cloudwatch-logs", ACCOUNT, "us-east-1", prefix + name))
        assert saved is not None and saved["open"] == []
        (done,) = saved["done"]
        assert done[0] <= start + 1000 and done[1] >= start + 3000 * 5_000

    # A second run starts where the first stopped: only what came since is sent.
    relay.reset()
    time.sleep(0.2)  # "api new" is after the first run's end (lag_seconds: 0)
    later = fill_group(logs, prefix + "late", 10, int(time.time() * 1000) - 60_000, 1000,
                       streams=1)
    logs.put_log_events(logGroupName=prefix + "api", logStreamName="stream-0", logEvents=[
        {"timestamp": int(time.time() * 1000), "message": "api new"}])
    time.sleep(0.01)
    collect(embedded_aws, relay, pki, tmp_path, service)
    assert sorted(e["message"] for e in delivered(relay)) == sorted(later + ["api new"])


def test_names_and_pattern_select_groups(embedded_aws, relay, pki, tmp_path):
    logs = embedded_aws.client("logs")
    base = f"/{unique('sel')}"
    now = int(time.time() * 1000)
    wanted = fill_group(logs, f"{base}/named", 20, now - 600_000, 1000, streams=1)
    wanted += fill_group(logs, f"{base}/audit-7", 20, now - 600_000, 1000, streams=1)
    fill_group(logs, f"{base}/audit-x", 20, now - 600_000, 1000, streams=1)
    service = {"log_group_names": [f"{base}/named"], "log_group_pattern": rf"^{base}/audit-\d$",
               "start_time": iso(now - 3_600_000), "lag_seconds": 0}
    collect(embedded_aws, relay, pki, tmp_path, service)
    assert sorted(e["message"] for e in delivered(relay)) == sorted(wanted)


def test_checkpoints_in_s3(embedded_aws, relay, pki, tmp_path):
    """globals.persistence type s3: one object per group under the prefix; a second run
    resumes from them."""
    logs, s3 = embedded_aws.client("logs"), embedded_aws.client("s3")
    bucket = unique("state")
    s3.create_bucket(Bucket=bucket)
    prefix = f"/{unique('s3cp')}/"
    now = int(time.time() * 1000)
    expected = fill_group(logs, prefix + "a", 300, now - 7_200_000, 20_000)
    expected += fill_group(logs, prefix + "b", 200, now - 7_200_000, 30_000)
    raw = logs_config(embedded_aws, relay, pki, tmp_path, {
        "log_group_prefixes": [prefix], "start_time": iso(now - 3 * 3_600_000),
        "lag_seconds": 0})
    raw["globals"]["persistence"] = {"type": "s3",
                                     "config": {"bucket": bucket, "prefix": "collector/state"}}
    config = parse_config(raw, tmp_path, environ=ENV)
    run_collector(config, [], idle_seconds=1)
    assert sorted(e["message"] for e in delivered(relay)) == sorted(expected)
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert len(keys) == 2 and all(k.startswith("collector/state/cloudwatch-logs/") for k in keys)
    assert not (tmp_path / "state").exists()  # nothing on the filesystem

    relay.reset()
    time.sleep(0.05)
    logs.put_log_events(logGroupName=prefix + "b", logStreamName="stream-0", logEvents=[
        {"timestamp": int(time.time() * 1000), "message": "b new"}])
    time.sleep(0.01)
    run_collector(parse_config(raw, tmp_path, environ=ENV), [], idle_seconds=1)
    assert [e["message"] for e in delivered(relay)] == ["b new"]


def test_following_now_until_sigterm(embedded_aws, relay, pki, tmp_path):
    """Without --until-idle the puller follows now, polling every request period; SIGTERM
    stops it with what it read delivered, and a restart goes on from its checkpoint."""
    import signal

    import yaml

    from tests.test_cli import Collector

    logs = embedded_aws.client("logs")
    group = f"/{unique('follow')}/app"
    now = int(time.time() * 1000)
    sent = fill_group(logs, group, 100, now - 600_000, 1000, streams=1)
    raw = logs_config(embedded_aws, relay, pki, tmp_path, {
        "log_group_names": [group], "start_time": iso(now - 3_600_000), "lag_seconds": 1,
        "request_period_in_seconds": 1})
    path = tmp_path / "collector.yaml"
    path.write_text(yaml.safe_dump(raw))

    def put(message: str) -> None:
        logs.put_log_events(logGroupName=group, logStreamName="stream-0", logEvents=[
            {"timestamp": int(time.time() * 1000), "message": message}])
        sent.append(message)

    run = Collector(tmp_path, "--config", str(path))
    try:
        run.wait_until(lambda: len(relay.events(TABLE)) >= 100, 60, "the backfill")
        for i in range(5):  # new events, followed as they come
            put(f"live {i}")
            run.wait_until(lambda n=101 + i: len(relay.events(TABLE)) >= n, 30, f"live {i}")
        took = run.signal_and_wait(signal.SIGTERM, timeout=60)
    finally:
        if run.alive():
            run.proc.kill()
    assert run.proc.returncode == 0, run.stderr
    assert took < 20
    assert sorted(e["message"] for e in delivered(relay)) == sorted(sent)

    relay.reset()
    put("after the restart")
    time.sleep(1.5)  # past the lag
    collect(embedded_aws, relay, pki, tmp_path, raw["inputs"]["aws"]["services"][
        "cloudwatch-logs"])
    assert [e["message"] for e in delivered(relay)] == ["after the restart"]


def test_a_backfill_of_days_is_read_in_pieces_each_event_once(embedded_aws, relay, pki,
                                                               tmp_path):
    """Three days back: the range is cut into day-long pieces (which a runner may read in
    parallel); together they deliver each event once and leave one range done."""
    from awscollector.io.api import _ReadApiFn
    from awscollector.io.pullers import ApiStream

    logs = embedded_aws.client("logs")
    group = f"/{unique('days')}/app"
    now = int(time.time() * 1000)
    start = now - 3 * 86_400_000 - 3_600_000
    sent = fill_group(logs, group, 2000, start + 1000, (3 * 86_400_000) // 2000, streams=2)
    service = {"log_group_names": [group], "start_time": iso(start), "lag_seconds": 0}

    stream = ApiStream("cloudwatch-logs", "cloudwatch_logs", ACCOUNT, "us-east-1", group,
                       start, 0, 60.0)
    fn = _ReadApiFn({stream.key: stream}, None, FileCheckpoints(tmp_path / "state"),
                    follow=False, stop=None, bundle_seconds=5, max_pages_per_bundle=1,
                    log_level=None)
    pieces = list(fn.split(stream.key, fn.initial_restriction(stream.key)))
    assert len(pieces) >= 4  # a day each, the last one partial
    assert all(a.end == b.start for a, b in zip(pieces, pieces[1:], strict=False))

    collect(embedded_aws, relay, pki, tmp_path, service)
    assert sorted(e["message"] for e in delivered(relay)) == sorted(sent)
    saved = FileCheckpoints(tmp_path / "state").load(
        CheckpointKey("cloudwatch-logs", ACCOUNT, "us-east-1", group))
    assert len(saved["done"]) == 1 and saved["done"][0][0] == start
