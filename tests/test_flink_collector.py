"""The collector on a real Flink 1.19 session cluster, submitted as a user submits it.

JobManager, TaskManager, the Beam job server and the Python worker pool run as
separate processes (tests/flink_cluster.py); ``aws-collector run --runner
FlinkRunner --flink_master ...`` runs as a command against the embedded AWS and
relay of this process, with the job-server jar the collector supplies.
"""

from __future__ import annotations

import bisect
import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.flink_cluster import FlinkCluster, wait_until
from tests.vpc_helpers import ENV, queue_depth, raw_config, seed_objects, setup_queue

pytestmark = pytest.mark.slow

TABLE = "cloud.aws.vpc.flow"
CHECKPOINT_MS = 2000
VISIBILITY = 20  # short, so that what the killed TaskManager held comes back soon


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with FlinkCluster(tmp_path_factory.mktemp("flink"), slots=2) as c:
        yield c


def submit(cluster: FlinkCluster, aws, relay, pki, queue: str, workdir: Path,
           job_name: str) -> subprocess.Popen:
    """`aws-collector run` on the cluster, in streaming mode, with two readers."""
    raw = raw_config(aws, relay, pki, queue, workdir, readers=2)
    path = workdir / "collector.yaml"
    path.write_text(yaml.safe_dump(raw))
    cmd = [sys.executable, "-m", "awscollector", "run", "--config", str(path),
           "--sqs-visibility-timeout", str(VISIBILITY),
           "--runner", "FlinkRunner", f"--flink_master={cluster.flink_master}",
           "--environment_type=EXTERNAL", f"--environment_config={cluster.environment_config}",
           "--streaming", "--parallelism=2", f"--checkpointing_interval={CHECKPOINT_MS}",
           f"--job_name={job_name}"]
    log = open(workdir / "run.log", "w")  # noqa: SIM115 - the process keeps it
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **ENV})


def stop_run(proc: subprocess.Popen, cluster: FlinkCluster, job_name: str) -> int:
    """SIGTERM the submitting command, as an operator stops it; never leave the job."""
    try:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
        try:
            cluster.cancel_job(job_name)
        except Exception:
            pass


class RelayTimeline:
    """Samples the relay's total every 50 ms, to tell what arrived before a moment."""

    def __init__(self, relay) -> None:
        self.relay = relay
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.samples.append((time.time(), self.relay.total()))

    def total_at(self, when: float) -> int:
        times = [t for t, _ in self.samples]
        i = bisect.bisect_right(times, when) - 1
        return self.samples[i][1] if i >= 0 else 0

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def test_every_event_arrives_and_a_killed_taskmanager_loses_nothing(
        cluster, embedded_aws, relay, pki, tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    objects = seed_objects(embedded_aws, bucket, n=6, m=2000)  # before the run
    job = "collector-kill-test"
    timeline = RelayTimeline(relay)
    proc = submit(cluster, embedded_aws, relay, pki, queue, tmp_path, job)
    try:
        assert relay.wait_for_total(12_000, 300), (relay.total(), (tmp_path / "run.log")
                                                   .read_text()[-3000:])
        # While it runs: a steady stream of objects, and in the middle of it, kill -9.
        feeding = threading.Thread(target=lambda: objects.update(seed_objects(
            embedded_aws, bucket, n=40, m=1000, first=100, pause=0.25)))
        feeding.start()
        wait_until(lambda: relay.total() >= 12_000 + 8_000, 120, "events while feeding")
        checkpoints = cluster.checkpoints(job)["counts"]["completed"]
        assert checkpoints > 0
        # Kill while messages are in flight: received, and not deleted yet.
        sqs = embedded_aws.client("sqs")
        wait_until(lambda: int(sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]["ApproximateNumberOfMessagesNotVisible"]) > 0, 60, "messages in flight",
                   interval=0.05)
        killed_at = time.time()
        cluster.kill_taskmanager()
        last = cluster.checkpoints(job)["latest"]["completed"]
        covered_at = last["trigger_timestamp"] / 1000 if last else 0.0
        cluster.start_taskmanager()
        feeding.join()
        expected = collections.Counter(line for lines in objects.values() for line in lines)
        assert len(objects) == 46
        # What the killed attempt held comes back after the visibility timeout.
        wait_until(lambda: relay.total() >= sum(expected.values()), 300,
                   "every event after the kill")
        wait_until(lambda: queue_depth(embedded_aws, url) == 0, 120, "the queue drained")
        received = collections.Counter(relay.events(TABLE))
        assert not expected - received, f"{sum((expected - received).values())} events lost"
        duplicates = sum((received - expected).values())
        # Only what was delivered after the last checkpoint completed before the kill can
        # come again (its messages were not deleted), plus flushes broken by the kill.
        in_flight = timeline.total_at(killed_at) - timeline.total_at(covered_at - 1.0)
        print(f"kill: {duplicates} duplicates; {in_flight} events delivered since the "
              f"checkpoint of {covered_at:.1f} before the kill at {killed_at:.1f}")
        assert duplicates <= in_flight + 2 * 30_000
        jobs = cluster.rest(f"/jobs/{cluster.job(job)['jid']}")
        assert jobs["state"] == "RUNNING"
    finally:
        timeline.close()
        code = stop_run(proc, cluster, job)
    assert code == 0, (tmp_path / "run.log").read_text()[-3000:]


