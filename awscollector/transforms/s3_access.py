"""Amazon S3 server access logs, as S3 writes them to the target bucket (config type
``s3_access_logs``).

Keys: ``<TargetPrefix>YYYY-mm-DD-HH-MM-SS-<UniqueString>`` (16 upper-case hex
characters), or with date-based partitioning
``<TargetPrefix><SourceAccountId>/<SourceRegion>/<SourceBucket>/YYYY/MM/DD/`` before
that name. The target prefix is anything, often ending in ``/`` but not always
(``logs-2026-...``). Objects are not compressed. The name alone is generic, so the
pattern asks for the exact time stamp and unique string at the very end of the key
(no extension: other AWS logs end in ``.gz``, ``.log``, ``.json``, ``.parquet``, and
Firehose's names end in a lower-case UUID); an object under another name is taken if
its first line looks like a record (``looks_like_log``).

Records: one per line, fields separated by spaces, ``-`` for an empty value; the time
is in brackets with a space inside, some fields are double-quoted::

    bucket_owner bucket [time] remote_ip requester request_id operation key
    "request_uri" http_status error_code bytes_sent object_size total_time
    turn_around_time "referrer" "user_agent" version_id host_id signature_version
    cipher_suite auth_type host_header tls_version access_point_arn acl_required

The bucket owner is a canonical user id (64 hex digits). S3 has appended fields over
the years and says it may append more: from 17 fields (up to ``user_agent``) through
``version_id``, ``host_id`` ... ``acl_required`` (26) and anything after them.

Messages for Devo (table ``web.aws.s3.access``): the original line. A line that is
not such a record (no owner id first, no bracketed time third, a quote left open,
too few fields) is rejected with SRC-004 and the reason; the other lines flow.

    >>> line = (b'79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be '
    ...         b'amzn-s3-demo-bucket1 [06/Feb/2019:00:00:38 +0000] 192.0.2.3 '
    ...         b'79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be '
    ...         b'3E57427F3EXAMPLE REST.GET.VERSIONING - "GET /amzn-s3-demo-bucket1?versioning '
    ...         b'HTTP/1.1" 200 - 113 - 7 - "-" "S3Console/0.4" -')
    >>> parsed = parse(RecordBatch("s3://b/k", "k", 0, [line, line[:120]]), {})
    >>> parsed.events[TABLE] == [line], [r.reason for r in parsed.rejected]
    (True, ['not an S3 server access log line: fewer than the 17 fields S3 always wrote'])
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from awscollector.transforms.formats import LINES, Format, Parsed, RecordBatch
from awscollector.transforms.quoted_fields import SpacedLines, count_fields, open_quote

TABLE = "web.aws.s3.access"
TYPE = "s3_access_logs"
BAD_LINE = "SRC-004"

FIELDS: tuple[str, ...] = (
    "bucket_owner", "bucket", "time", "remote_ip", "requester", "request_id", "operation",
    "key", "request_uri", "http_status", "error_code", "bytes_sent", "object_size",
    "total_time", "turn_around_time", "referrer", "user_agent",  # 17: the oldest list
    "version_id", "host_id", "signature_version", "cipher_suite", "auth_type",
    "host_header", "tls_version", "access_point_arn", "acl_required",
)  # fmt: skip
MIN_FIELDS = 17

_OWNER = rb"[0-9a-f]{64}"
_TIME = rb"\[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\]"
# Owner, bucket name, time: the fields checked one by one (also the sniff).
_BUCKET = rb"[A-Za-z0-9._-]{3,255}"  # legacy us-east-1 names: capitals, "_", 255 long
_START = _OWNER + rb" " + _BUCKET + rb" " + _TIME + rb" "
_HEAD = re.compile(_START)
_LINES = SpacedLines(_START, 3, MIN_FIELDS, start_spaces=4)  # the time holds a space
_OWNER_FIELD = re.compile(_OWNER + rb" ")
_TIME_FIELD = re.compile(rb"\S+ \S+ " + _TIME + rb"(?: |$)")


def parse(batch: RecordBatch, options: Mapping[str, Any]) -> Parsed:
    """Lines that are S3 server access records are events, unchanged; others SRC-004."""
    parsed = Parsed()
    lines = batch.records
    good = _LINES.good(lines)
    parsed.extend(TABLE, good)
    if len(good) != len(lines):
        match = _LINES.line.fullmatch
        for line in lines:
            if not match(line):
                parsed.reject(BAD_LINE, f"not an S3 server access log line: {_reason(line)}",
                              line)
    return parsed


def _reason(line: bytes) -> str:
    if not _OWNER_FIELD.match(line):
        return "the first field is not a bucket owner's canonical id (64 hex digits)"
    if not _TIME_FIELD.match(line):
        return "the third field is not a time like [06/Feb/2019:00:00:38 +0000]"
    if open_quote(line):
        return "a double quote is left open"
    if not _HEAD.match(line):
        return "the second field is not a bucket name"
    n = count_fields(line.replace(b"[", b'"').replace(b"]", b'"'))  # the time is one field
    if n < MIN_FIELDS:
        return f"fewer than the {MIN_FIELDS} fields S3 always wrote"
    return "fields not separated by single spaces (text glued to a quoted value?)"


def looks_like_log(head: bytes) -> bool:
    """Whether an object starts with an S3 server access record: an owner id, a bucket
    name and a bracketed time (for objects whose key does not say what they are)."""
    return _HEAD.match(head) is not None


_NAME = r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9A-F]{16}$"
KEYS = (
    # <TargetPrefix><account>/<region>/<bucket>/YYYY/MM/DD/<name> (date-based partitions)
    r"(^|/)\d{12}/[a-z0-9-]+/[A-Za-z0-9._-]{3,255}/\d{4}/\d{2}/\d{2}/" + _NAME,
    # <TargetPrefix><name>: the prefix may end in anything but a digit
    r"(^|[^0-9])" + _NAME,
)

FORMAT = Format(name="s3_access_logs", type=TYPE, table=TABLE, parse=parse, framing=LINES,
                keys=KEYS, sniff=looks_like_log)
