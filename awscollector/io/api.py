"""Read AWS APIs over time, checkpointing only what was delivered.

``ReadFromApi`` is a splittable DoFn whose element is a stream (``ApiStream``: a
log group, a GuardDuty detector, CloudTrail's events of an account and region)
and whose restriction is a time range (io/timerange.py), read window by window,
page by page, by the stream's puller (io/pullers/).

- Bounded (``follow=False``, for ``--until-idle``): from the checkpoint (or the
  stream's start) up to now minus the stream's lag, then done.
- Unbounded: the same backfill, then it follows now, reading each new window
  once it is ``lag`` old and polling every ``request_period_s``.

A backfill is cut into pieces the runner may read in parallel, where the puller
says its API's limits allow it (``piece_ms``). Each bundle reads a few pages and
then defers the rest; the runner completes the bundle only once every step fused
after it (parse, outputs, dead letters) has finished, and only then runs the
bundle finalizer that moves the stream's checkpoint past the bundle's pages. On
Flink in streaming mode, that is after the Flink checkpoint covering them.

A checkpoint is ``{"done": [[start, end], ...], "open": [{"start", "end",
"token", "seq"}]}``: the time ranges delivered, and windows interrupted between
pages, with the token of the next page. A run killed at any moment resumes from
it: what the bundle in flight had read is read again, nothing is skipped.

Usage::

    streams = [ApiStream("cloudwatch-logs", "cloudwatch_logs", "123456789012",
                         "eu-west-1", "/aws/lambda/app", start_ms, 60_000, 60)]
    pages = pipeline | ReadFromApi(streams, access, checkpoints, follow=False)
    events = pages | beam.ParDo(ParseApiRecords()).with_outputs(DEAD_LETTER, main="events")
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.utils.timestamp import Duration
from botocore.exceptions import BotoCoreError, ClientError

from awscollector.awserrors import aws_error, error_code
from awscollector.errors import CollectorError
from awscollector.flink.partition import spread_keys
from awscollector.io.access import AwsAccess
from awscollector.io.checkpoints import CheckpointKey, Checkpoints
from awscollector.io.deadletter import DEAD_LETTER, DeadLetter
from awscollector.io.delivery import EventBatch
from awscollector.io.pullers import PULLERS
from awscollector.io.pullers.base import ApiStream, Puller
from awscollector.io.ratelimit import SharedLimits
from awscollector.io.stats import StatsHandle, attached
from awscollector.io.stop import StopSignal
from awscollector.io.timerange import (
    FOREVER,
    STOP,
    Claim,
    Cursor,
    TimeRange,
    TimeRangeTracker,
    gaps,
    merge,
    split_range,
)
from awscollector.transforms.flatten import flatten_message

log = logging.getLogger(__name__)

THROTTLING = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException",
                        "RequestLimitExceeded", "LimitExceededException",
                        "RequestThrottled", "RequestThrottledException"})
MAX_BACKOFF_S = 60.0
# The DoFn is its own restriction provider: a stream's range depends on its checkpoint.
_OWN_RESTRICTION = beam.DoFn.RestrictionParam()


class ApiRecords(NamedTuple):
    """Records of one page of a stream, and where they came from."""

    stream: str  # the stream's key
    records: list[Any]
    window: tuple[int, int]


def now_ms() -> int:
    return int(time.time() * 1000)


def checkpoint_key(stream: ApiStream) -> CheckpointKey:
    return CheckpointKey(stream.service, stream.account, stream.region, stream.stream)


def limit_of(stream: ApiStream, puller: Puller) -> int:
    """Where reading stops for now: ``lag`` before now, on the puller's time grid."""
    limit = now_ms() - stream.lag_ms
    return limit - limit % puller.align_ms


