"""Write events to Devo through devo-sdk's Sender.

``WriteToDevo`` takes a PCollection of events, each either an ``EventBatch``
(the fast path: many messages of one table in one element) or a plain
``(table, message)`` tuple, and writes them as syslog lines::

    <14>Nov 27 13:07:57 myhost cloud.aws.vpc.flow: 2 123456789012 eni-... ACCEPT OK

Usage::

    events | WriteToDevo(DevoTarget(address="collector-us.devo.io", port=443,
                                    chain="chain.crt", cert="domain.crt",
                                    key="domain.key"))

Delivery: lines are buffered per table; a flush (when ``max_batch_bytes`` are
buffered, and in ``finish_bundle``) writes each table's batch in one socket
write and then *confirms* it: it half-closes the connection and waits for the
relay to close its side, which the relay does only after it has read everything
sent. devo-sdk's protocol has no acknowledgement; this is the nearest thing. The
bundle completes only after its last flush is confirmed, and only then does
Beam run the finalizers that delete SQS messages. A flush that fails before its
confirmation is sent again whole on a new connection (so a failure can
duplicate lines, never lose them); after ``max_attempts`` the bundle fails with
OUT-001 (no connection) or OUT-002 (broken). See docs/delivery.md.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics
from devo.sender import Sender, SenderConfigSSL, SenderConfigTCP
from devo.sender.data import DevoSenderException

from awscollector.errors import CollectorError

log = logging.getLogger(__name__)


class EventBatch(NamedTuple):
    """Messages for one Devo table, with where they came from (for counters)."""

    table: str
    messages: list[bytes]
    service: str = ""
    region: str = ""


@dataclass(frozen=True)
class DevoTarget:
    """Where and how to connect: TLS with a client certificate, or plain TCP."""

    address: str
    port: int
    type: str = "SSL"  # SSL | TCP
    chain: str | None = None
    cert: str | None = None
    key: str | None = None

    @classmethod
    def from_config(cls, output) -> DevoTarget:
        """From a config ``outputs.<name>`` entry (or its ``config`` block)."""
        c = getattr(output, "config", output)
        return cls(c.address, int(c.port), c.type, c.chain, c.cert, c.key)

    def __str__(self) -> str:
        return f"{self.address}:{self.port} ({self.type})"


def syslog_header(table: str, hostname: str, when: float | None = None) -> bytes:
    """The line prefix devo-sdk's Sender writes: ``<14>date host tag: ``."""
    t = time.localtime(when)
    date = time.strftime("%b %d %H:%M:%S", t)
    if date[4] == "0":  # syslog pads the day with a space: "Jan  1"
        date = date[:4] + " " + date[5:]
    return Sender.compose_mem(table.encode(), bytes=True, date=date.encode(),
                              hostname=hostname.encode())


def encode_batch(header: bytes, messages: list[bytes]) -> bytes:
    """One payload for many messages: header + message + newline, each."""
    return header + (b"\n" + header).join(messages) + b"\n"


class DevoConnection:
    """Delivers payloads to Devo over a connection opened by devo-sdk's Sender.

    We use the Sender for what it is good at (the TLS context from the chain,
    certificate and key) and write with a blocking ``sendall`` ourselves: the
    Sender's own ``send_raw`` retries a partial non-blocking write from the
    start, which can duplicate or garble a large batch.
    """

    def __init__(self, target: DevoTarget, timeout: float = 30.0) -> None:
        self.target = target
        self.timeout = timeout

    def deliver(self, payloads: list[bytes]) -> None:
        """Open, write every payload, say we are done, and wait for the relay to close.

        The relay closes its side only after reading all we sent, so a return
        means the payloads were received. Raises ``_ConnectError`` if no
        connection could be made, OSError if it broke.
        """
        address = (self.target.address, self.target.port)
        try:
            if self.target.type == "TCP":
                config = SenderConfigTCP(address=address)
            else:
                config = SenderConfigSSL(address=address, key=self.target.key,
                                         cert=self.target.cert, chain=self.target.chain)
            sender = Sender(config=config, timeout=self.timeout,
                            logger=logging.getLogger("devo.sender"))
        except (DevoSenderException, OSError) as e:
            raise _ConnectError(str(e)) from e
        sock = sender.socket
        try:
            sock.settimeout(self.timeout)  # blocking with a deadline: sendall writes all or raises
            for payload in payloads:
                sock.sendall(payload)
            _close_and_wait_for_eof(sock)
        finally:
            sender.socket = None
            try:
                sock.close()
            except OSError:
                pass


class _ConnectError(Exception):
    pass


def _close_and_wait_for_eof(sock: socket.socket) -> None:
    """Tell the relay we are done and wait until it closes: it has read everything.

    TLS: send close_notify (``unwrap``); the relay answers by closing, which
    arrives as an EOF (``SSLEOFError``: it closes without a close_notify of
    its own), or as its close_notify. A TLS alert (our certificate refused)
    or a reset raises instead. A bare TCP half-close would not do: OpenSSL 3
    servers answer an EOF without close_notify with a decode_error alert.
    """
    if isinstance(sock, ssl.SSLSocket):
        try:
            sock = sock.unwrap()
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
            return
    else:
        sock.shutdown(socket.SHUT_WR)
    while sock.recv(65536):
        pass


