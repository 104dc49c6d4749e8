"""Cutting an object's decompressed bytes into batches of records, by its format's framing.

Every framing streams: memory holds one batch (about ``batch_bytes``) and, for
JSON documents, one record more, whatever the object's size.

    >>> batches = frame_lines([b"a b\\n1 2\\n3 4\\n"], header=FIRST_LINE)
    >>> [(h, r) for h, r in batches]
    [((b'a b',), [b'1 2', b'3 4'])]
    >>> list(json_records([b'{"Records": [{"a": 1}, ', b'{"a": 2}]}'], "Records"))
    [[{'a': 1}, {'a': 2}]]

A document that is not what its framing expects raises ``CollectorError`` with
SRC-007, after the records read before the fault were yielded.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator
from typing import IO

from awscollector.errors import CollectorError
from awscollector.transforms.decompress import iter_line_batches
from awscollector.transforms.formats import COMMENT_LINES, FIRST_LINE

_WHITESPACE = " \t\n\r"
MAX_RECORD = 32 << 20  # characters: a record not whole by then is malformed (or absurd)


def frame_lines(chunks: Iterable[bytes], header: str | None = None,
                batch_bytes: int = 1 << 20, quoted: bool = False
                ) -> Iterator[tuple[tuple[bytes, ...], list[bytes]]]:
    """(header lines, record lines) per batch; the header is read from the object's start
    (it may span batches) and handed with every batch after it. ``quoted`` (CSV): no
    batch ends inside a quoted field, so a record spanning lines stays in one batch, and
    empty lines are kept (the parser skips those between records)."""
    head: list[bytes] = []
    reading_header = header is not None
    batches = iter_line_batches(chunks, batch_bytes, keep_empty=quoted)
    if quoted:
        batches = whole_csv_records(batches, max(batch_bytes, MAX_CSV_CARRY))
    for lines in batches:
        if reading_header:
            if header == FIRST_LINE:
                n = 1
            elif header == COMMENT_LINES:
                n = 0
                while n < len(lines) and lines[n].startswith(b"#"):
                    n += 1
            else:
                raise ValueError(f"unknown header kind {header!r}")
            head += lines[:n]
            lines = lines[n:]
            reading_header = not lines and header == COMMENT_LINES
        if lines:
            yield tuple(head), lines


MAX_CSV_CARRY = 8 << 20  # bytes of an open CSV record moved to the next batch, at most


def whole_csv_records(batches: Iterable[list[bytes]], max_carry: int = MAX_CSV_CARRY
                      ) -> Iterator[list[bytes]]:
    """Line batches re-cut so that none ends inside a quoted CSV field: the lines of a
    record whose quote is still open at a batch's end go to the next batch, unless
    they are over ``max_carry`` bytes (a stray quote, not a record: the parser rejects
    those lines).

        >>> list(whole_csv_records([[b'"1"', b'"2","x'], [b'y"', b'"3"']]))
        [[b'"1"'], [b'"2","x', b'y"', b'"3"']]
    """
    carry: list[bytes] = []
    for lines in batches:
        if carry:
            lines, carry = carry + lines, []
        if b"".join(lines).count(b'"') & 1:  # one C-level scan: odd only if a quote is open
            start = _open_record(lines)
            if sum(map(len, lines[start:])) <= max_carry:
                lines, carry = lines[:start], lines[start:]
        if lines:
            yield lines
    if carry:
        yield carry


def _open_record(lines: list[bytes]) -> int:
    """The index of the line where the record left open at the end begins."""
    start = 0
    open_quote = False
    for i, line in enumerate(lines):
        if not open_quote:
            start = i
        if line.count(b'"') & 1:
            open_quote = not open_quote
    return start


class _Text:
    """Decoded text of a chunk stream, read on demand, dropped once consumed."""

    def __init__(self, chunks: Iterable[bytes], name: str) -> None:
        self._chunks = iter(chunks)
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.name = name
        self.consumed = 0  # characters before buf, for messages
        self._fault: CollectorError | None = None  # the stream's, once the text before it is read

    def more(self) -> bool:
        """Append the next chunk's text; False at the end of the stream."""
        if self._fault is not None:
            raise self._fault
        if self.eof:
            return False
        if self.pos > 1 << 20:  # drop what was consumed, now and then (not per record)
            self.consumed += self.pos
            self.buf, self.pos = self.buf[self.pos:], 0
        added = []
        size = 0
        try:
            for chunk in self._chunks:  # at least 64 KiB at a time: each retry decodes again
                try:
                    text = self._decoder.decode(chunk)
                except UnicodeDecodeError as e:
                    raise self.fault(f"not UTF-8 text: {e.reason}") from None
                added.append(text)
                size += len(text)
                if size >= 1 << 16:
                    self.buf += "".join(added)
                    return True
        except CollectorError as e:
            if not size:
                raise
            # A truncated gzip member, say: the records in the text before it are good.
            self._fault = e
            self.buf += "".join(added)
            return True
        self.eof = True
        try:
            added.append(self._decoder.decode(b"", final=True))
        except UnicodeDecodeError as e:
            raise self.fault(f"not UTF-8 text: {e.reason}") from None
        self.buf += "".join(added)
        return size > 0

    def skip_ws(self) -> str:
        """The next non-blank character (not consumed), or "" at the end."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _WHITESPACE:
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return ""

    def expect(self, chars: str, what: str) -> str:
        found = self.skip_ws()
        if not found or found not in chars:
            shown = repr(found) if found else "the end"
            raise self.fault(f"expected {what}, found {shown}")
        self.pos += 1
        return found

    def value(self, decoder: json.JSONDecoder):
        """The next JSON value, reading more text until it is whole."""
        self.skip_ws()
        while True:
            try:
                value, end = decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                # Most likely cut at the end of what was read so far: read on, but
                # not without bound, or a malformed record would pull in the rest.
                if len(self.buf) - self.pos < MAX_RECORD and self.more():
                    continue
                raise self.fault(f"malformed JSON: {e.msg}") from None
            if end == len(self.buf) and not self.eof and isinstance(value, int | float):
                if self.more():
                    continue  # a number cut in two would decode as a shorter one
            self.pos = end
            return value

    def fault(self, message: str) -> CollectorError:
        return CollectorError("SRC-007", f"{self.name}: {message} at character "
                                         f"{self.consumed + self.pos}")


def json_records(chunks: Iterable[bytes], records_field: str, name: str = "",
                 batch_bytes: int = 1 << 20) -> Iterator[list]:
    """The elements of the array ``records_field`` of a JSON object, in batches, without
    holding the whole document: each element is decoded as soon as it is whole."""
    text = _Text(chunks, name)
    decoder = json.JSONDecoder()
    if not text.skip_ws():
        return  # an empty object: no records
    text.expect("{", "a JSON object")
    found = False
    if text.skip_ws() == "}":
        text.pos += 1
    else:
        while True:
            key = text.value(decoder)
            if not isinstance(key, str):
                raise text.fault("expected a key")
            text.expect(":", "':'")
            if key == records_field:
                found = True
                yield from _array(text, decoder, batch_bytes)
            else:
                text.value(decoder)  # another key's value: read past it
            if text.expect(",}", "',' or '}'") == "}":
                break
    if not found:
        raise text.fault(f"no {records_field!r} array in the document")


def _array(text: _Text, decoder: json.JSONDecoder, batch_bytes: int) -> Iterator[list]:
    text.expect("[", "an array")
    batch: list = []
    start = text.consumed + text.pos
    if text.skip_ws() == "]":
        text.pos += 1
        return
    try:
        while True:
            batch.append(text.value(decoder))
            if text.consumed + text.pos - start >= batch_bytes:
                yield batch
                batch, start = [], text.consumed + text.pos
            if text.expect(",]", "',' or ']'") == "]":
                break
    except CollectorError:
        if batch:
            yield batch  # the records before the fault are good
        raise
    if batch:
        yield batch


def json_documents(chunks: Iterable[bytes], name: str = "",
                   batch_bytes: int = 1 << 20) -> Iterator[list]:
    """JSON documents written one after another (whitespace or nothing between them), one
    record per document, in batches: Firehose concatenates the records it delivers.

        >>> list(json_documents([b'{"a": 1}{"a"', b': 2}\\n[3]']))
        [[{'a': 1}, {'a': 2}, [3]]]

    A document cut or malformed raises SRC-007 after the documents before it."""
    text = _Text(chunks, name)
    decoder = json.JSONDecoder()
    batch: list = []
    start = 0
    try:
        while text.skip_ws():
            batch.append(text.value(decoder))
            if text.consumed + text.pos - start >= batch_bytes:
                yield batch
                batch, start = [], text.consumed + text.pos
    except CollectorError:
        if batch:
            yield batch  # the documents before the fault are good
        raise
    if batch:
        yield batch


def parquet_rows(file: IO[bytes], name: str = "",
                 batch_rows: int = 10_000) -> Iterator:
    """The rows of a Parquet file, as Arrow record batches (``pyarrow.RecordBatch``) of
    up to ``batch_rows``, for parsers to convert column-wise (``batch.to_pylist()``
    gives dicts, at a few microseconds a row). Column chunks are read page by page
    through a small buffer, so memory stays bounded however big a row group is.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(file, buffer_size=1 << 20, pre_buffer=False)
        yield from parquet.iter_batches(batch_size=batch_rows, use_threads=False)
    except (pa.ArrowException, OSError) as e:
        raise CollectorError("SRC-007", f"{name}: not a readable Parquet file: "
                                        f"{' '.join(str(e).split())[:300]}") from None
