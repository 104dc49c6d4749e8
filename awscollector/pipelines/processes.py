"""``aws-collector run --processes N``: N collector pipelines, one per OS process.

On the DirectRunner one pipeline uses one core. Every child runs the same command
(``python -m awscollector run ...``) with the same config, plus hidden options that
tell it its index, the count, and where to write its summary rows. They read the
same queues: SQS hands each message to one of them at a time. The API streams are
split among them by a stable hash of each stream's key (``share_streams``).

This process (the supervisor) builds no pipeline. It forwards SIGINT and SIGTERM
to every child; when a child fails it stops the others (SIGTERM: they deliver what
they hold) and exits with the child's code. At the end it prints one summary, the
children's rows summed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

# The hidden options of a child (cli.py): its index (0-based), the count, and the
# JSON file it writes its summary rows to when it ends.
INDEX_OPTION = "--process-index"
COUNT_OPTION = "--process-count"
SUMMARY_OPTION = "--summary-file"


def child_command(argv: list[str], index: int, count: int, summary: Path) -> list[str]:
    """The command line of child ``index``: this run's arguments and the hidden ones."""
    return [sys.executable, "-m", "awscollector", *argv, INDEX_OPTION, str(index),
            COUNT_OPTION, str(count), SUMMARY_OPTION, str(summary)]


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


def write_summary(path: str | os.PathLike, rows: list[tuple]) -> None:
    """A child's summary rows, written whole or not at all (the supervisor reads them)."""
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps([list(row) for row in rows]))
    os.replace(tmp, path)


def read_summary(path: Path) -> list[tuple] | None:
    try:
        return [tuple(row) for row in json.loads(path.read_text())]
    except (OSError, ValueError):
        return None


def merge_rows(parts: list[list[tuple]]) -> list[tuple]:
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
    return [(service, region, table, delivered, dead)
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

    def summary_path(self, index: int) -> Path:
        return self.workdir / f"summary-{index}.json"

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
            command = child_command(self.argv, index, self.count, self.summary_path(index))
            # stdout and stderr inherited: the children's log lines (tagged) go where
            # ours go; they print nothing on stdout.
            self.children.append(subprocess.Popen(command, stdin=subprocess.DEVNULL))
            if self.stopping:  # a signal came while starting them
                self._send(signal.SIGTERM)
        log.info("started %d collector processes: pids %s", self.count,
                 " ".join(str(c.pid) for c in self.children))

    def wait(self) -> int:
        """Waits for every child; returns the run's exit code (the first failure's)."""
        failed = 0
        running = set(range(self.count))
        while running:
            for index in sorted(running):
                returncode = self.children[index].poll()
                if returncode is None:
                    continue
                running.discard(index)
                code = exit_code(returncode, self.stopping)
                if code and not failed:
                    failed = code
                    how = (f"killed by signal {-returncode}" if returncode < 0
                           else f"exited with {returncode}")
                    log.error("%s %s: stopping the other processes", process_tag(
                        index, self.count), how)
                    self._send(signal.SIGTERM)
            if running:
                time.sleep(0.1)
        return failed

    def end(self) -> None:
        """On the way out after an error of this process: no child left behind."""
        if any(child.poll() is None for child in self.children):
            self._send(signal.SIGTERM)
            for child in self.children:
                child.wait()

    def rows(self) -> list[tuple] | None:
        """The children's summary rows, merged; None if one wrote none."""
        parts = [read_summary(self.summary_path(i)) for i in range(self.count)]
        if any(part is None for part in parts):
            return None
        return merge_rows(parts)


def run_processes(argv: list[str], count: int) -> int:
    """Runs ``count`` children of ``argv`` (the arguments of this ``run``) to their end;
    prints the one summary. Returns the exit code: 0, or the failed child's (1 or 2)."""
    from awscollector.pipelines.collector import format_summary

    workdir = Path(tempfile.mkdtemp(prefix="aws-collector-"))
    supervisor = Supervisor(argv, count, workdir)
    previous = {s: signal.signal(s, supervisor.on_signal)
                for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        supervisor.start()
        code = supervisor.wait()
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
