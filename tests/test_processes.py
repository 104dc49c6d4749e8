"""`aws-collector run --processes N`: N pipelines as OS processes on one config.

The runs go through the real command (`python -m awscollector run ...`), the
embedded AWS and the TLS relay. What is checked is what an operator sees: one
summary, exit codes, each line once at the relay (or, after a crash, at least
once), empty queues, and log lines that say which process wrote them.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from awscollector.io.checkpoints import CheckpointKey, FileCheckpoints
from awscollector.io.pullers import ApiStream
from awscollector.pipelines.api_services import share_streams
from awscollector.pipelines.processes import (
    PROCESSES_VARIABLE,
    default_processes,
    direct_runner,
    exit_code,
    merge_rows,
    usable_cores,
)
from tests.test_logs_pipeline import ACCOUNT, fill_group, iso, logs_config
from tests.test_logs_pipeline import TABLE as LOGS_TABLE
from tests.vpc_helpers import (
    ENV,
    queue_depth,
    raw_config,
    run_cli,
    seed_objects,
    setup_queue,
    unique,
)

TABLE = "cloud.aws.vpc.flow"
# The supervisor's statistics line once both processes' events are counted: 6 objects
# (and the s3:TestEvent, skipped), 1200 events.
STATS_1200 = re.compile(r"\d INFO awscollector\.io\.stats: stats non-cloudwatch-logs us-east-1: "
                        r"messages=\d+ objects=6 bytes=\S+ events=1200 "
                        r"\(cloud\.aws\.vpc\.flow=1200\) dead_lettered=0 ")
SUMMARY_TOTAL = re.compile(r"^total: (\d+) delivered, (\d+) dead-lettered$", re.MULTILINE)
GET_OBJECT = re.compile(r" DEBUG (process=\d/2) awscollector\.io\.\w+: s3 GetObject s3://",
                        re.MULTILINE)
RECEIVE = re.compile(r" DEBUG (process=\d/2) awscollector\.io\.sqs: sqs ReceiveMessage ",
                     re.MULTILINE)


# ---------------------------------------------------------------------------- helpers


class Run:
    """`aws-collector run --processes 2 ...` in the background; output to files.
    With ``default=True``, `run` without --processes nor AWS_COLLECTOR_PROCESSES: a
    process per core."""

    def __init__(self, workdir: Path, *args: str, default: bool = False) -> None:
        self.out_path, self.err_path = workdir / "run.out", workdir / "run.err"
        env = {**os.environ, **ENV}
        if default:
            del env[PROCESSES_VARIABLE]
        processes = [] if default else ["--processes", "2"]
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "awscollector", "run", *processes, *args],
                stdout=out, stderr=err, env=env)

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def children(self) -> list[int]:
        """The pids of the collector processes (this process's children)."""
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]

    def wait_until(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.proc.poll() is None, (
                f"the run exited ({self.proc.returncode}) while waiting for {what}:\n"
                f"{self.stderr[-3000:]}")
            assert time.monotonic() < deadline, f"timed out waiting for {what}:\n" \
                                                f"{self.stderr[-3000:]}"
            time.sleep(0.1)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running after {timeout}s:\n{self.stderr[-3000:]}")

    def stop(self) -> None:
        """Test cleanup: nothing left running."""
        for pid in self.children():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _summary_total(stdout: str) -> tuple[int, int]:
    found = SUMMARY_TOTAL.findall(stdout)
    assert len(found) == 1, f"no single summary total in:\n{stdout}"
    return int(found[0][0]), int(found[0][1])


def _all_lines(objects: dict[int, list[str]]) -> list[str]:
    return [line for lines in objects.values() for line in lines]


def _write(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw))
    return path


def _debug_config(aws, relay, pki, queue: str, workdir: Path) -> Path:
    raw = raw_config(aws, relay, pki, queue, workdir)
    raw["globals"]["debug"] = True  # the SQS and S3 lines say which process read what
    return _write(workdir / "collector.yaml", raw)


def _not_visible(aws, url: str) -> int:
    attrs = aws.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessagesNotVisible"])


def _free_port() -> int:
    """A free port below the ephemeral range (where the runs' own connections would
    take ports meanwhile)."""
    for _ in range(100):
        port = random.randrange(20000, 30000)
        try:
            with socket.socket() as s:
                s.bind(("0.0.0.0", port))
            return port
        except OSError:
            continue
    raise AssertionError("no free port")


