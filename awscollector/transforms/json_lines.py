"""Lines of JSON objects, as several AWS services write their logs to S3 (WAF, Network
Firewall, Route 53 Resolver): the part their parsers share.

The ``json_lines`` framing hands a parser the object's lines as bytes. ``decode_lines``
decodes each with the C decoder, keeps the JSON objects that have the fields their
format requires, and rejects the others: SRC-007 for a line that is not JSON (cut,
malformed, not UTF-8), SRC-008 for JSON that is not an object, SRC-020 for an object
without the format's fields. ``messages`` gives the compact JSON message of each kept
record: the line itself when it is compact already (AWS writes compact lines), so most
records are never encoded again.

    >>> parsed = Parsed()
    >>> lines = [b'{"a":1,"b":[2]}', b'{"a": 3}', b'[4]', b'{"b":5}', b'{"a":']
    >>> kept, records = decode_lines(lines, ("a",), "my log", parsed)
    >>> messages(kept, records)
    [b'{"a":1,"b":[2]}', b'{"a":3}']
    >>> [r.code for r in parsed.rejected]
    ['SRC-008', 'SRC-020', 'SRC-007']
"""

from __future__ import annotations

import json

from awscollector.transforms.formats import Parsed

NOT_JSON = "SRC-007"
NOT_AN_OBJECT = "SRC-008"
NOT_A_RECORD = "SRC-020"

_decode = json.JSONDecoder().decode
# Made once: json.dumps with options builds an encoder on every call.
_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False,
                            check_circular=False).encode
_ascii = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode

# A line is compact unless whitespace touches a structural character or an end. One
# translate (s: structural, w: whitespace, . anything else) and two searches tell it;
# whitespace inside a string next to a comma (", like Gecko") also counts, which only
# costs encoding that record again.
_SHAPES = bytes(ord("s") if c in b"{}[]:," else ord("w") if c in b" \t\r\n" else ord(".")
                for c in range(256))


def is_compact(line: bytes) -> bool:
    shape = line.translate(_SHAPES)
    return not (b"sw" in shape or b"ws" in shape or shape[:1] == b"w" or shape[-1:] == b"w")


def decode_lines(lines: list[bytes], required: tuple[str, ...], what: str,
                 parsed: Parsed) -> tuple[list[bytes], list[dict]]:
    """(lines, records) of the lines that are JSON objects with every ``required``
    field; the other lines are rejected into ``parsed`` (``what`` names the format in
    the reasons)."""
    kept: list[bytes] = []
    records: list[dict] = []
    keep, add = kept.append, records.append
    for line in lines:
        try:
            record = _decode(line.decode())
        except ValueError as e:  # UnicodeDecodeError is a ValueError too
            parsed.reject(NOT_JSON, f"a line that is not JSON ({e})", line)
            continue
        if type(record) is not dict:
            parsed.reject(NOT_AN_OBJECT, f"a line that is JSON but not an object "
                                         f"({type(record).__name__})", line)
            continue
        for name in required:
            if name not in record:
                parsed.reject(NOT_A_RECORD, f"a JSON object without {name!r}: not a "
                                            f"{what} record", line)
                break
        else:
            keep(line)
            add(record)
    return kept, records


def messages(lines: list[bytes], records: list[dict]) -> list[bytes]:
    """The compact JSON message of each record (``lines``: the records' lines)."""
    return [line if is_compact(line) else encoded(record)
            for line, record in zip(lines, records, strict=True)]


def encoded(record: dict) -> bytes:
    text = _compact(record)
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" in the line): keep it escaped
        return _ascii(record).encode()
