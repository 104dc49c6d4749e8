"""Benchmark: VPC Flow Logs from S3+SQS to Devo, the collector against a plain-Python loop.

    .venv/bin/python benchmarks/vpc_flow_bench.py      # make bench: 40 x 25,000 lines, 3 rounds
    .venv/bin/python benchmarks/vpc_flow_bench.py --lines 200000 --objects 8 --rounds 1
    .venv/bin/python benchmarks/vpc_flow_bench.py --processes 2   # only the 2-process forms

Seeds an embedded AWS (moto's server, its own process) with gzip VPC Flow Logs
objects in a bucket that notifies an SQS queue, then measures, on the same
objects and against the same embedded Devo relay (TLS, client certificate):

* baseline: a plain Python process that lists the bucket and, in one loop,
  downloads each object, gunzips it, splits its lines, drops the header, and
  writes the syslog lines (``<14>date host cloud.aws.vpc.flow: line``) to the
  relay in one large write per object, over one TLS connection; it then
  half-closes and waits for the relay's EOF, as the collector does; with 2
  processes, a parent that starts two such loops, each with the objects whose
  index mod 2 is its own and its own TLS connection;
* collector: ``python -m awscollector run --config FILE --until-idle
  --processes N``, as a user runs it (DirectRunner unless --collector-arg says
  otherwise); with N = 2 a supervisor and two collector processes.

Each round runs both with each process count of --processes (default 1,2).

Both run as child processes of this one and are measured the same way:

* wall: from starting the process until it has exited;
* active: from starting the process until the relay has counted every
  expected event (the collector's ``--idle-seconds`` tail is not in it; the
  interpreter start, imports and pipeline construction are);
* events/s and MB/s (uncompressed object bytes, 10^6 bytes) over active time;
  steady events/s from the relay's first event to its last;
* peak RSS per process (VmHWM of each process of the tree, polled while it
  runs: the largest worker's, and the supervisor's apart) and the CPU seconds of
  the whole tree (wait4 counts reaped children; the steady samples sum the live
  tree, process_tree.py); beside them the CPU seconds of the moto server, of this process
  (the relay's threads) and of everything else on the machine ("other": a
  run with much of it was disturbed by something else).

Correctness: the relay must have counted every event (the collector delivers
at least once, so more are reported as duplicates), no line may fail to parse,
the queue must be empty and nothing dead-lettered. A failed check exits 1; a
collector below the target (0.5 of the baseline's events/s) still exits 0.

The relay runs as threads of this process; the machine's cores are shared by
moto, the relay and the measured process, in both phases alike. The phases
alternate (B1 C1 B2 C2, C2 B2 C1 B1, ...); the summary takes the best round of
each (other load only slows a phase down), the medians are printed beside it,
then collector/baseline and 2-process/1-process ratios.

The other benchmarks import their measuring, reporting, checks, options and round
loop from here, so that all of them measure and print alike.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from process_tree import PeakMemory, tree_cpu_seconds

TABLE = "cloud.aws.vpc.flow"
REGION = "us-east-1"
BUCKET = "bench-flow-logs"
QUEUE = "bench-flow-logs"
TARGET_RATIO = 0.5
ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
POLL_SECONDS = 0.05


# -- the baseline: one plain loop, run in its own process (only stdlib and boto3 imported)


def syslog_header(table: str, hostname: str) -> bytes:
    """``<14>Mmm dd hh:mm:ss host table: ``, as devo-sdk's Sender writes it."""
    date = time.strftime("%b %d %H:%M:%S")
    if date[4] == "0":  # the day is space padded: "Jan  1"
        date = date[:4] + " " + date[5:]
    return f"<14>{date} {hostname} {table}: ".encode()


def relay_context(spec: dict) -> ssl.SSLContext:
    """The baseline workers' TLS context: the relay's CA, the client certificate."""
    context = ssl.create_default_context(cafile=spec["ca"])
    context.load_cert_chain(spec["cert"], spec["key"])
    return context


def relay_socket(context: ssl.SSLContext, spec: dict) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", spec["port"]))
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def close_relay(sock: ssl.SSLSocket) -> None:
    """Done: close_notify, then the relay closes once it has read everything."""
    try:
        plain = sock.unwrap()
        while plain.recv(65536):
            pass
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
        pass


def relay_spec(relay, pki) -> dict:
    """What a baseline worker needs to reach the relay (its part of the worker's spec)."""
    return {"port": relay.port, "ca": str(pki.ca_cert), "cert": str(pki.client_cert),
            "key": str(pki.client_key)}


def worker_share(keys: list[str], spec: dict) -> list[str]:
    """A baseline worker's objects: with N workers, the ones whose index mod N is its own."""
    return keys[spec.get("index", 0)::spec.get("processes", 1)]


