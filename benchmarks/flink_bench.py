"""Benchmark: the collector on Flink, parallelism 1 and 2, beside the DirectRunner.

    .venv/bin/python benchmarks/flink_bench.py       # make bench-flink: 16 x 25,000 lines
    .venv/bin/python benchmarks/flink_bench.py --rounds 3 --workdir bench-out/flink

On one machine, with one of each: a Flink 1.19 session cluster this script
starts (flink/cluster.py, in its own state dir) and always stops, an embedded
AWS (moto's server in its own process) and an embedded Devo relay (TLS, counts
only). The same VPC Flow Logs objects (seeded as vpc_flow_bench.py seeds them)
go through three phases, each ``aws-collector run --until-idle`` with
``readers: 2``, on the queue announcing every object again:

* direct:   the DirectRunner, as vpc_flow_bench.py runs it;
* flink-p1: ``--runner FlinkRunner ... --parallelism 1``;
* flink-p2: the same with ``--parallelism 2``  (``--phases`` picks some).

Measured per phase: events the relay counted (more than expected are
at-least-once duplicates), wall (process start to exit), active (process
start to the relay having every event), the relay's first event (for Flink:
the job-submission overhead), events/s over active time, steady events/s
(first event to last) and MB/s; CPU seconds of the submitting process (wait4:
it and the children it waited for), of the TaskManager, of the SDK workers
(children of the worker pool, live ones from /proc and reaped ones from the
pool's cutime/cstime), of the rest of the cluster (JobManager, job server,
worker pool), of moto, of this process (the relay) and of everything else.

Checks (exit 1 if one fails): every event arrived, no line failed to parse, the
run exited 0, no message left in the queue, nothing dead-lettered, no Flink job
left running. Phases alternate order across rounds; best and median are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from process_tree import children, tree_pids
from vpc_flow_bench import (
    ENV,
    POLL_SECONDS,
    TABLE,
    Rates,
    Seeded,
    collector_config,
    dead_letter_lines,
    finish,
    format_rows,
    helper_pids,
    in_workdir,
    machine_busy_seconds,
    num,
    own_cpu_seconds,
    processes_cpu_seconds,
    queue_depth,
    rearm,
    seed,
    tail,
)

REPO = Path(__file__).resolve().parent.parent
CLUSTER = REPO / "flink" / "cluster.py"
PHASES = {"direct": None, "flink-p1": 1, "flink-p2": 2}  # name -> Flink parallelism
TICK = os.sysconf("SC_CLK_TCK")


# -- CPU seconds from /proc


def proc_stat(pid: int) -> tuple[float, float, str] | None:
    """(own CPU s, waited-for children's CPU s, start time) of pid, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the ")": state is [0], utime [11], stime [12], cutime [13], cstime [14].
    return ((int(fields[11]) + int(fields[12])) / TICK,
            (int(fields[13]) + int(fields[14])) / TICK, fields[19])


def descendants(pid: int) -> list[int]:
    return tree_pids(pid)[1:]


def alive(proc: dict) -> bool:
    st = proc_stat(proc["pid"])
    return st is not None and st[2] == proc["start_time"]


class ClusterCpu:
    """CPU seconds of the cluster's processes, read from the pids in its state file."""

    def __init__(self, state: dict) -> None:
        procs = state["processes"]
        self.taskmanager = procs["taskmanager"]
        self.pool = procs["worker-pool"]
        self.others = [procs["jobmanager"], procs["job-server"]]

    def workers(self) -> list[int]:
        return children(self.pool["pid"]) if alive(self.pool) else []

    def wait_workers_gone(self, timeout: float) -> bool:
        """Wait until the pool has reaped every SDK worker: their CPU is then all in
        its cutime/cstime, and a snapshot has no race with a reap."""
        deadline = time.monotonic() + timeout
        while self.workers():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def snapshot(self) -> dict[str, float]:
        def own(proc: dict) -> float:
            st = proc_stat(proc["pid"])
            return st[0] if st is not None and st[2] == proc["start_time"] else 0.0

        pool = proc_stat(self.pool["pid"]) or (0.0, 0.0, "")
        live = sum((proc_stat(pid) or (0.0,))[0] for pid in self.workers())
        return {"taskmanager": own(self.taskmanager), "workers": pool[1] + live,
                "rest": pool[0] + sum(own(p) for p in self.others)}


# -- the cluster


def cluster_script(command: str, state_dir: Path, *extra: str,
                   timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CLUSTER), command, "--state-dir", str(state_dir),
                           *extra], capture_output=True, text=True, timeout=timeout)


