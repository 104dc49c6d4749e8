"""Custom S3 sources: log formats a user declares in the config (service ``custom-s3``).

Each source becomes a ``Format`` at run time (``source_format``): the source's key
``include``/``exclude`` patterns select its objects, its ``framing`` cuts them into
records, and the parser here makes one message per record and picks its Devo table
from the source's ``table`` template.

A source may instead name a built-in S3 format (``format: alb_access_logs``, or a type
that has one format, like ``waf_logs``): for logs AWS wrote, in a bucket whose keys
are not AWS's layout. Its objects are then framed and parsed as that format's, with
its tables and messages (and the objects it skips on purpose, like CloudTrail digest
files, still skipped); ``include``/``exclude`` still select them.

Messages: ``lines`` and ``csv``: the original line (a CSV record whose quoted field
goes on over several lines: one line, its line breaks written ``\\n``).
``json_records``, ``json_lines`` and ``parquet``: the record as compact JSON (with
``flatten``: as one flat object with dotted keys). Parquet values JSON has no type
for are written as strings: timestamps
and dates in ISO 8601, decimals as their digits, binary as UTF-8 text (base64 if it is
not text). Non-finite numbers (NaN) become null.

Table templates: a Devo table name in which ``{...}`` fields are filled in::

    my.app.{record.kind}        the record's field "kind"
    my.app.{record.user.type}   a dotted path into the record (JSON objects, Parquet rows)
    my.app.{key.1}              part 1 of the object's key split at "/" (0 is the first,
                                -1 the last: the file name)

With framing ``csv``, the name after ``record.`` is a column of the header line, taken
whole (dots and all). Framing ``lines`` has no fields: only ``{key.N}`` works there.
A filled-in value must be 1 to 64 letters, digits, ``_`` or ``-`` (numbers and
booleans as JSON writes them). A record whose value is missing, null, empty or
anything else goes to the source's ``default_table`` if it has one; else it is
dead-lettered with SRC-010, and the other records are delivered. When a key field
cannot be filled, that is so for every record of the object: the object is
dead-lettered whole (SRC-010), or goes whole to ``default_table``.

    >>> t = TableTemplate("my.app.{record.kind}")
    >>> t.bind("logs/a.json").table({"kind": "login"})
    'my.app.login'
    >>> t.bind("logs/a.json").table({"kind": "no spaces"}) is None
    True
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from awscollector.errors import CollectorError
from awscollector.transforms.flatten import flatten, flatten_message
from awscollector.transforms.formats import (
    CSV,
    EVENTS,
    FIRST_LINE,
    FRAMINGS,
    JSON_LINES,
    JSON_RECORDS,
    LINES,
    PARQUET,
    Format,
    Parsed,
    RecordBatch,
)
from awscollector.transforms.registry import BUILTIN

SERVICE = "custom-s3"
MISSING = "SRC-010"  # a record (or object) whose table template cannot be filled in
NOT_CSV = "SRC-009"  # a line that is not CSV (an open quote, text after a closing one)
RECORD_FRAMINGS = (JSON_RECORDS, JSON_LINES, CSV, PARQUET)  # framings with record fields
JSON_FRAMINGS = (JSON_RECORDS, JSON_LINES, PARQUET)  # messages are JSON; flatten applies

_LITERAL = re.compile(r"[A-Za-z0-9_.-]+")
_FIELD = re.compile(r"\{([^{}]*)\}")
_VALUE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_KEY_PART = re.compile(r"key\.(-?\d+)")
_MAX_CACHED = 4096  # distinct values per template whose table is remembered


def format_name(source: str) -> str:
    """The format (and config type) of the custom source named ``source``."""
    return f"{SERVICE}.{source}"


# -- table templates


@dataclass(frozen=True)
class _Field:
    kind: str  # "key" or "record"
    key: int = 0  # key: the part's index
    path: tuple[str, ...] = ()  # record: the dotted path, split
    name: str = ""  # record: the path as written (a CSV column)

    def __str__(self) -> str:
        return "{" + (f"key.{self.key}" if self.kind == "key" else f"record.{self.name}") + "}"


class TableTemplate:
    """A ``table`` template, parsed. ``ValueError`` says what is wrong with one."""

    def __init__(self, text: str) -> None:
        self.text = text
        parts: list[str | _Field] = []
        at = 0
        for m in _FIELD.finditer(text):
            parts.append(text[at:m.start()])
            parts.append(_field(m.group(1)))
            at = m.end()
        parts.append(text[at:])
        for literal in parts[::2]:
            if "{" in literal or "}" in literal:
                raise ValueError(f"unbalanced braces in {text!r}")
            if literal and not _LITERAL.fullmatch(literal):
                bad = sorted(set(re.sub(r"[A-Za-z0-9_.-]", "", literal)))
                raise ValueError(f"{''.join(bad)!r} cannot be part of a Devo table name; use "
                                 f"letters, digits, '.', '_', '-' and {{...}} fields")
        shape = "".join(p if isinstance(p, str) else "x" for p in parts)
        if not shape or shape.startswith(".") or shape.endswith(".") or ".." in shape:
            raise ValueError(f"{text!r} has an empty level: a Devo table is names joined "
                             f"by single dots")
        self.literals: tuple[str, ...] = tuple(parts[::2])  # type: ignore[arg-type]
        self.fields: tuple[_Field, ...] = tuple(parts[1::2])  # type: ignore[arg-type]
        self.record_fields = tuple(f for f in self.fields if f.kind == "record")
        self._unbound: _Bound | None = None  # no key fields: one for every object
        if len(self.record_fields) == len(self.fields):
            self._unbound = self.bind("")

    def bind(self, key: str) -> _Bound:
        """The template for the records of the object ``key``: key fields filled in."""
        if self._unbound is not None:
            return self._unbound
        parts = key.split("/")
        literals = [self.literals[0]]
        fields = []
        missing = None
        for field, after in zip(self.fields, self.literals[1:], strict=True):
            if field.kind == "record":
                fields.append(field)
                literals.append(after)
                continue
            value = parts[field.key] if -len(parts) <= field.key < len(parts) else None
            if value is None or not _VALUE.fullmatch(value):
                missing = missing or field
                value = ""
            literals[-1] += value + after
        return _Bound(tuple(literals), tuple(fields), missing)

    def __str__(self) -> str:
        return self.text


def _field(spec: str) -> _Field:
    m = _KEY_PART.fullmatch(spec)
    if m:
        return _Field("key", key=int(m.group(1)))
    if spec.startswith("record.") and len(spec) > 7:
        name = spec[7:]
        path = tuple(name.split("."))
        if "" in path:
            raise ValueError(f"{{{spec}}}: empty name in the dotted path")
        return _Field("record", path=path, name=name)
    raise ValueError(f"unknown field {{{spec}}}; use {{record.<field>}} or {{key.<N>}}")


class _Bound:
    """A template with its key fields filled in; ``table(record)`` fills the rest."""

    def __init__(self, literals: tuple[str, ...], fields: tuple[_Field, ...],
                 missing: _Field | None) -> None:
        self.literals = literals
        self.fields = fields
        self.missing = missing  # a key field that could not be filled in: no table at all
        self.static = literals[0] if not fields and missing is None else None
        self._cache: dict[str, str] = {}

    def table(self, record: Any) -> str | None:
        """The table of a JSON or Parquet record; None where a field has no usable value."""
        if self.static is not None or self.missing is not None:
            return self.static
        if len(self.fields) == 1:  # the usual case: one lookup, one cached string
            value = _lookup(record, self.fields[0].path)
            if type(value) is str:
                found = self._cache.get(value)
                if found is not None:
                    return found
            part = _part(value)
            if part is None:
                return None
            table = self.literals[0] + part + self.literals[1]
            if type(value) is str and len(self._cache) < _MAX_CACHED:
                self._cache[value] = table
            return table
        return self._join([_lookup(record, f.path) for f in self.fields])

    def table_of_row(self, row: list[str], columns: tuple[int, ...]) -> str | None:
        """The table of a CSV row; ``columns``: the row index of each field."""
        if self.static is not None or self.missing is not None:
            return self.static
        if len(columns) == 1:
            value = row[columns[0]]
            found = self._cache.get(value)
            if found is not None:
                return found
            if not _VALUE.fullmatch(value):
                return None
            table = self.literals[0] + value + self.literals[1]
            if len(self._cache) < _MAX_CACHED:
                self._cache[value] = table
            return table
        return self._join([row[c] for c in columns])

    def _join(self, values: list) -> str | None:
        out = [self.literals[0]]
        for value, after in zip(values, self.literals[1:], strict=True):
            part = _part(value)
            if part is None:
                return None
            out.append(part)
            out.append(after)
        return "".join(out)


def _lookup(record: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        if type(record) is not dict:
            return None
        record = record.get(name)
    return record


def _part(value: Any) -> str | None:
    """A value as part of a table name, or None if it cannot be one."""
    if type(value) is str:
        text = value
    elif type(value) is bool:
        text = "true" if value else "false"
    elif type(value) is int:
        text = str(value)
    else:
        return None
    return text if _VALUE.fullmatch(text) else None


# -- messages


def _default(value: Any) -> Any:
    """JSON for the Parquet values json has no type for."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON")


