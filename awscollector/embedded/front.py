"""The loopback HTTP front that the embedded AWS's two front servers share.

The fault-injecting proxy and the emulator of the API calls moto lacks are each a
threaded HTTP/1.1 server on a free loopback port in front of an upstream endpoint
(moto's server). Both keep boto3's keep-alive connections, answer some requests
themselves and forward the others unchanged. What they share lives here:

- ``HttpFront``: the upstream's address and the lifecycle (``start``, ``stop``,
  ``endpoint_url``, use as a context manager); ``stop`` also closes every open
  client connection, so a test's teardown never waits on an idle keep-alive.
- ``FrontHandler``: a request handler that registers its connection with the
  server, stays quiet on stderr, reads chunked request bodies, and forwards a
  request to the upstream: every header but the hop-by-hop ones (the Host header
  included, so SigV4 signatures still verify), the body streamed in chunks, the
  response streamed back (optionally cut short after some bytes, or read whole and
  shown to an observer first when it is small).

A front subclasses both: its handler implements ``_handle`` for one request, and
sets ``bad_gateway_text``, the start of the 502 body sent when the upstream fails.
"""

from __future__ import annotations

import abc
import http.client
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar, Self

HOST = "127.0.0.1"  # never listen on anything but loopback
CHUNK = 64 * 1024
UPSTREAM_TIMEOUT = 120.0
IDLE_TIMEOUT = 300.0  # an idle keep-alive client connection is closed after this long
MAX_OBSERVED = 1 << 20  # a forwarded answer is read whole for an observer up to this size

# Headers of one hop only: never forwarded (RFC 9110 7.6.1). Expect is answered here.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
                        "proxy-authorization", "te", "trailer", "transfer-encoding",
                        "upgrade", "expect"})


class HttpFront:
    """A loopback HTTP server in front of ``upstream``, started and stopped as one.

    A subclass validates the upstream URL it accepts, then passes its parts, the
    ``FrontHandler`` subclass that serves each connection, and ``thread_name`` (the
    serving thread's name, before the port).
    """

    def __init__(self, upstream: str, *, scheme: str, host: str, port: int,
                 upstream_timeout: float, handler: type[FrontHandler],
                 thread_name: str) -> None:
        self.upstream = upstream
        self._handler = handler
        self._thread_name = thread_name
        self._scheme = scheme
        self._up_host = host
        self._up_port = port
        self._up_timeout = upstream_timeout
        self._server: FrontServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def endpoint_url(self) -> str:
        if not self.port:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://{HOST}:{self.port}"

    def start(self) -> Self:
        if self._server is not None:
            return self
        server = FrontServer((HOST, 0), self._handler)
        server.front = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"{self._thread_name}-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and close every open connection. Safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.upstream!r}, port={self.port or None})"

    def _upstream_connection(self) -> http.client.HTTPConnection:
        if self._scheme == "https":
            return http.client.HTTPSConnection(self._up_host, self._up_port,
                                               timeout=self._up_timeout)
        return http.client.HTTPConnection(self._up_host, self._up_port, timeout=self._up_timeout)