def _events_served(port: int) -> float:
    """The events a process's metrics endpoint says it delivered."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    found = re.findall(r"^awscollector_events_delivered_total\{[^}]*\} (\S+)$", text, re.MULTILINE)
    assert "awscollector_" in text
    return sum(float(n) for n in found)


def _streams(groups: list[str]) -> list[ApiStream]:
    """The streams of log groups, as the cloudwatch-logs service lists them."""
    return [ApiStream("cloudwatch-logs", "cloudwatch_logs", ACCOUNT, "us-east-1", group, 0, 0,
                      1.0) for group in groups]


# ---------------------------------------------------------------------------- units


def test_streams_are_split_deterministically_disjoint_and_covering():
    streams = _streams([f"/app/group-{i}" for i in range(60)])
    keys = [s.key for s in streams]
    for count in (1, 2, 3, 4):
        shares = [share_streams(streams, i, count) for i in range(count)]
        assert shares == [share_streams(streams, i, count) for i in range(count)]
        taken = [s.key for share in shares for s in share]
        assert sorted(taken) == sorted(keys)  # covering, and disjoint: none twice
        assert all(shares), f"an empty share of 60 streams among {count}"
    assert share_streams(streams, 0, 1) == streams

    # The same split in another process (Python's hash() would differ there).
    code = ("from tests.test_processes import _streams; "
            "from awscollector.pipelines.api_services import share_streams; "
            "print([s.stream for s in share_streams("
            "_streams([f'/app/group-{i}' for i in range(60)]), 1, 3)])")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={**os.environ, "PYTHONHASHSEED": "12345"}, check=True)
    assert other.stdout.strip() == str([s.stream for s in share_streams(streams, 1, 3)])


def test_summary_rows_are_summed_per_service_region_and_table():
    first = [("non-cloudwatch-logs", "us-east-1", TABLE, 10, 1),
             ("custom-s3.app", "eu-west-1", "-", 0, 0)]
    second = [("non-cloudwatch-logs", "us-east-1", TABLE, 5, 2),
              ("custom-s3.app", "eu-west-1", "my.app.web", 7, 0),
              ("cloudwatch-logs", "us-east-1", LOGS_TABLE, 0, 0)]
    assert merge_rows([first, second]) == [
        ("non-cloudwatch-logs", "us-east-1", TABLE, 15, 3),
        ("custom-s3.app", "eu-west-1", "my.app.web", 7, 0),  # the "-" row of 0 dropped
        ("cloudwatch-logs", "us-east-1", LOGS_TABLE, 0, 0),  # alone: kept
    ]


def test_exit_codes_of_children():
    assert exit_code(0, stopping=False) == 0
    assert exit_code(1, stopping=False) == 1
    assert exit_code(2, stopping=True) == 2
    assert exit_code(-signal.SIGKILL, stopping=False) == 1
    assert exit_code(-signal.SIGTERM, stopping=True) == 0
    assert exit_code(3, stopping=False) == 1


def test_processes_must_be_at_least_1(pki, tmp_path):
    done = subprocess.run([sys.executable, "-m", "awscollector", "run", "--config", "x.yaml",
                           "--processes", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--processes: 0 is not 1 or more" in done.stderr


def test_processes_refuses_flink_before_starting_any(pki, tmp_path):
    raw = raw_config(SimpleNamespace(endpoint_url="http://127.0.0.1:9"), SimpleNamespace(port=9),
                     pki, "q", tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "awscollector", "run", "--config",
         str(_write(tmp_path / "c.yaml", raw)), "--processes", "2", "--runner", "FlinkRunner",
         "--flink_master", "127.0.0.1:9", "--environment_type=LOOPBACK",
         "--flink_job_server_jar=/nonexistent.jar"],
        capture_output=True, text=True, timeout=60, env={**os.environ, **ENV})
    assert done.returncode == 2
    assert done.stderr.count("aws-collector run: --processes is for the DirectRunner") == 1
    assert "process=" not in done.stderr  # no child started
    assert done.stdout == ""


@pytest.mark.parametrize("args, says", [
    (("--bogus_option=1",), "RUN-004 unknown option(s): --bogus_option"),
    (("--config-is-missing",), "CFG-"),
], ids=["unknown-beam-option", "missing-config"])
def test_an_error_every_process_has_is_said_once(pki, tmp_path, args, says):
    raw = raw_config(SimpleNamespace(endpoint_url="http://127.0.0.1:9"), SimpleNamespace(port=9),
                     pki, "q", tmp_path)
    config = str(_write(tmp_path / "c.yaml", raw))
    if args == ("--config-is-missing",):
        config, args = str(tmp_path / "missing.yaml"), ()
    done = subprocess.run(
        [sys.executable, "-m", "awscollector", "run", "--config", config, "--processes", "2",
         *args], capture_output=True, text=True, timeout=90, env={**os.environ, **ENV})
    assert done.returncode == 2, done.stderr
    assert done.stderr.count(says) == 1, done.stderr  # both children had it; said once
    assert re.search(r"process=\d/2 exited with 2", done.stderr)
    assert done.stdout == ""


def test_the_default_is_a_process_per_core_on_the_direct_runner(monkeypatch):
    monkeypatch.delenv(PROCESSES_VARIABLE, raising=False)
    assert default_processes() == usable_cores() == len(os.sched_getaffinity(0))
    monkeypatch.setenv(PROCESSES_VARIABLE, "3")
    assert default_processes() == 3
    for bad in ("0", "-1", "two", "1.5"):
        monkeypatch.setenv(PROCESSES_VARIABLE, bad)
        with pytest.raises(ValueError, match=PROCESSES_VARIABLE):
            default_processes()
    assert direct_runner([])
    assert direct_runner(["--runner", "DirectRunner", "--streaming"])
    assert direct_runner(["--runner=direct"])
    assert direct_runner(["--runner=apache_beam.runners.direct.direct_runner.DirectRunner"])
    assert not direct_runner(["--runner=FlinkRunner", "--flink_master=h:8081"])
    assert not direct_runner(["--runner", "PortableRunner"])


def test_a_bad_processes_variable_is_a_usage_error(pki, tmp_path):
    done = subprocess.run([sys.executable, "-m", "awscollector", "run", "--config", "x.yaml"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, PROCESSES_VARIABLE: "zero"})
    assert done.returncode == 2
    assert "AWS_COLLECTOR_PROCESSES='zero' is not a whole number of 1 or more" in done.stderr


# ---------------------------------------------------------------------------- runs


@pytest.mark.skipif(usable_cores() != 2, reason="a process per core: two on this machine")
def test_by_default_a_process_per_core_delivers_each_line_once(embedded_aws, relay, pki,
                                                               tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    path = _debug_config(embedded_aws, relay, pki, queue, tmp_path)
    run = Run(tmp_path, "--config", str(path), "--until-idle", "--idle-seconds", "5",
              default=True)
    try:
        # Both processes poll before the objects arrive, so that both get some.
        run.wait_until(lambda: len(set(RECEIVE.findall(run.stderr))) == 2, 90,
                       "both processes polling")
        objects = seed_objects(embedded_aws, bucket, n=20, m=100)
        code = run.wait(120)
    finally:
        run.stop()

    assert code == 0, run.stderr[-3000:]
    expected = _all_lines(objects)
    received = relay.events(TABLE)
    assert sorted(received) == sorted(expected)  # every line, once
    assert queue_depth(embedded_aws, url) == 0
    assert _summary_total(run.stdout) == (len(expected), 0)
    assert run.stdout.count("Devo table") == 1  # one summary
    assert "started 2 collector processes" in run.stderr
    reads = GET_OBJECT.findall(run.stderr)
    assert len(reads) == 20
    assert set(reads) == {"process=1/2", "process=2/2"}, "one process did all the work"
    assert sum(tag == "process=1/2" for tag in reads) < 20


def test_streaming_two_processes_stop_on_sigterm_with_everything_delivered(
        embedded_aws, relay, pki, tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    raw = raw_config(embedded_aws, relay, pki, queue, tmp_path)
    raw["globals"]["stats_interval_seconds"] = 1
    path = _write(tmp_path / "collector.yaml", raw)
    port = _free_port()
    run = Run(tmp_path, "--config", str(path), "--metrics-port", str(port))  # until stopped
    try:
        run.wait_until(lambda: queue_depth(embedded_aws, url) == 0, 90, "the s3:TestEvent")
        run.wait_until(lambda: len(run.children()) == 2, 10, "two processes")
        objects = seed_objects(embedded_aws, bucket, n=6, m=200)
        run.wait_until(lambda: relay.total() >= 1200, 60, "the 1200 events")
        # One endpoint, the supervisor's: the sum of both processes' counts.
        run.wait_until(lambda: _events_served(port) == 1200, 30,
                       "the metrics to count the 1200 events")
        # One statistics stream too: the supervisor's lines (untagged), the sums.
        run.wait_until(lambda: STATS_1200.search(run.stderr), 30,
                       "a statistics line with the 1200 events")
        run.proc.send_signal(signal.SIGTERM)
        code = run.wait(45)
    finally:
        run.stop()

    assert code == 0, run.stderr[-3000:]
    expected = _all_lines(objects)
    assert sorted(relay.events(TABLE)) == sorted(expected)
    assert _summary_total(run.stdout) == (len(expected), 0)
    assert queue_depth(embedded_aws, url) == 0
    assert not re.search(r"process=\d/2 awscollector\.io\.stats", run.stderr), (
        "a process reported on its own")
    # Each process was told to stop, and ended its run.
    for tag in ("process=1/2", "process=2/2"):
        assert len(re.findall(rf" INFO {tag} awscollector: signal 15: stop polling",
                              run.stderr)) == 1
        assert re.search(rf" INFO {tag} awscollector: peak memory", run.stderr)


def test_kill_9_of_one_process_fails_the_run_and_a_rerun_loses_nothing(
        embedded_aws, relay, pki, tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    objects = seed_objects(embedded_aws, bucket, n=24, m=3000)
    expected = _all_lines(objects)
    path = _debug_config(embedded_aws, relay, pki, queue, tmp_path)
    run = Run(tmp_path, "--config", str(path), "--until-idle", "--idle-seconds", "2",
              "--sqs-visibility-timeout", "5")
    try:
        run.wait_until(lambda: len(run.children()) == 2, 30, "two processes")
        run.wait_until(lambda: relay.total() > 0, 120, "the first events")
        victim = run.children()[0]
        os.kill(victim, signal.SIGKILL)  # no handler, no cleanup
        code = run.wait(90)
    finally:
        run.stop()

    assert code == 1, run.stderr[-3000:]
    assert re.search(r"process=\d/2 killed by signal 9: stopping the other processes",
                     run.stderr), run.stderr[-3000:]
    assert run.stdout == ""  # a failed run prints no summary
    # The other one was stopped (SIGTERM) and ended its run: it delivered what it held.
    assert len(re.findall(r" INFO process=\d/2 awscollector: signal 15: stop polling",
                          run.stderr)) == 1
    assert len(re.findall(r" INFO process=\d/2 awscollector: peak memory", run.stderr)) == 1
    at_failure = relay.total()
    assert 0 < at_failure < len(expected), "not killed mid-way"

    # What the killed process held comes back after its visibility timeout.
    deadline = time.monotonic() + 30
    while _not_visible(embedded_aws, url) and time.monotonic() < deadline:
        time.sleep(0.2)
    done = run_cli(path)
    assert done.returncode == 0, done.stderr[-3000:]
    received = relay.events(TABLE)
    missing = set(expected) - set(received)
    assert not missing, f"{len(missing)} lines lost"
    assert queue_depth(embedded_aws, url) == 0
    unexpected = set(received) - set(expected)
    assert len(unexpected) <= 1, sorted(unexpected)[:3]  # a line cut by the kill, at most
    duplicates = len(received) - len(set(received))
    print(f"\nkill -9 of one of 2 processes after {at_failure} of {len(expected)} events; "
          f"rerun: {_summary_total(done.stdout)[0]} delivered; {duplicates} duplicates")


def test_api_streams_are_shared_among_the_processes(embedded_aws, relay, pki, tmp_path):
    logs = embedded_aws.client("logs")
    # Group names whose streams fall to both processes (a stable hash decides).
    while True:
        prefix = f"/{unique('procs')}/"
        groups = [f"{prefix}g{i}" for i in range(6)]
        if all(share_streams(_streams(groups), i, 2) for i in range(2)):
            break
    now = int(time.time() * 1000)
    start = now - 2 * 3_600_000
    expected = []
    for group in groups:
        expected += fill_group(logs, group, 200, start + 1000, 20_000)
    raw = logs_config(embedded_aws, relay, pki, tmp_path, {
        "log_group_prefixes": [prefix], "start_time": iso(start), "lag_seconds": 0})
    path = _write(tmp_path / "collector.yaml", raw)

    done = subprocess.run(
        [sys.executable, "-m", "awscollector", "run", "--config", str(path), "--processes",
         "2", "--until-idle", "--idle-seconds", "1"],
        capture_output=True, text=True, timeout=180, env={**os.environ, **ENV})

    assert done.returncode == 0, done.stderr[-3000:]
    messages = [json.loads(line)["message"] for line in relay.events(LOGS_TABLE)]
    assert sorted(messages) == sorted(expected)  # each event once: no group read twice
    assert _summary_total(done.stdout) == (len(expected), 0)
    store = FileCheckpoints(tmp_path / "state")
    for group in groups:
        saved = store.load(CheckpointKey("cloudwatch-logs", ACCOUNT, "us-east-1", group))
        assert saved is not None and saved["open"] == [], group


@pytest.mark.parametrize("until_idle", [True, False], ids=["until-idle", "until-stopped"])
def test_a_process_whose_share_is_empty_does_not_end_the_run(embedded_aws, relay, pki,
                                                             tmp_path, until_idle):
    """One log group, two processes (a run's default here): one has nothing to read."""
    prefix = f"/{unique('alone')}/"
    now = int(time.time() * 1000)
    start = now - 3_600_000
    expected = fill_group(embedded_aws.client("logs"), f"{prefix}only", 300, start + 1000,
                          10_000)
    raw = logs_config(embedded_aws, relay, pki, tmp_path, {
        "log_group_prefixes": [prefix], "start_time": iso(start), "lag_seconds": 0})
    path = _write(tmp_path / "collector.yaml", raw)
    args = ["--until-idle", "--idle-seconds", "1"] if until_idle else []

    run = Run(tmp_path, "--config", str(path), *args)
    try:
        if not until_idle:
            run.wait_until(lambda: relay.total() >= len(expected), 90, "the 300 events")
            time.sleep(2)  # the processes keep running, with nothing new to read
            assert run.proc.poll() is None, run.stderr[-3000:]
            run.proc.send_signal(signal.SIGTERM)
        code = run.wait(120)
    finally:
        run.stop()

    assert code == 0, run.stderr[-3000:]
    messages = [json.loads(line)["message"] for line in relay.events(LOGS_TABLE)]
    assert sorted(messages) == sorted(expected)
    assert _summary_total(run.stdout) == (len(expected), 0)


def test_processes_stop_and_deliver_when_their_supervisor_is_killed(embedded_aws, relay, pki,
                                                                   tmp_path):
    """kill -9 of the parent: each child gets a SIGTERM from the kernel (not left running
    with nobody to stop it), delivers what it holds and ends."""
    bucket, queue, url = setup_queue(embedded_aws)
    path = _debug_config(embedded_aws, relay, pki, queue, tmp_path)
    run = Run(tmp_path, "--config", str(path))  # streaming: only a signal ends it
    try:
        run.wait_until(lambda: queue_depth(embedded_aws, url) == 0, 90, "the s3:TestEvent")
        children = run.children()
        assert len(children) == 2
        objects = seed_objects(embedded_aws, bucket, n=4, m=200)
        run.wait_until(lambda: relay.total() >= 800, 60, "the 800 events")
        run.proc.kill()
        run.proc.wait(timeout=10)
        deadline = time.monotonic() + 45
        while any(Path(f"/proc/{pid}").exists() for pid in children):
            assert time.monotonic() < deadline, f"still running:\n{run.stderr[-3000:]}"
            time.sleep(0.2)
    finally:
        for pid in run.children():
            os.kill(pid, signal.SIGKILL)
        run.stop()

    both = {"process=1/2", "process=2/2"}
    assert set(re.findall(r" INFO (process=\d/2) awscollector: signal 15: stop polling",
                          run.stderr)) == both, run.stderr[-3000:]
    assert set(re.findall(r" INFO (process=\d/2) awscollector: peak memory",
                          run.stderr)) == both  # each ended its run
    assert sorted(relay.events(TABLE)) == sorted(_all_lines(objects))
    assert queue_depth(embedded_aws, url) == 0


def test_the_supervisor_loads_neither_beam_nor_the_config_models():
    """What the supervisor runs is importable without Beam or pydantic: it starts
    the children at once, and each loads them itself."""
    code = ("import sys, awscollector.cli, awscollector.pipelines.processes, "
            "awscollector.io.stats_files, awscollector.io.progress, "
            "awscollector.io.prometheus, awscollector.pipelines.summary; "
            "print(sorted(m for m in ('apache_beam', 'pydantic', 'awscollector.config') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "[]"
