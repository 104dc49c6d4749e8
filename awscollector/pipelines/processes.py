"""``aws-collector run --processes N``: N collector pipelines, one per OS process.

On the DirectRunner one pipeline uses one core. Every child runs the same command
(``python -m awscollector run ...``) with the same config, plus hidden options that
tell it its index, the count, and where to write its summary rows. They read the
same queues: SQS hands each message to one of them at a time. The API streams are
split among them by a stable hash of each stream's key (``share_streams``).

This process (the supervisor) builds no pipeline and loads neither Beam nor the
config: it starts the children at once, so that they poll as soon as one process
alone would. It forwards SIGINT and SIGTERM to every child; when a child fails it
stops the others (SIGTERM: they deliver what they hold), says the child's error
(once, however many children had it) and exits with the child's code. While they
run it reports the statistics of all of them as one run (io/stats_files.py); at the
end it prints one summary, the children's rows summed.

By default a run has a process per core (``default_processes``): on the DirectRunner
one pipeline keeps one core busy at most.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from awscollector.io.stats_files import SummedStats, read_json, write_json
from awscollector.pipelines.summary import SummaryRow, format_summary

log = logging.getLogger(__name__)

# The hidden options of a child (cli.py): its index (0-based), the count, the JSON
# file it writes its summary rows (or its error) to when it ends, and the file it
# keeps its statistics in while it runs.
INDEX_OPTION = "--process-index"
COUNT_OPTION = "--process-count"
SUMMARY_OPTION = "--summary-file"
STATS_OPTION = "--stats-file"

# Where ``--processes`` is not given: this variable, else a process per core.
PROCESSES_VARIABLE = "AWS_COLLECTOR_PROCESSES"
# The runner names that mean the DirectRunner (Beam's own spellings), the only runner
# with which a pipeline keeps to one process.
DIRECT_RUNNERS = frozenset({"directrunner", "direct", "bundlebaseddirectrunner",
                            "switchingdirectrunner"})


def child_command(argv: list[str], index: int, count: int, summary: Path,
                  stats: Path) -> list[str]:
    """The command line of child ``index``: this run's arguments and the hidden ones."""
    return [sys.executable, "-m", "awscollector", *argv, INDEX_OPTION, str(index),
            COUNT_OPTION, str(count), SUMMARY_OPTION, str(summary), STATS_OPTION, str(stats)]


