"""Write events to a Devo relay as syslog lines, over TLS with a client certificate.

``WriteToDevo`` takes a PCollection of events, each either an ``EventBatch``
(the fast path: many messages of one table in one element) or a plain
``(table, message)`` tuple, and writes them as the lines devo-sdk's Sender
writes::

    <14>Nov 27 13:07:57 myhost cloud.aws.vpc.flow: 2 123456789012 eni-... ACCEPT OK

Usage::

    events | WriteToDevo(DevoTarget(address="collector-us.devo.io", port=443,
                                    chain="chain.crt", cert="domain.crt",
                                    key="domain.key"))

Batching, retries and the wait for confirmation before a bundle completes are
shared with every output (``io/delivery.py``). What is particular to syslog is
the confirmation: the protocol has no acknowledgement, so each flush goes on a
connection of its own and ends with our TLS close_notify. The flush counts as
delivered only on evidence that the relay read all of it:

- the relay's own close_notify in answer to ours (it reads ours only after
  everything sent before it); or
- a bare close (no close_notify) that came after ours, once every byte we sent
  was acknowledged, and with no reset during a grace period after it (a relay
  that closes with data unread resets the connection).

Anything else (the relay spoke or closed first, a reset, a TLS alert, a
timeout without progress) is no confirmation: the flush is sent again on a new
connection. See docs/delivery.md.

A connection per flush costs a TLS handshake per flush. The TLS context (CA chain,
certificate and key, read from disk) is made once per transport, and each new
connection offers the session of the last confirmed one: a relay that accepts it
resumes it (no certificates exchanged, no signatures), one that does not does a
full handshake. Resumption changes nothing in how a flush is confirmed.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import select
import socket
import ssl
import struct
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass

import apache_beam as beam
from devo.sender import Sender

from awscollector.io.delivery import (
    BatchingWriteFn,
    DeliveryFailed,
    EventBatch,
    Receipt,
)

__all__ = ["DevoTarget", "EventBatch", "SyslogPayload", "SyslogTransport", "WriteToDevo",
           "encode_batch", "syslog_header"]

log = logging.getLogger(__name__)

TICKET_WAIT = 0.5  # seconds a small flush may wait for the relay's TLS 1.3 session ticket
SEND_CHUNK = 256 * 1024  # the send timeout applies per chunk: a slow relay that reads is fine
_TCP_ESTABLISHED, _TCP_CLOSE, _TCP_CLOSE_WAIT = 1, 7, 8  # linux/tcp_states.h
_HAS_TCP_INFO = hasattr(socket, "TCP_INFO") and hasattr(termios, "TIOCOUTQ")


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
    if len(messages) < 2:
        return b"".join([header, *messages, b"\n"])
    # One join, one copy of the payload: the first message carries the first header,
    # the last one the final newline (concatenating around the join copied it twice).
    return (b"\n" + header).join(
        [header + messages[0], *messages[1:-1], messages[-1] + b"\n"])


@dataclass(frozen=True)
class SyslogPayload:
    """One table's lines of a flush, encoded (``encode_batch``) a chunk at a time as they
    are sent: each chunk is still in the CPU's cache when TLS encrypts it, where a
    whole flush encoded at once (4 MiB) went out to memory and was read back."""

    header: bytes
    messages: list[bytes]
    size: int  # bytes on the wire

    def chunks(self, chunk_bytes: int = SEND_CHUNK) -> Iterator[bytes]:
        messages = self.messages
        per_chunk = max(1, chunk_bytes * len(messages) // max(1, self.size))
        for start in range(0, len(messages), per_chunk):
            yield encode_batch(self.header, messages[start:start + per_chunk])


def client_context(target: DevoTarget) -> ssl.SSLContext:
    """The TLS context devo-sdk's Sender makes for a target with chain, certificate and
    key: the chain as the only trusted CAs, the relay's host name checked, TLS 1.2 or
    1.3, our client certificate. (The Sender without all three trusts any relay; the
    configuration requires them, and so do we.)"""
    if not (target.chain and target.cert and target.key):
        raise ValueError("TLS to the relay needs chain, cert and key")
    context = ssl.create_default_context(cafile=target.chain)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(certfile=target.cert, keyfile=target.key)
    return context


class SyslogTransport:
    """Delivers flushes to a Devo relay, one connection per flush, and confirms them.

    The connection is made as devo-sdk's Sender makes it (``client_context``), but
    with one context for all of them and the last session offered for resumption
    (the Sender makes a new context, and a full handshake, per connection). We write
    with blocking sends, because the Sender's ``send_raw`` retries a partial
    non-blocking write from the start, which can duplicate or garble a large batch.
    """

    def __init__(self, target: DevoTarget, hostname: str | None = None,
                 timeout: float = 30.0, grace_seconds: float = 1.0) -> None:
        self.target = target
        self.timeout = timeout
        self.grace_seconds = grace_seconds
        self._host = hostname or socket.gethostname()
        # Set once the relay has answered a close_notify: a relay that does never closes
        # bare when all went well, so a bare close from it is no confirmation.
        self._answers_close_notify = False
        self._sending: socket.socket | None = None  # the connection of a delivery going on
        self._context: ssl.SSLContext | None = None  # made on the first connection
        # The TLS session of the last flush the relay confirmed (a bare close: before its
        # grace period), offered by the next connection for resumption; None after a
        # failure (a full handshake next). It proves who we are, not what was delivered.
        self._session: ssl.SSLSession | None = None
        self._expect_ticket = True  # whether the last TLS 1.3 connection got a ticket
        self.handshakes = {"full": 0, "resumed": 0}  # TLS connections made, by kind

    # -- Transport

    def prepare(self, table: str, messages: list[bytes]) -> SyslogPayload:
        header = syslog_header(table, self._host)
        return SyslogPayload(header, messages,
                             sum(map(len, messages)) + (len(header) + 1) * len(messages))

    def payload_size(self, payload: SyslogPayload) -> int:
        return payload.size

    def deliver(self, payloads: list[SyslogPayload]) -> Receipt:
        sock = self._sending = self._connect()
        try:
            for payload in payloads:
                for chunk in payload.chunks():
                    _send_all(sock, chunk)
            _wait_until_acked(sock, self.timeout)
            spoke = _peer_spoke_first(sock)
            if spoke:
                raise DeliveryFailed("OUT-002", f"not confirmed: {spoke}")
            receipt = self._close_and_confirm(sock)
        except (DeliveryFailed, OSError) as e:  # OSError: reset, broken pipe, timeout, alert
            self._session = None  # the next attempt starts afresh
            if isinstance(e, DeliveryFailed):
                code, message = e.code, e.message
            else:
                code, message = "OUT-002", f"connection broke before the relay confirmed: {e}"
            message = self._explain(sock, message, _alert_of(e) or _tls_alert(sock))
            _close_quietly(sock)
            raise DeliveryFailed(code, message) from None
        finally:
            self._sending = None
        return receipt

    def close(self) -> None:
        """The run is going away: a delivery still going on (a slow relay) fails at once
        instead of holding the process; it was not confirmed, so nothing is lost."""
        sock = self._sending
        if sock is not None:
            try:  # the TCP socket under TLS: the sender thread owns the TLS state
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass

    # -- internals

    def _connect(self) -> socket.socket:
        address = (self.target.address, self.target.port)
        try:
            sock = socket.create_connection(address, timeout=self.timeout)
        except OSError as e:
            raise DeliveryFailed("OUT-001", _one_line(f"cannot connect: {e}")) from None
        # The payload goes in large writes; the small ones (handshake, close_notify) must
        # not wait for an ACK: with Nagle's rule a resumed handshake's close_notify
        # waited for the relay's delayed ACK, 40 ms a flush.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.target.type == "TCP":
            return sock
        try:
            if self._context is None:
                self._context = client_context(self.target)
            tls = self._context.wrap_socket(sock, server_hostname=self.target.address,
                                            session=self._session)
        except (OSError, ValueError) as e:  # SSLError too: unreadable files, a refused handshake
            _close_quietly(sock)
            self._session = None
            raise DeliveryFailed("OUT-001", self._explain(
                sock, f"TLS handshake failed: {e}", _alert_of(e))) from None
        self.handshakes["resumed" if tls.session_reused else "full"] += 1
        return tls

    def _close_and_confirm(self, sock: socket.socket) -> Receipt:
        """Say we are done and wait for the relay's answer; see the module docstring."""
        if isinstance(sock, ssl.SSLSocket):
            session = self._resumable_session(sock)  # kept only if the relay confirms
            try:
                raw = sock.unwrap()  # our close_notify; returns on the relay's
            except ssl.SSLEOFError:  # closed without close_notify: a bare close
                receipt = self._bare_close(sock)
                self._session = session
                return receipt
            if _tcp_state(raw) == _TCP_CLOSE:
                _close_quietly(raw)
                raise DeliveryFailed("OUT-002", "not confirmed: the relay reset the connection "
                                                "right after its close_notify")
            _close_quietly(raw)
            self._answers_close_notify = True
            self._session = session
            return Receipt("close_notify")
        sock.shutdown(socket.SHUT_WR)  # plain TCP has no close_notify: our FIN
        while sock.recv(65536):
            pass  # the relay never writes; anything it does is discarded
        return self._bare_close(sock)

    def _resumable_session(self, sock: ssl.SSLSocket) -> ssl.SSLSession | None:
        """The session to offer next time, if the relay made it resumable.

        TLS 1.3 relays send the ticket that makes a session resumable after the
        handshake, and after our unwrap() the session can no longer be read: a flush
        small enough to be acknowledged before the ticket came waits for it, briefly,
        if the relay sent one last time.
        """
        if sock.version() == "TLSv1.2":  # resumable by the session id of the handshake
            return sock.session
        session = sock.session
        if session is not None and not session.has_ticket and self._expect_ticket:
            select.select([sock], [], [], TICKET_WAIT)
            spoke = _peer_spoke_first(sock)  # reads the ticket, or finds the relay spoke
            if spoke:
                raise DeliveryFailed("OUT-002", f"not confirmed: {spoke}")
            session = sock.session
        self._expect_ticket = session is not None and session.has_ticket
        return session if self._expect_ticket else None

    def _bare_close(self, sock: socket.socket) -> Receipt:
        """The relay closed after our close: trusted only from a relay that does not answer
        close_notify, if nothing was left unacknowledged, and if no reset follows within
        the grace period."""
        if self._answers_close_notify:
            # Once, so that a relay that stopped answering close_notify for good is
            # judged by the rule for bare closes from the next attempt on.
            self._answers_close_notify = False
            _close_quietly(sock)
            raise DeliveryFailed("OUT-002", "not confirmed: the relay closed without the "
                                            "close_notify it answered before")
        if not _HAS_TCP_INFO:
            _close_quietly(sock)
            raise DeliveryFailed("OUT-002", "not confirmed: the relay closed without "
                                            "close_notify, which this platform cannot verify")
        unacked = _unacked_bytes(sock)
        if unacked:
            _close_quietly(sock)
            raise DeliveryFailed("OUT-002", f"not confirmed: the relay closed with {unacked} "
                                            f"bytes we sent not yet received")

        # TLS: we have not closed, so the relay's FIN leaves us in CLOSE_WAIT and a reset
        # turns that into CLOSE. Plain TCP: our FIN went first, and once both FINs are
        # through the kernel keeps no state a later reset could change; only an error
        # seen until then counts (plain TCP is for testing).
        tls = isinstance(sock, ssl.SSLSocket)

        def no_reset() -> None:
            if (tls and _tcp_state(sock) != _TCP_CLOSE_WAIT) or _socket_error(sock):
                raise DeliveryFailed("OUT-002", f"not confirmed: the relay reset the connection "
                                                f"within {self.grace_seconds}s of closing it")

        no_reset()
        return Receipt("close", time.monotonic() + self.grace_seconds, no_reset,
                       lambda: _close_quietly(sock))

    def _explain(self, sock: socket.socket, message: str, alert: str) -> str:
        """The message, or the relay's TLS alert when it sent one (a refused certificate
        shows as a reset or an EOF on the write; the alert says why)."""
        if alert:
            return (f"the relay refused the connection with TLS alert '{alert}': it probably "
                    f"does not accept our client certificate (check cert, key and chain)")
        return _one_line(message)


