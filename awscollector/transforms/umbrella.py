"""Cisco Umbrella logs (and Cisco Secure Access, which shares the layout), as Cisco
exports them to S3.

Objects are ``<prefix>/<folder>/YYYY-MM-DD/YYYY-MM-DD-HH-MM-xxxx.csv.gz``; the folder
says the kind of log, and the kind its Devo table::

    dnslogs -> sig.cisco.umbrella.dns        iplogs -> sig.cisco.umbrella.ip
    proxylogs -> sig.cisco.umbrella.proxy    cloudfirewalllogs, firewalllogs -> .firewall
    intrusionlogs -> .intrusion              dlplogs -> .dlp       auditlogs -> .audit

Each line is one record of comma-separated, double-quoted fields (commas inside
quotes are data, ``""`` is a quote); an admin audit record may span lines, its
"before" and "after" fields holding newlines. The number of columns depends on
the schema version the export was set to; every version Cisco has published for
a kind is accepted (``KINDS``). The message is the original record; a record
spanning lines becomes one line, its line breaks written ``\n`` (Devo's syslog
takes a newline as the end of an event). A record that is not valid CSV is
rejected with NOT_CSV, one whose column count no version of its kind has with
SRC-004. The optional header row Cisco can add to an export is not an event.

    >>> batch = RecordBatch("s3://b/k", "k", 1, [b'"2024-01-16 17:48:41","me","10.0.0.1",'
    ...                     b'"1","8.8.8.8","53","Malware,Phishing"', b'"oops'])
    >>> parsed = parse(KINDS["ip"], batch, {})
    >>> len(parsed.events["sig.cisco.umbrella.ip"]), [r.code for r in parsed.rejected]
    (1, ['SRC-009'])
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from operator import itemgetter
from typing import Any

from awscollector.transforms.formats import CSV, Format, Parsed, RecordBatch

NOT_CSV = "SRC-009"
BAD_COLUMNS = "SRC-004"
TYPE = "umbrella"
MAX_RECORD_LINES = 10_000  # lines one record may span (audit logs); past that, not CSV


@dataclass(frozen=True)
class Kind:
    """One kind of Umbrella log: its S3 folders and the column counts of its versions."""

    name: str
    folders: tuple[str, ...]
    columns: frozenset[int]

    @property
    def table(self) -> str:
        return f"sig.cisco.umbrella.{self.name}"


# Column counts of the field lists Cisco has published for each kind, oldest first
# (Umbrella log schema versions up to v13, Secure Access up to v12). A version that
# only adds columns at the end adds a count here.
KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("dns", ("dnslogs",), frozenset({10, 13, 14, 15, 16})),
    Kind("ip", ("iplogs",), frozenset({7})),
    Kind("proxy", ("proxylogs",), frozenset({22, 23, 26, 32, 35, 37, 49})),
    Kind("firewall", ("cloudfirewalllogs", "firewalllogs", "cdfwlogs"),
         frozenset({14, 16, 34, 36})),
    Kind("intrusion", ("intrusionlogs",), frozenset({17})),
    Kind("dlp", ("dlplogs",), frozenset({16, 17, 25})),
    Kind("audit", ("auditlogs",), frozenset({9})),
)}

_SEP = b'","'
_QUOTE = {ord('"')}
_FIRST, _LAST = itemgetter(0), itemgetter(-1)
# A field: quoted (spaces around it allowed, as in Cisco's own examples) or bare.
_FIELD = rb'(?:[ \t]*"(?:[^"]|"")*+"[ \t]*|[^",]*+)'
_RECORD = re.compile(_FIELD + rb"(?:," + _FIELD + rb")*+")


def parse(kind: Kind, batch: RecordBatch, options: Mapping[str, Any]) -> Parsed:
    """A batch of one kind's CSV records: each valid record with a column count of one
    of the kind's versions is an event, the original text its message."""
    lines = batch.records
    if batch.index == 0 and lines and _is_header_row(lines[0]):
        lines = lines[1:]
    parsed = Parsed()
    if not lines:
        return parsed
    allowed = kind.columns
    seps = list(map(bytes.count, lines, repeat(_SEP)))
    if _plain_quoted(lines, sum(seps)):
        # Every line is a valid record of len(seps)+1 columns: only counts are left.
        if all(n + 1 in allowed for n in set(seps)):
            parsed.extend(kind.table, lines)
            return parsed
        good = [line for line, n in zip(lines, seps, strict=True) if n + 1 in allowed]
        parsed.extend(kind.table, good)
        reason = _columns_reason(kind)
        for line, n in zip(lines, seps, strict=True):
            if n + 1 not in allowed:
                parsed.reject(BAD_COLUMNS, reason, line)
        return parsed
    _record_by_record(kind, lines, parsed)
    return parsed