def baseline_parent(spec: dict) -> int:
    """The baseline's N-process form: N loop processes (this script again), each with
    its share of the objects and its own TLS connection, waited for here. Prints their
    figures summed (the loop's seconds: the slowest); 1 if one of them failed."""
    count = spec["processes"]
    workers = [subprocess.Popen(worker_command(sys.argv[0], {**spec, "index": i}),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
               for i in range(count)]
    results, failed = [], 0
    for worker in workers:
        out, _ = worker.communicate()
        failed = failed or worker.returncode
        try:
            results.append(json.loads(out.decode().strip().splitlines()[-1]))
        except (ValueError, IndexError):
            pass
    print(json.dumps({"workers": len(results),
                      "objects": sum(r["objects"] for r in results),
                      "events": sum(r["events"] for r in results),
                      "loop_seconds": max((r["loop_seconds"] for r in results), default=0)}))
    return 1 if failed or len(results) < count else 0


def baseline_worker(spec: dict) -> int:
    import boto3

    s3 = boto3.client("s3", region_name=spec["region"], endpoint_url=spec["endpoint_url"])
    context = relay_context(spec)
    hostname = socket.gethostname()
    started = time.monotonic()
    keys = worker_share([obj["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=spec["bucket"]) for obj in page.get("Contents", ())], spec)
    events = 0
    with relay_socket(context, spec) as sock:
        for key in keys:
            body = s3.get_object(Bucket=spec["bucket"], Key=key)["Body"].read()
            lines = gzip.decompress(body).split(b"\n")
            del lines[0]  # the header line
            if lines and not lines[-1]:
                lines.pop()  # after the last newline
            header = syslog_header(TABLE, hostname)
            sock.sendall(header + (b"\n" + header).join(lines) + b"\n")
            events += len(lines)
        close_relay(sock)
    print(json.dumps({"objects": len(keys), "events": events,
                      "loop_seconds": time.monotonic() - started}))
    return 0


# -- measuring a child process


class Rates:
    """The figures of a phase that come from its counts and times (both benchmarks)."""

    expected: int
    wall: float
    active: float | None
    first_event: float | None
    first_count: int
    uncompressed_bytes: int

    @property
    def seconds(self) -> float:
        return self.active if self.active is not None else self.wall

    @property
    def events_per_second(self) -> float:
        return self.expected / self.seconds

    @property
    def mb_per_second(self) -> float:
        return self.uncompressed_bytes / 1e6 / self.seconds

    @property
    def steady_events_per_second(self) -> float | None:
        """From the first event to the last: the rate once started up."""
        if self.active is None or self.first_event is None or self.active <= self.first_event:
            return None
        return (self.expected - self.first_count) / (self.active - self.first_event)


class CpuPerEvent:
    """CPU per event of the measured process: overall, and at steady state (start-up out)."""

    expected: int
    first_count: int
    cpu: float
    cpu_first: float | None  # the child's CPU seconds when the relay had its first event
    cpu_last: float | None  # ... and when it had the last expected one

    @property
    def cpu_us_per_event(self) -> float:
        """User + system µs per event, start-up (interpreter, imports, pipeline) in."""
        return self.cpu * 1e6 / self.expected

    @property
    def steady_cpu_us_per_event(self) -> float | None:
        """From the relay's first event to its last: the CPU once started up. The
        first batch's own work is in the start-up part (it is done before the first
        event arrives), so it is divided over the events after it."""
        if self.cpu_first is None or self.cpu_last is None:
            return None
        events = self.expected - self.first_count
        if events <= 0:
            return None
        return (self.cpu_last - self.cpu_first) * 1e6 / events


@dataclass
class Phase(Rates, CpuPerEvent):
    phase: str
    round: int
    expected: int
    received: int
    wall: float  # process start to exit
    active: float | None  # process start to the relay having every expected event
    first_event: float | None  # process start to the relay's first event
    first_count: int  # events the relay had at first_event (a whole first batch)
    cpu: float  # user + system seconds of the child
    peak_rss_mb: float
    aws_cpu: float | None  # the moto server's CPU seconds meanwhile
    relay_cpu: float  # this process's: the relay's threads (and the polling)
    other_cpu: float | None  # the rest of the machine's busy CPU seconds: noise
    exit_code: int
    uncompressed_bytes: int
    cpu_first: float | None = None
    cpu_last: float | None = None
    processes: int = 1  # the loop's or the collector's worker processes
    supervisor_rss_mb: float | None = None  # with processes > 1: the parent's own peak


def machine_busy_seconds() -> float | None:
    """CPU seconds the whole machine has been busy (Linux /proc/stat), or None."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def helper_pids() -> list[int]:
    """This process's children (the moto server), before the measured one starts."""
    pids = []
    for children in Path("/proc/self/task").glob("*/children"):
        try:
            pids += [int(p) for p in children.read_text().split()]
        except (OSError, ValueError):
            pass
    return pids


def processes_cpu_seconds(pids: list[int]) -> float | None:
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime stime
    return total


def child_cpu_seconds(pid: int) -> float | None:
    """User + system seconds a running process (its threads) has used so far."""
    return processes_cpu_seconds([pid])


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def measure(name: str, round_: int, cmd: list[str], relay, expected: int, nbytes: int,
            log_path: Path, timeout: float, processes: int = 1) -> Phase:
    """Run cmd; time it against the relay's count; peak RSS (VmHWM) and CPU (wait4).

    CPU is the whole process tree's: wait4's rusage includes the descendants the
    process reaped, and the steady samples sum the live tree (process_tree.py).
    With ``processes`` > 1 the work is done by cmd's children: peak RSS is the
    largest child's, and the parent's own is reported apart.

    Also what the moto server, this process (the relay) and the rest of the
    machine used of the CPUs meanwhile, so that a disturbed run shows.
    """
    relay.reset()
    helpers = helper_pids()
    cpu_before = (machine_busy_seconds(), processes_cpu_seconds(helpers), own_cpu_seconds())
    with open(log_path, "wb") as log:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, env={**os.environ, **ENV}, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT)
    first = active = None
    first_count = 0
    cpu_first = cpu_last = None
    memory = PeakMemory(proc.pid)
    while True:
        memory.sample()
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            wall = time.monotonic() - start
            break
        if active is None:
            # Returns as soon as the relay has recorded the first, then the last, event.
            if relay.wait_for_total(1 if first is None else expected, POLL_SECONDS):
                seen = time.monotonic() - start
                cpu_now = tree_cpu_seconds(proc.pid)  # its CPU at this event, for steady
                count = relay.total()
                if first is None:
                    first, first_count, cpu_first = seen, count, cpu_now
                if count >= expected:
                    active, cpu_last = seen, cpu_now
        else:
            time.sleep(POLL_SECONDS)
        if time.monotonic() - start > timeout:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.monotonic() - start
            print(f"{name}: killed after {timeout:.0f}s", file=sys.stderr)
            break
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    busy, aws_cpu, own = (machine_busy_seconds(), processes_cpu_seconds(helpers),
                          own_cpu_seconds())
    cpu = usage.ru_utime + usage.ru_stime
    relay_cpu = own - cpu_before[2]
    aws_cpu = None if aws_cpu is None or cpu_before[1] is None else aws_cpu - cpu_before[1]
    other = None
    if busy is not None and cpu_before[0] is not None and aws_cpu is not None:
        other = max(0.0, busy - cpu_before[0] - cpu - aws_cpu - relay_cpu)
    received = relay.total()
    if active is None and received >= expected:
        active = wall
    if first is None and received:
        first, first_count = active, received
    # Not wait4's ru_maxrss: on Linux a child inherits the high-water mark of the
    # process that spawned it across fork and exec, here this benchmark's own.
    # One process: the largest of the tree (a collector left to its default process
    # count is a supervisor too, and its children are what use the memory).
    peak, supervisor = memory.max_mb, None
    if processes > 1:
        peak, supervisor = memory.max_child_mb or 0.0, memory.root_mb
    return Phase(name, round_, expected, received, wall, active, first, first_count, cpu,
                 peak, aws_cpu, relay_cpu, other, proc.returncode, nbytes,
                 cpu_first, cpu_last, processes, supervisor)


# -- seeding


@dataclass
class Seeded:
    keys: list[str]
    bodies: list[bytes]
    events: int
    uncompressed_bytes: int
    compressed_bytes: int
    queue_url: str
    seconds: float


def object_sizes(lines: int, objects: int) -> list[int]:
    base, extra = divmod(lines, objects)
    return [base + (1 if i < extra else 0) for i in range(objects)]


def seed(aws, lines: int, objects: int) -> Seeded:
    from awscollector.embedded.seed import create_s3_sqs, vpc_flow_lines, vpc_key, vpc_object

    started = time.monotonic()
    s3, sqs = aws.client("s3", REGION), aws.client("sqs", REGION)
    queue_url = create_s3_sqs(s3, sqs, BUCKET, QUEUE, REGION)
    keys, bodies = [], []
    events = packed = 0
    for n, size in enumerate(object_sizes(lines, objects)):
        # Each object its own records (seed) and time range, as consecutive files would be.
        records = vpc_flow_lines(size, seed=n + 1, start=1_795_000_000 + 600 * n, region=REGION)
        body = vpc_object(records)
        key = vpc_key(REGION, n)
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        keys.append(key)
        bodies.append(body)
        events += len(records)
        packed += len(body)
    # The uncompressed size is the gunzipped object: header line and newlines included.
    raw = sum(len(gzip.decompress(b)) for b in bodies)
    return Seeded(keys, bodies, events, raw, packed, queue_url, time.monotonic() - started)


def rearm(aws, seeded: Seeded) -> None:
    """Announce every object again (put them again), for another collector phase."""
    rearm_objects(aws, seeded, BUCKET)


def queue_depth(aws, url: str) -> int:
    attrs = aws.client("sqs", REGION).get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                      "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return (int(attrs["ApproximateNumberOfMessages"])
            + int(attrs["ApproximateNumberOfMessagesNotVisible"]))


def collector_config(aws, relay, pki, workdir: Path, readers: int) -> dict:
    from awscollector.embedded.config import embedded_config

    return embedded_config(aws.endpoint_url, relay.port, pki, workdir, QUEUE, (REGION,),
                           readers)


def dead_letter_lines(workdir: Path) -> int:
    directory = workdir / "deadletter"
    if not directory.exists():
        return 0
    return sum(len(p.read_text().splitlines()) for p in directory.rglob("*") if p.is_file())


# -- reporting


def format_rows(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """A plain text table: the first column left aligned, the others right."""
    rows = [header, *rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    out = []
    for n, row in enumerate(rows):
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def per_cpu(phase: Phase) -> tuple[float | None, float | None]:
    """Events and MB per CPU second of the measured process."""
    if phase.cpu <= 0:
        return None, None
    return phase.expected / phase.cpu, phase.uncompressed_bytes / 1e6 / phase.cpu


def per_cpu_table(phases: list[Phase]) -> str:
    """The phase table with events and MB per CPU second of the measured process."""
    rows = []
    for p in phases:
        events_cpu, mb_cpu = per_cpu(p)
        rows.append((p.phase, str(p.round), f"{p.received:,}", f"{p.wall:.2f}",
                     num(p.active, ".2f"), f"{p.events_per_second:,.0f}",
                     f"{p.mb_per_second:.1f}", num(p.steady_events_per_second, ",.0f"),
                     f"{p.cpu:.1f}", f"{p.cpu_us_per_event:.2f}",
                     num(p.steady_cpu_us_per_event, ".2f"), num(events_cpu, ",.0f"),
                     num(mb_cpu, ".1f"), f"{p.peak_rss_mb:.0f}", num(p.aws_cpu, ".1f"),
                     f"{p.relay_cpu:.1f}",
                     num(p.other_cpu, ".1f")))
    return format_rows(("phase", "round", "events", "wall s", "active s", "events/s", "MB/s",
                        "steady events/s", "CPU s", "CPU µs/event", "steady CPU µs/event",
                        "events/CPU-s", "MB/CPU-s",
                        "peak RSS MB", "moto CPU s", "relay CPU s", "other CPU s"), rows)


def phase_records(phases: list[Phase], cpu: bool = False) -> list[dict]:
    """The phases for --json, with their rates (and per CPU second figures if cpu)."""
    records = []
    for p in phases:
        record = {**asdict(p), "events_per_second": p.events_per_second,
                  "mb_per_second": p.mb_per_second,
                  "steady_events_per_second": p.steady_events_per_second,
                  "cpu_us_per_event": p.cpu_us_per_event,
                  "steady_cpu_us_per_event": p.steady_cpu_us_per_event}
        if cpu:
            record["events_per_cpu_second"], record["mb_per_cpu_second"] = per_cpu(p)
        records.append(record)
    return records


def summarize(phases: list[Phase],
              medians: dict[str, Callable[[Phase], float]]) -> dict[str, dict[str, float]]:
    """Per phase name: the best and median events/s, and the median of each of medians."""
    summary = {}
    for name in ("baseline", "collector"):
        mine = [p for p in phases if p.phase == name]
        if mine:
            summary[name] = {
                "best_events_per_second": max(p.events_per_second for p in mine),
                "median_events_per_second": statistics.median(p.events_per_second
                                                              for p in mine),
                **{key: statistics.median(f(p) for p in mine) for key, f in medians.items()},
            }
    return summary


def print_ratios(summary: dict[str, dict[str, float]],
                 medians: tuple[tuple[str, str], ...]) -> float | None:
    """The verdict on the best events/s, then the ratio of each (what, summary key)."""
    if len(summary) != 2:
        return None
    b, c = summary["baseline"], summary["collector"]
    ratio = c["best_events_per_second"] / b["best_events_per_second"]
    verdict = "PASS" if ratio >= TARGET_RATIO else "BELOW"
    print(f"collector/baseline best events/s: {c['best_events_per_second']:,.0f} / "
          f"{b['best_events_per_second']:,.0f} = {ratio:.2f}  (target >= {TARGET_RATIO}): "
          f"{verdict}")
    for what, key in medians:
        if b[key]:
            print(f"collector/baseline {what}: {c[key]:,.0f} / {b[key]:,.0f} = "
                  f"{c[key] / b[key]:.2f}")
    return ratio


def baseline_loop_seconds(log_path: Path) -> float | None:
    """What the baseline worker measured itself, from listing to the relay's EOF."""
    for line in reversed(tail(log_path, 5).splitlines()):
        try:
            return float(json.loads(line)["loop_seconds"])
        except (ValueError, KeyError, TypeError):
            continue
    return None


def baseline_note(name: str, log_path: Path) -> str:
    if name != "baseline":
        return ""
    loop = baseline_loop_seconds(log_path)
    if loop is None:
        return ""
    return f" (its loop alone, without interpreter start: {loop:.2f}s)"


def tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def finish(failures: list[str]) -> int:
    """The failed checks on stderr; the exit code."""
    if not failures:
        return 0
    print("\nFAILED checks:", file=sys.stderr)
    for failure in failures:
        print(f"  {failure}", file=sys.stderr)
    return 1


# -- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="VPC Flow Logs: the collector against a plain-Python baseline.")
    parser.add_argument("--lines", type=int, default=1_000_000,
                        help="flow records in all (default 1,000,000)")
    parser.add_argument("--objects", type=int, default=40,
                        help="gzip objects they are spread over (default 40)")
    parser.add_argument("--readers", type=int, default=1,
                        help="the collector's SQS readers (config `readers`, default 1)")
    add_phase_args(parser, rounds_help="measure each phase this many times, alternating; the "
                                       "verdict compares the best round of each (default 3)",
                   collector_arg_help="extra argument for `aws-collector run` (a Beam "
                                      "option), repeatable: "
                                      "--collector-arg=--runner=DirectRunner")
    parser.add_argument("--relay-close", choices=("close_notify", "bare"),
                        default="close_notify",
                        help="how the relay answers the collector's close: its own TLS "
                             "close_notify (default), or a bare close, which the collector "
                             "trusts only after a grace period")
    add_processes_arg(parser)
    add_output_args(parser)
    args = parser.parse_args(argv)
    if args.lines < 1 or args.objects < 1 or args.objects > args.lines:
        parser.error("need 1 <= --objects <= --lines")
    if args.rounds < 1 or args.readers < 1:
        parser.error("--rounds and --readers must be at least 1")
    return args


def add_phase_args(
        parser: argparse.ArgumentParser,
        rounds_help: str = "measure each phase this many times, alternating (default 3)",
        collector_arg_help: str = "extra argument for `aws-collector run` (a Beam option), "
                                  "repeatable",
        workdir_help: str = "keep config, logs and certificates here "
                            "(default: a temporary directory, removed)") -> None:
    """The options of a baseline-against-collector benchmark's phases."""
    parser.add_argument("--idle-seconds", type=float, default=2.0,
                        help="the collector's --idle-seconds (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help=rounds_help)
    parser.add_argument("--only", choices=("baseline", "collector"),
                        help="run one phase only (no ratio)")
    parser.add_argument("--collector-arg", action="append", default=[], metavar="ARG",
                        help=collector_arg_help)
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds before a phase is killed (default 900)")
    parser.add_argument("--workdir", help=workdir_help)


def process_counts(text: str) -> list[int]:
    """``--processes 1,2``: the process counts to measure, each at least 1."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give counts of 1 or more, as 1,2")
    return sorted(set(counts))


def add_processes_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--processes", type=process_counts, default=[1, 2], metavar="N,M",
                        help="worker processes to measure each phase with: the baseline's "
                             "loop processes (each its share of the objects, its own TLS "
                             "connection) and `run --processes N` (default 1,2)")


def add_output_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", dest="json_path", help="also write the results here as JSON")
    parser.add_argument("--baseline-worker", help=argparse.SUPPRESS)


def dispatch(args: argparse.Namespace, worker: Callable[[dict], int], prefix: str,
             run: Callable[[argparse.Namespace, Path], int]) -> int:
    """The baseline worker (or the parent of N of them) if this process is one, else
    the benchmark in its workdir."""
    if args.baseline_worker:
        spec = json.loads(args.baseline_worker)
        if spec.get("processes", 1) > 1 and "index" not in spec:
            return baseline_parent(spec)
        return worker(spec)
    return in_workdir(args, prefix, run)


def main(argv: list[str] | None = None) -> int:
    return dispatch(parse_args(argv), baseline_worker, "vpc-flow-bench-", run)


def in_workdir(args: argparse.Namespace, prefix: str, run) -> int:
    """``run(args, workdir)`` in ``--workdir`` (kept), or in a temporary directory."""
    if args.workdir:
        workdir = Path(args.workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        return run(args, workdir)
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        return run(args, Path(tmp))


def print_machine() -> None:
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; moto server, "
          "relay and the measured process share them", flush=True)


def worker_command(script: str, spec: dict, processes: int = 1) -> list[str]:
    """The baseline: ``script`` run again as its own worker process (with ``processes``
    > 1, as the parent of that many workers)."""
    if processes > 1:
        spec = {**spec, "processes": processes}
    return [sys.executable, str(Path(script).resolve()), "--baseline-worker", json.dumps(spec)]


def collector_command(config_path: Path, args: argparse.Namespace,
                      processes: int | None = None) -> list[str]:
    """``aws-collector run``; with ``processes``, ``--processes N`` (else run's default:
    a process per core)."""
    count = [] if processes is None else ["--processes", str(processes)]
    return [sys.executable, "-m", "awscollector", "run", "--config", str(config_path),
            "--until-idle", "--idle-seconds", str(args.idle_seconds), *count,
            *args.collector_arg]


def phase_runs(args: argparse.Namespace, workdir: Path) -> Iterator[tuple[int, str, Path]]:
    """(round, phase, its log) for each phase to run: B C, C B, B C, ... (--only: one)."""
    for round_ in range(1, args.rounds + 1):
        order = ["baseline", "collector"] if round_ % 2 else ["collector", "baseline"]
        for name in order:
            if args.only and name != args.only:
                continue
            print(f"round {round_}: {name} ...", flush=True)
            yield round_, name, workdir / f"{name}-{round_}.log"


def process_phase_runs(args: argparse.Namespace,
                       workdir: Path) -> Iterator[tuple[int, str, int, Path]]:
    """(round, phase, processes, its log) for each phase to run: every phase with every
    process count, the order reversed every other round (B1 C1 B2 C2, C2 B2 C1 B1, ...)."""
    runs = [(name, n) for n in args.processes for name in ("baseline", "collector")
            if not args.only or name == args.only]
    for round_ in range(1, args.rounds + 1):
        for name, n in runs if round_ % 2 else runs[::-1]:
            print(f"round {round_}: {name}, {n} process{'es' if n > 1 else ''} ...", flush=True)
            yield round_, name, n, workdir / f"{name}-p{n}-{round_}.log"


def process_table(phases: list[Phase], cpu_rates: bool = False) -> str:
    """Every phase: rates, CPU per event (the process tree's), peak RSS per process."""
    header = ("phase", "proc", "round", "events", "wall s", "1st event s", "active s",
              "events/s", "MB/s", "steady events/s", "CPU s", "start-up CPU s",
              "CPU µs/event", "steady CPU µs/event", "peak RSS MB/process",
              "supervisor RSS MB", "moto CPU s", "relay CPU s", "other CPU s")
    if cpu_rates:
        header += ("events/CPU-s",)
    rows = []
    for p in phases:
        row = (p.phase, str(p.processes), str(p.round), f"{p.received:,}", f"{p.wall:.2f}",
               num(p.first_event, ".2f"), num(p.active, ".2f"), f"{p.events_per_second:,.0f}",
               f"{p.mb_per_second:.1f}", num(p.steady_events_per_second, ",.0f"),
               f"{p.cpu:.1f}", num(p.cpu_first, ".2f"), f"{p.cpu_us_per_event:.2f}",
               num(p.steady_cpu_us_per_event, ".2f"), f"{p.peak_rss_mb:.0f}",
               num(p.supervisor_rss_mb, ".0f"), num(p.aws_cpu, ".1f"), f"{p.relay_cpu:.1f}",
               num(p.other_cpu, ".1f"))
        if cpu_rates:
            row += (num(per_cpu(p)[0], ",.0f"),)
        rows.append(row)
    return format_rows(header, rows)


def _low(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _high(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def process_summary(phases: list[Phase]) -> dict[str, dict[str, float | None]]:
    """Per phase and process count ("collector/2"): the best round of each figure
    (other load only slows a phase down or adds CPU to it), and the medians of
    events/s and of the start-up figures."""
    summary = {}
    for name in ("baseline", "collector"):
        for n in sorted({p.processes for p in phases}):
            mine = [p for p in phases if p.phase == name and p.processes == n]
            if not mine:
                continue
            summary[f"{name}/{n}"] = {
                "processes": n, "rounds": len(mine),
                "best_events_per_second": max(p.events_per_second for p in mine),
                "median_events_per_second": statistics.median(p.events_per_second
                                                              for p in mine),
                "best_steady_events_per_second": _high([p.steady_events_per_second
                                                        for p in mine]),
                "lowest_cpu_us_per_event": min(p.cpu_us_per_event for p in mine),
                "lowest_steady_cpu_us_per_event": _low([p.steady_cpu_us_per_event
                                                        for p in mine]),
                "peak_rss_mb_per_process": max(p.peak_rss_mb for p in mine),
                "supervisor_rss_mb": _high([p.supervisor_rss_mb for p in mine]),
                "median_first_event_seconds": statistics.median(
                    p.first_event for p in mine if p.first_event is not None)
                if any(p.first_event is not None for p in mine) else None,
                "median_startup_cpu_seconds": statistics.median(
                    p.cpu_first for p in mine if p.cpu_first is not None)
                if any(p.cpu_first is not None for p in mine) else None,
            }
    return summary


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def print_process_summary(summary: dict[str, dict[str, float | None]]) -> dict[str, float]:
    """The summary table, then the ratios: collector/baseline (CPU per event, events/s)
    per process count, and N-process/1-process events/s per phase. Returns the ratios."""
    rows = [(key.split("/")[0], str(s["processes"]), str(s["rounds"]),
             f"{s['best_events_per_second']:,.0f} / {s['median_events_per_second']:,.0f}",
             num(s["best_steady_events_per_second"], ",.0f"),
             f"{s['lowest_cpu_us_per_event']:.2f}",
             num(s["lowest_steady_cpu_us_per_event"], ".2f"),
             f"{s['peak_rss_mb_per_process']:.0f}", num(s["supervisor_rss_mb"], ".0f"),
             num(s["median_first_event_seconds"], ".2f"),
             num(s["median_startup_cpu_seconds"], ".2f"))
            for key, s in summary.items()]
    print(format_rows(("phase", "proc", "rounds", "events/s best / median",
                       "steady events/s best", "CPU µs/event lowest",
                       "steady CPU µs/event lowest", "peak RSS MB/process",
                       "supervisor RSS MB", "1st event s median", "start-up CPU s median"),
                      rows))
    ratios: dict[str, float] = {}
    counts = sorted({int(s["processes"]) for s in summary.values()})
    for n in counts:
        b, c = summary.get(f"baseline/{n}"), summary.get(f"collector/{n}")
        if not (b and c):
            continue
        cpu = _ratio(c["lowest_cpu_us_per_event"], b["lowest_cpu_us_per_event"])
        steady = _ratio(c["lowest_steady_cpu_us_per_event"], b["lowest_steady_cpu_us_per_event"])
        rate = _ratio(c["best_events_per_second"], b["best_events_per_second"])
        ratios[f"collector/baseline cpu per event, {n}"] = cpu
        ratios[f"collector/baseline steady cpu per event, {n}"] = steady
        ratios[f"collector/baseline events/s, {n}"] = rate
        verdict = "PASS" if rate >= TARGET_RATIO else "BELOW"
        print(f"{n} process{'es' if n > 1 else ''}: collector/baseline CPU per event "
              f"{cpu:.2f}x with start-up, {num(steady, '.2f')}x at steady state; best "
              f"events/s {rate:.2f} (target >= {TARGET_RATIO}): {verdict}")
    for name in ("baseline", "collector"):
        one = summary.get(f"{name}/{counts[0]}")
        for n in counts[1:]:
            more = summary.get(f"{name}/{n}")
            if not (one and more):
                continue
            best = _ratio(more["best_events_per_second"], one["best_events_per_second"])
            median = _ratio(more["median_events_per_second"], one["median_events_per_second"])
            steady = _ratio(more["best_steady_events_per_second"],
                            one["best_steady_events_per_second"])
            cpu = _ratio(more["lowest_steady_cpu_us_per_event"],
                         one["lowest_steady_cpu_us_per_event"])
            ratios[f"{name} events/s, {n}/{counts[0]}"] = best
            ratios[f"{name} steady events/s, {n}/{counts[0]}"] = steady
            print(f"{name} {n}/{counts[0]} processes: events/s {best:.2f} (best), "
                  f"{median:.2f} (median), steady events/s {num(steady, '.2f')}; steady CPU "
                  f"per event {num(cpu, '.2f')}x")
    return ratios


def run(args: argparse.Namespace, workdir: Path) -> int:
    import yaml

    from awscollector.embedded.aws import EmbeddedAws
    from awscollector.embedded.certs import make_test_pki
    from awscollector.embedded.relay import DevoRelay

    pki = make_test_pki(workdir / "pki")
    print_machine()
    with EmbeddedAws(in_process=False) as aws, DevoRelay(
            pki, keep_events=False, answer_close_notify=args.relay_close == "close_notify",
    ) as relay:
        seeded = seed(aws, args.lines, args.objects)
        print(f"seeded {seeded.events:,} lines in {len(seeded.keys)} gzip objects: "
              f"{seeded.uncompressed_bytes / 1e6:.1f} MB uncompressed, "
              f"{seeded.compressed_bytes / 1e6:.1f} MB gzip, in {seeded.seconds:.1f}s",
              flush=True)

        config_path = workdir / "collector.yaml"
        config_path.write_text(yaml.safe_dump(
            collector_config(aws, relay, pki, workdir, args.readers)))
        spec = {"endpoint_url": aws.endpoint_url, "region": REGION, "bucket": BUCKET,
                **relay_spec(relay, pki)}
        phases, failures = run_phases(args, workdir, aws, relay, seeded, __file__, spec,
                                      config_path, check)

    print()
    print(process_table(phases))
    print(f"\n{seeded.events:,} events in {len(seeded.keys)} objects, "
          f"{seeded.uncompressed_bytes / 1e6:.1f} MB uncompressed. events/s and MB/s: over "
          "active time, from process start to the relay having every event (startup in, "
          "idle tail out); steady events/s: from the relay's first event to its last. CPU: "
          "the measured process and its children. "
          f"Collector readers={args.readers}, --idle-seconds {args.idle_seconds:g}.\n")
    summary = process_summary(phases)
    ratios = print_process_summary(summary)

    if args.json_path:
        Path(args.json_path).write_text(json.dumps({
            "events": seeded.events, "objects": len(seeded.keys),
            "uncompressed_bytes": seeded.uncompressed_bytes,
            "phases": phase_records(phases), "summary": summary, "ratios": ratios,
            "target": TARGET_RATIO, "failures": failures}, indent=2) + "\n")
    return finish(failures)


def run_phases(args: argparse.Namespace, workdir: Path, aws, relay, seeded: Seeded,
               script: str, spec: dict, config_path: Path,
               check_phase: Callable[[str, Phase, object, Path], list[str]],
               ) -> tuple[list[Phase], list[str]]:
    """Every phase of every round, with every process count; each checked (check_phase,
    and for the collector the queue and the dead letters). The objects are put again
    before every collector phase but the first, so that the queue announces them."""
    phases: list[Phase] = []
    failures: list[str] = []
    collector_runs = 0
    for round_, name, n, log_path in process_phase_runs(args, workdir):
        if name == "collector" and collector_runs:
            rearm_objects(aws, seeded, spec["bucket"])
        command = (worker_command(script, spec, n) if name == "baseline"
                   else collector_command(config_path, args, n))
        phase = measure(name, round_, command, relay, seeded.events,
                        seeded.uncompressed_bytes, log_path, args.timeout, n)
        phases.append(phase)
        found = check_phase(name, phase, relay, log_path)
        if name == "collector":
            collector_runs += 1
            found += check_collector(aws, seeded, workdir)
        failures += [f"[{n} proc] {f}" for f in found]
        print(f"  {phase.received:,} events, active {num(phase.active, '.2f')}s, wall "
              f"{phase.wall:.2f}s, CPU {phase.cpu:.1f}s, peak RSS {phase.peak_rss_mb:.0f} MB"
              f"{baseline_note(name, log_path)}", flush=True)
    return phases, failures


def rearm_objects(aws, seeded: Seeded, bucket: str) -> None:
    """Put every object again in ``bucket``, so that the queue announces it again."""
    s3 = aws.client("s3", REGION)
    for key, body in zip(seeded.keys, seeded.bodies, strict=True):
        s3.put_object(Bucket=bucket, Key=key, Body=body)


def exit_failures(name: str, phase: Phase, log_path: Path) -> list[str]:
    if phase.exit_code == 0:
        return []
    return [f"{name} round {phase.round}: exit code {phase.exit_code}; "
            f"its log ends:\n{tail(log_path)}"]


def count_failures(name: str, phase: Phase) -> list[str]:
    """The relay's count against the expected: fewer fail; more fail the baseline only."""
    failures = []
    if phase.received < phase.expected:
        failures.append(f"{name} round {phase.round}: relay got {phase.received:,} of "
                        f"{phase.expected:,} events ({phase.expected - phase.received:,} "
                        "missing)")
    elif phase.received > phase.expected:
        extra = phase.received - phase.expected
        if name == "baseline":
            failures.append(f"baseline round {phase.round}: {extra:,} events too many")
        else:  # at least once: allowed, but reported
            print(f"  note: {extra:,} duplicate events (at-least-once delivery)")
    return failures


def parse_failures(name: str, phase: Phase, relay) -> list[str]:
    bad = relay.bad_lines()
    if not bad:
        return []
    return [f"{name} round {phase.round}: relay could not parse {len(bad)} lines, "
            f"first {bad[0][:200]!r}"]


def check(name: str, phase: Phase, relay, log_path: Path) -> list[str]:
    failures = exit_failures(name, phase, log_path) + count_failures(name, phase)
    counts = relay.counts()
    if set(counts) - {TABLE}:
        failures.append(f"{name} round {phase.round}: unexpected tables {sorted(counts)}")
    return failures + parse_failures(name, phase, relay)


def check_collector(aws, seeded: Seeded, workdir: Path) -> list[str]:
    failures = []
    depth = queue_depth(aws, seeded.queue_url)
    if depth:
        failures.append(f"collector: {depth} messages left in the queue")
    return failures + dead_letter_failures(workdir)


def dead_letter_failures(workdir: Path) -> list[str]:
    dead = dead_letter_lines(workdir)
    if not dead:
        return []
    return [f"collector: {dead} dead-letter entries in {workdir / 'deadletter'}"]


if __name__ == "__main__":
    sys.exit(main())
