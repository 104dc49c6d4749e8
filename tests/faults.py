"""A fault-injecting HTTP proxy in front of the embedded AWS (or any HTTP endpoint).

The proxy listens on a free loopback port and forwards every request, unchanged
(the Host header included, so SigV4 signatures still verify), to the upstream
endpoint. Rules pick requests by method, path and AWS operation, and answer some
of them with a fault instead: an error in the real AWS wire shape (which botocore
parses, classifies and retries as it would AWS's), or the upstream response cut
off after some bytes of its body, as a broken connection leaves it. boto3 runs
unchanged: point its ``endpoint_url`` at the proxy.

    with EmbeddedAws() as aws, FaultProxy(aws.endpoint_url) as proxy:
        slow = proxy.add(FaultRule(match_method="GET", match_path="/logs/", times=2))
        cut = proxy.add(FaultRule(match_target="GetObject", times=1, cut_body_after=4096))
        throttle = proxy.add(FaultRule(match_target="ReceiveMessage", times=3,
                                       protocol="json", status=400,
                                       code="ThrottlingException"))
        s3 = boto3.client("s3", endpoint_url=proxy.endpoint_url, ...)
        ...
        assert slow.hits == 2

A rule fires on the matching requests that its count allows (``times``: the
first N that ``every`` selects; ``every=k``: the k-th, 2k-th, ... match).
Rules are tried in the order they were added; the first one that fires
decides, and rules after it do not see that request. ``proxy.log`` lists
every fault injected; ``proxy.requests`` every request seen.

What each fault looks like on the wire:

- ``protocol="s3"`` (REST-XML): ``<Error><Code>SlowDown</Code>...</Error>`` with
  the status (503 SlowDown, 500 InternalError, 403 AccessDenied, ...).
- ``protocol="json"`` (SQS and the other JSON APIs): ``{"__type":
  "com.amazonaws.sqs#ThrottlingException", "message": ...}`` with the status and,
  as AWS sends it for services that used to speak the query protocol (SQS), the
  ``x-amzn-query-error: <Code>;<Sender|Receiver>`` header, from which botocore
  takes the error code it reports.
- ``protocol="query"``: ``<ErrorResponse><Error><Type>..</Type><Code>..</Code>``.
- ``protocol="html"``: a multi-line HTML error page, as a load balancer or a
  proxy in front of AWS answers (``code`` unused; the title is the status and
  ``message``, by default the status's reason phrase).
- ``cut_body_after=N``: the upstream's status and headers (the full
  Content-Length), the first N bytes of the body, then the connection closes.
- ``drop=True``: the connection closes before any response.

Bodies are streamed in chunks both ways, never held whole. The proxy binds
loopback only. The server, its connections and the forwarding are the shared
HTTP front's (awscollector/embedded/front.py); this module, test machinery kept
out of the installed package, adds the rules and the faults.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

from awscollector.embedded.front import CHUNK, UPSTREAM_TIMEOUT, FrontHandler, HttpFront

MAX_FORM_BYTES = 1 << 20  # query-protocol bodies read whole to find Action=; larger are streamed
MAX_REQUESTS_KEPT = 100_000

_MESSAGES = {
    "SlowDown": "Please reduce your request rate.",
    "InternalError": "We encountered an internal error. Please try again.",
    "ServiceUnavailable": "Please reduce your request rate.",
    "AccessDenied": "Access Denied",
    "AccessDeniedException": "Access to the resource is denied.",
    "ThrottlingException": "Rate exceeded",
    "Throttling": "Rate exceeded",
    "RequestThrottled": "Request is throttled.",
    "NoSuchKey": "The specified key does not exist.",
}


@dataclass
class FaultRule:
    """Which requests to spoil, how many, and how.

    Matching (every given criterion must hold):
      match_method: the HTTP method, e.g. "GET".
      match_path: a substring of the request path and query, raw or URL-decoded
        (e.g. a bucket name or part of a key).
      match_target: the AWS operation: the ``X-Amz-Target`` header of JSON APIs
        ("AmazonSQS.ReceiveMessage"; "ReceiveMessage" also matches), the
        ``Action=`` parameter of query APIs, or, for S3, the operation the proxy
        infers from method and path ("GetObject", "PutObject", "HeadObject" only).
    Counting:
      times: fire at most this often; None: always.
      every: fire on every k-th match only (1: every match).
    The fault:
      status, code, message: the AWS error to answer with, in ``protocol``'s shape.
      protocol: "s3" (REST-XML), "json" (SQS and other JSON APIs), "query", "html"
        (not AWS's: a page from something in front of it).
      query_error: the ``x-amzn-query-error`` header of a "json" error; None:
        "<code>;Sender" (status < 500) or "<code>;Receiver"; "": no header.
      cut_body_after: instead of an error, forward the request and cut the
        response after this many bytes of its body (a body no longer than that is
        sent whole; the hit still counts).
      drop: instead of an error, close the connection without a response.
    Outcome:
      seen: requests that matched; hits: faults injected.
    """

    match_method: str | None = None
    match_path: str | None = None
    match_target: str | None = None
    times: int | None = None
    every: int = 1
    status: int = 503
    code: str = "SlowDown"
    protocol: Literal["s3", "json", "query", "html"] = "s3"
    cut_body_after: int | None = None
    hits: int = 0
    message: str | None = None
    query_error: str | None = None
    drop: bool = False
    seen: int = 0

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError("every must be at least 1")
        if self.times is not None and self.times < 0:
            raise ValueError("times must be None or at least 0")
        if self.cut_body_after is not None and self.cut_body_after < 0:
            raise ValueError("cut_body_after must be at least 0")
        if self.protocol not in ("s3", "json", "query", "html"):
            raise ValueError(f"unknown protocol {self.protocol!r}")

    @property
    def kind(self) -> str:
        if self.drop:
            return "drop"
        if self.cut_body_after is not None:
            return f"cut@{self.cut_body_after}"
        return f"{self.status} {self.code}"

    def matches(self, request: RequestInfo) -> bool:
        if self.match_method and request.method.upper() != self.match_method.upper():
            return False
        if self.match_path and not (self.match_path in request.path
                                    or self.match_path in unquote(request.path)):
            return False
        if self.match_target:
            target = request.target or ""
            if target != self.match_target and target.rsplit(".", 1)[-1] != self.match_target:
                return False
        return True

    def _fires(self) -> bool:
        """Counts one more match; True if this one gets the fault (call under the lock)."""
        self.seen += 1
        if self.times is not None and self.hits >= self.times:
            return False
        if self.seen % self.every:
            return False
        self.hits += 1
        return True

    def __str__(self) -> str:
        what = " ".join(f"{k}={v!r}" for k, v in (("method", self.match_method),
                                                  ("path", self.match_path),
                                                  ("target", self.match_target)) if v)
        return f"[{what or 'any'}] -> {self.kind}"


@dataclass(frozen=True)
class RequestInfo:
    """A request as the proxy saw it."""

    method: str
    path: str  # path and query string, as sent
    target: str | None  # X-Amz-Target, Action=, or the inferred S3 operation
    range: str | None = None  # the Range header, if any
    time: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Injection:
    """One fault the proxy injected."""

    rule: FaultRule = field(compare=False)
    request: RequestInfo
    kind: str


class FaultProxy(HttpFront):
    """A forwarding HTTP proxy on a free loopback port that injects faults by rule."""

    def __init__(self, upstream: str, *, upstream_timeout: float = UPSTREAM_TIMEOUT) -> None:
        parts = urlsplit(upstream)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream must be an http(s) URL, not {upstream!r}")
        if parts.path not in ("", "/"):
            raise ValueError("upstream must not have a path")
        super().__init__(upstream, scheme=parts.scheme, host=parts.hostname,
                         port=parts.port or (443 if parts.scheme == "https" else 80),
                         upstream_timeout=upstream_timeout, handler=_Handler,
                         thread_name="fault-proxy")
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self.log: list[Injection] = []
        self.requests: deque[RequestInfo] = deque(maxlen=MAX_REQUESTS_KEPT)

    # -- rules ----------------------------------------------------------------------

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def remove(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules = [r for r in self._rules if r is not rule]

    def clear(self) -> None:
        """Remove every rule (the log and the request list stay)."""
        with self._lock:
            self._rules = []

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def counts(self) -> dict[str, int]:
        """Faults injected per rule, by the rule's description."""
        with self._lock:
            return {str(r): r.hits for r in self._rules}

    def seen(self, target: str | None = None, method: str | None = None) -> list[RequestInfo]:
        """The requests seen (for one operation and/or method)."""
        with self._lock:
            found = list(self.requests)
        return [r for r in found
                if (target is None or (r.target or "").rsplit(".", 1)[-1] == target
                    or r.target == target)
                and (method is None or r.method == method.upper())]

    def _decide(self, request: RequestInfo) -> FaultRule | None:
        with self._lock:
            self.requests.append(request)
            for rule in self._rules:
                if rule.matches(request) and rule._fires():
                    self.log.append(Injection(rule, request, rule.kind))
                    return rule
        return None

def _s3_operation(method: str, path: str) -> str | None:
    """GetObject/PutObject/HeadObject for a path-style /bucket/key request with no
    sub-resource; None for anything else."""
    bare, _, query = path.partition("?")
    segments = bare.lstrip("/").split("/", 1)
    if len(segments) < 2 or not segments[1]:
        return None
    params = parse_qs(query, keep_blank_values=True)
    if set(params) - {"versionId", "partNumber", "response-content-type", "x-id"}:
        return None
    return {"GET": "GetObject", "PUT": "PutObject", "HEAD": "HeadObject"}.get(method)


class _Handler(FrontHandler):
    server_version = "FaultProxy"
    bad_gateway_text = "fault proxy: upstream failed"

    # -- one request ------------------------------------------------------------------

    def _handle(self) -> None:
        proxy: FaultProxy = self.server.front  # type: ignore[assignment]
        body: bytes | None = None
        target = self.headers.get("X-Amz-Target")
        if not target:
            query = urlsplit(self.path).query
            target = (parse_qs(query).get("Action") or [None])[0]
        length = self._content_length()
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        content_type = self.headers.get("Content-Type", "")
        if (not target and not chunked and length is not None and length <= MAX_FORM_BYTES
                and content_type.startswith("application/x-www-form-urlencoded")):
            body = self.rfile.read(length)
            form = parse_qs(body.decode("utf-8", "replace"))
            target = (form.get("Action") or [None])[0]
        if not target:
            target = _s3_operation(self.command, self.path)
        request = RequestInfo(self.command, self.path, target, self.headers.get("Range"))
        rule = proxy._decide(request)

        if rule is not None and rule.cut_body_after is None:
            if rule.drop:
                self._close_now()
                return
            if body is None:
                self._drain(length, chunked)
            self._send_error(rule, request)
            return
        try:
            self._forward(body, length, chunked,
                          cut_after=None if rule is None else rule.cut_body_after)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        if value is None:
            return None
        try:
            return max(0, int(value))
        except ValueError:
            return None

    def _drain(self, length: int | None, chunked: bool) -> None:
        if chunked:
            for _ in self._read_chunked():
                pass
            return
        remaining = length or 0
        while remaining > 0:
            got = self.rfile.read(min(CHUNK, remaining))
            if not got:
                self.close_connection = True
                return
            remaining -= len(got)

    # -- faults ------------------------------------------------------------------------

    def _send_error(self, rule: FaultRule, request: RequestInfo) -> None:
        request_id = uuid.uuid4().hex.upper()[:16]
        message = rule.message if rule.message is not None else _MESSAGES.get(rule.code,
                                                                              rule.code)
        headers: list[tuple[str, str]] = []
        if rule.protocol == "json":
            service = (request.target or "service").split(".", 1)[0].lower()
            service = service.removeprefix("amazon") or "service"
            body = json.dumps({"__type": f"com.amazonaws.{service}#{rule.code}",
                               "message": message}).encode()
            headers.append(("Content-Type", "application/x-amz-json-1.0"))
            headers.append(("x-amzn-RequestId", request_id))
            query_error = rule.query_error
            if query_error is None:
                query_error = f"{rule.code};{'Sender' if rule.status < 500 else 'Receiver'}"
            if query_error:
                headers.append(("x-amzn-query-error", query_error))
        elif rule.protocol == "html":
            reason = rule.message or http.client.responses.get(rule.status, "Error")
            body = (f"<!DOCTYPE html>\r\n<html>\r\n<head><title>{rule.status} {escape(reason)}"
                    f"</title></head>\r\n<body>\r\n<center><h1>{rule.status} {escape(reason)}"
                    f"</h1></center>\r\n<hr><center>fault proxy</center>\r\n</body>\r\n"
                    f"</html>\r\n").encode()
            headers.append(("Content-Type", "text/html"))
        elif rule.protocol == "query":
            kind = "Sender" if rule.status < 500 else "Receiver"
            body = (f'<?xml version="1.0"?>\n<ErrorResponse><Error><Type>{kind}</Type>'
                    f"<Code>{escape(rule.code)}</Code><Message>{escape(message)}</Message>"
                    f"<Detail/></Error><RequestId>{request_id}</RequestId>"
                    f"</ErrorResponse>").encode()
            headers.append(("Content-Type", "text/xml"))
            headers.append(("x-amzn-RequestId", request_id))
        else:
            host_id = uuid.uuid4().hex
            body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
                    f"<Code>{escape(rule.code)}</Code><Message>{escape(message)}</Message>"
                    f"<RequestId>{request_id}</RequestId><HostId>{host_id}</HostId>"
                    f"</Error>").encode()
            headers.append(("Content-Type", "application/xml"))
            headers.append(("x-amz-request-id", request_id))
            headers.append(("x-amz-id-2", host_id))
        if self.command == "HEAD":
            body = b""  # S3 answers HEAD errors with the status alone
        self.send_response_only(rule.status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Date", self.date_time_string())
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