def usable_cores() -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup v2 CPU
    quota (a container's ``--cpus``)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, max(1, -(-int(quota) // int(period))))  # rounded up
    except (OSError, ValueError):
        pass
    return max(1, cores)


def default_processes() -> int:
    """``run``'s process count when ``--processes`` is not given: the environment's
    ``AWS_COLLECTOR_PROCESSES``, else a process per usable core. ValueError when the
    variable is not a whole number of 1 or more."""
    text = os.environ.get(PROCESSES_VARIABLE, "").strip()
    if not text:
        return usable_cores()
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{PROCESSES_VARIABLE}={text!r} is not a whole number of 1 or more")
    return value


def direct_runner(beam_args: list[str]) -> bool:
    """Whether the Beam options name the DirectRunner (or no runner: the default).
    Read here, without loading Beam, so that the children start at once."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--runner", default=None)
    known, _ = parser.parse_known_args(beam_args)
    runner = known.runner
    return runner is None or runner.rsplit(".", 1)[-1].lower() in DIRECT_RUNNERS


def process_tag(index: int, count: int) -> str:
    """How a child's log lines name it: ``process=1/2`` is the first of two."""
    return f"process={index + 1}/{count}"


def end_with_parent() -> None:
    """In a child: a SIGTERM when the supervisor dies (even by SIGKILL), so that no
    collector goes on alone that nobody stops. Linux only (prctl PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def write_summary(path: str | os.PathLike, rows: list[SummaryRow]) -> None:
    """A child's summary rows, written whole or not at all (the supervisor reads them)."""
    write_json(path, {"rows": [list(row) for row in rows]})


def write_error(path: str | os.PathLike, lines: list[str]) -> None:
    """A child's error (what a run alone prints on stderr), for the supervisor to say
    once rather than each child in turn."""
    write_json(path, {"error": lines})


def read_summary(path: Path) -> list[SummaryRow] | None:
    rows = (read_json(path) or {}).get("rows")
    return None if rows is None else [SummaryRow(*row) for row in rows]


def read_error(path: Path) -> list[str]:
    return list((read_json(path) or {}).get("error", []))


def merge_rows(parts: list[list[SummaryRow]]) -> list[SummaryRow]:
    """The children's summary rows summed per (service, region, table), in the order
    they first appear. A child that delivered nothing for a service shows its default
    table with 0: such a row is dropped when another child names a table there."""
    sums: dict[tuple[str, str, str], list[int]] = {}
    for rows in parts:
        for service, region, table, delivered, dead in rows:
            counts = sums.setdefault((service, region, table), [0, 0])
            counts[0] += delivered
            counts[1] += dead
    tables: dict[tuple[str, str], int] = {}
    for service, region, _ in sums:
        tables[(service, region)] = tables.get((service, region), 0) + 1
    return [SummaryRow(service, region, table, delivered, dead)
            for (service, region, table), (delivered, dead) in sums.items()
            if delivered or dead or tables[(service, region)] == 1]


def exit_code(returncode: int, stopping: bool) -> int:
    """What a child's return code means for the run: 0, 1 (runtime) or 2 (config,
    usage). A child killed by a signal failed, unless the run was asked to stop."""
    if returncode == 0 or (returncode < 0 and stopping):
        return 0
    return 2 if returncode == 2 else 1


class Supervisor:
    """Starts the children, forwards signals to them, and waits for them all."""

    def __init__(self, argv: list[str], count: int, workdir: Path) -> None:
        self.argv, self.count, self.workdir = argv, count, workdir
        self.children: list[subprocess.Popen] = []
        self.stopping = False  # SIGINT or SIGTERM reached this process
        self.stats = SummedStats(self.stats_path(i) for i in range(count))
        self._said: set[str] = set()  # error lines already on stderr

    def summary_path(self, index: int) -> Path:
        return self.workdir / f"summary-{index}.json"

    def stats_path(self, index: int) -> Path:
        return self.workdir / f"stats-{index}.json"

    def on_signal(self, signum: int, _frame) -> None:
        self.stopping = True
        log.info("signal %d: passing it to the %d processes", signum, self.count)
        self._send(signum)

    def _send(self, signum: int) -> None:
        for child in self.children:
            if child.poll() is None:
                try:
                    child.send_signal(signum)
                except ProcessLookupError:  # it ended meanwhile
                    pass

    def start(self) -> None:
        for index in range(self.count):
            command = child_command(self.argv, index, self.count, self.summary_path(index),
                                    self.stats_path(index))
            # stdout and stderr inherited: the children's log lines (tagged) go where
            # ours go; they print nothing on stdout.
            self.children.append(subprocess.Popen(command, stdin=subprocess.DEVNULL))
            if self.stopping:  # a signal came while starting them
                self._send(signal.SIGTERM)
        log.info("started %d collector processes: pids %s", self.count,
                 " ".join(str(c.pid) for c in self.children))

    def wait(self, ticking=None) -> int:
        """Waits for every child; returns the run's exit code (the first failure's).
        ``ticking``: called every tenth of a second meanwhile."""
        failed = 0
        running = set(range(self.count))
        while running:
            for index in sorted(running):
                returncode = self.children[index].poll()
                if returncode is None:
                    continue
                running.discard(index)
                self._say_error(index)
                code = exit_code(returncode, self.stopping)
                if code and not failed:
                    failed = code
                    how = (f"killed by signal {-returncode}" if returncode < 0
                           else f"exited with {returncode}")
                    log.error("%s %s: stopping the other processes", process_tag(
                        index, self.count), how)
                    self._send(signal.SIGTERM)
            if ticking is not None:
                ticking()
            if running:
                time.sleep(0.1)
        return failed

    def _say_error(self, index: int) -> None:
        """A child's error lines on stderr, those no other child said before."""
        for line in read_error(self.summary_path(index)):
            if line not in self._said:
                self._said.add(line)
                print(line, file=sys.stderr, flush=True)

    def end(self) -> None:
        """On the way out after an error of this process: no child left behind."""
        if any(child.poll() is None for child in self.children):
            self._send(signal.SIGTERM)
            for child in self.children:
                child.wait()

    def rows(self) -> list[SummaryRow] | None:
        """The children's summary rows, merged; None if one wrote none."""
        parts = [read_summary(self.summary_path(i)) for i in range(self.count)]
        if any(part is None for part in parts):
            return None
        return merge_rows(parts)


class _Reports:
    """The run's statistics lines, started once a child has said what its lines are
    (its config's services and interval: this process never reads the config)."""

    def __init__(self, stats: SummedStats, stack: ExitStack) -> None:
        self._stats, self._stack = stats, stack
        self._started = False

    def __call__(self) -> None:
        if self._started or not self._stats.ready():
            return
        self._started = True
        if self._stats.interval_seconds > 0:
            from awscollector.io.stats import StatsReporter

            reporter = StatsReporter(self._stats, self._stats.rows,
                                     self._stats.interval_seconds, self._stats.output)
            reporter.start()
            self._stack.callback(reporter.stop)


def run_processes(argv: list[str], count: int, metrics_port: int | None = None,
                  progress: bool = False) -> int:
    """Runs ``count`` children of ``argv`` (the arguments of this ``run``) to their end;
    prints the one summary. Returns the exit code: 0, or the failed child's (1 or 2).

    While they run: the statistics lines of the whole run, and with ``metrics_port``
    or ``progress`` its Prometheus endpoint or progress line (io/stats_files.py)."""
    workdir = Path(tempfile.mkdtemp(prefix="aws-collector-"))
    supervisor = Supervisor(argv, count, workdir)
    previous = {s: signal.signal(s, supervisor.on_signal)
                for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with ExitStack() as stack:
            if metrics_port is not None:  # bound first: a port in use fails the run early
                from awscollector.io.prometheus import serving

                stack.enter_context(serving(supervisor.stats, metrics_port))
            supervisor.start()
            if progress:
                from awscollector.io.progress import progress_line

                stack.enter_context(progress_line(supervisor.stats))
            code = supervisor.wait(_Reports(supervisor.stats, stack))
        if code:
            return code
        rows = supervisor.rows()
        if rows is None:  # ended with 0 without its summary: cannot say what it did
            log.error("a collector process ended without its summary")
            return 1
        print(format_summary(rows))
        return 0
    finally:
        supervisor.end()
        for s, handler in previous.items():
            signal.signal(s, handler)
        shutil.rmtree(workdir, ignore_errors=True)
