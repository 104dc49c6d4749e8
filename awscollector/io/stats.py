"""Statistics while the collector runs: what each service and region has done so far.

Beam's counters cannot be read while a DirectRunner job runs, so the steps also
keep a small aggregate in their own process, a ``ProcessStats``, which they reach
through a ``StatsHandle`` given to them at construction. Like ``StopSignal``
(io/stop.py) the handle is small and picklable, and through Beam's ``Shared``
every copy of it in one process reaches the same aggregate::

    stats = StatsHandle(layout, interval_seconds=300, output="devo")
    pipeline | ReadFromSqs(queues, access, stats=stats)   # ... and every other step
    with stats.reporting():   # a line per service and region every interval
        pipeline.run().wait_until_finish()

On the DirectRunner every step runs in the process that made the handle, and its
reporter (``reporting()``) logs the whole run. On Flink the steps run in Python
SDK workers, in other processes: there each worker process starts its own
reporter when its first step starts (``attach``) and logs what that process
handled; the run's totals are in Beam's metrics, which Flink shows as its own.
Every count here is also a Beam counter (namespace ``stats``) for that reason.

A line, one per service and region (``format_line``)::

    stats non-cloudwatch-logs us-east-1: messages=12 objects=12 bytes=3.4MB
      events=12000 (cloud.aws.vpc.flow=12000) dead_lettered=0 skipped=1
      oldest_unacked=3s rss=210MB
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from awscollector.io.counters import STATS, stats_name

log = logging.getLogger(__name__)

# What a service reads from: the fields its line shows besides the common ones.
S3 = "s3"  # SQS notifications of S3 objects: messages, objects, bytes, oldest_unacked
EVENTS = "events"  # EventBridge events on SQS: messages, oldest_unacked
API = "api"  # AWS API pages: pages, records, lag

COUNTED = ("messages", "objects", "bytes", "pages", "records", "dead_lettered", "skipped")


class CountsSource(Protocol):
    """Where a report reads its counts: a process's aggregate (``ProcessStats``, or
    ``StatsHandle`` for its run), or the sum of several processes' (io/stats_files.py)."""

    def snapshot(self) -> dict[tuple[str, str], Counts]: ...

    def memory_mb(self) -> float: ...


class StatsView(CountsSource, Protocol):
    """What shows a run's statistics live (progress line, Prometheus) reads: the counts,
    the configured lines and the output whose deliveries count."""

    rows: tuple[StatsRow, ...]
    output: str


@dataclass(frozen=True)
class StatsRow:
    """A line of the report: a service (its label) in a region, and what it reads."""

    service: str
    region: str
    kinds: frozenset[str]


@dataclass
class Counts:
    """What one service did in one region so far, in this process."""

    messages: int = 0  # SQS messages received
    objects: int = 0  # S3 objects read whole
    bytes: int = 0  # bytes read from S3 (as stored: compressed)
    pages: int = 0  # API pages read
    records: int = 0  # API records read
    dead_lettered: int = 0  # dead-letter entries written
    skipped: int = 0  # test events, objects of types not collected, ...
    # (output, Devo table) -> events confirmed delivered
    events: dict[tuple[str, str], int] = field(default_factory=dict)
    oldest_unacked: float | None = None  # seconds the oldest held SQS message is held
    lags: dict[str, float] = field(default_factory=dict)  # API stream -> seconds behind

    def delivered(self, output: str) -> dict[str, int]:
        """Devo table -> events delivered to ``output``."""
        return {t: n for (o, t), n in sorted(self.events.items()) if o == output}


