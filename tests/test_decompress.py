"""Decompression by magic bytes, line batching and binary detection."""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import pytest
import zstandard

from awscollector.errors import CollectorError
from awscollector.transforms import decompress
from awscollector.transforms.decompress import (
    decompressed_chunks,
    iter_line_batches,
    looks_binary,
)

SAMPLES = Path(__file__).parent / "samples"
PLAIN = (SAMPLES / "vpcflow_default_v2.log").read_bytes()


@pytest.fixture(autouse=True, params=["isal", "zlib"])
def inflate(request, monkeypatch):
    """Every test with ISA-L's inflate (the default) and with zlib's (the fallback where
    isal is not installed): both must give the same bytes and the same errors."""
    if request.param == "zlib":
        monkeypatch.setattr(decompress, "_inflate", zlib)
    else:
        from isal import isal_zlib

        assert decompress._inflate is isal_zlib  # isal is a dependency: it is the default
    return decompress._inflate


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def unpack(data: bytes, size: int, name: str = "s3://b/k") -> bytes:
    return b"".join(decompressed_chunks(pieces(data, size), name))


def multi_member_gzip(data: bytes) -> bytes:
    # AWS writes gzip as several concatenated members; split at odd places.
    third = len(data) // 3
    return b"".join(gzip.compress(part) for part in (data[:third], data[third:-7], data[-7:]))


def zstd_frames(data: bytes) -> bytes:
    half = len(data) // 2
    cctx = zstandard.ZstdCompressor()
    return cctx.compress(data[:half]) + cctx.compress(data[half:])


def zstd_streamed(data: bytes) -> bytes:
    # As a streaming writer makes it: no content size in the frame header.
    cobj = zstandard.ZstdCompressor().compressobj()
    return cobj.compress(data) + cobj.flush()


ENCODINGS = {
    "plain": lambda d: d,
    "gzip": gzip.compress,
    "gzip-multi-member": multi_member_gzip,
    "zstd": zstandard.ZstdCompressor().compress,
    "zstd-two-frames": zstd_frames,
    "zstd-streamed": zstd_streamed,
}


@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize("chunk", [1, 3, 4096, 1 << 20])
def test_sample_round_trips_whatever_the_chunk_size(encoding, chunk):
    encoded = ENCODINGS[encoding](PLAIN)
    assert unpack(encoded, chunk) == PLAIN


def test_codec_is_chosen_by_magic_not_by_name():
    assert unpack(gzip.compress(PLAIN), 100, name="s3://b/file.txt") == PLAIN
    assert unpack(PLAIN, 100, name="s3://b/file.log.gz") == PLAIN


def test_empty_input_yields_nothing():
    assert list(decompressed_chunks([])) == []
    assert list(decompressed_chunks([b"", b""])) == []


def test_plain_passthrough_keeps_chunks_and_short_objects():
    assert list(decompressed_chunks([b"ab", b"", b"cd"])) == [b"abcd"]  # sniffed head joined
    assert list(decompressed_chunks([b"x"])) == [b"x"]
    assert b"".join(decompressed_chunks([b"abcd", b"ef", b"gh"])) == b"abcdefgh"


def test_gzip_zero_padding_after_last_member_is_allowed():
    assert unpack(gzip.compress(PLAIN) + b"\0" * 10, 5) == PLAIN


def test_large_output_comes_in_bounded_pieces():
    # 64 MiB of zeros compress to a few KiB: output must still come in small pieces.
    zeros = bytes(64 << 20)
    for data in (gzip.compress(zeros, 1), zstandard.ZstdCompressor().compress(zeros)):
        total = 0
        biggest = 0
        for out in decompressed_chunks([data]):
            total += len(out)
            biggest = max(biggest, len(out))
        assert total == len(zeros)
        assert biggest <= 8 << 20