def window_end(start: int, puller: Puller) -> int:
    """The end of the window that starts at ``start``: the next line of the grid."""
    return (start // puller.window_ms + 1) * puller.window_ms


def advanced(old: dict | None, first: Cursor, nxt: Cursor, seq: int) -> dict:
    """A checkpoint moved past the pages read from ``first`` up to ``nxt``.

    Finalizers of a stream's bundles may run out of order, and pieces of a stream
    may be read at once: ``done`` only grows, and an open window keeps its newest
    token (``seq``)."""
    old = old or {}
    done = [list(d) for d in old.get("done", [])]
    if nxt.start > first.start:
        done.append([first.start, nxt.start])
    done = merge(done)
    windows = {o["start"]: o for o in old.get("open", [])}
    if nxt.start != first.start:
        windows.pop(first.start, None)
    if nxt.token is not None:
        kept = windows.get(nxt.start)
        if kept is None or kept.get("seq", 0) < seq:
            windows[nxt.start] = {"start": nxt.start, "end": nxt.end, "token": nxt.token,
                                  "seq": seq}
    elif nxt.start == first.start:
        windows.pop(nxt.start, None)
    # A window inside what is done needs no token any more.
    covered = [w for w in windows if not gaps(w, w + 1, done)]
    for w in covered:
        windows.pop(w)
    return {"done": done, "open": sorted(windows.values(), key=lambda o: o["start"])}


def target_of(stream: ApiStream) -> int:
    """Where a bounded read of ``stream`` that starts now ends."""
    return limit_of(stream, PULLERS[stream.api])


def caught_up(stream: ApiStream, saved: dict | None, target: int) -> bool:
    """Whether a checkpoint covers ``stream`` from its start up to ``target``."""
    start = _start(stream, PULLERS[stream.api])
    done = merge([list(d) for d in (saved or {}).get("done", [])])
    return start >= target or not gaps(start, target, done)


def _start(stream: ApiStream, puller: Puller) -> int:
    start = stream.start
    if puller.max_lookback_s:
        start = max(start, now_ms() - puller.max_lookback_s * 1000)
    return start - start % puller.align_ms


class _ReadApiFn(beam.DoFn, RestrictionProvider):
    """Reads a stream's time range; it is its own restriction provider, since the
    restriction depends on the stream's checkpoint."""

    def __init__(self, streams: dict[str, ApiStream], access: AwsAccess,
                 checkpoints: Checkpoints, follow: bool, stop: StopSignal | None,
                 bundle_seconds: float, max_pages_per_bundle: int,
                 log_level: int | None, stats: StatsHandle | None = None) -> None:
        self.streams = streams
        self._stats_handle = stats
        self.follow = follow
        self._access = access
        self._checkpoints = checkpoints
        self._stop = stop or StopSignal()
        self._bundle_seconds = bundle_seconds
        self._max_pages = max_pages_per_bundle
        self._log_level = log_level
        self._limits = SharedLimits()

    def done_of(self, stream: ApiStream) -> tuple[list[list[int]], dict[int, Cursor]]:
        """The stream's checkpoint: time delivered, and windows open at a token."""
        saved = self._checkpoints.load(checkpoint_key(stream)) or {}
        windows = {o["start"]: Cursor(o["start"], o["end"], o["token"])
                   for o in saved.get("open", [])}
        return merge([list(d) for d in saved.get("done", [])]), windows

    # -- the restriction: the stream's time range less what its checkpoint has

    def initial_restriction(self, key: str) -> TimeRange:
        stream = self.streams[key]
        puller = PULLERS[stream.api]
        end = FOREVER if self.follow else limit_of(stream, puller)
        start = _start(stream, puller)
        found = gaps(start, end, self.done_of(stream)[0]) if end > start else []
        return TimeRange(found[0][0] if found else end, end)

    def split(self, key: str, restriction: TimeRange):
        if restriction.start >= restriction.end:
            yield restriction
            return
        stream = self.streams[key]
        puller = PULLERS[stream.api]
        done, windows = self.done_of(stream)
        end = restriction.end
        if end == FOREVER:  # the backfill in pieces, then one piece that follows now
            limit = max(limit_of(stream, puller), restriction.start)
            pieces = split_range(restriction.start, limit, puller.piece_ms, done, windows)
            follow = gaps(limit, FOREVER, done)[0][0]
            pieces.append(TimeRange(follow, FOREVER, windows.get(follow, Cursor(0)).token,
                                    windows.get(follow, Cursor(0)).end))
        else:
            pieces = split_range(restriction.start, end, puller.piece_ms, done, windows)
        yield from pieces or [TimeRange(end, end)]

    def create_tracker(self, restriction: TimeRange) -> TimeRangeTracker:
        return TimeRangeTracker(restriction)

    def restriction_size(self, key: str, restriction: TimeRange) -> int:
        if restriction.end == FOREVER:
            return 1
        return max(1, (restriction.end - restriction.start) // 1000)

    def setup(self) -> None:
        if self._log_level is not None:
            logging.getLogger("awscollector").setLevel(self._log_level)
        self._pages = Metrics.counter("api", "pages")
        self._records = Metrics.counter("api", "records")
        self._throttled = Metrics.counter("api", "throttled")
        self._seq = time.time_ns()
        self._stats = attached(self._stats_handle)

    def teardown(self) -> None:
        if self._stats_handle is not None:
            self._stats_handle.detach()

    def process(self, key: str,
                finalizer=beam.DoFn.BundleFinalizerParam,
                tracker=_OWN_RESTRICTION,
                ) -> Iterator[ApiRecords]:
        # The finalizer must come before the restriction (Beam binds them by position).
        stream = self.streams[key]
        puller = PULLERS[stream.api]
        client = self._access.client(puller.aws_service, stream.region)
        restriction = tracker.current_restriction()
        first = cursor = restriction.cursor
        deadline = time.monotonic() + self._bundle_seconds
        pages = 0
        try:
            while cursor.start < restriction.end:
                if self._stop.requested():
                    tracker.try_claim(STOP)
                    return
                if cursor.end is None:  # a new window: as far as the grid and now allow
                    end = min(window_end(cursor.start, puller), restriction.end,
                              limit_of(stream, puller))
                    if end <= cursor.start:  # following now: nothing new is old enough
                        tracker.defer_remainder(Duration(seconds=stream.request_period_s))
                        return
                    cursor = Cursor(cursor.start, end)
                page = self._fetch(puller, client, stream, cursor)
                if page is None:  # stopped while waiting for its turn
                    tracker.try_claim(STOP)
                    return
                nxt = (Cursor(cursor.start, cursor.end, page.token) if page.token
                       else Cursor(cursor.end))
                if not tracker.try_claim(Claim(cursor, nxt)):
                    return
                self._pages.inc()
                self._stats.add("pages", stream.service, stream.region)
                if page.records:
                    self._records.inc(len(page.records))
                    self._stats.add("records", stream.service, stream.region, len(page.records))
                    yield ApiRecords(key, page.records, (cursor.start, cursor.end))
                cursor = nxt
                pages += 1
                if pages >= self._max_pages or time.monotonic() >= deadline:
                    if cursor.start < restriction.end:
                        tracker.defer_remainder()
                    return
        finally:
            if cursor != first:
                self._seq += 1
                finalizer.register(self._saver(stream, first, cursor, self._seq))

    def _fetch(self, puller: Puller, client: Any, stream: ApiStream, cursor: Cursor):
        """One page, at the puller's rate; throttling waits and tries again."""
        limiter = None
        if puller.rate:
            limiter = self._limits.get(puller.limit_key(stream), puller.rate)
        backoff = 1.0
        while True:
            if limiter is not None and not limiter.acquire(self._stop.requested):
                return None
            try:
                page = puller.fetch(client, stream, cursor.start, cursor.end, cursor.token)
            except (ClientError, BotoCoreError) as e:
                what = (f"{puller.aws_service} {puller.operation} {stream.stream} in "
                        f"{stream.region}")
                if not isinstance(e, ClientError) or error_code(e) not in THROTTLING:
                    raise aws_error(e, what) from e
                self._throttled.inc()
                if limiter is not None:
                    limiter.throttled()
                wait = backoff * (0.5 + random.random() / 2)
                log.warning("AWS-004 %s throttled past the retries: waiting %.1fs", what, wait)
                if self._stop.wait(wait):
                    return None
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            if limiter is not None:
                limiter.succeeded()
            return page

    def _saver(self, stream: ApiStream, first: Cursor, nxt: Cursor, seq: int):
        checkpoints = self._checkpoints
        stats = self._stats

        def save() -> None:
            try:
                saved = checkpoints.update(checkpoint_key(stream),
                                           lambda old: advanced(old, first, nxt, seq))
                if saved.get("done"):  # delivered up to the end of its last range
                    stats.checkpoint(stream.service, stream.region, stream.stream,
                                     saved["done"][-1][1])
            except CollectorError as e:
                # Delivered but not recorded: a restart reads these pages again.
                log.error("%s %s: the checkpoint of %s was not saved; a restart will send"
                          " its last pages again: %s", e.code, stream.service, stream.stream,
                          e.message)

        return save


class ParseApiRecords(beam.DoFn):
    """ApiRecords -> EventBatch per Devo table, by the stream's puller; records it
    rejects go to the dead letter (tagged output ``DEAD_LETTER``)."""

    def __init__(self, streams: dict[str, ApiStream]) -> None:
        self._streams = streams

    def process(self, item: ApiRecords):
        stream = self._streams[item.stream]
        puller = PULLERS[stream.api]
        parsed = puller.parse(item.records, stream, stream.options)
        flatten = bool(stream.options.get("flatten"))
        for table, messages in parsed.events.items():
            if flatten:
                messages = [flatten_message(m) for m in messages]
            yield EventBatch(table, messages, stream.service, stream.region)
        by_code: dict[str, list] = {}
        for r in parsed.rejected:
            by_code.setdefault(r.code, []).append(r)
        for code, group in by_code.items():
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, DeadLetter(
                stream.service, stream.region,
                {"api": f"{puller.aws_service}:{puller.operation}", "account": stream.account,
                 "stream": stream.stream, "window": list(item.window), "rejected": len(group),
                 "records": [r.record for r in group[:100]]},
                code, f"{puller.aws_service} {puller.operation} {stream.stream}: "
                      f"{group[0].reason}"))


class ReadFromApi(beam.PTransform):
    """Reads API streams over time; each checkpoint advances after delivery.

    Args:
      streams: the ``ApiStream``s to read (one checkpoint each).
      access: how to reach AWS (``AwsAccess``).
      checkpoints: where checkpoints are kept (io/checkpoints.py).
      follow: keep reading new data (streaming); False: stop at now minus the lag.
      stop: a ``StopSignal``: the readers stop, and what they read is delivered.
      bundle_seconds, max_pages_per_bundle: a bundle (and a checkpoint) at least
        this often. One page a bundle: a run killed at any moment sends again at
        most the page in flight of each stream.
      spread_over, max_parallelism: on Flink, place the streams on the subtasks in turn.
      log_level: the level of the "awscollector" loggers in worker processes.
      stats: the run's statistics (io/stats.py): pages, records, and each stream's
        lag (now less the end of its checkpoint).

    Returns ``ApiRecords``; parse them with ``ParseApiRecords(streams)``.
    """

    def __init__(self, streams: list[ApiStream], access: AwsAccess, checkpoints: Checkpoints,
                 *, follow: bool = True, stop: StopSignal | None = None,
                 bundle_seconds: float = 5.0, max_pages_per_bundle: int = 1,
                 spread_over: int | None = None, max_parallelism: int | None = None,
                 log_level: int | None = None, stats: StatsHandle | None = None) -> None:
        super().__init__()
        keys = [s.key for s in streams]
        if spread_over and spread_over > 1:
            keys = spread_keys(keys, spread_over, max_parallelism)
        self._keys = keys
        self.streams = dict(zip(keys, streams, strict=True))
        self._fn = _ReadApiFn(self.streams, access, checkpoints, follow, stop,
                              bundle_seconds, max_pages_per_bundle, log_level, stats)

    def expand(self, pbegin):
        return (pbegin
                | "Streams" >> beam.Create(self._keys)
                | "Read" >> beam.ParDo(self._fn))