class ProcessStats:
    """The aggregate of one process: thread-safe, updated by the steps as they go."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], Counts] = {}
        # (service, region) -> {(queue url, message id): when received (monotonic)}
        self._held: dict[tuple[str, str], dict[tuple[str, str], float]] = {}
        # (service, region) -> {stream: epoch ms up to which it is delivered}
        self._checkpoints: dict[tuple[str, str], dict[str, int]] = {}
        self._beam: dict[tuple[str, str, str], object] = {}
        self._users = 0
        self._reporter: StatsReporter | None = None

    # -- updates, from the steps

    def add(self, what: str, service: str, region: str, n: int = 1) -> None:
        """Count ``n`` of ``what`` (one of COUNTED) for a service and region; also as the
        Beam counter ``stats/<what>|<service>|<region>``."""
        if not n:
            return
        with self._lock:
            counts = self._counts_of(service, region)
            setattr(counts, what, getattr(counts, what) + n)
        self._beam_counter(what, service, region).inc(n)

    def delivered(self, output: str, service: str, region: str, table: str, n: int) -> None:
        """Events confirmed by ``output`` (its Beam counter is the sink's own)."""
        with self._lock:
            events = self._counts_of(service, region).events
            events[(output, table)] = events.get((output, table), 0) + n

    def hold(self, service: str, region: str, url: str, ids: Iterable[str],
             now: float | None = None) -> None:
        """SQS messages received and not yet deleted (acknowledged)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            held = self._held.setdefault((service, region), {})
            for mid in ids:
                held[(url, mid)] = now

    def release(self, service: str, region: str, url: str, ids: Iterable[str]) -> None:
        """SQS messages deleted, or handed back to the queue."""
        with self._lock:
            held = self._held.get((service, region), {})
            for mid in ids:
                held.pop((url, mid), None)

    def release_queues(self, urls: Iterable[str]) -> None:
        """Every held message of these queues (their reader is going away)."""
        urls = set(urls)
        with self._lock:
            for held in self._held.values():
                for key in [k for k in held if k[0] in urls]:
                    del held[key]

    def oldest_unacked(self, service: str, region: str, now: float | None = None) -> float:
        """Seconds since the oldest held message of a service and region was received."""
        now = time.monotonic() if now is None else now
        with self._lock:
            held = self._held.get((service, region))
            return now - min(held.values()) if held else 0.0

    def checkpoint(self, service: str, region: str, stream: str, end_ms: int) -> None:
        """An API stream is delivered up to ``end_ms`` (epoch milliseconds)."""
        with self._lock:
            self._checkpoints.setdefault((service, region), {})[stream] = end_ms

    # -- reading

    def snapshot(self, now: float | None = None, wall_ms: int | None = None
                 ) -> dict[tuple[str, str], Counts]:
        """A copy of every service and region's counts, with ages computed now."""
        now = time.monotonic() if now is None else now
        wall_ms = int(time.time() * 1000) if wall_ms is None else wall_ms
        with self._lock:
            keys = set(self._counts) | set(self._held) | set(self._checkpoints)
            out = {}
            for key in keys:
                c = self._counts.get(key, Counts())
                copy = Counts(**{name: getattr(c, name) for name in COUNTED},
                              events=dict(c.events))
                held = self._held.get(key)
                copy.oldest_unacked = now - min(held.values()) if held else None
                copy.lags = {s: max(0.0, (wall_ms - end) / 1000)
                             for s, end in self._checkpoints.get(key, {}).items()}
                out[key] = copy
            return out

    def memory_mb(self) -> float:
        """The resident memory the counts come from: this process's."""
        return rss_mb()

    def _counts_of(self, service: str, region: str) -> Counts:
        key = (service, region)
        counts = self._counts.get(key)
        if counts is None:
            counts = self._counts[key] = Counts()
        return counts

    def _beam_counter(self, what: str, service: str, region: str):
        key = (what, service, region)
        counter = self._beam.get(key)
        if counter is None:
            from apache_beam.metrics import Metrics  # here: a supervisor never loads Beam

            # Resolved at each inc() against the step that runs it; outside a step, a no-op.
            counter = self._beam[key] = Metrics.counter(STATS, stats_name(what, service, region))
        return counter

    # -- a Flink worker's own reporter

    def _attach(self, handle: StatsHandle) -> None:
        with self._lock:
            self._users += 1
            start = (self._reporter is None and handle.interval_seconds > 0
                     and os.getpid() != handle.owner_pid)
            if start:
                self._reporter = StatsReporter(self, handle.rows, handle.interval_seconds,
                                               handle.output)
        if start:
            self._reporter.start()

    def _detach(self) -> None:
        with self._lock:
            self._users -= 1
            reporter = self._reporter if self._users <= 0 else None
            if reporter is not None:
                self._reporter = None
        if reporter is not None:
            reporter.stop()


class _Box:
    """What Beam's Shared keeps per process (it needs an object it can weakly reference)."""

    def __init__(self) -> None:
        self.stats = ProcessStats()


class StatsHandle:
    """How a step reaches its process's ``ProcessStats``; picklable.

    Args:
      rows: the report's lines (a service and region each), in order.
      interval_seconds: how often a reporter logs (0: never).
      output: the output whose deliveries the lines show (the summary's output).
    """

    def __init__(self, rows: Iterable[StatsRow] = (), interval_seconds: float = 0,
                 output: str = "") -> None:
        self.rows = tuple(rows)
        self.interval_seconds = interval_seconds
        self.output = output
        from apache_beam.utils.shared import Shared

        self.owner_pid = os.getpid()  # where the run's own reporter (reporting()) logs
        self._shared = Shared()
        self._box: _Box | None = None
        # The handle that made the aggregate keeps it: when the steps' copies go (the
        # pipeline ended), the run can still read it.
        self.get()

    def get(self) -> ProcessStats:
        """This process's aggregate for the run."""
        if self._box is None:
            self._box = self._shared.acquire(_Box)  # the strong reference keeps it alive
        return self._box.stats

    def snapshot(self) -> dict[tuple[str, str], Counts]:
        """This process's counts now (see ``ProcessStats.snapshot``)."""
        return self.get().snapshot()

    def memory_mb(self) -> float:
        return rss_mb()

    def attach(self) -> ProcessStats:
        """For a step's ``setup``: the aggregate; in a worker process (not the one that
        made the handle), the first step to attach starts the process's reporter."""
        stats = self.get()
        stats._attach(self)
        return stats

    def detach(self) -> None:
        """For a step's ``teardown``: the last one to leave stops the worker's reporter."""
        if self._box is not None:
            self._box.stats._detach()

    @contextmanager
    def reporting(self) -> Iterator[ProcessStats]:
        """The run's reporter in this process, while the block runs (joined after it)."""
        reporter = None
        if self.interval_seconds > 0:
            reporter = StatsReporter(self.get(), self.rows, self.interval_seconds, self.output)
            reporter.start()
        try:
            yield self.get()
        finally:
            if reporter is not None:
                reporter.stop()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_box"] = None
        return state

    def __repr__(self) -> str:
        return f"StatsHandle({len(self.rows)} rows, every {self.interval_seconds}s)"


def attached(handle: StatsHandle | None) -> ProcessStats:
    """A step's aggregate: its run's, or a private one when it was built without a handle
    (a step used on its own, in a test)."""
    return handle.attach() if handle is not None else ProcessStats()


# -- the report


def rss_mb() -> float:
    """This process's resident memory now (VmRSS), in MB; 0 where /proc is missing."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def human_bytes(n: float) -> str:
    """1536 -> ``1.5KB``; decimal places only below 10 of a unit."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            if unit == "B":
                return f"{int(n)}B"
            return f"{n:.1f}{unit}" if n < 10 else f"{n:.0f}{unit}"
        n /= 1024
    raise AssertionError("unreachable")


def human_seconds(s: float) -> str:
    """``45s``, ``3m05s``, ``2h03m``: whole seconds, stable and short."""
    s = int(s)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def format_line(row: StatsRow, counts: Counts | None, output: str, rss: float) -> str:
    """One line of key=value pairs; which keys depends only on what the service reads."""
    c = counts or Counts()
    parts = [f"stats {row.service} {row.region}:"]
    if S3 in row.kinds or EVENTS in row.kinds:
        parts.append(f"messages={c.messages}")
    if S3 in row.kinds:
        parts += [f"objects={c.objects}", f"bytes={human_bytes(c.bytes)}"]
    if API in row.kinds:
        parts += [f"pages={c.pages}", f"records={c.records}"]
    tables = c.delivered(output)
    parts.append(f"events={sum(tables.values())}")
    if tables:
        parts.append("(" + ", ".join(f"{t}={n}" for t, n in tables.items()) + ")")
    parts += [f"dead_lettered={c.dead_lettered}", f"skipped={c.skipped}"]
    if S3 in row.kinds or EVENTS in row.kinds:
        parts.append(f"oldest_unacked={human_seconds(c.oldest_unacked or 0)}")
    if API in row.kinds:
        lags = c.lags
        parts.append(f"lag={human_seconds(max(lags.values())) if lags else '-'}")
        if len(lags) > 1:
            parts.append("(" + ", ".join(f"{s}={human_seconds(v)}"
                                         for s, v in sorted(lags.items())) + ")")
    parts.append(f"rss={rss:.0f}MB")
    return " ".join(parts)


def report_lines(stats: CountsSource, rows: Iterable[StatsRow], output: str) -> list[str]:
    """The lines of one report: every row, then what this process counted for a service
    and region no row names (a worker of another run layout)."""
    snapshot = stats.snapshot()
    rss = stats.memory_mb()
    rows = list(rows)
    named = {(r.service, r.region) for r in rows}
    lines = [format_line(r, snapshot.get((r.service, r.region)), output, rss) for r in rows]
    for (service, region), counts in sorted(snapshot.items()):
        if (service, region) not in named:
            kinds = frozenset(k for k, seen in ((S3, counts.objects), (API, counts.pages))
                              if seen)
            lines.append(format_line(StatsRow(service, region, kinds), counts, output, rss))
    return lines


class StatsReporter:
    """A thread that logs the report every ``interval`` seconds until stopped."""

    def __init__(self, stats: CountsSource, rows: Iterable[StatsRow], interval: float,
                 output: str) -> None:
        self._stats = stats
        self._rows = tuple(rows)
        self._interval = interval
        self._output = output
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="collector-stats", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                for line in report_lines(self._stats, self._rows, self._output):
                    log.info("%s", line)
            except Exception as e:  # a report must never end the run
                log.warning("RUN-012 a statistics report failed: %s", e)
