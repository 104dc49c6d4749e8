"""An embedded Devo HTTP endpoint on loopback, as ``WriteToDevoHttp`` sees Devo's.

It takes ``POST /stream/<domain>/token!<token>/<host>/<tag>`` with a body of
newline-separated events, gzip-compressed (``Content-Encoding: gzip``) or not, over
HTTP/1.1 keep-alive connections: TLS with the test PKI's server certificate, or plain
HTTP when no PKI is given. A wrong token gets 401. It answers 200 only after it read
the whole body, decompressed it and recorded its events, per tag, with the same
calls as DevoRelay (``counts()``, ``events(tag)``, ``total()``, ``wait_for_total``,
``out_dir/<tag>.log``)::

    pki = make_test_pki(tmp_path)
    with DevoHttpEndpoint(pki, token="s3cr3t", out_dir="demo-out") as endpoint:
        target = DevoHttpTarget(endpoint.url, "mydomain", "s3cr3t", chain=str(pki.ca_cert))
        ...  # | WriteToDevoHttp(target)
        assert endpoint.counts() == {"my.app.table": 2}

kill() resets every open connection at once, as a crashed server would; start()
brings it back on the same port. Faults, armed with ``add_fault`` for the requests
that start from then on: ``AnswerStatus`` (answer 503, 500, ... instead of
recording), ``WrongToken`` (401 to the right token, as when a token is revoked),
``ResetMidRequest`` (reset after reading part of a body), ``CloseFirst`` (close our
side before the body is read, stop reading, reset later); and, as options, a slow
reader (``read_delay``) with a small receive buffer (``rcvbuf``).
"""

from __future__ import annotations

import fcntl
import hmac
import ipaddress
import socket
import ssl
import struct
import termios
import threading
import time
import zlib
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import BinaryIO, NamedTuple
from urllib.parse import unquote

from .certs import TestPki
from .recorder import EventRecorder

__all__ = ["AnswerStatus", "CloseFirst", "DevoHttpEndpoint", "MAX_BODY", "RequestLog",
           "ResetMidRequest", "WrongToken"]

MAX_BODY = 32 * 1024 * 1024  # bytes of a body, compressed or not (Devo's 32 MB)
MAX_HEADER_LINE = 16 * 1024
MAX_HEADERS = 100
CHUNK = 1 << 20
SLOW_CHUNK = 65536
HANDSHAKE_TIMEOUT = 10.0
JOIN_TIMEOUT = 2.0
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


class _Fault:
    """Arming shared by every fault: it watches every ``every``-th request that starts
    after it was armed, until it has hit ``times`` of them."""

    times: int
    every: int
    hits: int
    seen: int

    def watches(self) -> bool:
        if self.hits >= self.times:
            return False
        self.seen += 1
        return self.seen % self.every == 0


@dataclass
class AnswerStatus(_Fault):
    """Read the whole body, record nothing, and answer ``status`` (a 5xx: an overloaded
    or failing server)."""

    status: int = 503
    times: int = 1
    every: int = 1
    hits: int = 0
    seen: int = 0


@dataclass
class WrongToken(AnswerStatus):
    """Answer 401 as to a wrong token, though the token is right (a revoked token)."""

    status: int = 401


@dataclass
class ResetMidRequest(_Fault):
    """After reading ``after_bytes`` of a body, reset the connection (a crash): the
    request's events are not recorded. ``after_bytes`` may be a tuple: the depth of
    each crash in turn. A body shorter than that is not a crash."""

    after_bytes: int | tuple[int, ...] = 1
    times: int = 1
    every: int = 1
    hits: int = 0
    seen: int = 0

    def depth(self) -> int:
        depths = self.after_bytes if isinstance(self.after_bytes, tuple) else (self.after_bytes,)
        return depths[self.hits % len(depths)]


@dataclass
class CloseFirst(ResetMidRequest):
    """After reading ``after_bytes`` of a body, close our side (a TCP FIN, no TLS
    close_notify, no answer), stop reading, and ``reset_after`` seconds later reset
    the connection, discarding what was not read (``unread`` lists those bytes per
    crash). The request's events are not recorded."""

    reset_after: float = 0.1
    unread: list[int] = field(default_factory=list)


class RequestLog(NamedTuple):
    """A request that ended: its tag, the status answered (0: none, the connection was
    reset or closed), its body's bytes as sent, and the events recorded."""

    tag: str
    status: int
    body_bytes: int
    events: int


