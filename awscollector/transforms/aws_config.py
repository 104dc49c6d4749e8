"""AWS Config files, as AWS Config delivers them to S3 (config type ``config_logs``).

Config writes two kinds of files, each one gzip'd JSON document, under::

    [prefix/]AWSLogs/[o-orgid/]<account>/Config/<region>/YYYY/M/D/ConfigHistory/
        <account>_Config_<region>_ConfigHistory_<resource type>_<time>_<time>_<n>.json.gz
    [prefix/]AWSLogs/[o-orgid/]<account>/Config/<region>/YYYY/M/D/ConfigSnapshot/
        <account>_Config_<region>_ConfigSnapshot_<time>_<uuid>.json.gz

(month and day without leading zeros). A history file holds the changes of one
resource type over a few hours, a snapshot every recorded resource at one time;
both are ``{"fileVersion": "1.0", ["configSnapshotId": ...,]
"configurationItems": [...]}``, a snapshot easily tens of megabytes: the items
are streamed, never the whole document held.

Each configuration item is one event in ``cloud.aws.configlogs.events``: compact
JSON, AWS's keys and values in AWS's order (``flatten: true`` applies). An item
that is not a JSON object is rejected with SRC-008; a document without its
``configurationItems`` array, or malformed, is SRC-007 (the items before the
fault are delivered).

Skipped on purpose, counted and logged: ``ConfigWritabilityCheckFile``, which
Config writes once to check it may write to the bucket (no items), and the
files under ``OversizedChangeNotification/``, the full text of change
notifications too big for SNS: their configuration item is a change, and every
change also comes in the resource type's ConfigHistory file, so collecting
those would send it twice.

    >>> batch = RecordBatch("s3://b/k", "k", 0, [{"resourceType": "AWS::S3::Bucket",
    ...                                          "tags": {"env": "prod"}}, "oops"])
    >>> parsed = parse(batch, {})
    >>> print(parsed.events[TABLE][0].decode())
    {"resourceType":"AWS::S3::Bucket","tags":{"env":"prod"}}
    >>> [(r.code, r.record) for r in parsed.rejected]
    [('SRC-008', 'oops')]
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from awscollector.transforms.formats import JSON_RECORDS, Format, Parsed, RecordBatch

TABLE = "cloud.aws.configlogs.events"
NOT_AN_OBJECT = "SRC-008"

_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False,
                            check_circular=False).encode
_ascii = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def parse(batch: RecordBatch, options: Mapping[str, Any]) -> Parsed:
    """A batch of configuration items (decoded by the framing) as compact JSON."""
    parsed = Parsed()
    items = batch.records
    if set(map(type, items)) - {dict}:  # one C pass; rare
        reason = "configuration items that are not JSON objects"
        for item in items:
            if type(item) is not dict:
                parsed.reject(NOT_AN_OBJECT, reason, item)
        items = [i for i in items if type(i) is dict]
    parsed.extend(TABLE, [_encoded(i) for i in items])
    return parsed


def _encoded(item: dict) -> bytes:
    text = _compact(item)
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" in the file): keep it escaped
        return _ascii(item).encode()


# -- the format, for the registry (transforms/registry.py)

_WRITABILITY = re.compile(r"/Config/ConfigWritabilityCheckFile$")
_OVERSIZED = re.compile(r"/Config/[^/]+/\d{4}/\d{1,2}/\d{1,2}/OversizedChangeNotification/")
_SNIFF = re.compile(rb'\s*\{\s*"fileVersion"\s*:\s*"[^"]*"\s*,\s*'
                    rb'"(configSnapshotId|configurationItems)"\s*:')


def skip(key: str) -> str | None:
    """The Config objects that hold no configuration items to collect."""
    if _WRITABILITY.search(key):
        return "an AWS Config writability check file (written when delivery is set up; no items)"
    if _OVERSIZED.search(key):
        return ("an AWS Config oversized change notification (its configuration item comes "
                "in the ConfigHistory files too)")
    return None


def looks_like_config(head: bytes) -> bool:
    """Whether an object's first bytes open a Config history or snapshot document."""
    return _SNIFF.match(head) is not None


FORMAT = Format(
    name="config_logs", type="config_logs", table=TABLE, parse=parse, framing=JSON_RECORDS,
    records_field="configurationItems", json_messages=True, skip=skip,
    sniff=looks_like_config,
    keys=(r"(^|/)AWSLogs/(o-[a-z0-9]{10,32}/)?\d{12}/Config/",),
)