def rest(flink_master: str, path: str) -> dict:
    with urllib.request.urlopen(f"http://{flink_master}{path}", timeout=10) as r:
        return json.load(r)


def flink_job(flink_master: str, name: str) -> dict | None:
    """The newest Flink job of that name, with its checkpoint counts, or None."""
    jobs = [j for j in rest(flink_master, "/jobs/overview")["jobs"] if j["name"] == name]
    if not jobs:
        return None
    job = rest(flink_master, f"/jobs/{max(jobs, key=lambda j: j['start-time'])['jid']}")
    job["checkpoints"] = rest(flink_master, f"/jobs/{job['jid']}/checkpoints")["counts"]
    return job


def running_jobs(flink_master: str) -> list[dict]:
    return [j for j in rest(flink_master, "/jobs/overview")["jobs"]
            if j["state"] not in ("FINISHED", "FAILED", "CANCELED")]


LOG_PROBLEM = re.compile(r"\b(ERROR|SEVERE|Traceback)\b|Exception\b|Error\b")
# Stack frames, INFO lines that name a class, and Beam's import-time apitools warning.
KNOWN_NOISE = re.compile(r"^\s+at |\bINFO\b|apitools not found")


def log_problems(state_dir: Path, limit: int = 6) -> list[str]:
    """Per cluster log: how many lines name an error, and the first few distinct ones."""
    out = []
    for path in sorted((state_dir / "logs").glob("*.log")):
        seen: dict[str, int] = {}
        for line in path.read_text(errors="replace").splitlines():
            if LOG_PROBLEM.search(line) and not KNOWN_NOISE.search(line):
                # Timestamps and ids differ: group by the text after them.
                key = re.sub(r"^[\d\-:, .]+", "", line)[:160]
                seen[key] = seen.get(key, 0) + 1
        if seen:
            out.append(f"{path.name}: {sum(seen.values())} lines")
            out += [f"    {n}x {text}" for text, n in list(seen.items())[:limit]]
    return out


# -- measuring one phase


@dataclass
class Phase(Rates):
    phase: str
    round: int
    expected: int
    received: int
    exit_code: int
    wall: float
    active: float | None
    first_event: float | None
    first_count: int
    uncompressed_bytes: int
    submit_cpu: float  # wait4: the process and the children it waited for
    submit_children_cpu: float  # its children (Flink: Beam's job server JVM), polled
    taskmanager_cpu: float
    workers_cpu: float
    workers: int  # SDK worker processes seen during the phase
    cluster_rest_cpu: float  # JobManager, the cluster's job server, the worker pool
    moto_cpu: float | None
    relay_cpu: float
    other_cpu: float | None
    queue_left: int = 0
    flink: dict = field(default_factory=dict)  # job timestamps, checkpoints

    @property
    def duplicates(self) -> int:
        return max(0, self.received - self.expected)