_DECODER = json.JSONDecoder()
# JSON that is not compact has whitespace next to a structural character or at an end,
# outside strings (inside one it is only encoded again). One translate (S: structural,
# W: whitespace) and two searches take a quarter of what encoding a record takes.
_SHAPE = bytes(ord("S") if c in b"{}[]:," else ord("W") if c in b" \t\r\n" else ord("a")
               for c in range(256))


def _loose(line: bytes) -> bool:
    shape = line.translate(_SHAPE)
    return b"SW" in shape or b"WS" in shape or shape[:1] == b"W" or shape[-1:] == b"W"


# One encoder, made once: json.dumps with options builds a new one on every call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                            default=_default)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def compact_json(record: Any) -> bytes:
    """A record as compact JSON (NaN and infinities as null)."""
    try:
        return _ENCODER.encode(record).encode("utf-8")
    except ValueError:  # a non-finite float: rare, so only then walk the record
        return _ENCODER.encode(_finite(record)).encode("utf-8")


# -- the parser


class CustomParser:
    """``parse(batch, options)`` of a custom source: see the module docstring."""

    def __init__(self, framing: str, table: str, default_table: str | None = None,
                 flatten: bool = False) -> None:
        if framing not in FRAMINGS:
            raise ValueError(f"unknown framing {framing!r}")
        self.framing = framing
        self.template = TableTemplate(table)
        if self.template.record_fields and framing == LINES:
            raise ValueError("framing lines has no record fields")
        self.default_table = default_table
        self.flatten = flatten and framing in JSON_FRAMINGS

    def __call__(self, batch: RecordBatch, options: Mapping[str, Any]) -> Parsed:
        bound = self.template.bind(batch.key)
        if bound.missing is not None and self.default_table is None:
            raise CollectorError(MISSING, f"{batch.source}: no value for {bound.missing} of "
                                          f"table {self.template} in the key")
        parsed = Parsed()
        if self.framing == LINES:
            parsed.extend(bound.static or self.default_table, batch.records)
        elif self.framing == CSV:
            self._csv(batch, bound, parsed)
        elif self.framing == JSON_LINES:
            self._json_lines(batch.records, bound, parsed)
        else:
            self._objects(batch.records, bound, parsed)
        return parsed

    def _place(self, parsed: Parsed, table: str | None, message: bytes, record: Any) -> None:
        if table is None:
            table = self.default_table
            if table is None:
                parsed.reject(MISSING, f"no value for {self._fields()} of table "
                                       f"{self.template}", record)
                return
        parsed.add(table, message)

    def _fields(self) -> str:
        return ", ".join(str(f) for f in self.template.record_fields)

    def _objects(self, records: Any, bound: _Bound, parsed: Parsed) -> None:
        """JSON_RECORDS and PARQUET: records are decoded already (Parquet rows may come
        as an Arrow record batch)."""
        if not isinstance(records, list):
            records = records.to_pylist()
        static = bound.static or (self.default_table if bound.missing else None)
        for record in records:
            message = compact_json(flatten(record) if self.flatten and type(record) is dict
                                   else record)
            if static is not None:
                parsed.add(static, message)
            else:
                self._place(parsed, bound.table(record), message, record)

    def _json_lines(self, lines: list[bytes], bound: _Bound, parsed: Parsed) -> None:
        static = bound.static or (self.default_table if bound.missing else None)
        decode = _DECODER.decode
        loose = _loose
        for line in lines:
            try:
                record = decode(line.decode("utf-8"))
            except ValueError as e:  # UnicodeDecodeError is one too
                parsed.reject("SRC-007", f"a line that is not a JSON document ({e})", line)
                continue
            if self.flatten and type(record) is dict:
                message = compact_json(flatten(record))
            elif loose(line):
                message = compact_json(record)
            else:  # compact JSON already: the line itself, without encoding it again
                message = line
            if static is not None:
                parsed.add(static, message)
            else:
                self._place(parsed, bound.table(record), message, line)

    def _csv(self, batch: RecordBatch, bound: _Bound, parsed: Parsed) -> None:
        header = batch.header[0] if batch.header else b""
        columns = _columns(header, batch.source)
        indexes: tuple[int, ...] = ()
        static = bound.static or (self.default_table if bound.missing else None)
        if static is None:
            found = [columns.index(f.name) if f.name in columns else -1
                     for f in self.template.record_fields]
            if -1 in found:
                absent = self.template.record_fields[found.index(-1)]
                if self.default_table is None:
                    raise CollectorError(MISSING, f"{batch.source}: no column {absent.name!r} "
                                                  f"for {absent} of table {self.template} in "
                                                  f"its header")
                static = self.default_table
            indexes = tuple(found)
        width = len(columns)
        records, rows = csv_rows(batch.records, header, width, parsed)
        reason = f"a row whose number of fields is not the header's {width}"
        for record, row in zip(records, rows, strict=True):
            if len(row) != width:
                parsed.reject("SRC-004", reason, record)
            elif static is not None:
                parsed.add(static, record)
            else:
                self._place(parsed, bound.table_of_row(row, indexes), record, record)


