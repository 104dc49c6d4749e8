"""Streaming decompression and line batching for objects read from S3.

The codec is chosen by magic bytes, never by file extension: gzip (``1f 8b``,
multi-member as AWS writes it), zstd (``28 b5 2f fd``, one or more frames), or
anything else, passed through unchanged. Memory stays bounded whatever the
decompressed size: output comes out in pieces of at most ~8 MiB.

    >>> import gzip
    >>> raw = gzip.compress(b"a\\r\\nb\\n") + gzip.compress(b"c")
    >>> chunks = (raw[i:i + 3] for i in range(0, len(raw), 3))
    >>> list(iter_line_batches(decompressed_chunks(chunks, "s3://b/k.gz")))
    [[b'a', b'b', b'c']]

A truncated or corrupt stream raises ``CollectorError("SRC-001", ...)`` after
everything that decompressed fine has been yielded.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

import zstandard

from awscollector.errors import CollectorError

try:  # ISA-L's inflate: the same bytes as zlib's, about twice as fast; same interface
    from isal import isal_zlib as _inflate
except ImportError:  # not built for this platform: zlib, slower but the same output
    _inflate = zlib

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

# gzip: zlib's max_length caps each output piece exactly.
_GZIP_OUT = 256 * 1024
# zstd: the streaming object has no output cap, so it is fed small input slices.
# A zstd block can expand ~32768x (4 bytes -> 128 KiB), so 256 bytes of input
# give at most ~8 MiB; measured cost vs. unbounded feeding: ~0.4 ns/output byte.
_ZSTD_IN = 256

_BINARY_SAMPLE = 4096


def decompressed_chunks(chunks: Iterable[bytes], name: str = "") -> Iterator[bytes]:
    """Yield the decompressed content of an object given as raw chunks of any size."""
    it = iter(chunks)
    head = b""
    for chunk in it:  # enough bytes to sniff the magic, whatever the chunk sizes
        head += chunk
        if len(head) >= len(ZSTD_MAGIC):
            break
    if not head:
        return
    rest = _chain(head, it)
    if head.startswith(GZIP_MAGIC):
        yield from _gunzip(rest, name)
    elif head.startswith(ZSTD_MAGIC):
        yield from _unzstd(rest, name)
    else:
        for chunk in rest:
            if chunk:
                yield chunk


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _fault(name: str, codec: str, total: int) -> CollectorError:
    return CollectorError(
        "SRC-001", f"{name}: truncated or corrupt {codec} data after {total} decompressed bytes"
    )


def _gunzip(chunks: Iterable[bytes], name: str) -> Iterator[bytes]:
    total = 0
    d = None  # decompressor of the current member; None between members
    for chunk in chunks:
        data = chunk
        while True:
            if d is None:
                if data[:1] == b"\0":  # zero padding after a member, as gzip(1) allows
                    data = data.lstrip(b"\0")
                if not data:
                    break
                d = _inflate.decompressobj(wbits=31)
            try:
                out = d.decompress(data, _GZIP_OUT)
            except _inflate.error as exc:
                raise _fault(name, "gzip", total) from exc
            if out:
                total += len(out)
                yield out
            if d.eof:  # member done: what follows is the next member
                data = d.unused_data
                d = None
                continue
            data = d.unconsumed_tail
            # A full output piece may leave output pending inside zlib: call again.
            if not data and len(out) < _GZIP_OUT:
                break
    if d is not None:
        raise _fault(name, "gzip", total)


def _unzstd(chunks: Iterable[bytes], name: str) -> Iterator[bytes]:
    dctx = zstandard.ZstdDecompressor()
    total = 0
    d = None  # decompressor of the current frame; None between frames
    for chunk in chunks:
        view = memoryview(chunk)
        pos, end = 0, len(view)
        while pos < end:
            if d is None:
                d = dctx.decompressobj()
            piece = view[pos : pos + _ZSTD_IN]
            pos += len(piece)
            try:
                out = d.decompress(piece)
            except zstandard.ZstdError as exc:
                raise _fault(name, "zstd", total) from exc
            if out:
                total += len(out)
                yield out
            if d.eof:  # frame done: give back the bytes of the next frame
                pos -= len(d.unused_data)
                d = None
    if d is not None:
        raise _fault(name, "zstd", total)


def iter_line_batches(chunks: Iterable[bytes], max_bytes: int = 1 << 20,
                      keep_empty: bool = False) -> Iterator[list[bytes]]:
    """Yield lists of lines (without b"\\n" and a trailing b"\\r") of about max_bytes each.

    A batch is cut as soon as max_bytes of input are buffered; lines are never split,
    so a single line longer than max_bytes is held until its newline. Empty lines are
    dropped, unless ``keep_empty`` (CSV: a quoted field may hold an empty line); a last
    line without newline is yielded.
    """
    parts: list[bytes] = []
    size = 0
    has_nl = False
    for chunk in chunks:
        if not chunk:
            continue
        parts.append(chunk)
        size += len(chunk)
        if not has_nl and b"\n" in chunk:
            has_nl = True
        if size < max_bytes or not has_nl:  # no complete line yet: keep appending, no copies
            continue
        data = b"".join(parts)
        pos = 0
        while len(data) - pos >= max_bytes:
            cut = data.rfind(b"\n", pos, pos + max_bytes)
            if cut < 0:
                cut = data.find(b"\n", pos + max_bytes)
                if cut < 0:
                    break
            lines = _split_lines(data[pos : cut + 1], keep_empty)
            if lines:
                yield lines
            pos = cut + 1
        rest = data[pos:]
        parts = [rest] if rest else []
        size = len(rest)
        has_nl = b"\n" in rest
    if parts:
        lines = _split_lines(b"".join(parts), keep_empty)
        if lines and lines[-1].endswith(b"\r"):  # last line had no newline
            lines[-1] = lines[-1][:-1]
            if not lines[-1]:
                lines.pop()
        if lines:
            yield lines


def _split_lines(block: bytes, keep_empty: bool = False) -> list[bytes]:
    if b"\r" in block:
        block = block.replace(b"\r\n", b"\n")
    lines = block.split(b"\n")
    if not lines[-1]:
        lines.pop()
    # Looking for b"" in the list is one C-level pass, several times cheaper than
    # searching the block for b"\n\n" (newlines are frequent, so that search is slow).
    if not keep_empty and b"" in lines:
        return [line for line in lines if line]
    return lines


def looks_binary(sample: bytes) -> bool:
    """True if the first few KB hold a NUL byte or are not UTF-8 text.

    A multi-byte character cut at the end of the sample is not held against it.
    """
    head = sample[:_BINARY_SAMPLE]
    if b"\0" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # "unexpected end of data" is only raised for an incomplete final sequence.
        return exc.reason != "unexpected end of data"
    return False
