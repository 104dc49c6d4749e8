"""CloudTrail log files, as AWS delivers them to S3 (config type ``audits_s3``).

A log file is one JSON document, ``{"Records": [...]}``, gzip'd, under::

    [prefix/]AWSLogs/[o-orgid/]<account>/CloudTrail/<region>/YYYY/MM/DD/
        <account>_CloudTrail_<region>_<time>_<id>.json.gz

Each record is one event, delivered as compact JSON (AWS's keys and values, in
AWS's order) to ``cloud.aws.cloudtrail.events``; with ``auto_event_type: true``
to ``cloud.aws.cloudtrail.<service>``, the service being the first label of
the record's ``eventSource`` (``ec2.amazonaws.com`` -> ``ec2``). A record
without a usable ``eventSource`` goes to the default table.

CloudTrail Insights files (``.../CloudTrail-Insight/...``) have the same shape;
their records carry the service in ``insightDetails.eventSource`` and go to the
same tables: an insight is about one service's API calls, so it sits beside
them (``eventCategory`` is ``"Insight"`` for queries that want them apart).
Digest files (``.../CloudTrail-Digest/...``) hold hashes of the log files, not
events: they are skipped and counted, never sent.

    >>> batch = RecordBatch("s3://b/k", "k", 0, [{"eventSource": "ec2.amazonaws.com",
    ...                                          "eventName": "RunInstances"}, 7])
    >>> parsed = parse(batch, {"auto_event_type": True})
    >>> for table, messages in parsed.events.items():
    ...     print(table, messages[0].decode())
    cloud.aws.cloudtrail.ec2 {"eventSource":"ec2.amazonaws.com","eventName":"RunInstances"}
    >>> [(r.code, r.record) for r in parsed.rejected]
    [('SRC-008', 7)]
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from itertools import repeat
from typing import Any

from awscollector.transforms.formats import JSON_RECORDS, Format, Parsed, RecordBatch

TABLE = "cloud.aws.cloudtrail.events"
TABLE_PREFIX = "cloud.aws.cloudtrail."
NOT_AN_OBJECT = "SRC-008"

# The C encoder, built once; check_circular is moot for decoded JSON.
_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False,
                            check_circular=False).encode
_ascii = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
_SERVICE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_tables: dict[Any, str] = {}  # eventSource -> table: a few hundred services at most
_MAX_TABLES = 4096


def parse(batch: RecordBatch, options: Mapping[str, Any]) -> Parsed:
    """A batch of records (dicts, decoded by the framing) as compact JSON messages."""
    records = batch.records
    parsed = Parsed()
    if set(map(type, records)) - {dict}:  # one C pass; rare
        good = [r for r in records if type(r) is dict]
        reason = f"{len(records) - len(good)} records are not JSON objects"
        for record in records:
            if type(record) is not dict:
                parsed.reject(NOT_AN_OBJECT, reason, record)
        records = good
    if not records:
        return parsed
    messages = _encoded(records)
    if not options.get("auto_event_type"):
        parsed.extend(TABLE, messages)
        return parsed
    try:
        tables = list(map(_tables.get, map(dict.get, records, repeat("eventSource"))))
    except TypeError:  # an eventSource that is a list or an object: no service
        tables = [None] * len(records)
    if None in tables:
        tables = [t or table_of(r) for t, r in zip(tables, records, strict=True)]
    first = tables[0]
    if tables.count(first) == len(tables):
        parsed.extend(first, messages)
        return parsed
    for table, message in zip(tables, messages, strict=True):
        parsed.add(table, message)
    return parsed


def _encoded(records: list[dict]) -> list[bytes]:
    try:
        return [_compact(r).encode() for r in records]
    except UnicodeEncodeError:
        # A lone surrogate ("\ud800" in the file) has no UTF-8: keep it escaped.
        out = []
        for r in records:
            text = _compact(r)
            try:
                out.append(text.encode())
            except UnicodeEncodeError:
                out.append(_ascii(r).encode())
        return out


def table_of(record: dict) -> str:
    """The table of a record under ``auto_event_type`` (cached by eventSource)."""
    source = record.get("eventSource")
    if source is None:  # an Insights record names the service in its details
        details = record.get("insightDetails")
        source = details.get("eventSource") if type(details) is dict else None
    if not isinstance(source, str):
        return TABLE
    table = _tables.get(source)
    if table is None:
        service = source.split(".", 1)[0].lower()
        table = TABLE_PREFIX + service if _SERVICE.fullmatch(service) else TABLE
        if len(_tables) < _MAX_TABLES:
            _tables[source] = table
    return table


# -- the format, for the registry (transforms/registry.py)

_DIGEST = re.compile(r"(^|/)AWSLogs/(o-[a-z0-9]{10,32}/)?\d{12}/CloudTrail-Digest/")
_SNIFF = re.compile(rb'\s*\{\s*"Records"\s*:')


def skip(key: str) -> str | None:
    """Digest files are hashes of the log files, not events."""
    if _DIGEST.search(key):
        return "a CloudTrail digest file (hashes of log files, no events)"
    return None


def looks_like_cloudtrail(head: bytes) -> bool:
    """Whether an object's first bytes open a ``{"Records": ...}`` document."""
    return _SNIFF.match(head) is not None


FORMAT = Format(
    name="cloudtrail", type="audits_s3", table=TABLE, parse=parse, framing=JSON_RECORDS,
    records_field="Records", json_messages=True, skip=skip, sniff=looks_like_cloudtrail,
    keys=(r"(^|/)AWSLogs/(o-[a-z0-9]{10,32}/)?\d{12}/CloudTrail(-Insight|-Digest)?/",),
)