def test_truncated_gzip_yields_the_good_prefix_then_src_001():
    data = os.urandom(1000).hex().encode() * 50  # 100 kB, compresses so-so
    packed = gzip.compress(data)
    got = []
    with pytest.raises(CollectorError) as err:
        for out in decompressed_chunks(pieces(packed[: len(packed) * 2 // 3], 1000), "s3://b/k.gz"):
            got.append(out)
    prefix = b"".join(got)
    assert len(prefix) > 0
    assert data.startswith(prefix)
    assert err.value.code == "SRC-001"
    assert err.value.message == (
        f"s3://b/k.gz: truncated or corrupt gzip data after {len(prefix)} decompressed bytes"
    )


def test_gzip_cut_inside_a_later_member_raises():
    packed = multi_member_gzip(PLAIN)
    with pytest.raises(CollectorError, match="SRC-001"):
        unpack(packed[:-3], 10)  # trailer of the last member missing


def test_gzip_cut_inside_the_header_raises():
    with pytest.raises(CollectorError, match="after 0 decompressed bytes"):
        unpack(gzip.compress(PLAIN)[:5], 1)


def test_corrupt_gzip_raises_src_001(inflate):
    packed = bytearray(gzip.compress(PLAIN * 20))
    packed[len(packed) // 2] ^= 0xFF
    with pytest.raises(CollectorError) as err:
        unpack(bytes(packed), 64)
    assert err.value.code == "SRC-001"
    assert isinstance(err.value.__cause__, inflate.error)


def test_garbage_after_gzip_member_raises():
    with pytest.raises(CollectorError, match="SRC-001"):
        unpack(gzip.compress(PLAIN) + b"trailing junk", 100)


def test_truncated_zstd_yields_prefix_then_raises():
    data = os.urandom(1000).hex().encode() * 300
    packed = zstandard.ZstdCompressor().compress(data)
    got = []
    with pytest.raises(CollectorError) as err:
        for out in decompressed_chunks([packed[:-10]], "s3://b/k.zst"):
            got.append(out)
    prefix = b"".join(got)
    assert data.startswith(prefix)
    assert err.value.message.startswith("s3://b/k.zst: truncated or corrupt zstd data after ")
    assert err.value.message.endswith(f" {len(prefix)} decompressed bytes")


def test_corrupt_zstd_raises_src_001():
    packed = bytearray(zstandard.ZstdCompressor().compress(PLAIN * 20))
    packed[8:40] = b"\xaa" * 32
    with pytest.raises(CollectorError) as err:
        unpack(bytes(packed), 16, "s3://b/k.zst")
    assert err.value.code == "SRC-001"
    assert "zstd" in err.value.message


def test_zstd_magic_alone_is_truncated():
    with pytest.raises(CollectorError, match="SRC-001"):
        unpack(b"\x28\xb5\x2f\xfd", 1)


def test_source_errors_pass_through_unchanged():
    def failing():
        yield gzip.compress(PLAIN)[:20]
        raise ConnectionResetError("peer reset")

    with pytest.raises(ConnectionResetError):
        list(decompressed_chunks(failing()))


# --- line batching ---------------------------------------------------------------


def batches(data: bytes, chunk: int, max_bytes: int = 1 << 20) -> list[list[bytes]]:
    return list(iter_line_batches(pieces(data, chunk), max_bytes))


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1000])
def test_lines_cross_chunk_boundaries_with_crlf_and_no_final_newline(chunk):
    data = b"first\r\nsecond\n\nthird\r\n\r\nfourth\rstill\nlast\r"
    lines = [line for batch in batches(data, chunk) for line in batch]
    assert lines == [b"first", b"second", b"third", b"fourth\rstill", b"last"]


def test_empty_lines_and_empty_input():
    assert batches(b"", 1) == []
    assert batches(b"\n\n\r\n", 1) == []
    assert batches(b"\nx\n", 1) == [[b"x"]]


def test_sample_file_lines():
    lines = [line for batch in batches(PLAIN, 13) for line in batch]
    assert lines == PLAIN.splitlines() and len(lines) == 9


@pytest.mark.parametrize("chunk", [1, 50, 100_000])
def test_batches_are_about_max_bytes(chunk):
    line = b"x" * 99
    data = (line + b"\n") * 1000  # 100 kB
    got = batches(data, chunk, max_bytes=10_000)
    assert [line for batch in got for line in batch] == [line] * 1000
    for batch in got[:-1]:
        assert 9_000 <= sum(len(x) + 1 for x in batch) <= 10_000
    assert len(got) >= 10


def test_batch_does_not_wait_for_more_than_max_bytes():
    def source():
        yield b"a\n" * 600
        yield b"b\n" * 600
        raise AssertionError("read past what the first batch needed")

    it = iter_line_batches(source(), max_bytes=1000)
    first = next(it)
    assert first and set(first) <= {b"a", b"b"}


def test_line_longer_than_max_bytes_is_kept_whole():
    data = b"short\n" + b"L" * 5000 + b"\nend\n"
    got = [line for batch in batches(data, 64, max_bytes=1000) for line in batch]
    assert got == [b"short", b"L" * 5000, b"end"]


def test_decompress_then_batch_end_to_end():
    packed = multi_member_gzip(PLAIN * 100)
    lines = [
        line
        for batch in iter_line_batches(decompressed_chunks(pieces(packed, 333)), 4096)
        for line in batch
    ]
    assert lines == PLAIN.splitlines() * 100


# --- binary detection ----------------------------------------------------------------


def test_text_is_not_binary():
    assert not looks_binary(PLAIN)
    assert not looks_binary("café ünïcode 日本\n".encode())
    assert not looks_binary(b"")


def test_multibyte_char_cut_at_the_end_is_not_binary():
    text = ("x" * 4094 + "日本").encode()  # 4096-byte window cuts inside a character
    assert not looks_binary(text)
    assert not looks_binary("日".encode()[:2])


def test_nul_bytes_or_invalid_utf8_are_binary():
    assert looks_binary(b"abc\0def")
    assert looks_binary(b"\xff\xfe\x00\x01")
    assert looks_binary(b"abc\xc3(def")  # invalid continuation byte
    assert looks_binary(os.urandom(4096) + b"\0")
    assert looks_binary(gzip.compress(PLAIN))
    assert looks_binary(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")


@pytest.mark.parametrize("keep_empty, expected", [
    (False, [b"a", b"b", b"c"]),
    (True, [b"", b"a", b"", b"b", b"", b"c", b""]),
])
def test_empty_lines_anywhere_in_a_batch(keep_empty, expected):
    data = b"\na\n\nb\r\n\r\nc\n\n"  # leading, inner and trailing empty lines, LF and CRLF
    got = [line for batch in iter_line_batches([data], keep_empty=keep_empty) for line in batch]
    assert got == expected