def _send_all(sock: socket.socket, payload: bytes) -> None:
    view = memoryview(payload)
    for start in range(0, len(view), SEND_CHUNK):
        sock.sendall(view[start:start + SEND_CHUNK])


def _wait_until_acked(sock: socket.socket, timeout: float) -> None:
    """Wait until the relay's kernel acknowledged all we sent, or the relay closes.

    Waiting here (instead of in the read of the relay's answer) lets a slow relay
    that keeps reading take its time: only `timeout` seconds without progress fail.
    """
    if not _HAS_TCP_INFO:
        return
    last, since = _unacked_bytes(sock), time.monotonic()
    while last and _tcp_state(sock) == _TCP_ESTABLISHED:
        readable, _, _ = select.select([sock], [], [], 0.05)
        if readable:
            return  # the relay spoke or closed: the caller finds out which
        now = _unacked_bytes(sock)
        if now < last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > timeout:
            raise TimeoutError(f"the relay read nothing for {timeout:.0f}s")


def _peer_spoke_first(sock: socket.socket) -> str:
    """Why the relay's next word could not be an answer to our close, or "".

    A relay never writes before we close: a close, a reset, a TLS alert or a
    close_notify already there means it stopped reading on its own.
    """
    if _HAS_TCP_INFO:
        state = _tcp_state(sock)
        if state == _TCP_CLOSE:
            return "the relay reset the connection before the batch was complete"
        if state != _TCP_ESTABLISHED:
            return "the relay closed the connection before the batch was complete"
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return ""
    if isinstance(sock, ssl.SSLSocket):
        # TLS 1.3 relays send session tickets after the handshake: those are not words.
        timeout = sock.gettimeout()
        sock.setblocking(False)
        try:
            data = sock.recv(1)  # a TLS alert raises: the caller explains it
        except ssl.SSLWantReadError:
            return ""
        finally:
            sock.settimeout(timeout)
        if not data:
            return "the relay closed the connection before the batch was complete"
    return "the relay wrote to us before the batch was complete"