def measure(name: str, round_: int, cmd: list[str], relay, seeded: Seeded, cpu: ClusterCpu,
            log_path: Path, timeout: float) -> tuple[Phase, float]:
    """Run cmd against the relay's count; returns the phase and its start (epoch s)."""
    relay.reset()
    # Earlier phases' SDK workers must be gone, so that the snapshots do not race a reap.
    cpu.wait_workers_gone(30)
    moto = helper_pids()
    before = (machine_busy_seconds(), processes_cpu_seconds(moto), own_cpu_seconds(),
              cpu.snapshot())
    seen_workers: set[int] = set()
    child_cpu: dict[tuple[int, str], float] = {}
    with open(log_path, "wb") as log:
        started_epoch, start = time.time(), time.monotonic()
        proc = subprocess.Popen(cmd, env={**os.environ, **ENV}, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT)
    first = active = None
    first_count = 0
    next_poll = 0.0
    kill_at = None
    reaped = False
    try:
        while True:
            now = time.monotonic()
            if now >= next_poll:
                next_poll = now + 0.25
                seen_workers.update(cpu.workers())
                for pid in descendants(proc.pid):
                    st = proc_stat(pid)
                    if st is not None:
                        child_cpu[(pid, st[2])] = st[0]
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                wall = time.monotonic() - start
                reaped = True
                break
            if active is None:
                if relay.wait_for_total(1 if first is None else seeded.events, POLL_SECONDS):
                    seen = time.monotonic() - start
                    count = relay.total()
                    if first is None:
                        first, first_count = seen, count
                    if count >= seeded.events:
                        active = seen
            else:
                time.sleep(POLL_SECONDS)
            if kill_at is None and time.monotonic() - start > timeout:
                print(f"{name}: no exit after {timeout:.0f}s: SIGTERM", file=sys.stderr)
                proc.send_signal(signal.SIGTERM)  # on Flink: stop the job with a savepoint
                kill_at = time.monotonic() + 120
            elif kill_at is not None and time.monotonic() > kill_at:
                proc.kill()
                kill_at = float("inf")
    finally:
        if not reaped:
            proc.kill()
            proc.wait()
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, not by Popen
    exit_code = proc.returncode
    cpu.wait_workers_gone(30)
    after = (machine_busy_seconds(), processes_cpu_seconds(moto), own_cpu_seconds(),
             cpu.snapshot())
    cluster = {k: after[3][k] - before[3][k] for k in after[3]}
    submit = usage.ru_utime + usage.ru_stime
    moto_cpu = None if before[1] is None or after[1] is None else after[1] - before[1]
    relay_cpu = after[2] - before[2]
    other = None
    if before[0] is not None and after[0] is not None and moto_cpu is not None:
        other = max(0.0, after[0] - before[0] - submit - sum(cluster.values()) - moto_cpu
                    - relay_cpu)
    received = relay.total()
    if active is None and received >= seeded.events:
        active = wall
    if first is None and received:
        first, first_count = active, received
    return Phase(name, round_, seeded.events, received, exit_code, wall, active, first,
                 first_count, seeded.uncompressed_bytes, submit, sum(child_cpu.values()),
                 cluster["taskmanager"], cluster["workers"], len(seen_workers),
                 cluster["rest"], moto_cpu, relay_cpu, other), started_epoch


def log_time(line: str) -> float | None:
    """The epoch of a log line that starts ``YYYY-mm-dd HH:MM:SS,mmm`` (local time)."""
    try:
        return time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S")) + int(
            line[20:23]) / 1000
    except (ValueError, OverflowError):
        return None


