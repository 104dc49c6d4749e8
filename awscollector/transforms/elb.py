"""Elastic Load Balancing access logs, as the load balancers write them to S3: three
formats of one config type, ``elb_logs``.

Keys (an optional prefix of the bucket's own before ``AWSLogs/``; an organization id
after it, ``AWSLogs/o-xxxxxxxxxx/<account>/``, is accepted too)::

    AWSLogs/<account>/elasticloadbalancing/<region>/YYYY/MM/DD/<file>
    Application LB: <account>_elasticloadbalancing_<region>_app.<lb>_<end>_<ip>_<rand>.log.gz
    Network LB:     <account>_elasticloadbalancing_<region>_net.<lb>_<end>_<rand>.log.gz
    Classic LB:     <account>_elasticloadbalancing_<region>_<name>_<end>_<ip>_<rand>.log

(``<lb>`` is ``<name>.<id>``, ``<end>`` like ``20261127T1205Z``; a Network LB file may
also carry the node's ip.) Classic files are not compressed; a Classic name has no
dots, so the three never overlap. ALB connection logs (mutual TLS),
``conn_log_<account>_...app...log.gz`` in the same folders, are another record
layout: skipped on purpose, with their reason.

Records: one per line, fields separated by single spaces; some are double-quoted and
may hold spaces and ``\\"``. AWS appends new fields at the end over the years, so a
line may have more fields than the newest list here; each format sets a minimum:

* Application LB (table ``web.aws.alb.access``): ``type`` (http, https, h2, grpcs, ws,
  wss), ``time`` (ISO 8601), then the fields of ``ALB_FIELDS``. From 17 fields (the
  launch list, up to ``target_group_arn``) through ``trace_id``, ``domain_name`` and
  ``chosen_cert_arn``, the rule and redirect fields, ``error_reason``, the target
  lists, ``classification``/``classification_reason``, ``conn_trace_id``, to the
  rule transform fields (33).
* Classic LB (table ``web.aws.elb.access``): ``time`` first; 12 fields (the first
  list, up to ``request``) or 15 (with ``user_agent``, ``ssl_cipher``,
  ``ssl_protocol``), or more.
* Network LB, TLS listeners (table ``web.aws.nlb.access``): ``tls``, a version
  (``1.0``, ``2.0``), ``time``; 18 fields (version 1.0, up to ``domain_name``) or 22
  (2.0, with ALPN and ``tls_connection_creation_time``), or more.

The message is the original line. A line that is not such a record (a quote left
open, too few fields, an unknown first field, no time where the time goes, text glued
to a closing quote) is rejected with SRC-004 and the reason; the other lines flow.

    >>> good = (b'http 2018-07-02T22:23:00.186641Z app/my-lb/50dc6c495c0c9188 '
    ...         b'192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 '
    ...         b'"GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - '
    ...         b'arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/t/73e2d6bc')
    >>> parsed = ALB.parse(RecordBatch("s3://b/k", "k", 0, [good, b'http "oops']), {})
    >>> parsed.events[ALB_TABLE] == [good], [r.reason for r in parsed.rejected]
    (True, ['not a line of an Application LB access log: a double quote is left open'])
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from awscollector.transforms.formats import LINES, Format, Parsed, RecordBatch
from awscollector.transforms.quoted_fields import SpacedLines, count_fields, open_quote

BAD_LINE = "SRC-004"
TYPE = "elb_logs"
ALB_TABLE = "web.aws.alb.access"
CLASSIC_TABLE = "web.aws.elb.access"
NLB_TABLE = "web.aws.nlb.access"

# Every field of an Application LB line, in AWS's order (names as AWS documents them).
ALB_FIELDS: tuple[str, ...] = (
    "type", "time", "elb", "client:port", "target:port", "request_processing_time",
    "target_processing_time", "response_processing_time", "elb_status_code",
    "target_status_code", "received_bytes", "sent_bytes", "request", "user_agent",
    "ssl_cipher", "ssl_protocol", "target_group_arn",  # 17: the launch list
    "trace_id", "domain_name", "chosen_cert_arn", "matched_rule_priority",
    "request_creation_time", "actions_executed", "redirect_url", "error_reason",
    "target:port_list", "target_status_code_list", "classification",
    "classification_reason", "conn_trace_id",
    "transformed_host", "transformed_uri", "request_transform_status",
)  # fmt: skip
ALB_MIN_FIELDS = 17
ALB_TYPES = ("http", "https", "h2", "grpcs", "ws", "wss")

CLASSIC_FIELDS: tuple[str, ...] = (
    "time", "elb", "client:port", "backend:port", "request_processing_time",
    "backend_processing_time", "response_processing_time", "elb_status_code",
    "backend_status_code", "received_bytes", "sent_bytes", "request",  # 12: the first list
    "user_agent", "ssl_cipher", "ssl_protocol",
)  # fmt: skip
CLASSIC_MIN_FIELDS = 12

NLB_FIELDS: tuple[str, ...] = (
    "type", "version", "time", "elb", "listener", "client:port", "destination:port",
    "connection_time", "tls_handshake_time", "received_bytes", "sent_bytes",
    "incoming_tls_alert", "chosen_cert_arn", "chosen_cert_serial", "tls_cipher",
    "tls_protocol_version", "tls_named_group", "domain_name",  # 18: version 1.0
    "alpn_fe_protocol", "alpn_be_protocol", "alpn_client_preference_list",
    "tls_connection_creation_time",
)  # fmt: skip
NLB_MIN_FIELDS = 18

# ISO 8601 as the load balancers write it: ALB and Classic with microseconds and Z,
# NLB to the second without a zone.
_TIME = rb"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z?"
_TIME_FIELD = re.compile(_TIME)


@dataclass(frozen=True)
class Layout:
    """What a line of one load balancer's log must look like."""

    what: str  # for reasons: "an Application LB"
    table: str
    start: bytes  # the pattern of the fields checked one by one, and the space after
    fixed: int  # how many fields ``start`` covers
    min_fields: int
    first: tuple[bytes, ...]  # allowed first fields; () for a time first (Classic)
    time_at: int  # index of the time field
    shape: SpacedLines = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", SpacedLines(self.start, self.fixed, self.min_fields))

    def reason(self, line: bytes) -> str:
        """Why a line does not match ``line`` (bad lines only: slow is fine)."""
        if open_quote(line):
            return "a double quote is left open"
        head = line.split(b" ", self.time_at + 1)
        if self.first and head[0] not in self.first:
            allowed = ", ".join(f.decode() for f in self.first)
            return f"first field {_show(head[0])} is not one of {allowed}"
        if len(head) <= self.time_at or not _TIME_FIELD.fullmatch(head[self.time_at]):
            return (f"field {self.time_at + 1} is not an ISO 8601 time: "
                    f"{_show(head[self.time_at] if len(head) > self.time_at else b'')}")
        n = count_fields(line)
        if n < self.min_fields:
            return f"{n} fields, fewer than the {self.min_fields} AWS has always written"
        return "fields not separated by single spaces (text glued to a quoted value?)"


