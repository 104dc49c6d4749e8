"""Where Flink places an element keyed by a string, and names that spread readers out.

Beam's Flink runner keys a splittable DoFn's input by the element, encoded with
its coder (a ``str`` is Beam's UTF-8 string coder: a varint length, then the
bytes) and wrapped in a Java ``ByteBuffer``; Flink hashes the key's
``hashCode()`` with murmur into one of ``max_parallelism`` key groups, and each
subtask owns a contiguous range of key groups. Two readers can so land on one
subtask and take turns. ``spread_keys`` appends a suffix to each reader's name,
the smallest that puts reader i on subtask i mod parallelism.
"""

from __future__ import annotations

_MASK = 0xFFFFFFFF


def _int32(x: int) -> int:
    x &= _MASK
    return x - (1 << 32) if x & 0x80000000 else x


def _rotl(x: int, n: int) -> int:
    x &= _MASK
    return ((x << n) | (x >> (32 - n))) & _MASK


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encoded_key(key: str) -> bytes:
    """The key's bytes as Beam's Flink runner hashes them (string coder, nested)."""
    data = key.encode("utf-8")
    return _varint(len(data)) + data


def byte_buffer_hash(data: bytes) -> int:
    """java.nio.ByteBuffer.hashCode() of a buffer holding data."""
    h = 1
    for b in reversed(data):
        h = _int32(31 * h + (b - 256 if b > 127 else b))
    return h


def murmur(code: int) -> int:
    """Flink's MathUtils.murmurHash(int): a non-negative int."""
    code = (code * 0xCC9E2D51) & _MASK
    code = _rotl(code, 15)
    code = (code * 0x1B873593) & _MASK
    code = _rotl(code, 13)
    code = (code * 5 + 0xE6546B64) & _MASK
    code ^= 4
    code ^= code >> 16  # bitMix
    code = (code * 0x85EBCA6B) & _MASK
    code ^= code >> 13
    code = (code * 0xC2B2AE35) & _MASK
    code ^= code >> 16
    code = _int32(code)
    if code >= 0:
        return code
    return -code if code != -(1 << 31) else 0


def default_max_parallelism(parallelism: int) -> int:
    """Flink's default number of key groups for an operator of that parallelism."""
    p = parallelism + parallelism // 2
    power = 1
    while power < p:
        power <<= 1
    return min(max(power, 128), 32768)


def subtask(key: str, parallelism: int, max_parallelism: int | None = None) -> int:
    """The subtask (0..parallelism-1) Flink gives the element ``key``."""
    groups = max_parallelism or default_max_parallelism(parallelism)
    group = murmur(byte_buffer_hash(encoded_key(key))) % groups
    return group * parallelism // groups


def spread_keys(keys: list[str], parallelism: int,
                max_parallelism: int | None = None) -> list[str]:
    """Each key with the smallest suffix ``#n`` that places it on subtask i mod parallelism."""
    spread = []
    for i, key in enumerate(keys):
        want = i % parallelism
        n = 0
        while subtask(f"{key}#{n}", parallelism, max_parallelism) != want:
            n += 1
        spread.append(f"{key}#{n}")
    return spread