def first_logged(path: Path, text: str, after: float) -> float | None:
    """When a line holding text was first logged at or after the epoch after."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        if text in line and (when := log_time(line)) is not None and when >= after - 1:
            return when
    return None


def flink_facts(flink_master: str, job_name: str, started_epoch: float, run_log: Path,
                state_dir: Path) -> dict:
    """When (s after process start) the job was handed to the job server, created on
    Flink, running, its SDK worker started, and ended; its checkpoints."""
    job = flink_job(flink_master, job_name)
    if job is None:
        return {"job": None}
    stamps = job.get("timestamps", {})

    def at(state: str) -> float | None:
        return stamps[state] / 1000 - started_epoch if stamps.get(state) else None

    def since_start(when: float | None) -> float | None:
        return None if when is None else when - started_epoch

    return {"job": job_name, "state": job["state"],
            # The collector logs this once Beam's job server has accepted the pipeline.
            "submitted_s": since_start(first_logged(run_log, "submitted", started_epoch)),
            "created_s": at("CREATED"), "running_s": at("RUNNING"),
            "worker_s": since_start(first_logged(state_dir / "logs" / "worker-pool.log",
                                                 "started worker", started_epoch)),
            "ended_s": at(job["state"]),
            "checkpoints": job["checkpoints"].get("completed"),
            "checkpoints_failed": job["checkpoints"].get("failed"),
            "restored": job["checkpoints"].get("restored")}


# -- reporting


def throughput_table(phases: list[Phase]) -> str:
    return format_rows(
        ("phase", "round", "events", "dups", "wall s", "active s", "1st event s",
         "steady events/s", "events/s", "MB/s"),
        [(p.phase, str(p.round), f"{p.received:,}", f"{p.duplicates:,}", f"{p.wall:.1f}",
          num(p.active, ".1f"), num(p.first_event, ".1f"),
          num(p.steady_events_per_second, ",.0f"), f"{p.events_per_second:,.0f}",
          f"{p.mb_per_second:.1f}") for p in phases])


def cpu_table(phases: list[Phase]) -> str:
    return format_rows(
        ("phase", "round", "submit CPU s", "its JVM", "TM CPU s", "SDK workers CPU s",
         "TM+workers", "JM+rest CPU s", "moto CPU s", "relay CPU s", "other CPU s"),
        [(p.phase, str(p.round), f"{p.submit_cpu:.1f}", f"{p.submit_children_cpu:.1f}",
          f"{p.taskmanager_cpu:.1f}", f"{p.workers_cpu:.1f} ({p.workers})",
          f"{p.taskmanager_cpu + p.workers_cpu:.1f}", f"{p.cluster_rest_cpu:.1f}",
          num(p.moto_cpu, ".1f"), f"{p.relay_cpu:.1f}", num(p.other_cpu, ".1f"))
         for p in phases])


def flink_table(phases: list[Phase]) -> str:
    return format_rows(
        ("phase", "round", "submitted s", "job created s", "running s", "SDK worker s",
         "1st event s", "all events s", "job ended s", "exit s", "checkpoints"),
        [(p.phase, str(p.round), num(p.flink.get("submitted_s"), ".1f"),
          num(p.flink.get("created_s"), ".1f"), num(p.flink.get("running_s"), ".1f"),
          num(p.flink.get("worker_s"), ".1f"), num(p.first_event, ".1f"),
          num(p.active, ".1f"), num(p.flink.get("ended_s"), ".1f"), f"{p.wall:.1f}",
          str(p.flink.get("checkpoints", "-"))) for p in phases if p.flink])


def summary_table(phases: list[Phase], names: list[str]) -> str:
    rows = []
    for name in names:
        mine = [p for p in phases if p.phase == name]
        if not mine:
            continue
        rates = [p.events_per_second for p in mine]
        steady = [s for p in mine if (s := p.steady_events_per_second) is not None]
        firsts = [p.first_event for p in mine if p.first_event is not None]
        walls = [p.wall for p in mine]
        work = [p.submit_cpu + p.taskmanager_cpu + p.workers_cpu for p in mine]
        rows.append((name, str(len(mine)),
                     f"{max(rates):,.0f}", f"{statistics.median(rates):,.0f}",
                     f"{max(steady):,.0f}" if steady else "-",
                     f"{statistics.median(steady):,.0f}" if steady else "-",
                     f"{min(firsts):.1f}" if firsts else "-",
                     f"{statistics.median(firsts):.1f}" if firsts else "-",
                     f"{min(walls):.1f}", f"{statistics.median(walls):.1f}",
                     f"{min(work):.1f}", f"{statistics.median(work):.1f}"))
    return format_rows(("phase", "rounds", "events/s best", "median", "steady best", "median",
                        "1st event s best", "median", "wall s best", "median",
                        "CPU s best", "median"), rows)


# -- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="VPC Flow Logs through the collector on Flink (parallelism 1 and 2) "
                    "and on the DirectRunner.")
    parser.add_argument("--lines", type=int, default=400_000,
                        help="flow records in all (default 400,000)")
    parser.add_argument("--objects", type=int, default=16,
                        help="gzip objects they are spread over (default 16)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure each phase this many times, the order alternating "
                             "(default 1)")
    parser.add_argument("--phases", default=",".join(PHASES),
                        help=f"which phases, comma separated (default {','.join(PHASES)})")
    parser.add_argument("--readers", type=int, default=2,
                        help="the collector's SQS readers (config `readers`, default 2)")
    parser.add_argument("--idle-seconds", type=float, default=2.0,
                        help="the collector's --idle-seconds (default 2)")
    parser.add_argument("--checkpointing-interval", type=int, metavar="MS",
                        help="Flink's --checkpointing_interval (default: the collector's, "
                             "10 s)")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds before a phase is stopped (default 900)")
    parser.add_argument("--workdir", help="keep config, logs, certificates and the cluster's "
                                          "state and logs here (default: a temporary "
                                          "directory, removed)")
    parser.add_argument("--json", dest="json_path", help="also write the results here as JSON")
    args = parser.parse_args(argv)
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if not args.phases or set(args.phases) - set(PHASES):
        parser.error(f"--phases: a comma separated subset of {','.join(PHASES)}")
    if args.lines < 1 or args.objects < 1 or args.objects > args.lines:
        parser.error("need 1 <= --objects <= --lines")
    if args.rounds < 1 or args.readers < 1:
        parser.error("--rounds and --readers must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return in_workdir(args, "flink-bench-", run)


def run(args: argparse.Namespace, workdir: Path) -> int:
    state_dir = workdir / "flink"
    flink_wanted = any(PHASES[p] for p in args.phases)
    starting = None
    if flink_wanted:
        # The cluster starts (10-15 s) while moto is seeded.
        log = open(workdir / "cluster-up.log", "wb")  # noqa: SIM115 - closed below
        starting = subprocess.Popen(
            [sys.executable, str(CLUSTER), "up", "--state-dir", str(state_dir), "--slots", "2"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
    try:
        return run_phases(args, workdir, state_dir, starting)
    finally:
        if starting is not None:
            if starting.poll() is None:
                starting.send_signal(signal.SIGINT)  # `up` cleans up after itself on it
                starting.wait()
            done = cluster_script("down", state_dir)
            if done.returncode:
                print(f"cluster down failed: {done.stdout}{done.stderr}", file=sys.stderr)
            problems = log_problems(state_dir)
            print("\ncluster logs (" + str(state_dir / "logs") + "): "
                  + ("lines naming an error:" if problems else "no line names an error"))
            for line in problems:
                print(f"  {line}")


def run_phases(args: argparse.Namespace, workdir: Path, state_dir: Path,
               starting: subprocess.Popen | None) -> int:
    import yaml

    from awscollector.embedded.aws import EmbeddedAws
    from awscollector.embedded.certs import make_test_pki
    from awscollector.embedded.relay import DevoRelay

    pki = make_test_pki(workdir / "pki")
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}. The cluster's "
          "JVMs (JobManager, TaskManager, job servers), the SDK workers, moto, the relay and "
          "the submitting process all share them: a figure of the Flink path at volume and "
          "of its fixed costs, not of how it scales on real hardware.", flush=True)
    with EmbeddedAws(in_process=False) as aws, DevoRelay(pki, keep_events=False) as relay:
        seeded = seed(aws, args.lines, args.objects)
        print(f"seeded {seeded.events:,} lines in {len(seeded.keys)} gzip objects: "
              f"{seeded.uncompressed_bytes / 1e6:.1f} MB uncompressed, "
              f"{seeded.compressed_bytes / 1e6:.1f} MB gzip, in {seeded.seconds:.1f}s",
              flush=True)
        config_path = workdir / "collector.yaml"
        config_path.write_text(yaml.safe_dump(
            collector_config(aws, relay, pki, workdir, args.readers)))

        st = None
        if starting is not None:
            code = starting.wait()
            if code:
                print(f"cluster up failed ({code}):\n{tail(workdir / 'cluster-up.log')}",
                      file=sys.stderr)
                return 1
            st = json.loads((state_dir / "state.json").read_text())
            print(f"cluster up in {st['started_in_seconds']}s: flink_master "
                  f"{st['flink_master']}, worker pool {st['environment_config']}, "
                  f"{st['slots']} slots", flush=True)
        cpu = ClusterCpu(st) if st else None
        if cpu is None:
            print("(no Flink phase: the cluster columns are zero)")
            cpu = NoCluster()

        base = [sys.executable, "-m", "awscollector", "run", "--config", str(config_path),
                "--until-idle", "--idle-seconds", str(args.idle_seconds)]

        def command(name: str, round_: int) -> list[str]:
            parallelism = PHASES[name]
            if parallelism is None:
                return base
            extra = ([f"--checkpointing_interval={args.checkpointing_interval}"]
                     if args.checkpointing_interval else [])
            return [*base, "--runner", "FlinkRunner", "--flink_master", st["flink_master"],
                    "--environment_type=EXTERNAL",
                    f"--environment_config={st['environment_config']}", "--streaming",
                    "--parallelism", str(parallelism), *extra,
                    f"--job_name=flink-bench-{name}-r{round_}"]

        phases: list[Phase] = []
        failures: list[str] = []
        runs = 0
        for round_ in range(1, args.rounds + 1):
            # Alternate, so that neither end of a round is always the same phase.
            order = args.phases if round_ % 2 else list(reversed(args.phases))
            for name in order:
                if runs:
                    rearm(aws, seeded)  # the queue announces every object again
                runs += 1
                log_path = workdir / f"{name}-{round_}.log"
                print(f"round {round_}: {name} ...", flush=True)
                phase, started_epoch = measure(name, round_, command(name, round_), relay,
                                               seeded, cpu, log_path, args.timeout)
                if PHASES[name]:
                    try:
                        phase.flink = flink_facts(st["flink_master"],
                                                  f"flink-bench-{name}-r{round_}",
                                                  started_epoch, log_path, state_dir)
                    except OSError as e:
                        phase.flink = {"error": str(e)}
                failures += check(phase, relay, aws, seeded, workdir, log_path, st,
                                  state_dir)
                phases.append(phase)
                print(f"  {phase.received:,} events ({phase.duplicates:,} duplicates), active "
                      f"{num(phase.active, '.1f')}s, first event {num(phase.first_event, '.1f')}"
                      f"s, wall {phase.wall:.1f}s, exit {phase.exit_code}", flush=True)

    report(args, phases, seeded, failures)
    return finish(failures)


class NoCluster:
    """The cluster's side of a run without a Flink phase: nothing to count."""

    def workers(self) -> list[int]:
        return []

    def wait_workers_gone(self, timeout: float) -> bool:
        return True

    def snapshot(self) -> dict[str, float]:
        return {"taskmanager": 0.0, "workers": 0.0, "rest": 0.0}