def _plain_quoted(lines: list[bytes], seps: int) -> bool:
    """Whether every line is ``"a","b",...``: quoted fields with no quote inside (what
    Cisco writes but for a rare ``""``), checked with C-level calls only.

    Each line starts and ends with a quote (two distinct ones), none starts or ends
    with ``","``; so its ``","`` separators and its two ends are 2*k+2 distinct
    quotes, k its separators, and a line has at least that many. The batch has
    exactly as many in total: every line has exactly that many, no other quote,
    hence k+1 quoted fields without quotes inside.
    """
    if min(map(len, lines)) < 2:
        return False
    return (
        set(map(_FIRST, lines)) == _QUOTE and set(map(_LAST, lines)) == _QUOTE
        and not any(map(bytes.startswith, lines, repeat(_SEP)))
        and not any(map(bytes.endswith, lines, repeat(_SEP)))
        and b"".join(lines).count(b'"') == 2 * seps + 2 * len(lines)
    )


def _record_by_record(kind: Kind, lines: list[bytes], parsed: Parsed) -> None:
    """The general case: quotes inside fields, bare fields, records over several
    lines, or lines that are not CSV at all."""
    good: list[bytes] = []
    reason = _columns_reason(kind)
    i, n = 0, len(lines)
    while i < n:
        end = i + 1
        record = lines[i]
        if not record:  # an empty line between records (the framing keeps them)
            i = end
            continue
        quotes = record.count(b'"')
        if quotes & 1:  # a quoted field left open: the record goes on on the next lines
            while end < n and quotes & 1 and end - i < MAX_RECORD_LINES:
                quotes += lines[end].count(b'"')
                end += 1
            if quotes & 1:
                end = i + 1
            else:
                record = b"\\n".join(lines[i:end])  # one line: Devo ends events at "\n"
        columns = count_columns(record)
        if columns is None:
            # Not CSV: reject this line alone; the lines a bad quote pulled in get
            # their own chance.
            parsed.reject(NOT_CSV, "records that are not valid CSV (an unbalanced quote, "
                                   "or text after a closing quote)", lines[i])
            i += 1
            continue
        if columns in kind.columns:
            good.append(record)
        else:
            parsed.reject(BAD_COLUMNS, reason, record)
        i = end
    parsed.extend(kind.table, good)


def count_columns(record: bytes) -> int | None:
    """The number of columns of a CSV record (quoted or bare fields), or None if it is
    not valid CSV."""
    seps = record.count(_SEP)
    if (record.count(b'"') == 2 * seps + 2 and record[:1] == b'"' and record[-1:] == b'"'
            and len(record) > 1 and not record.startswith(_SEP) and not record.endswith(_SEP)):
        return seps + 1  # quoted fields, no quote inside (as _plain_quoted, one line)
    if b'"' not in record:
        return record.count(b",") + 1
    if _RECORD.fullmatch(record) is None:
        return None
    # In valid CSV a comma separates fields iff an even number of quotes precede it.
    return b"".join(record.split(b'"')[::2]).count(b",") + 1


def _is_header_row(line: bytes) -> bool:
    # Records start with a timestamp or a numeric id (or an empty id); the optional
    # header row with a column name, quoted or not.
    return line.lstrip(b'" ')[:1].isalpha()


def _columns_reason(kind: Kind) -> str:
    known = ", ".join(map(str, sorted(kind.columns)))
    return f"records whose column count no {kind.name} log version has (known: {known})"


def _format(kind: Kind) -> Format:
    folders = "|".join(kind.folders)
    return Format(
        name=f"umbrella_{kind.name}", type=TYPE, table=kind.table,
        parse=partial(parse, kind), framing=CSV,
        keys=(rf"(^|/)({folders})/\d{{4}}-\d{{2}}-\d{{2}}/[^/]+$",),
    )


FORMATS: tuple[Format, ...] = tuple(_format(kind) for kind in KINDS.values())