_COLUMNS: dict[bytes, tuple[str, ...]] = {}


def _columns(header: bytes, source: str) -> tuple[str, ...]:
    found = _COLUMNS.get(header)
    if found is not None:
        return found
    try:
        text = header.decode("utf-8").removeprefix("\ufeff")
        columns = tuple(next(csv.reader((text,), strict=True)))
    except (UnicodeDecodeError, csv.Error, StopIteration):
        raise CollectorError("SRC-007", f"{source}: the first line is not a CSV header") \
            from None
    if len(_COLUMNS) < 256:
        _COLUMNS[header] = columns
    return columns


def csv_rows(lines: list[bytes], header: bytes, width: int, parsed: Parsed
             ) -> tuple[list[bytes], list[list[str]]]:
    """The CSV records of a batch's lines and their fields. A quoted field may go on over
    several lines (the record is then those lines joined by a written ``\\n``: Devo ends
    an event at a newline); empty lines and
    repeated headers (files concatenated) are no records. What is not UTF-8 (SRC-007)
    or not CSV (SRC-009) is rejected here."""
    if b"" in lines or header in lines:
        lines = [line for line in lines if line and line != header]
    joined = b"\n".join(lines)
    try:
        texts = joined.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        lines, texts = _utf8(lines, parsed)
    if b'"' not in joined:  # no quoting: a plain split is CSV's reading, and C-fast
        return lines, [t.split(",") for t in texts]
    spans = _spans(lines)
    if len(spans) == len(lines):  # every record on one line: one reader for them all
        try:
            rows = list(csv.reader(texts, strict=True))
            if len(rows) == len(texts):
                return lines, rows
        except csv.Error:
            pass
    records: list[bytes] = []
    rows = []
    for first, last in spans:
        row = _row("\n".join(texts[first:last + 1]))
        if row is not None and (first == last or len(row) == width):
            # One line: Devo ends an event at a newline, so a record's are written \n.
            records.append(lines[first] if first == last
                           else b"\\n".join(lines[first:last + 1]))
            rows.append(row)
            continue
        for n in range(first, last + 1):  # a stray quote, most likely: line by line
            row = _row(texts[n])
            if row is None:
                parsed.reject(NOT_CSV, "a line that is not CSV (a quote left open, or text "
                                       "after a closing quote)", lines[n])
            else:
                records.append(lines[n])
                rows.append(row)
    return records, rows