def check(phase: Phase, relay, aws, seeded: Seeded, workdir: Path, log_path: Path,
          st: dict | None, state_dir: Path) -> list[str]:
    what = f"{phase.phase} round {phase.round}"
    failures = []
    if phase.exit_code != 0:
        failures.append(f"{what}: exit code {phase.exit_code}; its log ends:\n{tail(log_path)}")
    if phase.received < phase.expected:
        failures.append(f"{what}: relay got {phase.received:,} of {phase.expected:,} events "
                        f"({phase.expected - phase.received:,} missing)")
    elif phase.duplicates:
        print(f"  note: {phase.duplicates:,} duplicate events (at-least-once delivery)")
    if set(relay.counts()) - {TABLE}:
        failures.append(f"{what}: unexpected tables {sorted(relay.counts())}")
    if relay.bad_lines():
        failures.append(f"{what}: relay could not parse {len(relay.bad_lines())} lines")
    depth = queue_depth(aws, seeded.queue_url)
    if depth:
        # A delete that lags the exit shows as a depth that falls within seconds; a message
        # never deleted stays (hidden) until its visibility timeout.
        deadline = time.monotonic() + 15
        while (left := queue_depth(aws, seeded.queue_url)) and time.monotonic() < deadline:
            time.sleep(0.5)
        print(f"  note: {depth} messages in the queue at exit, {left} 15 s later")
        if left:
            failures.append(f"{what}: {left} messages left in the queue")
        phase.queue_left = left
    dead = dead_letter_lines(workdir)
    if dead:
        failures.append(f"{what}: {dead} dead-letter entries in {workdir / 'deadletter'}")
    if st is not None:
        try:
            left_running = running_jobs(st["flink_master"])
        except OSError as e:
            left_running = []
            failures.append(f"{what}: cannot ask Flink for its jobs: {e}")
        if left_running:
            names = [j["name"] for j in left_running]
            failures.append(f"{what}: Flink jobs still running after the run: {names}")
            cluster_script("cancel-jobs", state_dir, timeout=120)  # they would eat the queue
    return failures