class _Conn:
    __slots__ = ("sock", "thread", "aborted", "idle")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.thread: threading.Thread | None = None
        self.aborted = False
        self.idle = False  # waiting for its next request: stop() need not wait for it


class _Crash(Exception):
    """The connection ends here without an answer (a fault, or the client went away)."""


class DevoHttpEndpoint:
    """Devo's HTTP ingestion on loopback: TLS with the test PKI, or plain HTTP without one.

    ``token`` is the one token it accepts. ``idle_timeout`` is how long a keep-alive
    connection may wait for its next request (or a read for more of a body) before
    the endpoint closes it. ``max_body`` caps a body, compressed and decompressed
    (413 beyond).
    """

    def __init__(self, pki: TestPki | None = None, token: str = "test-token",
                 host: str = "127.0.0.1", port: int = 0, out_dir: str | Path | None = None,
                 keep_events: bool = True, rcvbuf: int | None = None, read_delay: float = 0.0,
                 idle_timeout: float = 30.0, max_body: int = MAX_BODY) -> None:
        if host == "localhost":
            host = "127.0.0.1"
        ip = ipaddress.ip_address(host)  # a name other than localhost is refused here too
        if not ip.is_loopback:
            raise ValueError(f"the embedded HTTP endpoint only binds loopback, not {host}")
        self.host = host
        self.port = port
        self._family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        self._context = _server_context(pki) if pki is not None else None
        self._token = token
        self._rcvbuf = rcvbuf
        self.read_delay = read_delay  # seconds between reads of at most 64 KiB: a slow server
        self.idle_timeout = idle_timeout
        self.max_body = max_body

        self._lock = threading.Lock()
        self._recorder = EventRecorder(out_dir, keep_events, self._lock)
        self._cond = self._recorder.cond  # also notified when a connection ends
        self._faults: list[_Fault] = []
        self._requests: list[RequestLog] = []
        self._connections = 0
        self._open: set[_Conn] = set()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._closing = threading.Event()

    def __repr__(self) -> str:  # never the token
        return f"DevoHttpEndpoint({self.url!r})"

    # -- lifecycle

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def url(self) -> str:
        """The endpoint URL to configure: ``https://127.0.0.1:<port>`` (http without TLS)."""
        scheme = "https" if self._context is not None else "http"
        host = f"[{self.host}]" if self._family == socket.AF_INET6 else self.host
        return f"{scheme}://{host}:{self.port}"

    def start(self) -> DevoHttpEndpoint:
        """Listen (on the same port as before, after a stop or kill); listening on return."""
        with self._lock:
            if self._listener is not None:
                return self
            listener = socket.socket(self._family, socket.SOCK_STREAM)
            try:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if self._rcvbuf:  # before listen(): accepted sockets inherit it
                    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._rcvbuf)
                listener.bind((self.host, self.port))
                listener.listen(128)
                listener.settimeout(0.2)  # the accept loop notices stop() in time
            except OSError:
                listener.close()
                raise
            self.port = listener.getsockname()[1]
            self._listener = listener
            self._closing = threading.Event()
            self._accept_thread = threading.Thread(
                target=self._accept_loop, args=(listener, self._closing),
                name=f"devo-http-accept-{self.port}", daemon=True)
            self._accept_thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, let requests under way finish, then close files. Connections
        still open after `timeout` seconds (idle keep-alive ones) are reset."""
        self._close_listener()
        with self._cond:
            self._cond.wait_for(lambda: all(c.idle for c in self._open), timeout)
        self._abort_open()
        self._recorder.close_files()

    def kill(self) -> None:
        """Crash: close the listener and reset every open connection, discarding unread data."""
        self._close_listener()
        self._abort_open()
        self._recorder.close_files()

    def __enter__(self) -> DevoHttpEndpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what was received

    def counts(self) -> dict[str, int]:
        return self._recorder.counts()

    def total(self) -> int:
        return self._recorder.total()

    def events(self, tag: str) -> list[str]:
        """Messages received for tag, in arrival order."""
        return self._recorder.events(tag)

    def wait_for_total(self, n: int, timeout: float) -> bool:
        """Wait until at least n events were recorded; False on timeout."""
        return self._recorder.wait_for_total(n, timeout)

    def requests(self) -> list[RequestLog]:
        """Every request that ended, in order."""
        with self._lock:
            return list(self._requests)

    def connections(self) -> int:
        """Connections accepted so far (for TLS: handshake completed)."""
        with self._lock:
            return self._connections

    def add_fault(self, fault: _Fault) -> _Fault:
        """Arm a fault for the requests that start from now on."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def reset(self) -> None:
        """Forget events, requests and counters (files in out_dir are left as they are)."""
        self._recorder.reset()
        with self._lock:
            self._requests.clear()
            self._connections = 0

    # -- serving

    def _accept_loop(self, listener: socket.socket, closing: threading.Event) -> None:
        while not closing.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # listener shut down
            conn = _Conn(sock)
            conn.thread = threading.Thread(target=self._serve, args=(conn,),
                                           name="devo-http-conn", daemon=True)
            with self._lock:
                self._open.add(conn)
            conn.thread.start()

    def _serve(self, conn: _Conn) -> None:
        rfile: BinaryIO | None = None
        try:
            if self._context is not None and not self._handshake(conn):
                return
            with self._lock:
                self._connections += 1
            conn.sock.settimeout(self.idle_timeout)
            rfile = conn.sock.makefile("rb", buffering=CHUNK)
            while self._serve_request(conn, rfile):
                pass
        except (_Crash, OSError, ValueError):
            pass  # reset, timeout, killed, or a fault: the connection ends without more
        finally:
            with self._cond:
                self._open.discard(conn)
                self._cond.notify_all()
            if rfile is not None:
                rfile.close()  # the socket's fd closes only once its file is closed too
            conn.sock.close()

    def _handshake(self, conn: _Conn) -> bool:
        assert self._context is not None
        with self._lock:
            if conn.aborted:
                return False
            conn.sock.settimeout(HANDSHAKE_TIMEOUT)
            # Wrapped under the lock so kill() always sees the socket that owns the fd.
            conn.sock = self._context.wrap_socket(conn.sock, server_side=True,
                                                  do_handshake_on_connect=False)
        try:
            conn.sock.do_handshake()
        except OSError:
            return False
        return True

    def _serve_request(self, conn: _Conn, rfile: BinaryIO) -> bool:
        """One request and its answer; False when the connection is to end."""
        with self._cond:
            conn.idle = True
            self._cond.notify_all()
        line = rfile.readline(MAX_HEADER_LINE + 1)
        conn.idle = False
        if not line or conn.aborted:
            return False
        headers = _read_headers(rfile)
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or headers is None or not line.endswith(b"\r\n"):
            return self._answer(conn, 400, "malformed request", close=True)
        method, target, _ = parts
        length = headers.get("content-length", "")
        if not length.isdigit():
            return self._answer(conn, 411, "Content-Length required", close=True)
        length_n = int(length)
        if length_n > 4 * self.max_body:
            return self._answer(conn, 413, "body too large", close=True)
        with self._lock:
            fault = next((f for f in self._faults if f.watches()), None)
        tag, status, why = self._route(method, target)
        body = self._read_body(conn, rfile, length_n, fault if status == 200 else None, tag)
        if status == 200 and isinstance(fault, AnswerStatus):
            with self._lock:
                fault.hits += 1
            status, why = fault.status, "fault"
        if status == 200:
            return self._record(conn, tag, headers, body)
        self._log(tag, status, len(body), 0)
        return self._answer(conn, status, why)

    def _route(self, method: str, target: str) -> tuple[str, int, str]:
        """(tag, status, why) for a request line; 200 when it may be recorded."""
        segments = target.split("?", 1)[0].split("/")
        if (len(segments) != 6 or segments[0] or segments[1] != "stream"
                or not segments[3].startswith("token!")):
            return "", 404, "use /stream/<domain>/token!<token>/<host>/<tag>"
        tag = unquote(segments[5])
        if method != "POST":
            return tag, 405, "POST only"
        if not hmac.compare_digest(unquote(segments[3][6:]).encode(), self._token.encode()):
            return tag, 401, "invalid token"
        if not tag:
            return tag, 400, "no tag"
        return tag, 200, ""

    def _read_body(self, conn: _Conn, rfile: BinaryIO, length: int, fault: _Fault | None,
                   tag: str) -> bytes:
        crash = fault if isinstance(fault, ResetMidRequest) else None
        depth = crash.depth() if crash is not None else length + 1
        size = SLOW_CHUNK if self.read_delay else CHUNK
        parts, got = [], 0
        while got < length:
            want = min(size, length - got, max(1, depth - got))
            chunk = rfile.read1(want)  # type: ignore[attr-defined]
            if not chunk or conn.aborted:
                self._log(tag, 0, length, 0)
                raise _Crash("the client went away, or we were killed")
            parts.append(chunk)
            got += len(chunk)
            if crash is not None and got >= depth and got < length:
                self._crash(conn, crash)
                self._log(tag, 0, length, 0)
                raise _Crash("fault")
            if self.read_delay:
                time.sleep(self.read_delay)
        return b"".join(parts)

    def _crash(self, conn: _Conn, fault: ResetMidRequest) -> None:
        if isinstance(fault, CloseFirst):
            try:
                socket.socket.shutdown(conn.sock, socket.SHUT_WR)  # a plain FIN
            except OSError:
                return  # the client is gone already: not a crash of ours
            with self._lock:
                fault.hits += 1
            time.sleep(fault.reset_after)
            try:
                unread = struct.unpack("i", fcntl.ioctl(conn.sock.fileno(), termios.FIONREAD,
                                                        b"\0" * 4))[0]
            except OSError:
                unread = 0
            with self._lock:
                fault.unread.append(unread)
        else:
            with self._lock:
                fault.hits += 1
        try:
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        except OSError:
            pass

    def _record(self, conn: _Conn, tag: str, headers: dict[str, str], body: bytes) -> bool:
        encoding = headers.get("content-encoding", "identity").lower()
        if encoding == "gzip":
            inflater = zlib.decompressobj(31)
            try:
                data = inflater.decompress(body, self.max_body + 1)
            except zlib.error:
                self._log(tag, 400, len(body), 0)
                return self._answer(conn, 400, "not gzip")
            if len(data) > self.max_body:
                self._log(tag, 413, len(body), 0)
                return self._answer(conn, 413, "body too large once decompressed")
            if not inflater.eof or inflater.unused_data:
                self._log(tag, 400, len(body), 0)
                return self._answer(conn, 400, "truncated or trailing gzip data")
        elif encoding == "identity":
            data = body
        else:
            self._log(tag, 415, len(body), 0)
            return self._answer(conn, 415, "gzip or identity only")
        if len(data) > self.max_body:
            self._log(tag, 413, len(body), 0)
            return self._answer(conn, 413, "body too large")
        lines = [line for line in data.split(b"\n") if line]
        if lines and not self._recorder.record({tag: lines}, valid=lambda: not conn.aborted):
            raise _Crash("killed")
        self._log(tag, 200, len(body), len(lines))
        # Answered only now: the events are recorded.
        return self._answer(conn, 200, f"{len(lines)} events")

    def _answer(self, conn: _Conn, status: int, text: str, close: bool = False) -> bool:
        body = (text + "\n").encode()
        head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
                f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
                + ("Connection: close\r\n" if close else "") + "\r\n")
        conn.sock.sendall(head.encode() + body)
        return not close

    def _log(self, tag: str, status: int, body_bytes: int, events: int) -> None:
        with self._lock:
            self._requests.append(RequestLog(tag, status, body_bytes, events))

    def _close_listener(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            thread, self._accept_thread = self._accept_thread, None
            closing = self._closing
        if listener is None:
            return
        closing.set()
        try:
            listener.shutdown(socket.SHUT_RDWR)  # wakes a blocked accept() on Linux
        except OSError:
            pass
        if thread is not None:
            thread.join(JOIN_TIMEOUT)
        listener.close()

    def _abort_open(self) -> None:
        """Reset every open connection: linger 0, then wake its reader, which closes it."""
        with self._lock:
            conns = list(self._open)
            for conn in conns:
                conn.aborted = True
                try:
                    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
                    # The plain socket's shutdown, also for TLS: wakes a blocked recv().
                    socket.socket.shutdown(conn.sock, socket.SHUT_RD)
                except OSError:
                    pass
        deadline = time.monotonic() + JOIN_TIMEOUT
        for conn in conns:
            if conn.thread is not None:
                conn.thread.join(max(0.0, deadline - time.monotonic()))


def _read_headers(rfile: BinaryIO) -> dict[str, str] | None:
    """Header fields (names lowercased) up to the blank line; None if malformed."""
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        line = rfile.readline(MAX_HEADER_LINE + 1)
        if not line:
            raise _Crash("the client went away")
        if line in (b"\r\n", b"\n"):
            return headers
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep or len(line) > MAX_HEADER_LINE:
            return None
        headers[name.strip().lower()] = value.strip()
    return None


def _server_context(pki: TestPki) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile=str(pki.server_cert), keyfile=str(pki.server_key))
    return ctx  # no client certificate: the token authenticates