class FrontServer(ThreadingHTTPServer):
    """A threaded HTTP server that knows its open connections, to close them on stop."""

    daemon_threads = True
    allow_reuse_address = False
    front: HttpFront

    def __init__(self, *args, **kwargs) -> None:
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def register(self, conn: socket.socket) -> None:
        with self._conns_lock:
            self._conns.add(conn)

    def unregister(self, conn: socket.socket) -> None:
        with self._conns_lock:
            self._conns.discard(conn)

    def close_all(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            abort(conn)


def abort(conn: socket.socket) -> None:
    """Shut a connection down both ways: the peer sees it closed at once."""
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class FrontHandler(BaseHTTPRequestHandler, abc.ABC):
    """One client connection of a front; ``_handle`` answers or forwards one request."""

    protocol_version = "HTTP/1.1"  # keep-alive, as boto3's connection pool expects
    timeout = IDLE_TIMEOUT
    bad_gateway_text: ClassVar[str]
    server: FrontServer

    def setup(self) -> None:
        super().setup()
        self.server.register(self.connection)

    def finish(self) -> None:
        self.server.unregister(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args) -> None:
        pass  # one line per request to stderr: noise in test output

    def do_GET(self) -> None:
        self._handle()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

    @abc.abstractmethod
    def _handle(self) -> None:
        """Answer the request just parsed (self.command, self.path, self.headers)."""

    def _read_chunked(self) -> Iterator[bytes]:
        """The data of a chunked request body, chunk by chunk (trailers are dropped)."""
        while True:
            line = self.rfile.readline(65537)
            if not line:
                raise ConnectionResetError("client closed mid-body")
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return
            remaining = size
            while remaining > 0:
                data = self.rfile.read(min(CHUNK, remaining))
                if not data:
                    raise ConnectionResetError("client closed mid-body")
                remaining -= len(data)
                yield data
            self.rfile.readline(65537)  # the CRLF after the chunk

    def _close_now(self) -> None:
        self.close_connection = True
        self.wfile.flush()
        abort(self.connection)

    # -- forwarding ----------------------------------------------------------------------

    def _forward(self, body: bytes | None, length: int | None, chunked: bool, *,
                 cut_after: int | None = None,
                 observe: Callable[[int, bytes], None] | None = None) -> None:
        """Send this request to the upstream and its answer back to the client.

        body: the request body if already read (else it is streamed from the client:
          ``length`` bytes, or chunk by chunk if ``chunked``).
        cut_after: close the connection after this many bytes of the answer's body.
        observe: called with the status and the whole body of an answer of known
          length up to MAX_OBSERVED bytes, before it is sent on (larger ones stream
          past unobserved). Not combined with ``cut_after``.
        An upstream that cannot be reached or answers no HTTP gets a 502.
        """
        if cut_after is not None and observe is not None:
            raise ValueError("cut_after and observe do not combine")
        conn = self.server.front._upstream_connection()
        try:
            try:
                self._send_upstream(conn, body, length, chunked)
                response = conn.getresponse()
            except (OSError, http.client.HTTPException) as e:
                self._bad_gateway(e)
                return
            self._relay(response, cut_after, observe)
        finally:
            conn.close()

    def _send_upstream(self, conn: http.client.HTTPConnection, body: bytes | None,
                       length: int | None, chunked: bool) -> None:
        # skip_host: the client's Host header goes on as it is, for SigV4.
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            if name.lower() in HOP_BY_HOP or name.lower() == "content-length":
                continue
            conn.putheader(name, value)
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for data in self._read_chunked():
                conn.send(b"%x\r\n%s\r\n" % (len(data), data))
            conn.send(b"0\r\n\r\n")
            return
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders()
            conn.send(body)
            return
        if length is not None:
            conn.putheader("Content-Length", str(length))
        conn.endheaders()
        remaining = length or 0
        while remaining > 0:
            data = self.rfile.read(min(CHUNK, remaining))
            if not data:
                raise ConnectionResetError("client closed mid-body")
            conn.send(data)
            remaining -= len(data)

    def _relay(self, response: http.client.HTTPResponse, cut_after: int | None,
               observe: Callable[[int, bytes], None] | None) -> None:
        no_body = (self.command == "HEAD" or response.status in (204, 304)
                   or 100 <= response.status < 200)
        headers = [(n, v) for n, v in response.getheaders() if n.lower() not in HOP_BY_HOP]
        length = response.getheader("Content-Length")
        if observe is not None and not no_body and not response.chunked and length \
                and int(length) <= MAX_OBSERVED:
            body = response.read()
            observe(response.status, body)
            self._send_head(response, headers, chunk_out=False)
            self.wfile.write(body)
            self.wfile.flush()
            return
        # A body of unknown length goes out chunked, so keep-alive still frames it.
        chunk_out = not no_body and (length is None or response.chunked)
        self._send_head(response, headers, chunk_out)
        if no_body:
            self.wfile.flush()
            return
        sent = 0
        while True:
            data = response.read(CHUNK)
            if not data:
                break
            if cut_after is not None and sent + len(data) >= cut_after:
                data = data[:cut_after - sent]
                if data:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunk_out else data)
                self._close_now()  # mid-body: the client sees a broken read
                return
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunk_out else data)
            sent += len(data)
        if chunk_out:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _send_head(self, response: http.client.HTTPResponse, headers: list[tuple[str, str]],
                   chunk_out: bool) -> None:
        self.send_response_only(response.status, response.reason)
        for name, value in headers:
            self.send_header(name, value)
        if chunk_out:
            self.send_header("Transfer-Encoding", "chunked")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()

    def _bad_gateway(self, error: Exception) -> None:
        body = f"{self.bad_gateway_text}: {error}".encode()
        self.send_response_only(502)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