def report(args: argparse.Namespace, phases: list[Phase], seeded: Seeded,
           failures: list[str]) -> None:
    print()
    print(throughput_table(phases))
    print()
    print(cpu_table(phases))
    if any(p.flink for p in phases):
        print()
        print(flink_table(phases))
    print()
    print(summary_table(phases, args.phases))
    print(f"\n{seeded.events:,} events in {len(seeded.keys)} objects, "
          f"{seeded.uncompressed_bytes / 1e6:.1f} MB uncompressed; readers: {args.readers}, "
          f"--idle-seconds {args.idle_seconds:g}, checkpoints every "
          f"{(args.checkpointing_interval or 10_000) / 1000:g} s on Flink.")
    print("wall: process start to exit; active: to the relay having every event; 1st event: "
          "to the relay's first (on Flink the job-submission overhead); events/s and MB/s over "
          "active time; steady: first event to last. submit CPU: the `aws-collector run` "
          "process and the children it waited for (wait4); its JVM: its children polled "
          "(on Flink, Beam's job server it starts); TM: the TaskManager; SDK workers: "
          "children of the worker pool (count in brackets); JM+rest: JobManager, the cluster's "
          "own job server and the worker pool; other: the rest of the machine's busy time.")
    if any(p.flink for p in phases):
        print("Flink timeline, s after process start: submitted (Beam's job server took the "
              "pipeline: interpreter, the job server JVM's start, translation), job created (its "
              "jars uploaded to Flink), running, SDK worker (started by the pool), 1st and all "
              "events at the relay, job ended (idle wait, the checkpoint that deletes the last "
              "messages, the savepoint), exit.")
    print(f"{os.cpu_count()} CPUs shared by all of it, moto and the relay included: the Flink "
          "rows show that the path works at volume and what its fixed costs are, not how it "
          "scales.")
    direct = [p.first_event for p in phases if p.phase == "direct" and p.first_event]
    for name in ("flink-p1", "flink-p2"):
        firsts = [p.first_event for p in phases if p.phase == name and p.first_event]
        if firsts and direct:
            print(f"job-submission overhead, {name}: first event after "
                  f"{statistics.median(firsts):.1f}s (median) against "
                  f"{statistics.median(direct):.1f}s on the DirectRunner")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({
            "events": seeded.events, "objects": len(seeded.keys),
            "uncompressed_bytes": seeded.uncompressed_bytes, "cpus": os.cpu_count(),
            "phases": [{**asdict(p), "events_per_second": p.events_per_second,
                        "mb_per_second": p.mb_per_second,
                        "steady_events_per_second": p.steady_events_per_second}
                       for p in phases],
            "failures": failures}, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
