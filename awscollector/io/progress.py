"""The live progress line of a run by hand (``run --until-idle`` in a terminal).

    collecting: 12000 events [00:05, 2400.00 events/s, objects=12 dead_lettered=0]

Drawn on stderr by tqdm, from the run's statistics (io/stats.py); log lines are
printed above it meanwhile. The CLI shows it only when stderr is a terminal:
never in a pipe or a log file, where its carriage returns would be noise.
tqdm is imported here, when the line is shown, not when the collector starts.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from awscollector.io.stats import Counts, StatsView


def progress_totals(snapshot: dict[tuple[str, str], Counts], output: str) -> tuple[int, int, int]:
    """(objects read, events delivered to ``output``, dead-lettered) over every service."""
    values = snapshot.values()
    return (sum(c.objects for c in values),
            sum(sum(c.delivered(output).values()) for c in values),
            sum(c.dead_lettered for c in values))


def _size(file) -> tuple[int, int]:
    """The terminal's columns and rows: tqdm draws nothing on one that says 0 (a new pty)."""
    try:
        size = os.get_terminal_size(file.fileno())
        return size.columns or 120, size.lines or 40
    except (OSError, ValueError, AttributeError):
        return 120, 40


@contextmanager
def progress_line(stats: StatsView, every: float = 0.5, file=None) -> Iterator[None]:
    """Shows the line (on ``file``, stderr by default) while the block runs."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    file = file or sys.stderr
    columns, rows = _size(file)
    bar = tqdm(total=None, desc="collecting", unit=" events", file=file, ncols=columns,
               nrows=rows, mininterval=every)
    done = threading.Event()

    def follow() -> None:
        shown = 0
        while True:
            stopped = done.wait(every)
            objects, events, dead = progress_totals(stats.snapshot(), stats.output)
            bar.set_postfix_str(f"objects={objects} dead_lettered={dead}", refresh=False)
            bar.update(events - shown)
            shown = events
            bar.refresh()
            if stopped:
                return

    thread = threading.Thread(target=follow, name="collector-progress", daemon=True)
    with logging_redirect_tqdm():
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
            bar.close()
