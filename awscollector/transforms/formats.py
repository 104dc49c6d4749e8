"""What a log format is, and the registry that picks one for each S3 object.

A format is declared once, in one module of ``transforms/``, as a ``Format``:
its name, the config ``type`` it belongs to, how its objects are recognized (key
patterns, then a sniff of the first bytes where the key says nothing), its
framing (how an object is cut into records), its parser and its Devo table. The
S3 reader frames any object by its format, and one generic step parses any
batch of records with the format's parser; neither knows a format itself.

A parser is a pure function from a ``RecordBatch`` to ``Parsed``: messages per
Devo table, and the records it could not parse with a code and a reason::

    def parse(batch: RecordBatch, options: Mapping[str, Any]) -> Parsed:
        parsed = Parsed()
        for line in batch.records:
            if line.count(b",") == 2:
                parsed.add("my.app.table", line)
            else:
                parsed.reject("SRC-004", "not three fields", line)
        return parsed

    MY_FORMAT = Format(name="my_app", type="my_app", table="my.app.table",
                       keys=(r"^my-app/",), framing=LINES, parse=parse)

Adding a format is that module plus one line in ``transforms/registry.py``
(or ``registry.register(...)`` for a format of your own).

EventBridge events read from SQS (pipelines/sqs_events.py) are formats too, of
framing ``EVENTS``: one decoded event per message, recognized by the format's
``recognize(event)`` (``Registry.classify_event``) instead of a key, and parsed
by the same kind of parser.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from awscollector.errors import CollectorError

# Framings: how an object is cut into records (transforms/framing.py).
LINES = "lines"  # one record per line (bytes, without the newline)
JSON_RECORDS = "json_records"  # a JSON document whose `records_field` array holds the records
JSON_LINES = "json_lines"  # one JSON document per line (dicts)
CSV = "csv"  # lines of CSV (bytes); the parser splits them, quotes and all
PARQUET = "parquet"  # Parquet rows as Arrow record batches, row group by row group
# JSON documents one after another, blank or not between them (Firehose objects): one
# record per document (decoded)
JSON_DOCUMENTS = "json_documents"
FRAMINGS = (LINES, JSON_RECORDS, JSON_LINES, CSV, PARQUET, JSON_DOCUMENTS)
# Not an S3 framing: one decoded EventBridge event (a dict) per SQS message, read
# by pipelines/sqs_events.py; its formats say which events they take (`recognize`).
EVENTS = "events"

# Header lines of LINES and CSV framings, handed to every batch of the object.
FIRST_LINE = "first_line"  # the object's first line names its fields (VPC Flow Logs)
COMMENT_LINES = "comment_lines"  # leading lines that start with "#" (CloudFront, W3C)


@dataclass(frozen=True)
class RecordBatch:
    """Records of one object, in order; ``index`` counts the object's batches."""

    source: str  # "s3://bucket/key", for messages
    key: str
    index: int
    records: Any  # a list of bytes (LINES, CSV) or of dicts (JSON_RECORDS, JSON_LINES,
    # JSON_DOCUMENTS),
    # or a pyarrow.RecordBatch (PARQUET)
    header: tuple[bytes, ...] = ()  # the object's header lines (LINES, CSV)


@dataclass(frozen=True)
class Rejected:
    """A record a parser could not turn into a message."""

    code: str
    reason: str
    record: Any


@dataclass
class Parsed:
    """A parser's result: messages per Devo table, what it rejected, and what it skipped
    on purpose (records that are no events, e.g. CloudWatch Logs control messages:
    counted and logged, not dead-lettered)."""

    events: dict[str, list[bytes]] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> records

    def add(self, table: str, message: bytes) -> None:
        found = self.events.get(table)
        if found is None:
            found = self.events[table] = []
        found.append(message)

    def extend(self, table: str, messages: list[bytes]) -> None:
        if messages:
            self.events.setdefault(table, []).extend(messages)

    def reject(self, code: str, reason: str, record: Any) -> None:
        self.rejected.append(Rejected(code, reason, record))

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n


Parser = Callable[[RecordBatch, Mapping[str, Any]], Parsed]


@dataclass(frozen=True)
class Format:
    """One log format. See the module docstring.

    name: unique, e.g. "vpc_flow_logs_parquet".
    type: the config ``types`` entry it belongs to, e.g. "vpc_flow_logs".
    table: its Devo table (the parser may derive others from the records).
    parse: ``parse(batch, options) -> Parsed``; raising CollectorError rejects the
      whole object (one dead letter, nothing of it delivered).
    framing: one of FRAMINGS.
    keys: regular expressions; an object whose key matches one is of this format.
    sniff: ``sniff(head) -> bool`` on the object's first bytes (decompressed, or raw
      for Parquet): where no key pattern matched.
    skip: ``skip(key) -> reason or None``: objects of this format that are not
      collected on purpose (counted and logged, not dead-lettered).
    header: FIRST_LINE, COMMENT_LINES or None (LINES and CSV framings).
    records_field: the array of records of a JSON_RECORDS document.
    json_messages: its messages are JSON objects (``flatten: true`` applies).
    select: ``select(key) -> reason or None``: a format that decides by a filter
      which objects of its type it takes (custom S3 sources: include/exclude
      patterns); None takes the object, a reason skips it. Its type should have no
      other format. On a queue shared with other services, their formats' key
      patterns are tried first.
    recognize: ``recognize(event) -> bool`` (EVENTS framing): whether a decoded
      EventBridge event is of this format, by its ``source`` and ``detail-type``.
    """

    name: str
    type: str
    table: str
    parse: Parser
    framing: str = LINES
    keys: tuple[str, ...] = ()
    sniff: Callable[[bytes], bool] | None = None
    skip: Callable[[str], str | None] | None = None
    header: str | None = None
    records_field: str = "Records"
    json_messages: bool = False
    select: Callable[[str], str | None] | None = None
    recognize: Callable[[Mapping[str, Any]], bool] | None = None

    def __post_init__(self) -> None:
        if self.framing not in FRAMINGS and self.framing != EVENTS:
            raise ValueError(f"format {self.name}: unknown framing {self.framing!r}")
        if (self.framing == EVENTS) != (self.recognize is not None):
            raise ValueError(f"format {self.name}: `recognize` goes with framing {EVENTS!r}")
        object.__setattr__(self, "_patterns", tuple(re.compile(k) for k in self.keys))

    def matches_key(self, key: str) -> bool:
        return any(p.search(key) for p in self._patterns)  # type: ignore[attr-defined]


