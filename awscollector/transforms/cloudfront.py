"""CloudFront standard logs (legacy access logs), as CloudFront writes them to S3.

Each object is ``<distribution ID>.YYYY-MM-DD-HH.<unique ID>.gz``, under any prefix
(``EMLARXS9EXAMPLE.2019-11-14-20.RT4KCN4SGK9.gz``; older objects have a lower-case
hex unique ID). It starts with two header lines, ``#Version: 1.0`` and
``#Fields: date time x-edge-location ...``, then one record per line with one
tab-separated value per field. AWS has added fields over the years (24 before
2019, 33 since, with ``c-port``, ``time-to-first-byte``, ``sc-content-type`` and
more), and the field list is the file's own: whatever it names is accepted.

Messages for Devo (table ``cloud.aws.cloudfront.web_1``): the original line. A line
whose number of values differs from ``#Fields`` is rejected with SRC-004; an
object without a ``#Fields`` line with SRC-003 (nothing of it is delivered).
Header lines found after the first record (files concatenated) are not events; a
new ``#Fields`` line there applies to the lines after it.

    >>> batch = RecordBatch("s3://b/k", "k", 0, [b"2019-11-14\\t20:00:01\\t200", b"oops"],
    ...                     (b"#Version: 1.0", b"#Fields: date time sc-status"))
    >>> parsed = parse(batch, {})
    >>> parsed.events[TABLE], [r.record for r in parsed.rejected]
    ([b'2019-11-14\\t20:00:01\\t200'], [b'oops'])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from awscollector.errors import CollectorError
from awscollector.transforms.formats import COMMENT_LINES, LINES, Format, Parsed, RecordBatch

TABLE = "cloud.aws.cloudfront.web_1"
_FIELDS = b"#Fields:"
_VERSION = b"#Version:"


def field_names(header: tuple[bytes, ...] | list[bytes]) -> tuple[str, ...] | None:
    """The field names of the last ``#Fields`` line among header lines, or None."""
    for line in reversed(header):
        if line.startswith(_FIELDS):
            return tuple(line[len(_FIELDS):].decode("utf-8", "replace").split())
    return None


def parse(batch: RecordBatch, options: Mapping[str, Any]) -> Parsed:
    """A batch of a CloudFront log: lines with as many tab-separated values as its
    ``#Fields`` line names are events, the others SRC-004."""
    fields = field_names(batch.header)
    if not fields:
        raise CollectorError("SRC-003", f"{batch.source}: not a CloudFront standard log: no "
                                        f"#Fields line before the first record")
    parsed = Parsed()
    lines = batch.records
    tabs = len(fields) - 1
    # One C-level count per line; the batch is split only if some line is off.
    good = [line for line in lines if line.count(b"\t") == tabs]
    if len(good) == len(lines):
        parsed.extend(TABLE, good)
        return parsed
    bad = [line for line in lines if line.count(b"\t") != tabs]
    if any(line[:1] == b"#" for line in bad):
        _in_order(lines, tabs, parsed)  # header lines inside: they may change the fields
        return parsed
    parsed.extend(TABLE, good)
    reason = _reason(tabs + 1)
    for line in bad:
        parsed.reject("SRC-004", reason, line)
    return parsed


def _in_order(lines: list[bytes], tabs: int, parsed: Parsed) -> None:
    good: list[bytes] = []
    for line in lines:
        if line[:1] == b"#":
            if line.startswith(_FIELDS):
                fields = field_names([line])
                tabs = len(fields) - 1 if fields else tabs
            continue  # #Version, #Fields: not events
        if line.count(b"\t") == tabs:
            good.append(line)
        else:
            parsed.reject("SRC-004", _reason(tabs + 1), line)
    parsed.extend(TABLE, good)


def _reason(fields: int) -> str:
    return f"lines whose number of tab-separated values differs from #Fields ({fields})"


def looks_like_log(head: bytes) -> bool:
    """Whether an object starts as a CloudFront standard log: ``#Version:`` then
    ``#Fields:`` (for objects whose key does not say what they are)."""
    first, _, rest = head.partition(b"\n")
    return first.startswith(_VERSION) and rest.startswith(_FIELDS)


FORMAT = Format(
    name="cloudfront_logs", type="cloudfront_logs", table=TABLE, parse=parse, framing=LINES,
    header=COMMENT_LINES,
    keys=(r"(^|/)[A-Z0-9]+\.\d{4}-\d{2}-\d{2}-\d{2}\.[A-Za-z0-9]+\.gz$",),
    sniff=looks_like_log,
)
