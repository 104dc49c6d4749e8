"""What every output shares: batching per table, delivery off the bundle thread, and
confirmation before the bundle completes.

An output is a *transport*: it turns one table's messages into a payload
(``prepare``) and delivers a flush of payloads (``deliver``), returning a
``Receipt`` that says how the other side proved it read them. ``BatchingWriteFn``
does the rest, the same way for every output:

- messages are buffered per table; a flush happens when ``max_batch_bytes`` are
  buffered and at the end of every bundle;
- a background thread delivers flushes one after the other, so the network and
  the other side's confirmation overlap with parsing the next batches; at most
  ``max_in_flight`` flushes wait for confirmation at once (bounded memory);
- a receipt may still need time to become final (a relay's bare close is trusted
  only if no reset follows within a grace period): the bundle thread *settles*
  it before counting the flush as delivered;
- a flush that fails or cannot be confirmed is delivered again whole, with
  backoff (a duplicate, never a loss); after ``max_attempts`` the bundle fails
  with the transport's code;
- ``finish_bundle`` returns only when every flush of the bundle is confirmed, and
  only then does Beam run the finalizers that delete SQS messages.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import apache_beam as beam
from apache_beam.metrics import Metrics

from awscollector.errors import CollectorError
from awscollector.io.counters import DeliveredKey
from awscollector.io.stats import StatsHandle, attached
from awscollector.io.stop import GIVE_UP_SECONDS, StopSignal

log = logging.getLogger(__name__)

# The code of a run stopped before its last flushes were confirmed (not a failure).
STOPPED_UNCONFIRMED = "RUN-013"


class EventBatch(NamedTuple):
    """Messages for one Devo table, with where they came from (for counters)."""

    table: str
    messages: list[bytes]
    service: str = ""
    region: str = ""


class DeliveryFailed(Exception):
    """A flush was not confirmed; it may be sent again.

    ``code`` is the error code to report if every attempt fails like this
    (OUT-001: no connection; OUT-002: broken or unconfirmed).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class DeliveryRefused(CollectorError):
    """The other side refused the flush for good (a bad token, a 4xx): no retry."""


@dataclass
class Receipt:
    """How a flush was confirmed.

    ``how`` names the evidence ("close_notify", "close", "HTTP 200", ...). When
    ``settle`` is given, the evidence becomes final only at ``settle_at``
    (monotonic seconds): ``settle()`` waits until then and calls it, and it
    raises ``DeliveryFailed`` if the evidence was withdrawn meanwhile (a reset).
    """

    how: str
    settle_at: float = 0.0
    check: Callable[[], None] | None = None
    release: Callable[[], None] | None = None

    def settle(self) -> None:
        try:
            if self.check is not None:
                delay = self.settle_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                self.check()
        finally:
            self.close()

    def close(self) -> None:
        if self.release is not None:
            release, self.release = self.release, None
            release()


class Transport(Protocol):
    """An output's wire protocol. Made in the worker by a picklable factory."""

    def prepare(self, table: str, messages: list[bytes]) -> Any:
        """One table's messages as a payload (runs in the bundle thread)."""

    def payload_size(self, payload: Any) -> int:
        """Bytes the payload puts on the wire (for counters)."""

    def deliver(self, payloads: list[Any]) -> Receipt:
        """Send a flush and return its receipt; raise DeliveryFailed or DeliveryRefused."""

    def close(self) -> None:
        """Release connections (worker teardown)."""


@dataclass
class _Flush:
    payloads: list[Any]
    stats: list[tuple[tuple[str, str, str], int, int]]  # (key, events, bytes) per table
    events: int
    attempts: int = 0
    future: Future | None = None
    abandoned: bool = False  # an earlier flush of the bundle failed: stop trying this one
    failures: list[str] = field(default_factory=list)