def _spans(lines: list[bytes]) -> list[tuple[int, int]]:
    """(first, last) line of each record: a line with an odd number of quotes opens a
    quoted field that the next such line closes (or the batch's end)."""
    spans = []
    first = None
    for n, line in enumerate(lines):
        odd = line.count(b'"') & 1
        if first is not None:
            if odd:
                spans.append((first, n))
                first = None
        elif odd:
            first = n
        else:
            spans.append((n, n))
    if first is not None:
        spans.append((first, len(lines) - 1))
    return spans


def _utf8(lines: list[bytes], parsed: Parsed) -> tuple[list[bytes], list[str]]:
    good, texts = [], []
    for line in lines:
        try:
            texts.append(line.decode("utf-8"))
        except UnicodeDecodeError as e:
            parsed.reject("SRC-007", f"a line that is not UTF-8 text ({e.reason})", line)
        else:
            good.append(line)
    return good, texts


def _row(text: str) -> list[str] | None:
    try:
        return next(csv.reader((text,), strict=True))
    except csv.Error:
        return None


# -- the format


class KeyFilter:
    """``select(key)`` of a custom source: None to collect the object, else why not."""

    def __init__(self, include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> None:
        self.include = tuple(re.compile(p) for p in include)
        self.exclude = tuple(re.compile(p) for p in exclude)

    def __call__(self, key: str) -> str | None:
        if self.include and not any(p.search(key) for p in self.include):
            return "its key matches no include pattern"
        for p in self.exclude:
            if p.search(key):
                return f"its key matches exclude pattern {p.pattern!r}"
        return None


def builtin_format(name: str) -> Format:
    """The built-in S3 format a source names: by its format name, or by its type if the
    type has one format. ``ValueError`` says why there is none."""
    formats = [f for f in BUILTIN if f.framing != EVENTS]  # S3 objects, not SQS events
    for fmt in formats:
        if fmt.name == name:
            return fmt
    of_type = [f.name for f in formats if f.type == name]
    if len(of_type) == 1:
        return next(f for f in formats if f.type == name)
    if of_type:
        raise ValueError(f"type {name} has {len(of_type)} formats: name one of them, "
                         f"{', '.join(of_type)}")
    raise ValueError(f"unknown format {name}; built-in S3 formats: "
                     f"{', '.join(f.name for f in formats)}")


class BuiltinParser:
    """``parse(batch, options)`` of a source that names a built-in format: the format's
    own parser, its messages flattened here when the source (or the service) says so."""

    def __init__(self, fmt: Format, flatten: bool = False) -> None:
        self.fmt = fmt
        self.flatten = flatten and fmt.json_messages

    def __call__(self, batch: RecordBatch, options: Mapping[str, Any]) -> Parsed:
        parsed = self.fmt.parse(batch, options)
        if self.flatten:
            parsed.events = {table: [flatten_message(m) for m in messages]
                             for table, messages in parsed.events.items()}
        return parsed


class BuiltinSelect:
    """``select(key)`` of such a source: its include/exclude patterns, then what the
    format skips on purpose (CloudTrail digests, AWS Config writability checks)."""

    def __init__(self, keys: KeyFilter, skip: Any = None) -> None:
        self.keys = keys
        self.skip = skip

    def __call__(self, key: str) -> str | None:
        return self.keys(key) or (self.skip(key) if self.skip is not None else None)


def source_format(source: Any, flatten_default: bool = False) -> Format:
    """The Format of one source of the custom-s3 service (its config model, or anything
    with the same attributes); ``flatten_default``: the service's ``flatten``."""
    flat = source.flatten if source.flatten is not None else flatten_default
    name = format_name(source.name)
    keys = KeyFilter(tuple(source.include), tuple(source.exclude))
    if getattr(source, "format", None):
        base = builtin_format(source.format)
        return Format(
            name=name, type=name, table=base.table, framing=base.framing,
            parse=BuiltinParser(base, bool(flat)), select=BuiltinSelect(keys, base.skip),
            header=base.header, records_field=base.records_field,
            json_messages=False)  # flattened by BuiltinParser, with the source's choice
    framing = source.framing
    return Format(
        name=name, type=name, table=source.table, framing=framing,
        parse=CustomParser(framing, source.table, source.default_table, bool(flat)),
        select=keys,
        header=FIRST_LINE if framing == CSV else None,
        records_field=source.records_field,
        # The parser flattens, from the decoded record: ParseBatches must not again.
        json_messages=False,
    )