def test_sigterm_stops_the_job_and_deletes_every_delivered_message(
        cluster, embedded_aws, relay, pki, tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    objects = seed_objects(embedded_aws, bucket, n=8, m=1500)
    job = "collector-sigterm-test"
    proc = submit(cluster, embedded_aws, relay, pki, queue, tmp_path, job)
    try:
        assert relay.wait_for_total(12_000, 300), (tmp_path / "run.log").read_text()[-3000:]
        # The two readers run on the two subtasks, one each (Flink's metrics lag a little).
        jid = cluster.job(job)["jid"]
        poll = next(v for v in cluster.rest(f"/jobs/{jid}")["vertices"] if "Poll" in v["name"])

        def readers_per_subtask() -> list[int]:
            vertex = cluster.rest(f"/jobs/{jid}/vertices/{poll['id']}")
            return sorted(s["metrics"]["read-records"] for s in vertex["subtasks"])

        assert wait_until(lambda: readers_per_subtask() != [0, 0] and readers_per_subtask(),
                          60, "Flink's record counts") == [1, 1]
        # More objects, and SIGTERM while they are being collected.
        objects.update(seed_objects(embedded_aws, bucket, n=6, m=1500, first=50))
        wait_until(lambda: relay.total() > 12_000, 60, "the second batch begins")
    finally:
        code = stop_run(proc, cluster, job)
    log = (tmp_path / "run.log").read_text()
    assert code == 0, log[-3000:]
    assert f"Flink job {job} stopped" in log  # with a savepoint, not cancelled
    assert cluster.job(job)["state"] == "FINISHED"
    # Whatever the relay got, its message was deleted; the rest is still in the queue.
    received = set(relay.events(TABLE))
    delivered_objects = {o for o, lines in objects.items() if set(lines) <= received}
    partly = {o for o, lines in objects.items() if set(lines) & received} - delivered_objects
    assert not partly, f"objects delivered in part: {sorted(partly)}"
    assert queue_depth(embedded_aws, url) == len(objects) - len(delivered_objects)
    assert "delivered" in log and str(len(relay.events(TABLE))) in log  # the summary


def test_event_services_on_flink_until_idle(cluster, embedded_aws, relay, pki, tmp_path):
    """service-events-all and sqs-cloudwatch-consumer run on Flink as on the DirectRunner:
    each event once, in its table, every message deleted; --until-idle ends the job."""
    import json

    from awscollector.embedded.config import embedded_config
    from awscollector.embedded.seed import (
        asff_findings,
        create_event_queue,
        ec2_state_change_events,
        put_events,
        securityhub_findings_event,
    )
    from tests.vpc_helpers import unique

    events = embedded_aws.client("events")
    sqs = embedded_aws.client("sqs")
    names = {"service-events-all": unique("events"), "sqs-cloudwatch-consumer": unique("sh")}
    urls = {service: create_event_queue(events, sqs, name, service)
            for service, name in names.items()}
    try:
        ec2 = put_events(events, ec2_state_change_events(30, seed=11))
        found = asff_findings(40, seed=12)
        put_events(events, [securityhub_findings_event(found[:20], seed=12),
                            securityhub_findings_event(found[20:], seed=13)])
        raw = embedded_config(embedded_aws.endpoint_url, relay.port, pki, tmp_path, "-",
                              services={s: {"sqs_queue_name": n} for s, n in names.items()})
        path = tmp_path / "collector.yaml"
        path.write_text(yaml.safe_dump(raw))
        done = subprocess.run(
            [sys.executable, "-m", "awscollector", "run", "--config", str(path),
             "--until-idle", "--idle-seconds", "3", "--runner", "FlinkRunner",
             f"--flink_master={cluster.flink_master}", "--environment_type=EXTERNAL",
             f"--environment_config={cluster.environment_config}", "--parallelism=2",
             f"--checkpointing_interval={CHECKPOINT_MS}", "--job_name=collector-events-test"],
            capture_output=True, text=True, timeout=300, env={**os.environ, **ENV})
    finally:
        for rule in events.list_rules()["Rules"]:  # other tests' events stay theirs
            if rule["Name"].startswith(tuple(names.values())):
                events.remove_targets(Rule=rule["Name"], Ids=["sqs"])
                events.delete_rule(Name=rule["Name"])
    assert done.returncode == 0, done.stderr[-3000:]
    got = [json.loads(e) for e in relay.events("cloud.aws.cloudwatch.events")]
    assert sorted(e["id"] for e in got if e["source"] == "aws.ec2") == sorted(ec2)
    assert sorted(json.loads(e)["Id"] for e in relay.events("cloud.aws.securityhub.findings")
                  ) == sorted(f["Id"] for f in found)
    for url in urls.values():
        assert queue_depth(embedded_aws, url) == 0


LOGS_TABLE = "cloud.aws.cloudwatch.logs"
ACCOUNT = "123456789012"  # the account moto's STS answers


def logs_run_cmd(cluster: FlinkCluster, aws, relay, pki, workdir: Path, service: dict,
                 job_name: str, *extra: str, checkpoint_ms: int = CHECKPOINT_MS) -> list[str]:
    """`aws-collector run` of cloudwatch-logs on the cluster, parallelism 2."""
    from awscollector.embedded.config import embedded_config

    raw = embedded_config(aws.endpoint_url, relay.port, pki, workdir, "-",
                          services={"cloudwatch-logs": service})
    path = workdir / "collector.yaml"
    path.write_text(yaml.safe_dump(raw))
    return [sys.executable, "-m", "awscollector", "run", "--config", str(path), *extra,
            "--runner", "FlinkRunner", f"--flink_master={cluster.flink_master}",
            "--environment_type=EXTERNAL", f"--environment_config={cluster.environment_config}",
            "--parallelism=2", f"--checkpointing_interval={checkpoint_ms}",
            f"--job_name={job_name}"]


def group_checkpoint(workdir: Path, group: str) -> dict | None:
    from awscollector.io.checkpoints import CheckpointKey, FileCheckpoints

    return FileCheckpoints(workdir / "state").load(
        CheckpointKey("cloudwatch-logs", ACCOUNT, "us-east-1", group))


def test_cloudwatch_logs_on_flink_until_idle(cluster, embedded_aws, relay, pki, tmp_path):
    """A backfill of several groups on Flink: each event once, each group's checkpoint
    covers the range, and --until-idle ends the job on its own."""
    from tests.test_logs_pipeline import fill_group, iso
    from tests.vpc_helpers import unique

    logs = embedded_aws.client("logs")
    prefix = f"/{unique('flink')}/"
    now = int(time.time() * 1000)
    start = now - 5 * 3_600_000
    groups = [prefix + name for name in ("api", "worker", "cron", "batch")]
    expected = collections.Counter()
    for i, group in enumerate(groups):  # 3000 events over four hours, from start on
        expected.update(fill_group(logs, group, 3000, start + 1000 + i, 4_800))
    service = {"log_group_prefixes": [prefix], "start_time": iso(start), "lag_seconds": 0}
    begun = int(time.time() * 1000)
    t0 = time.monotonic()
    done = subprocess.run(
        logs_run_cmd(cluster, embedded_aws, relay, pki, tmp_path, service,
                     "collector-logs-idle-test", "--until-idle", "--idle-seconds", "3"),
        capture_output=True, text=True, timeout=600, env={**os.environ, **ENV})
    took = time.monotonic() - t0
    assert done.returncode == 0, done.stderr[-3000:]
    received = collections.Counter(json.loads(e)["message"] for e in relay.events(LOGS_TABLE))
    lost, extra = expected - received, received - expected
    print(f"cloudwatch-logs until idle on Flink: {sum(received.values())} events of "
          f"{sum(expected.values())} in {took:.1f}s; {sum(lost.values())} lost, "
          f"{sum(extra.values())} duplicated or unknown")
    assert not lost and not extra
    assert "every queue idle" in done.stderr
    for group in groups:
        saved = group_checkpoint(tmp_path, group)
        assert saved is not None and saved["open"] == [], (group, saved)
        (covered,) = saved["done"]
        assert covered[0] <= start + 1000 and covered[1] >= begun, (group, covered)


def logs_received(relay, since: int = 0) -> collections.Counter:
    """The messages of the log events at the relay (after its first ``since``)."""
    return collections.Counter(json.loads(e)["message"]
                               for e in relay.events(LOGS_TABLE)[since:])


class LogFeeder:
    """Puts events into log groups continuously, timestamped now, until stopped."""

    # Ahead of now: with lag_seconds 0 an event stamped t and put a few ms later races a
    # read that ends at t (CloudWatch's ingestion delay is what the lag is for); stamped
    # this far ahead, every event is in the API before the collector reads its time.
    AHEAD_MS = 1000

    def __init__(self, aws, groups: list[str], per_put: int = 10, pause: float = 0.1) -> None:
        self.fed: dict[str, list[tuple[int, str]]] = {g: [] for g in groups}
        self._logs = aws.client("logs")
        self._per_put, self._pause = per_put, pause
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(self._pause):
            ts = int(time.time() * 1000) + self.AHEAD_MS
            for group, fed in self.fed.items():
                events = [{"timestamp": ts, "message": f"{group} {n + k}"}
                          for k in range(self._per_put)]
                self._logs.put_log_events(logGroupName=group, logStreamName="feed",
                                          logEvents=events)
                fed += [(ts, e["message"]) for e in events]
            n += self._per_put

    def messages(self) -> collections.Counter:
        return collections.Counter(m for fed in list(self.fed.values()) for _, m in fed)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def test_cloudwatch_logs_following_now_loses_nothing_when_a_taskmanager_dies(
        cluster, embedded_aws, relay, pki, tmp_path):
    """A streaming job following three groups; kill -9 of the TaskManager while events
    flow: nothing lost, duplicates only from after the last completed Flink checkpoint;
    and the stream checkpoints moved on Flink, so a later run sends nothing again."""
    from tests.test_logs_pipeline import iso
    from tests.vpc_helpers import unique

    logs = embedded_aws.client("logs")
    prefix = f"/{unique('follow')}/"
    groups = [prefix + name for name in ("api", "worker", "cron")]
    for group in groups:
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="feed")
    service = {"log_group_prefixes": [prefix], "start_time": iso(int(time.time() * 1000)),
               "lag_seconds": 0, "request_period_in_seconds": 1}
    job = "collector-logs-kill-test"
    timeline = RelayTimeline(relay)
    feeder = LogFeeder(embedded_aws, groups)
    log = open(tmp_path / "run.log", "w")  # noqa: SIM115 - the process keeps it
    # Checkpoints 6 s apart, and the kill 3 s or more after one: what was read since is
    # read again after the restore.
    proc = subprocess.Popen(logs_run_cmd(cluster, embedded_aws, relay, pki, tmp_path, service,
                                         job, checkpoint_ms=6000),
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **ENV})
    try:
        wait_until(lambda: relay.total() >= 3000, 300, "events before the kill")
        wait_until(lambda: cluster.checkpoints(job)["counts"]["completed"] >= 2, 60,
                   "Flink checkpoints")

        def since_checkpoint() -> float:
            last = cluster.checkpoints(job)["latest"]["completed"]
            return time.time() - last["trigger_timestamp"] / 1000

        wait_until(lambda: 3.0 <= since_checkpoint() <= 4.0, 60, "3 s after a checkpoint",
                   interval=0.1)
        kill_from = time.time()
        cluster.kill_taskmanager()
        killed_at = time.time()
        last = cluster.checkpoints(job)["latest"]["completed"]
        covered_at = last["trigger_timestamp"] / 1000
        before_kill = relay.total()
        cluster.start_taskmanager()
        # Keep feeding until the restored job has delivered a good deal more.
        wait_until(lambda: relay.total() >= before_kill + 3000, 300, "events after the kill")
        feeder.stop()
        expected = feeder.messages()
        try:
            wait_until(lambda: not expected - logs_received(relay),
                       300, "every fed event at the relay")
        except TimeoutError:
            missing = expected - logs_received(relay)
            raise AssertionError(f"{sum(missing.values())} events lost: " + "; ".join(
                f"{g}: {len(ts)} stamped {min(ts) / 1000 - killed_at:.1f}s to "
                f"{max(ts) / 1000 - killed_at:.1f}s after the kill" for g, ts in (
                    (g, [t for t, m in fed if m in missing]) for g, fed in feeder.fed.items())
                if ts) + f" (checkpoint {covered_at - killed_at:.1f}s)") from None
        assert cluster.job(job)["state"] == "RUNNING"
    finally:
        feeder.stop()
        timeline.close()
        code = stop_run(proc, cluster, job)
    assert code == 0, (tmp_path / "run.log").read_text()[-3000:]
    received = logs_received(relay)
    assert not expected - received
    assert set(received) == set(expected)  # nothing but what was fed
    duplicates = sum((received - expected).values())
    # A restored job reads again what it read after the checkpoint it restores.
    in_flight = timeline.total_at(killed_at) - timeline.total_at(covered_at - 1.0)
    since = timeline.total_at(kill_from) - timeline.total_at(covered_at)
    print(f"logs kill: {sum(expected.values())} events fed, {duplicates} duplicates; "
          f"{since} events delivered from the checkpoint of {covered_at:.1f} to the kill at "
          f"{kill_from:.1f} ({in_flight} from a second before it)")
    assert duplicates <= in_flight

    # Each group's checkpoint moved on Flink: a run from the same state sends nothing again
    # but what its last page held.
    ends = {g: group_checkpoint(tmp_path, g)["done"][-1][1] for g in groups}
    sent_before = len(relay.events(LOGS_TABLE))
    done = subprocess.run(
        [sys.executable, "-m", "awscollector", "run", "--config",
         str(tmp_path / "collector.yaml"), "--until-idle", "--idle-seconds", "1"],
        capture_output=True, text=True, timeout=300, env={**os.environ, **ENV})
    assert done.returncode == 0, done.stderr[-3000:]
    again = logs_received(relay, sent_before)
    print(f"logs kill: the next run sent {sum(again.values())} events again; checkpoints end "
          f"{[round(time.time() - e / 1000, 1) for e in ends.values()]} s before now")
    assert set(again) <= set(expected)
    for group, fed in feeder.fed.items():
        resent = sorted((ts, m) for ts, m in fed if m in again)
        # Exactly what the checkpoint had not covered yet ...
        assert resent == sorted((ts, m) for ts, m in fed if ts >= ends[group])
        # ... which is at most the group's last page: one request period of events.
        last_ts = max(ts for ts, _ in fed)
        assert all(ts > last_ts - 1000 * service["request_period_in_seconds"] - 1000
                   for ts, _ in resent), group