class BatchingWriteFn(beam.DoFn):
    """Buffers per table; delivers flushes through a transport; confirms before the
    bundle completes. See the module docstring.

    Counters (Beam metrics): ``devo/events|<table>``, ``devo/bytes|<table>`` and
    ``delivered/<name>|<service>|<region>|<table>``; and, with ``stats``, the run's
    statistics (io/stats.py) of events confirmed per service, region and table.
    """

    def __init__(self, make_transport: Callable[[], Transport], name: str, describe: str,
                 max_batch_bytes: int, max_attempts: int, retry_delay: float,
                 max_in_flight: int, max_retry_delay: float = 10.0,
                 stats: StatsHandle | None = None, stop: StopSignal | None = None) -> None:
        self._make_transport = make_transport
        self._stop = stop  # a run stopping gives up on flushes unconfirmed by then
        self._stats_handle = stats
        self._name = name
        self._describe = describe  # where we deliver, for messages: "Devo 1.2.3.4:443 (SSL)"
        self._max_batch_bytes = max_batch_bytes
        self._max_attempts = max_attempts
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._max_in_flight = max(1, max_in_flight)

    def setup(self) -> None:
        self._transport = self._make_transport()
        self._counters: dict[tuple[str, str, str], tuple] = {}
        self._stats = attached(self._stats_handle)
        # One thread: flushes go out in order, one connection at a time.
        self._sender = ThreadPoolExecutor(1, thread_name_prefix=f"deliver-{self._name}")

    def teardown(self) -> None:
        sender = getattr(self, "_sender", None)
        if sender is not None:
            sender.shutdown(wait=False, cancel_futures=True)
        transport = getattr(self, "_transport", None)
        if transport is not None:
            transport.close()
        if self._stats_handle is not None:
            self._stats_handle.detach()

    def start_bundle(self) -> None:
        self._buffers: dict[tuple[str, str, str], list[bytes]] = {}
        self._buffered = 0
        self._in_flight: deque[_Flush] = deque()

    def process(self, element) -> None:
        if isinstance(element, EventBatch):
            key = (element.table, element.service, element.region)
            messages = element.messages
        else:
            table, message = element
            key = (table, "", "")
            messages = [message]
        if not messages:
            return
        if not isinstance(messages[0], bytes):
            messages = [m.encode("utf-8") if isinstance(m, str) else m for m in messages]
        self._buffers.setdefault(key, []).extend(messages)
        self._buffered += sum(map(len, messages)) + 64 * len(messages)
        if self._buffered >= self._max_batch_bytes:
            self._flush()

    def finish_bundle(self) -> None:
        # The bundle completes, and its SQS messages are deleted, only after every
        # flush of it is confirmed.
        self._flush()
        while self._in_flight:
            self._confirm_oldest()

    def _flush(self) -> None:
        if not self._buffers:
            return
        payloads, stats = [], []
        for key, messages in self._buffers.items():
            payload = self._transport.prepare(key[0], messages)
            payloads.append(payload)
            stats.append((key, len(messages), self._transport.payload_size(payload)))
        flush = _Flush(payloads, stats, sum(n for _, n, _ in stats))
        self._submit(flush)
        self._in_flight.append(flush)
        self._buffers = {}
        self._buffered = 0
        while len(self._in_flight) > self._max_in_flight:
            self._confirm_oldest()

    def _submit(self, flush: _Flush) -> None:
        flush.future = self._sender.submit(self._deliver, flush)

    def _deliver(self, flush: _Flush) -> Receipt:
        """In the sender thread: attempts until one returns a receipt, with backoff."""
        while True:
            if flush.abandoned:
                raise CollectorError("OUT-002", "abandoned: an earlier flush failed")
            flush.attempts += 1
            if flush.attempts > 1:
                time.sleep(self._backoff(flush.attempts))
            try:
                receipt = self._transport.deliver(flush.payloads)
            except DeliveryFailed as e:
                self._failed(flush, e)
                continue
            if log.isEnabledFor(logging.DEBUG):
                for (table, _, _), events, nbytes in flush.stats:
                    log.debug("sent to %s: table %s, %d events, %d bytes, attempt %d",
                              self._name, table, events, nbytes, flush.attempts)
            return receipt

    def _failed(self, flush: _Flush, e: DeliveryFailed) -> None:
        """Logs a failed attempt; raises the final error when no attempt is left."""
        flush.failures.append(e.code)
        log.warning("%s %s: attempt %d/%d to deliver %d events failed: %s", e.code,
                    self._describe, flush.attempts, self._max_attempts, flush.events, e.message)
        if flush.attempts >= self._max_attempts:
            what = "cannot connect to" if e.code == "OUT-001" else "cannot deliver to"
            raise CollectorError(e.code, f"{what} {self._describe}: {flush.events} events not "
                                         f"delivered after {flush.attempts} attempts: {e.message}")

    def _backoff(self, attempt: int) -> float:
        return min(self._retry_delay * 2 ** (attempt - 2), self._max_retry_delay)

    def _confirm_oldest(self) -> None:
        """In the bundle thread: wait for the oldest flush to be confirmed, and count it."""
        flush = self._in_flight.popleft()
        try:
            receipt = self._confirm(flush)
        except BaseException:
            # The bundle fails: the flushes behind this one need not be tried any more.
            for later in self._in_flight:
                later.abandoned = True
                if not later.future.cancel() and later.future.done() \
                        and later.future.exception() is None:
                    later.future.result().close()  # a receipt still holding its socket
            self._in_flight.clear()
            raise
        if log.isEnabledFor(logging.DEBUG):
            tables = ", ".join(f"{key[0]} ({events})" for key, events, _ in flush.stats)
            log.debug("confirmed by %s (%s), attempt %d: %d events: %s", self._name,
                      receipt.how, flush.attempts, flush.events, tables)
        for key, events, nbytes in flush.stats:  # Beam counters: in the bundle's own thread
            self._count(key, events, nbytes)

    def _confirm(self, flush: _Flush) -> Receipt:
        while True:
            receipt = self._result(flush)  # raises the CollectorError of a flush given up
            try:
                receipt.settle()
                break
            except DeliveryFailed as e:
                self._failed(flush, e)
                self._submit(flush)  # whole again, in the sender's order
        return receipt

    def _result(self, flush: _Flush) -> Receipt:
        """The flush's receipt; when the run stops and the other side is too slow to
        confirm in time, STOPPED_UNCONFIRMED: the bundle fails, its messages go back."""
        if self._stop is None:
            return flush.future.result()
        while True:
            try:
                return flush.future.result(timeout=0.25)
            except FuturesTimeout:
                if self._stop.draining_over(GIVE_UP_SECONDS):
                    flush.abandoned = True  # no further attempt
                    self._transport.close()  # nor the one going on
                    raise CollectorError(STOPPED_UNCONFIRMED, (
                        f"stopping: {self._describe} did not confirm {flush.events} events "
                        f"within {GIVE_UP_SECONDS:.0f}s of the stop request; their SQS "
                        f"messages go back to the queue (what it did read comes again)"
                    )) from None

    def _count(self, key: tuple[str, str, str], events: int, nbytes: int) -> None:
        counters = self._counters.get(key)
        if counters is None:
            table, service, region = key
            counters = (Metrics.counter("devo", f"events|{table}"),
                        Metrics.counter("devo", f"bytes|{table}"),
                        DeliveredKey(self._name, service, region, table).counter())
            self._counters[key] = counters
        counters[0].inc(events)
        counters[1].inc(nbytes)
        counters[2].inc(events)
        self._stats.delivered(self._name, key[1], key[2], key[0], events)
