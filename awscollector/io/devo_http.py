"""Write events to Devo's HTTP endpoint: gzip-compressed POSTs, each one acknowledged.

Devo ingests over HTTPS at ``<endpoint>/stream/<domain>/token!<token>/<host>/<tag>``:
the body of a POST is the tag's (the Devo table's) events, one per line, without a
syslog header. ``WriteToDevoHttp`` takes the same PCollections as ``WriteToDevo``
(``EventBatch`` elements or ``(table, message)`` tuples)::

    events | WriteToDevoHttp(DevoHttpTarget(endpoint="https://http-us.devo.io",
                                            domain="mydomain", token=token,
                                            host="aws-collector"))

Batching per table, retries with backoff and the wait for confirmation before a
bundle completes are shared with every output (``io/delivery.py``). What is
particular to HTTP:

- A table's batch becomes one or more request bodies of at most
  ``max_request_bytes`` *uncompressed* (32,000,000 by default: the compressed body
  is then under Devo's 32 MB limit too, whichever unit it means, and so is what
  the server inflates). Bodies are gzip-compressed in the sending thread, once.
- Requests go one after the other over one keep-alive connection, reused across
  flushes; after any error the connection is dropped and the next request opens
  a new one.
- The whole body is sent before the answer is read, so a 2xx answers a request
  the server read to its end. A flush is confirmed when every request of it got
  a 2xx; a request acknowledged once is not sent again when the flush is retried.
- 5xx, 408, 429 and broken connections are retried (OUT-002; OUT-001 when no
  connection could be made); 401/403 fail at once with OUT-004 (Devo refused the
  token), any other answer with OUT-005.

The token is a secret: the target's repr and str, every URL shown and every error
show ``token!***`` instead.
"""

from __future__ import annotations

import http.client
import logging
import select
import socket
import ssl
import zlib
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import apache_beam as beam

from awscollector.errors import one_line
from awscollector.io.delivery import (
    BatchingWriteFn,
    DeliveryFailed,
    DeliveryRefused,
    EventBatch,
    Receipt,
)

__all__ = ["DevoHttpTarget", "EventBatch", "HttpPayload", "HttpTransport", "MAX_REQUEST_BYTES",
           "WriteToDevoHttp"]

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 32_000_000  # uncompressed bytes per request
SEND_CHUNK = 256 * 1024  # the socket timeout applies per chunk: a slow reader that reads is fine
MAX_ANSWER = 64 * 1024  # bytes of an answer's body we read; a longer one ends the connection
_RETRYABLE = {408, 429}  # besides 5xx: the server asks us to come back
_MASK = "***"


@dataclass(frozen=True, repr=False)
class DevoHttpTarget:
    """Where to POST: Devo's HTTP endpoint, the domain, its token, and our host name.

    ``host`` is the host name Devo records for the events (default: this machine's).
    ``chain`` is a CA file to verify the endpoint with instead of the system's CAs
    (for an endpoint with a private CA, like the embedded one). The token never
    shows in repr, str or messages.
    """

    endpoint: str
    domain: str
    token: str = field(repr=False)
    host: str | None = None
    chain: str | None = None

    @classmethod
    def from_config(cls, output) -> DevoHttpTarget:
        """From a config ``outputs.<name>`` entry of type devo_http (or its ``config``)."""
        c = getattr(output, "config", output)
        token = c.token.get_secret_value() if hasattr(c.token, "get_secret_value") else c.token
        return cls(c.endpoint, c.domain, token, c.host, c.chain)

    def path(self, tag: str, host: str, masked: bool = False) -> str:
        """The request path for tag; ``masked`` shows ``token!***``."""
        base = urlsplit(self.endpoint).path.rstrip("/")
        token = _MASK if masked else quote(self.token, safe="")
        return (f"{base}/stream/{quote(self.domain, safe='')}/token!{token}/"
                f"{quote(host, safe='')}/{quote(tag, safe='')}")

    def __str__(self) -> str:
        return (f"{self.endpoint.rstrip('/')}/stream/{self.domain}/token!{_MASK}/"
                f"{self.host or '<hostname>'}")

    def __repr__(self) -> str:
        return (f"DevoHttpTarget(endpoint={self.endpoint!r}, domain={self.domain!r}, "
                f"token='{_MASK}', host={self.host!r}, chain={self.chain!r})")


@dataclass
class _Body:
    """One request: `raw` until it is compressed (once), then `gz`."""

    raw: bytes | None
    events: int
    raw_bytes: int
    gz: bytes | None = None
    acked: bool = False


