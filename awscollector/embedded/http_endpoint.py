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

import hmac
import socket
import time
import zlib
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import BinaryIO, NamedTuple
from urllib.parse import unquote

from .certs import TestPki
from .server import (
    CHUNK,
    SLOW_CHUNK,
    Conn,
    DepthFault,
    Fault,
    LoopbackServer,
    close_first,
    reset_on_close,
)

__all__ = ["AnswerStatus", "CloseFirst", "DevoHttpEndpoint", "MAX_BODY", "RequestLog",
           "ResetMidRequest", "WrongToken"]

MAX_BODY = 32 * 1024 * 1024  # bytes of a body, compressed or not (Devo's 32 MB)
MAX_HEADER_LINE = 16 * 1024
MAX_HEADERS = 100


@dataclass
class AnswerStatus(Fault):
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
class ResetMidRequest(DepthFault):
    """After reading ``after_bytes`` of a body, reset the connection (a crash): the
    request's events are not recorded. ``after_bytes`` may be a tuple: the depth of
    each crash in turn. A body shorter than that is not a crash."""

    after_bytes: int | tuple[int, ...] = 1
    times: int = 1
    every: int = 1
    hits: int = 0
    seen: int = 0


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


class _Crash(Exception):
    """The connection ends here without an answer (a fault, or the client went away)."""


class DevoHttpEndpoint(LoopbackServer):
    """Devo's HTTP ingestion on loopback: TLS with the test PKI, or plain HTTP without one.

    ``token`` is the one token it accepts. ``idle_timeout`` is how long a keep-alive
    connection may wait for its next request (or a read for more of a body) before
    the endpoint closes it. ``max_body`` caps a body, compressed and decompressed
    (413 beyond).
    """

    _what = "HTTP endpoint"
    _thread_name = "devo-http"
    _client_certs = False  # the token authenticates

    def __init__(self, pki: TestPki | None = None, token: str = "test-token",
                 host: str = "127.0.0.1", port: int = 0, out_dir: str | Path | None = None,
                 keep_events: bool = True, rcvbuf: int | None = None, read_delay: float = 0.0,
                 idle_timeout: float = 30.0, max_body: int = MAX_BODY) -> None:
        super().__init__(pki, host, port, out_dir, keep_events, rcvbuf, read_delay)
        self._token = token
        self.idle_timeout = idle_timeout
        self.max_body = max_body
        self._requests: list[RequestLog] = []

    def __repr__(self) -> str:  # never the token
        return f"DevoHttpEndpoint({self.url!r})"

    @property
    def url(self) -> str:
        """The endpoint URL to configure: ``https://127.0.0.1:<port>`` (http without TLS)."""
        scheme = "https" if self._context is not None else "http"
        host = f"[{self.host}]" if self._family == socket.AF_INET6 else self.host
        return f"{scheme}://{host}:{self.port}"

    def requests(self) -> list[RequestLog]:
        """Every request that ended, in order."""
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forget events, requests and counters (files in out_dir are left as they are)."""
        super().reset()
        with self._lock:
            self._requests.clear()

    # -- serving

    def _converse(self, conn: Conn) -> None:
        try:
            conn.sock.settimeout(self.idle_timeout)
            # The socket's fd closes only once this file is closed too.
            with conn.sock.makefile("rb", buffering=CHUNK) as rfile:
                while self._serve_request(conn, rfile):
                    pass
        except (_Crash, OSError, ValueError):
            pass  # reset, timeout, killed, or a fault: the connection ends without more

    def _serve_request(self, conn: Conn, rfile: BinaryIO) -> bool:
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
            fault = self._next_fault()
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

    def _read_body(self, conn: Conn, rfile: BinaryIO, length: int, fault: Fault | None,
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

    def _crash(self, conn: Conn, fault: ResetMidRequest) -> None:
        if isinstance(fault, CloseFirst):
            close_first(conn.sock, fault, self._lock)
            return
        with self._lock:
            fault.hits += 1
        reset_on_close(conn.sock)

    def _record(self, conn: Conn, tag: str, headers: dict[str, str], body: bytes) -> bool:
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

    def _answer(self, conn: Conn, status: int, text: str, close: bool = False) -> bool:
        body = (text + "\n").encode()
        head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
                f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
                + ("Connection: close\r\n" if close else "") + "\r\n")
        conn.sock.sendall(head.encode() + body)
        return not close

    def _log(self, tag: str, status: int, body_bytes: int, events: int) -> None:
        with self._lock:
            self._requests.append(RequestLog(tag, status, body_bytes, events))

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
