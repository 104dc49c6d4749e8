"""VPC Flow Logs in text format, as AWS writes them to S3.

The first line of every log file is a header naming the fields, space separated
(``version account-id interface-id ...``); each following line is one record with
one value per field, ``-`` where a value does not apply (``NODATA`` and
``SKIPDATA`` records have ``-`` in most fields and are kept). Transit Gateway
flow logs come under the same keys, with fields of their own (``tgw-id``,
``packets-lost-no-route``, ...; their default format is ``TGW_FIELDS``).

Messages for Devo (table ``cloud.aws.vpc.flow``):

* default format (the 14 version-2 fields in AWS's order): the original line,
  unchanged, once it has the right number of fields;
* custom format, and Transit Gateway flow logs: a compact JSON object, AWS's
  field names as keys in header order. Fields AWS documents as integers (Parquet
  INT_32/INT_64: ``version``, ``srcport``, ``dstport``, ``protocol``,
  ``packets``, ``bytes``, ``start``, ``end``, ``tcp-flags``, ``traffic-path``,
  ``encryption-status``, ``packets-lost-*``) are JSON numbers, the others
  strings. ``-`` becomes JSON ``null``, in every field.

A line whose field count differs from the header's, or with a non-integer in an
integer field, or (custom format) not valid UTF-8, is returned in ``bad_lines``
for the caller to dead-letter. A line equal to the header (files concatenated)
is skipped.

    >>> fmt = parse_header(b"version srcport action", "s3://b/k.log.gz")
    >>> messages, bad_lines = to_messages(fmt, [b"5 443 ACCEPT", b"5 - -", b"oops"])
    >>> for message in messages:
    ...     print(message.decode())
    {"version":5,"srcport":443,"action":"ACCEPT"}
    {"version":5,"srcport":null,"action":null}
    >>> bad_lines
    [b'oops']
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import Any

from awscollector.errors import CollectorError
from awscollector.transforms.formats import FIRST_LINE, LINES, Format, Parsed, RecordBatch

DEFAULT_FIELDS: tuple[str, ...] = (
    "version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport",
    "protocol", "packets", "bytes", "start", "end", "action", "log-status",
)  # fmt: skip

# Every field AWS documents, in its table's order, by the version that added it.
ALL_FIELDS: tuple[str, ...] = DEFAULT_FIELDS + (
    # v3
    "vpc-id", "subnet-id", "instance-id", "tcp-flags", "type", "pkt-srcaddr", "pkt-dstaddr",
    # v4
    "region", "az-id", "sublocation-type", "sublocation-id",
    # v5
    "pkt-src-aws-service", "pkt-dst-aws-service", "flow-direction", "traffic-path",
    # v7
    "ecs-cluster-arn", "ecs-cluster-name", "ecs-container-instance-arn",
    "ecs-container-instance-id", "ecs-container-id", "ecs-second-container-id",
    "ecs-service-name", "ecs-task-definition-arn", "ecs-task-arn", "ecs-task-id",
    # v8
    "reject-reason",
    # newer than v8: accepted so such files are not rejected outright
    "resource-id", "encryption-status",
    # Transit Gateway flow logs (v6), beside the VPC fields they share
    "resource-type", "tgw-id", "tgw-attachment-id", "tgw-src-vpc-account-id",
    "tgw-dst-vpc-account-id", "tgw-src-vpc-id", "tgw-dst-vpc-id", "tgw-src-subnet-id",
    "tgw-dst-subnet-id", "tgw-src-eni", "tgw-dst-eni", "tgw-src-az-id", "tgw-dst-az-id",
    "tgw-pair-attachment-id", "packets-lost-no-route", "packets-lost-blackhole",
    "packets-lost-mtu-exceeded", "packets-lost-ttl-expired",
)  # fmt: skip

# The default format of Transit Gateway flow logs: every field of versions 2 to 6.
TGW_FIELDS: tuple[str, ...] = (
    "version", "resource-type", "account-id", "tgw-id", "tgw-attachment-id",
    "tgw-src-vpc-account-id", "tgw-dst-vpc-account-id", "tgw-src-vpc-id", "tgw-dst-vpc-id",
    "tgw-src-subnet-id", "tgw-dst-subnet-id", "tgw-src-eni", "tgw-dst-eni", "tgw-src-az-id",
    "tgw-dst-az-id", "tgw-pair-attachment-id", "srcaddr", "dstaddr", "srcport", "dstport",
    "protocol", "packets", "bytes", "start", "end", "log-status", "type",
    "packets-lost-no-route", "packets-lost-blackhole", "packets-lost-mtu-exceeded",
    "packets-lost-ttl-expired", "tcp-flags", "region", "flow-direction",
    "pkt-src-aws-service", "pkt-dst-aws-service",
)  # fmt: skip

INTEGER_FIELDS: frozenset[str] = frozenset({
    "version", "srcport", "dstport", "protocol", "packets", "bytes", "start", "end",
    "tcp-flags", "traffic-path", "encryption-status", "packets-lost-no-route",
    "packets-lost-blackhole", "packets-lost-mtu-exceeded", "packets-lost-ttl-expired",
})  # fmt: skip

_KNOWN = frozenset(ALL_FIELDS)
# Bytes that may go into a JSON string as they are: printable ASCII but '"' and '\'.
_PLAIN = bytes(b for b in range(0x20, 0x7F) if b not in b'"\\')
_PLAIN_OR_NL = _PLAIN + b"\n"
_MAX_VARIANTS = 4096


@dataclass(frozen=True)
class VpcFlowFormat:
    """The fields of a log file, from its header line."""

    fields: tuple[str, ...]
    is_default: bool


def parse_header(line: bytes, name: str = "") -> VpcFlowFormat:
    """Read the header line of a log file; SRC-003 if it is not one."""
    where = f"{name}: " if name else ""
    fields = tuple(line.decode("utf-8", "replace").split())
    if not fields:
        raise CollectorError("SRC-003", f"{where}not a VPC Flow Logs header: empty line")
    seen: set[str] = set()
    for word in fields:
        if word not in _KNOWN:
            raise CollectorError(
                "SRC-003", f"{where}not a VPC Flow Logs header: unknown field {word[:40]!r}"
            )
        if word in seen:
            raise CollectorError(
                "SRC-003", f"{where}not a VPC Flow Logs header: duplicate field {word!r}"
            )
        seen.add(word)
    return VpcFlowFormat(fields, fields == DEFAULT_FIELDS)


def to_messages(fmt: VpcFlowFormat, lines: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """Turn record lines (header removed) into (messages, bad_lines)."""
    plan = _plan(fmt)
    if fmt.is_default:
        return _default(plan, lines)
    spaces = plan.spaces
    # Counting separators is a single C call per line.
    good = [line for line in lines if line.count(b" ") == spaces]
    bad = [line for line in lines if line.count(b" ") != spaces] if len(good) != len(lines) else []
    if plan.header in good:
        good = [line for line in good if line != plan.header]
    if not good:
        return good, bad
    return _to_json(plan, good, bad), bad


# A default-format line: 14 fields, the integer ones digits or "-". Possessive
# quantifiers keep the match linear; all(map(...)) is one C-level pass over a batch.
_DEFAULT_LINE = re.compile(b" ".join(
    rb"(?:[0-9]++|-)" if name in INTEGER_FIELDS else rb"[^ ]*+" for name in DEFAULT_FIELDS))


def _default(plan: _Plan, lines: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    match = _DEFAULT_LINE.fullmatch
    if all(map(match, lines)):
        return lines, []
    good = [line for line in lines if match(line)]
    bad = [line for line in lines if not match(line) and line != plan.header]
    return good, bad


@dataclass(frozen=True, eq=False)
class _Plan:
    header: bytes
    spaces: int
    fields: tuple[str, ...]
    is_int: tuple[bool, ...]
    # Positions of the "-" values in a line -> (%-template, getter of the other integers).
    variants: dict[tuple[int, ...], tuple[bytes, Callable | None]] = field(default_factory=dict)


@lru_cache(maxsize=64)
def _plan(fmt: VpcFlowFormat) -> _Plan:
    return _Plan(
        header=" ".join(fmt.fields).encode(),
        spaces=len(fmt.fields) - 1,
        fields=fmt.fields,
        is_int=tuple(f in INTEGER_FIELDS for f in fmt.fields),
    )


def _variant(plan: _Plan, dashes: tuple[int, ...]) -> tuple[bytes, Callable | None]:
    """The template for lines with "-" at these positions (few distinct sets in practice)."""
    found = plan.variants.get(dashes)
    if found is not None:
        return found
    slots = []
    ints = []
    for n, (name, is_int) in enumerate(zip(plan.fields, plan.is_int, strict=True)):
        key = json.dumps(name).encode() + b":"
        if n in dashes:
            slots.append(key + b"null%.0b")  # %.0b consumes the "-" and prints nothing
        elif is_int:
            slots.append(key + b"%b")
            ints.append(n)
        else:
            slots.append(key + b'"%b"')
    getter = None
    if len(ints) > 1:
        getter = itemgetter(*ints)
    elif ints:  # itemgetter of one index returns the item itself, not a tuple
        getter = itemgetter(ints[0], ints[0])
    found = (b"{" + b",".join(slots) + b"}", getter)
    if len(plan.variants) < _MAX_VARIANTS:
        plan.variants[dashes] = found
    return found


def _to_json(plan: _Plan, lines: list[bytes], bad: list[bytes]) -> list[bytes]:
    # Lines with bytes that need JSON escaping (quotes, backslashes, control or
    # non-ASCII bytes) are rare and go the slow way (_record_json). Checked once per
    # batch, and line by line only if the batch has some.
    dirty = bool(b"\n".join(lines).translate(None, _PLAIN_OR_NL))
    base = _variant(plan, ())
    out = []
    append = out.append
    for line in lines:
        if dirty and line.translate(None, _PLAIN):
            _slow(plan, line, append, bad)
            continue
        values = line.split(b" ")
        dashes = values.count(b"-")
        if dashes:
            found = []
            at = -1
            for _ in range(dashes):
                at = values.index(b"-", at + 1)
                found.append(at)
            template, ints = _variant(plan, tuple(found))
        else:
            template, ints = base
        if ints is not None:
            digits = ints(values)
            # Digits only, none empty, no leading zero (not JSON): a value starting
            # with "0" must be "0" itself. A few C calls instead of a loop per field.
            if (
                b"" in digits
                or not b"".join(digits).isdigit()
                or (b" " + b" ".join(digits)).count(b" 0") != digits.count(b"0")
            ):
                _slow(plan, line, append, bad)
                continue
        append(template % tuple(values))
    return out


def _slow(plan: _Plan, line: bytes, append: Callable, bad: list[bytes]) -> None:
    message = _record_json(plan, line)
    if message is None:
        bad.append(line)
    else:
        append(message)


def _record_json(plan: _Plan, line: bytes) -> bytes | None:
    try:
        values = line.decode("utf-8").split(" ")
    except UnicodeDecodeError:
        return None
    if len(values) != len(plan.fields):  # e.g. a b"\n" inside a line given to us
        return None
    record: dict[str, object] = {}
    for name, is_int, value in zip(plan.fields, plan.is_int, values, strict=True):
        if value == "-":
            record[name] = None
        elif not is_int:
            record[name] = value
        elif value.isascii() and value.isdigit():
            record[name] = int(value)
        else:
            return None
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# -- the format, for the registry (transforms/registry.py)

TABLE = "cloud.aws.vpc.flow"


@lru_cache(maxsize=256)
def _format_of(header: bytes) -> VpcFlowFormat:
    return parse_header(header)


def parse(batch: RecordBatch, options: Mapping[str, Any]) -> Parsed:
    """A batch of a text log file: its header line names the fields (SRC-003 if it
    does not); lines that do not match it are rejected with SRC-004."""
    header = batch.header[0] if batch.header else b""
    try:
        fmt = _format_of(header)
    except CollectorError as e:
        raise CollectorError(e.code, f"{batch.source}: {e.message}") from None
    parsed = Parsed()
    messages, bad = to_messages(fmt, batch.records)
    parsed.extend(TABLE, messages)
    reason = (f"{len(bad)} lines do not match the header ({len(fmt.fields)} fields, "
              f"integers where AWS has integers)")
    for line in bad:
        parsed.reject("SRC-004", reason, line)
    return parsed


def looks_like_header(head: bytes) -> bool:
    """Whether an object's first line is a VPC Flow Logs header (for objects whose
    key does not say what they are)."""
    try:
        parse_header(head.split(b"\n", 1)[0].rstrip(b"\r"))
    except CollectorError:
        return False
    return True


FORMAT = Format(
    name="vpc_flow_logs", type="vpc_flow_logs", table=TABLE, parse=parse, framing=LINES,
    header=FIRST_LINE, keys=(r"(^|/)(aws-service=)?vpcflowlogs/(?!.*\.parquet$)",),
    sniff=looks_like_header,
)