class _DevoWriteFn(beam.DoFn):
    """Buffers per table; each flush is delivered by a background thread.

    The thread overlaps the network and the relay's confirmation with the
    parsing of the next batches; at most ``max_in_flight`` flushes wait for
    confirmation at once (bounded memory), and ``finish_bundle`` waits for all.
    """

    def __init__(self, target: DevoTarget, name: str, max_batch_bytes: int, max_attempts: int,
                 retry_delay: float, hostname: str | None, max_in_flight: int) -> None:
        self._target = target
        self._name = name
        self._max_batch_bytes = max_batch_bytes
        self._max_attempts = max_attempts
        self._retry_delay = retry_delay
        self._hostname = hostname
        self._max_in_flight = max_in_flight

    def setup(self) -> None:
        self._conn = DevoConnection(self._target)
        self._host = self._hostname or socket.gethostname()
        self._counters: dict[tuple[str, str, str], tuple] = {}
        # One thread: one connection at a time, flushes delivered in order.
        self._sender = ThreadPoolExecutor(1, thread_name_prefix="devo-deliver")

    def teardown(self) -> None:
        sender = getattr(self, "_sender", None)
        if sender is not None:
            sender.shutdown(wait=False, cancel_futures=True)

    def start_bundle(self) -> None:
        self._buffers: dict[tuple[str, str, str], list[bytes]] = {}
        self._buffered = 0
        self._in_flight: deque[tuple[Future, list]] = deque()

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
            self._wait_oldest()

    def _wait_oldest(self) -> None:
        future, stats = self._in_flight.popleft()
        future.result()  # raises the CollectorError of a delivery that gave up
        for key, events, nbytes in stats:  # Beam counters: in the bundle's own thread
            self._count(key, events, nbytes)

    def _flush(self) -> None:
        if not self._buffers:
            return
        header_time = time.time()
        payloads, stats = [], []
        for key, messages in self._buffers.items():
            payload = encode_batch(syslog_header(key[0], self._host, header_time), messages)
            payloads.append(payload)
            stats.append((key, len(messages), len(payload)))
        future = self._sender.submit(self._deliver_with_retries, payloads,
                                     sum(n for _, n, _ in stats))
        self._in_flight.append((future, stats))
        self._buffers = {}
        self._buffered = 0
        while len(self._in_flight) > self._max_in_flight:
            self._wait_oldest()

    def _deliver_with_retries(self, payloads: list[bytes], events: int) -> None:
        delay = self._retry_delay
        code = "OUT-001"
        for attempt in range(1, self._max_attempts + 1):
            try:
                self._conn.deliver(payloads)
                return
            except _ConnectError as e:
                code, last = "OUT-001", e
            except OSError as e:
                # Broken before the relay confirmed: send the whole batch again on a
                # new connection (the relay may get some lines twice, never none).
                code, last = "OUT-002", e
            log.warning("%s Devo %s: attempt %d/%d to deliver %d events failed: %s",
                        code, self._target, attempt, self._max_attempts, events, last)
            if attempt < self._max_attempts:
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
        what = "cannot connect to" if code == "OUT-001" else "cannot deliver to"
        raise CollectorError(code, f"{what} Devo {self._target}: {events} events not delivered "
                                   f"after {self._max_attempts} attempts: {last}")

    def _count(self, key: tuple[str, str, str], events: int, nbytes: int) -> None:
        counters = self._counters.get(key)
        if counters is None:
            table, service, region = key
            counters = (Metrics.counter("devo", f"events|{table}"),
                        Metrics.counter("devo", f"bytes|{table}"),
                        Metrics.counter("delivered", f"{self._name}|{service}|{region}|{table}"))
            self._counters[key] = counters
        counters[0].inc(events)
        counters[1].inc(nbytes)
        counters[2].inc(events)


class WriteToDevo(beam.PTransform):
    """Writes events to a Devo relay, batched per table.

    Args:
      target: where to connect (``DevoTarget`` or a config output entry).
      max_batch_bytes: flush when this much is buffered, besides at bundle end.
      max_attempts: connection attempts per batch before the bundle fails.
      retry_delay: first backoff delay in seconds (doubles per attempt).
      hostname: the host name in each syslog line (default: this machine's).
      name: the output's name, in the "delivered" counters.
      max_in_flight: flushes that may await the relay's confirmation at once.

    Counters (Beam metrics): ``devo/events|<table>``, ``devo/bytes|<table>`` and
    ``delivered/<name>|<service>|<region>|<table>``.
    """

    def __init__(self, target, *, max_batch_bytes: int = 4 << 20, max_attempts: int = 5,
                 retry_delay: float = 0.5, hostname: str | None = None,
                 name: str = "devo", max_in_flight: int = 2) -> None:
        super().__init__()
        self._target = target if isinstance(target, DevoTarget) else DevoTarget.from_config(target)
        self._fn = _DevoWriteFn(self._target, name, max_batch_bytes, max_attempts, retry_delay,
                                hostname, max_in_flight)

    def expand(self, pcoll):
        return pcoll | "Write" >> beam.ParDo(self._fn)