@dataclass
class HttpPayload:
    """One table's messages of a flush, as one or more request bodies."""

    table: str
    bodies: list[_Body]

    @property
    def acked(self) -> bool:
        return all(b.acked for b in self.bodies)


class HttpTransport:
    """Delivers flushes to Devo's HTTP endpoint over one keep-alive connection.

    See the module docstring for what confirms a flush and what is retried.
    """

    def __init__(self, target: DevoHttpTarget, timeout: float = 30.0,
                 max_request_bytes: int = MAX_REQUEST_BYTES, compresslevel: int = 1) -> None:
        self.target = target
        self.timeout = timeout
        self.max_request_bytes = max_request_bytes
        self.compresslevel = compresslevel
        self._host = target.host or socket.gethostname()
        url = urlsplit(target.endpoint)
        self._https = url.scheme == "https"
        self._address = (url.hostname or "", url.port or (443 if self._https else 80))
        self._context = ssl.create_default_context(cafile=target.chain) if self._https else None
        self._conn: http.client.HTTPConnection | None = None

    def __repr__(self) -> str:
        return f"HttpTransport({self.target!r})"

    # -- Transport

    def prepare(self, table: str, messages: list[bytes]) -> HttpPayload:
        sizes = [len(m) + 1 for m in messages]  # + the newline
        if sum(sizes) <= self.max_request_bytes:
            return HttpPayload(table, [_Body(_lines(messages), len(messages), sum(sizes))])
        bodies, start, size = [], 0, 0
        for i, n in enumerate(sizes):
            if size and size + n > self.max_request_bytes:
                bodies.append(_Body(_lines(messages[start:i]), i - start, size))
                start, size = i, 0
            size += n  # a single message over the limit goes alone; the server judges it
        bodies.append(_Body(_lines(messages[start:]), len(messages) - start, size))
        return HttpPayload(table, bodies)

    def payload_size(self, payload: HttpPayload) -> int:
        # Uncompressed: counted in the bundle thread, before the sender compresses.
        return sum(b.raw_bytes for b in payload.bodies)

    def deliver(self, payloads: list[HttpPayload]) -> Receipt:
        for payload in payloads:
            count = len(payload.bodies)
            for n, body in enumerate(payload.bodies, 1):
                if body.acked:
                    continue  # acknowledged in an earlier attempt of this flush
                if body.gz is None:
                    body.gz = _gzip(body.raw or b"", self.compresslevel)
                    body.raw = None
                self._post(payload.table, body, n, count)
                body.acked = True
        return Receipt("HTTP 2xx")

    def close(self) -> None:
        self._drop()

    # -- internals

    def _post(self, table: str, body: _Body, n: int, count: int) -> None:
        assert body.gz is not None
        what = (f"table {table} (request {n}/{count}: {body.events} events, "
                f"{len(body.gz)} bytes gzip)")
        conn = self._connection()
        try:
            conn.putrequest("POST", self.target.path(table, self._host),
                            skip_accept_encoding=True)
            conn.putheader("Content-Type", "text/plain; charset=utf-8")
            conn.putheader("Content-Encoding", "gzip")
            conn.putheader("Content-Length", str(len(body.gz)))
            conn.endheaders()
            view = memoryview(body.gz)
            for start in range(0, len(view), SEND_CHUNK):
                conn.send(view[start:start + SEND_CHUNK])
            # Only now, with the whole body sent, is the answer read.
            response = conn.getresponse()
            status, reason = response.status, response.reason
            text = response.read(MAX_ANSWER)
            if not response.isclosed():
                self._drop()  # an answer too long to read: the connection is not reusable
        except (OSError, http.client.HTTPException) as e:
            self._drop()
            raise DeliveryFailed("OUT-002", self._scrub(
                f"{what}: the connection broke before Devo answered: {_why(e)}")) from None
        if 200 <= status < 300:
            return
        answer = self._scrub(f"HTTP {status} {reason}".strip())
        detail = self._scrub(one_line(text.decode("utf-8", "replace"), 200))
        if detail:
            answer += f": {detail}"
        if status >= 500 or status in _RETRYABLE:
            raise DeliveryFailed("OUT-002", f"{what}: Devo answered {answer}")
        if status in (401, 403):
            raise DeliveryRefused("OUT-004", f"Devo refused the token of {self.target}: "
                                             f"{what}: {answer}")
        raise DeliveryRefused("OUT-005", f"Devo refused a request to {self.target}: {what}: "
                                         f"{answer}")

    def _connection(self) -> http.client.HTTPConnection:
        """The open connection, or a new one; OUT-001 when none can be made."""
        if self._conn is not None and (self._conn.sock is None or _dropped(self._conn.sock)):
            self._drop()  # closed by the server while idle, or after its last answer
        if self._conn is not None:
            return self._conn
        host, port = self._address
        if self._https:
            conn = http.client.HTTPSConnection(host, port, timeout=self.timeout,
                                               context=self._context)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        try:
            conn.connect()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise DeliveryFailed("OUT-001", self._scrub(
                f"cannot connect to {host}:{port}: {_why(e)}")) from None
        self._conn = conn
        return conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass

    def _scrub(self, text: str) -> str:
        """Text with the token masked, whatever a server or a library put in it."""
        for secret in {self.target.token, quote(self.target.token, safe="")}:
            if secret:
                text = text.replace(secret, _MASK)
        return text