SKIP = "skip"  # classify's answer for objects collected on purpose by no one
SNIFF = "sniff"  # classify's answer when only the object's first bytes can tell


@dataclass(frozen=True)
class Classified:
    """What an object is: a format name, SKIP (with why) or SNIFF."""

    kind: str
    reason: str = ""


class Registry:
    """The formats a run knows, in the order they are tried."""

    def __init__(self, formats: Iterable[Format] = (),
                 uncollected: Mapping[str, str] | None = None) -> None:
        self._formats: dict[str, Format] = {}
        for fmt in formats:
            self.register(fmt)
        # what else a log-archive bucket holds, no format collects: kind -> key pattern
        self._uncollected = {kind: re.compile(p) for kind, p in (uncollected or {}).items()}

    def register(self, fmt: Format) -> Format:
        if fmt.name in self._formats:
            raise ValueError(f"a format named {fmt.name!r} is registered already")
        self._formats[fmt.name] = fmt
        return fmt

    def __getitem__(self, name: str) -> Format:
        return self._formats[name]

    def __iter__(self):
        return iter(self._formats.values())

    def types(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.type for f in self._formats.values()))

    def of_types(self, types: Iterable[str]) -> tuple[Format, ...]:
        wanted = set(types)
        return tuple(f for f in self._formats.values() if f.type in wanted)

    def classify(self, key: str, types: Iterable[str]) -> Classified:
        """Which of the formats of ``types`` an object is, from its key.

        The first of our formats whose key pattern matches decides (its ``skip`` may
        still skip the object: CloudTrail digest files). Else the first of our
        formats with ``select`` (custom S3 sources) that takes the key. Else, if a
        format of another type matches, SKIP: an organization's log-archive bucket
        mixes many kinds, and a service collects only its own (also SKIP for the
        ``uncollected`` kinds, like AWS Config files). No pattern at all:
        SNIFF if one of ours can sniff; else a format of ours that declares no key
        patterns takes any key; else SKIP if a ``select`` refused it; else SRC-006.
        """
        ours = self.of_types(types)
        patterned = [f for f in ours if f.select is None]
        for fmt in patterned:
            if fmt.matches_key(key):
                return self._taken(fmt, key)
        refused = ""
        for fmt in ours:
            if fmt.select is not None:
                reason = fmt.select(key)
                if reason is None:
                    return Classified(fmt.name)
                refused = refused or reason
        names = {f.name for f in ours}
        for fmt in self._formats.values():
            if fmt.name not in names and fmt.matches_key(key):
                return Classified(SKIP, refused or f"a {fmt.type} object, not a type this "
                                                   f"service collects")
        for kind, pattern in self._uncollected.items():
            if pattern.search(key):
                return Classified(SKIP, refused or f"{kind}: not collected by this version")
        if any(f.sniff for f in patterned):
            return Classified(SNIFF)
        for fmt in patterned:
            if not fmt.keys:
                return self._taken(fmt, key)
        if refused:
            return Classified(SKIP, refused)
        raise CollectorError("SRC-006", f"cannot tell the log type of key {key!r} (expected "
                                        f"one of {', '.join(sorted(set(types)))})")

    @staticmethod
    def _taken(fmt: Format, key: str) -> Classified:
        reason = fmt.skip(key) if fmt.skip else None
        return Classified(SKIP, reason) if reason else Classified(fmt.name)

    def classify_event(self, event: Mapping[str, Any], types: Iterable[str]) -> Format | None:
        """The first format of ``types`` (EVENTS framing) that recognizes a decoded
        EventBridge event; None if none does. Registration order decides, so specific
        formats (Security Hub findings) go before catch-alls (any AWS service event)."""
        for fmt in self.of_types(types):
            if fmt.recognize is not None and fmt.recognize(event):
                return fmt
        return None

    def sniff(self, head: bytes, types: Iterable[str], raw: bytes = b"") -> Format | None:
        """The first format of ``types`` whose sniff recognizes the object's first bytes
        (``head`` decompressed; ``raw`` as stored, for formats like Parquet)."""
        for fmt in self.of_types(types):
            if fmt.sniff is not None and fmt.sniff(raw if fmt.framing == PARQUET else head):
                return fmt
        return None
