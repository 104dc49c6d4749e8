"""A time range as a splittable DoFn's restriction, read page by page.

An API puller reads a stream (a log group, a detector, CloudTrail's events of an
account and region) over time: ``TimeRange(start, end)`` in epoch milliseconds,
``end`` being ``FOREVER`` when it follows now. It is read in *windows*
``[ws, we)``, each fetched page by page; a ``Cursor`` says where the next page
starts: the window, and the API's page token inside it (None: the window's first
page).

A page is fetched first and *claimed* after, with the cursor that follows it
(``Claim``): fetching has no side effect, and the tracker then knows where the
remainder starts, token included. ``defer_remainder`` therefore resumes exactly
at the next page, and the progress a bundle made is ``[first cursor, next
cursor)``, which is what the puller checkpoints once the bundle was delivered.

Splits: a long backfill is cut into pieces at window boundaries before it
starts (``split_range``), which the runner may read in parallel; a running
range only splits to defer its remainder.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from apache_beam.io.iobase import RestrictionProgress, RestrictionTracker

FOREVER = sys.maxsize  # the end of a range that follows now


@dataclass(frozen=True)
class Cursor:
    """Where the next page is: window ``[start, end)`` and the page token in it."""

    start: int
    end: int | None = None  # None: the window is not started (its end is not fixed yet)
    token: str | None = None


@dataclass(frozen=True)
class TimeRange:
    """``[start, end)`` in epoch ms; ``window_end`` and ``token`` resume a window
    that was interrupted between pages."""

    start: int
    end: int
    token: str | None = None
    window_end: int | None = None

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.start, self.window_end, self.token)

    @property
    def bounded(self) -> bool:
        return self.end != FOREVER


@dataclass(frozen=True)
class Claim:
    """A page that was fetched at ``at``; ``next`` is where the following one is."""

    at: Cursor
    next: Cursor


STOP = Claim(Cursor(FOREVER), Cursor(FOREVER))  # give up the rest (the run stops)


class TimeRangeTracker(RestrictionTracker):
    """Tracks the pages claimed in a ``TimeRange``. Splits only to defer the rest."""

    def __init__(self, restriction: TimeRange) -> None:
        self._range = restriction
        self._next: Cursor = restriction.cursor  # where the remainder starts
        self._claimed = False
        self._stopped = False

    def current_restriction(self) -> TimeRange:
        return self._range

    def try_claim(self, claim: Claim) -> bool:
        if claim is STOP or claim == STOP:
            self._stopped = True
            return False
        if claim.at.start >= self._range.end or claim.at.start < self._next.start:
            return False
        self._next = claim.next
        self._claimed = True
        return True

    def try_split(self, fraction_of_remainder: float):
        if fraction_of_remainder != 0 or self._stopped:
            return None  # no dynamic splits: pieces are made before a range starts
        nxt = self._next
        if nxt.start >= self._range.end:
            return None
        primary = TimeRange(self._range.start, nxt.start, self._range.token,
                            self._range.window_end)
        residual = TimeRange(nxt.start, self._range.end, nxt.token, nxt.end)
        self._range = primary
        return primary, residual

    def check_done(self) -> None:
        if self._stopped or self._next.start >= self._range.end:
            return
        raise ValueError(f"time range [{self._next.start}, {self._range.end}) not read")

    def current_progress(self) -> RestrictionProgress:
        r = self._range
        if not r.bounded:
            done = self._next.start - r.start
            return RestrictionProgress(completed=float(max(done, 0)), remaining=1.0)
        total = max(r.end - r.start, 1)
        done = min(max(self._next.start - r.start, 0), total)
        return RestrictionProgress(completed=float(done), remaining=float(total - done))

    def is_bounded(self) -> bool:
        return self._range.bounded


def merge(intervals: list[list[int]]) -> list[list[int]]:
    """Sorted, non-overlapping intervals covering the same time as ``intervals``."""
    out: list[list[int]] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return out


def gaps(start: int, end: int, done: list[list[int]]) -> list[tuple[int, int]]:
    """The parts of ``[start, end)`` that ``done`` does not cover."""
    out = []
    at = start
    for d_start, d_end in merge(done):
        if d_end <= at:
            continue
        if d_start >= end:
            break
        if d_start > at:
            out.append((at, d_start))
        at = max(at, d_end)
    if at < end:
        out.append((at, end))
    return out


def split_range(start: int, end: int, piece_ms: int | None, done: list[list[int]] = (),
                open_windows: dict[int, Cursor] | None = None) -> list[TimeRange]:
    """``[start, end)`` less what ``done`` covers, cut every ``piece_ms`` (None: not
    cut); a piece that starts where a window was interrupted resumes it
    (``open_windows``: window start -> its cursor)."""
    open_windows = open_windows or {}
    pieces = []
    for g_start, g_end in gaps(start, end, list(done)):
        at = g_start
        while at < g_end:
            stop = g_end if not piece_ms or g_end == FOREVER else min(at + piece_ms, g_end)
            resume = open_windows.get(at)
            if resume is not None and resume.end is not None:
                stop = max(stop, min(resume.end, g_end))
                pieces.append(TimeRange(at, stop, resume.token, resume.end))
            else:
                pieces.append(TimeRange(at, stop))
            at = stop
    return pieces