def _lines(messages: list[bytes]) -> bytes:
    return b"\n".join(messages) + b"\n"


def _gzip(data: bytes, level: int) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: the gzip container
    return compressor.compress(data) + compressor.flush()


def _dropped(sock: socket.socket) -> bool:
    """Whether the server closed (or wrote to) an idle connection: it is not reusable."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _why(e: BaseException) -> str:
    text = one_line(str(e), 300)
    name = type(e).__name__
    return f"{name}: {text}" if text and text != name else name


class _MakeHttpTransport:
    """Picklable factory: the transport (and its connection) is made in the worker."""

    def __init__(self, target: DevoHttpTarget, timeout: float, max_request_bytes: int,
                 compresslevel: int) -> None:
        self.target, self.timeout = target, timeout
        self.max_request_bytes, self.compresslevel = max_request_bytes, compresslevel

    def __repr__(self) -> str:
        return f"_MakeHttpTransport({self.target!r})"

    def __call__(self) -> HttpTransport:
        return HttpTransport(self.target, self.timeout, self.max_request_bytes,
                             self.compresslevel)


class WriteToDevoHttp(beam.PTransform):
    """Writes events to Devo's HTTP endpoint, batched per table, each request acknowledged.

    Usage::

        import apache_beam as beam
        from awscollector.io.devo_http import DevoHttpTarget, WriteToDevoHttp

        target = DevoHttpTarget("https://http-us.devo.io", "mydomain",
                                token=os.environ["DEVO_HTTP_TOKEN"], host="aws-collector")
        with beam.Pipeline() as p:
            (p | beam.Create([("my.app.table", "hello"), ("my.app.table", "world")])
               | WriteToDevoHttp(target))

    Args:
      target: where to POST (``DevoHttpTarget`` or a config output entry).
      max_batch_bytes: flush when this much is buffered, besides at bundle end.
      max_attempts: attempts per flush before the bundle fails (OUT-001/OUT-002).
      retry_delay: first backoff delay in seconds (doubles per attempt, up to 10 s).
      name: the output's name, in the "delivered" counters and debug logs.
      stats: the run's statistics (a ``StatsHandle``, io/stats.py): events confirmed.
      stop: as for ``WriteToDevo``.
      max_in_flight: flushes that may await confirmation at once.
      timeout: seconds a connect, a send of 256 KiB or the wait for an answer may take.
      max_request_bytes: uncompressed bytes per request at most (Devo takes 32 MB).
      compresslevel: gzip level (1 is fast; 6 saves about 15% more bytes).

    Counters (Beam metrics): ``devo/events|<table>``, ``devo/bytes|<table>`` (bytes
    before compression) and ``delivered/<name>|<service>|<region>|<table>``.
    """

    def __init__(self, target, *, max_batch_bytes: int = 4 << 20, max_attempts: int = 5,
                 retry_delay: float = 0.5, name: str = "devo_http", max_in_flight: int = 4,
                 timeout: float = 30.0, max_request_bytes: int = MAX_REQUEST_BYTES,
                 compresslevel: int = 1, stats=None, stop=None) -> None:
        super().__init__()
        self._target = (target if isinstance(target, DevoHttpTarget)
                        else DevoHttpTarget.from_config(target))
        self._fn = BatchingWriteFn(
            _MakeHttpTransport(self._target, timeout, max_request_bytes, compresslevel), name,
            f"Devo HTTP {self._target}", max_batch_bytes, max_attempts, retry_delay,
            max_in_flight, stats=stats, stop=stop)

    def expand(self, pcoll):
        return pcoll | "Write" >> beam.ParDo(self._fn)
