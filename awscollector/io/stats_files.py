"""One statistics stream for ``run --processes``: each process writes its counts to a
file, the supervisor sums them and reports for the whole run.

A child of ``run --processes`` runs a ``StatsPublisher``: every second, and once more
when its pipeline ends, it replaces its file with a JSON document holding its report's
lines, interval and output, its resident memory and its counts. The supervisor reads
every child's file through ``SummedStats``, which the reporter, the progress line and
the Prometheus endpoint read like one process's aggregate (a ``StatsView``)::

    summed = SummedStats([workdir / "stats-0.json", workdir / "stats-1.json"])
    summed.snapshot()   # counts added up; the oldest unacknowledged message of any
                        # process; each API stream's lag from the process reading it

A file is written whole or not at all (a temporary file renamed over it), so a
reader never sees half of one. A child that ended leaves its last counts in place:
the totals keep what it did.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from awscollector.io.stats import COUNTED, Counts, CountsSource, StatsRow

log = logging.getLogger(__name__)

PUBLISH_SECONDS = 1.0  # how stale the supervisor's view of a child may be


def stats_document(stats: CountsSource, rows: Iterable[StatsRow], interval: float,
                   output: str) -> dict:
    """What a child's file holds: its report's settings, memory and counts."""
    return {
        "rows": [[r.service, r.region, sorted(r.kinds)] for r in rows],
        "interval_seconds": interval,
        "output": output,
        "memory_mb": stats.memory_mb(),
        "counts": [_counts_json(service, region, c)
                   for (service, region), c in sorted(stats.snapshot().items())],
    }


def _counts_json(service: str, region: str, c: Counts) -> dict:
    return {"service": service, "region": region,
            **{name: getattr(c, name) for name in COUNTED},
            "events": [[o, t, n] for (o, t), n in sorted(c.events.items())],
            "oldest_unacked": c.oldest_unacked, "lags": c.lags}


def _counts_from_json(d: dict) -> tuple[tuple[str, str], Counts]:
    counts = Counts(**{name: int(d[name]) for name in COUNTED},
                    events={(o, t): int(n) for o, t, n in d["events"]},
                    oldest_unacked=d["oldest_unacked"],
                    lags={s: float(v) for s, v in d["lags"].items()})
    return (d["service"], d["region"]), counts


def write_json(path: str | os.PathLike, document: dict) -> None:
    """Replaces ``path`` with ``document``, atomically (what a process of ``run
    --processes`` tells its supervisor: its statistics, its summary or its error)."""
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(document))
    os.replace(tmp, path)


def read_json(path: Path) -> dict | None:
    """A child's last document; None before its first (or if it is unreadable)."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


class StatsPublisher:
    """In a child: a thread writing this process's counts to ``path`` every
    ``PUBLISH_SECONDS``, and a last time when stopped."""

    def __init__(self, stats: CountsSource, path: str | os.PathLike,
                 rows: Iterable[StatsRow], interval: float, output: str) -> None:
        self._stats, self._path = stats, path
        self._rows, self._interval, self._output = tuple(rows), interval, output
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="collector-stats-file",
                                        daemon=True)

    def start(self) -> None:
        self.publish()  # the supervisor learns the report's lines at once
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
        self.publish()

    def publish(self) -> None:
        try:
            write_json(self._path, stats_document(self._stats, self._rows, self._interval,
                                                   self._output))
        except Exception as e:  # statistics must never end the run
            log.warning("RUN-012 could not write this process's statistics: %s", e)

    def _run(self) -> None:
        while not self._stopped.wait(PUBLISH_SECONDS):
            self.publish()


class SummedStats:
    """The supervisor's view of its children's files: one ``StatsView`` for the run.

    ``rows``, ``output`` and ``interval_seconds`` come from the first child's
    document (every child runs the same config); until one is written they are empty.
    """

    def __init__(self, paths: Iterable[Path]) -> None:
        self._paths = list(paths)
        self._settings: dict | None = None

    def _documents(self) -> list[dict]:
        documents = [d for d in (read_json(p) for p in self._paths) if d is not None]
        if documents and self._settings is None:
            self._settings = documents[0]
        return documents

    def ready(self) -> bool:
        """Whether a child has written its first document (the report's lines)."""
        self._documents()
        return self._settings is not None

    @property
    def rows(self) -> tuple[StatsRow, ...]:
        if not self.ready():
            return ()
        return tuple(StatsRow(s, r, frozenset(k)) for s, r, k in self._settings["rows"])

    @property
    def output(self) -> str:
        return self._settings["output"] if self.ready() else ""

    @property
    def interval_seconds(self) -> float:
        return float(self._settings["interval_seconds"]) if self.ready() else 0.0

    def snapshot(self) -> dict[tuple[str, str], Counts]:
        total: dict[tuple[str, str], Counts] = {}
        for document in self._documents():
            for item in document["counts"]:
                key, counts = _counts_from_json(item)
                _add(total.setdefault(key, Counts()), counts)
        return total

    def memory_mb(self) -> float:
        """The children's resident memory, summed (each as it last wrote it)."""
        return sum(float(d["memory_mb"]) for d in self._documents())


def _add(total: Counts, counts: Counts) -> None:
    for name in COUNTED:
        setattr(total, name, getattr(total, name) + getattr(counts, name))
    for key, n in counts.events.items():
        total.events[key] = total.events.get(key, 0) + n
    if counts.oldest_unacked is not None:
        total.oldest_unacked = max(total.oldest_unacked or 0.0, counts.oldest_unacked)
    for stream, lag in counts.lags.items():  # split among the processes: one has it
        total.lags[stream] = max(total.lags.get(stream, 0.0), lag)