def _show(value: bytes) -> str:
    return repr(value[:40].decode("utf-8", "replace"))


def _start(first: tuple[bytes, ...], before_time: bytes = b"") -> bytes:
    alternatives = b"|".join(re.escape(f) for f in first)
    return b"(?:" + alternatives + b") " + before_time + _TIME + b" "


_ALB_TYPES = tuple(t.encode() for t in ALB_TYPES)
ALB_LAYOUT = Layout("an Application LB", ALB_TABLE, _start(_ALB_TYPES), 2, ALB_MIN_FIELDS,
                    _ALB_TYPES, 1)
CLASSIC_LAYOUT = Layout("a Classic LB", CLASSIC_TABLE, _TIME + b" ", 1, CLASSIC_MIN_FIELDS,
                        (), 0)
NLB_LAYOUT = Layout("a Network LB", NLB_TABLE, _start((b"tls",), rb"\d+\.\d+ "), 3,
                    NLB_MIN_FIELDS, (b"tls",), 2)


def parse(layout: Layout, batch: RecordBatch, options: Mapping[str, Any]) -> Parsed:
    """Lines that are records of the layout are events, unchanged; the others SRC-004."""
    parsed = Parsed()
    lines = batch.records
    good = layout.shape.good(lines)
    parsed.extend(layout.table, good)
    if len(good) != len(lines):
        match = layout.shape.line.fullmatch
        for line in lines:
            if not match(line):
                parsed.reject(BAD_LINE, f"not a line of {layout.what} access log: "
                                        f"{layout.reason(line)}", line)
    return parsed


def _sniffer(layout: Layout) -> Callable[[bytes], bool]:
    """Whether an object starts with a line of the layout (its first fields)."""
    def sniff(head: bytes) -> bool:
        return layout.shape.head.match(head) is not None
    return sniff


# -- keys

_FOLDER = (r"(^|/)AWSLogs/(o-[a-z0-9]{10,32}/)?\d{12}/elasticloadbalancing/[a-z0-9-]+/"
           r"\d{4}/\d{2}/\d{2}/")
_FILE = r"\d{12}_elasticloadbalancing_[a-z0-9-]+_"
_END = r"_\d{8}T\d{4}Z_"
# AWS's docs name the connection log prefix "conn_log." while files say "conn_log_".
_CONNECTION_LOG = r"conn_log[._]"
ALB_KEY = _FOLDER + f"({_CONNECTION_LOG})?" + _FILE + r"app\.[^/_]+" + _END + r"[^/]+\.log\.gz$"
NLB_KEY = _FOLDER + _FILE + r"net\.[^/_]+" + _END + r"[^/]+\.log\.gz$"
CLASSIC_KEY = _FOLDER + _FILE + r"[A-Za-z0-9-]+" + _END + r"[^/_]+_[^/_]+\.log$"
_CONNECTION_FILE = re.compile(r"/" + _CONNECTION_LOG + r"[^/]*$")


def skip_connection_logs(key: str) -> str | None:
    """ALB connection logs (TLS handshakes of mutual TLS listeners) share the access logs'
    folders, with another record layout and no Devo table of their own yet."""
    if _CONNECTION_FILE.search("/" + key):
        return "an ALB connection log: not collected by this version"
    return None


ALB = Format(
    name="alb_access_logs", type=TYPE, table=ALB_TABLE, framing=LINES,
    parse=partial(parse, ALB_LAYOUT), keys=(ALB_KEY,), sniff=_sniffer(ALB_LAYOUT),
    skip=skip_connection_logs)
NLB = Format(
    name="nlb_access_logs", type=TYPE, table=NLB_TABLE, framing=LINES,
    parse=partial(parse, NLB_LAYOUT), keys=(NLB_KEY,), sniff=_sniffer(NLB_LAYOUT))
CLASSIC = Format(
    name="classic_elb_access_logs", type=TYPE, table=CLASSIC_TABLE, framing=LINES,
    parse=partial(parse, CLASSIC_LAYOUT), keys=(CLASSIC_KEY,),
    sniff=_sniffer(CLASSIC_LAYOUT))
FORMATS: tuple[Format, ...] = (ALB, NLB, CLASSIC)