def _tls_alert(sock: socket.socket) -> str:
    """The TLS alert the relay sent, if one is waiting to be read."""
    if not isinstance(sock, ssl.SSLSocket):
        return ""
    try:
        sock.settimeout(0.5)
        sock.recv(1)
    except ssl.SSLError as e:
        return _alert_of(e)
    except (OSError, ValueError):
        pass
    return ""


def _alert_of(e: BaseException) -> str:
    """"tlsv1 alert unknown ca" from an SSLError that carries a TLS alert, else ""."""
    if not isinstance(e, ssl.SSLError):
        return ""
    reason = e.reason or ""
    return reason.lower().replace("_", " ") if "ALERT" in reason.upper() else ""


def _tcp_state(sock: socket.socket) -> int:
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
    except OSError:
        return _TCP_CLOSE


def _unacked_bytes(sock: socket.socket) -> int:
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]
    except OSError:
        return 0


def _socket_error(sock: socket.socket) -> int:
    try:
        return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    except OSError as e:
        return e.errno or errno.EIO


def _close_quietly(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


def _one_line(text: str) -> str:
    return " ".join(text.split())


class _MakeSyslogTransport:
    """Picklable factory: the transport is made in the worker."""

    def __init__(self, target: DevoTarget, hostname: str | None, timeout: float,
                 grace_seconds: float) -> None:
        self.target, self.hostname = target, hostname
        self.timeout, self.grace_seconds = timeout, grace_seconds

    def __call__(self) -> SyslogTransport:
        return SyslogTransport(self.target, self.hostname, self.timeout, self.grace_seconds)


class WriteToDevo(beam.PTransform):
    """Writes events to a Devo relay, batched per table, each flush confirmed.

    Args:
      target: where to connect (``DevoTarget`` or a config output entry).
      max_batch_bytes: flush when this much is buffered, besides at bundle end.
      max_attempts: attempts per flush before the bundle fails (OUT-001/OUT-002).
      retry_delay: first backoff delay in seconds (doubles per attempt, up to 10 s).
      hostname: the host name in each syslog line (default: this machine's).
      name: the output's name, in the "delivered" counters and debug logs.
      stats: the run's statistics (a ``StatsHandle``, io/stats.py): events confirmed.
      stop: the run's ``StopSignal``: once it is stopping, flushes not confirmed in
        time are given up (RUN-013; their messages go back to SQS).
      max_in_flight: flushes that may await confirmation at once.
      timeout: seconds without progress before a connection counts as broken.
      grace_seconds: how long a relay's bare close (no close_notify) must go
        without a reset before the flush counts as confirmed.

    Counters (Beam metrics): ``devo/events|<table>``, ``devo/bytes|<table>`` and
    ``delivered/<name>|<service>|<region>|<table>``.
    """

    def __init__(self, target, *, max_batch_bytes: int = 4 << 20, max_attempts: int = 5,
                 retry_delay: float = 0.5, hostname: str | None = None,
                 name: str = "devo", max_in_flight: int = 8, timeout: float = 30.0,
                 grace_seconds: float = 1.0, stats=None, stop=None) -> None:
        super().__init__()
        self._target = target if isinstance(target, DevoTarget) else DevoTarget.from_config(target)
        self._fn = BatchingWriteFn(
            _MakeSyslogTransport(self._target, hostname, timeout, grace_seconds), name,
            f"Devo {self._target}", max_batch_bytes, max_attempts, retry_delay, max_in_flight,
            stats=stats, stop=stop)

    def expand(self, pcoll):
        return pcoll | "Write" >> beam.ParDo(self._fn)
