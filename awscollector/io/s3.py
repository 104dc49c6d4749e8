"""Stream S3 objects as batches of lines, decompressed by their magic bytes.

``ReadS3Lines`` takes ``ObjectTask`` elements (an object announced by an SQS
message) and emits ``LineBatch`` elements of about ``batch_bytes`` of lines
each. An object is never held whole in memory: it is read in chunks,
decompressed as a stream and cut into batches as it goes. A read that breaks
mid-object resumes with a ranged GET at the byte where it stopped.

An object that cannot be read (gone, access denied, corrupt or binary data)
becomes a ``DeadLetter`` on the ``DEAD_LETTER`` output, after the lines read
before the fault have been emitted. Transient AWS errors that persist past the
retries fail the bundle, so the message stays in SQS for the next attempt.

Usage::

    lines = tasks | beam.ParDo(ReadS3Lines(access)).with_outputs(DEAD_LETTER, main="lines")
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics
from botocore.exceptions import BotoCoreError, ClientError

from awscollector.awserrors import aws_error
from awscollector.errors import CollectorError
from awscollector.io.access import AwsAccess
from awscollector.io.deadletter import DEAD_LETTER, DeadLetter, notification_of
from awscollector.io.sqs import SqsMessage
from awscollector.transforms.decompress import (
    decompressed_chunks,
    iter_line_batches,
    looks_binary,
)
from awscollector.transforms.notifications import ObjectRef

log = logging.getLogger(__name__)

# Dead-letter these; anything else AWS says is retried by boto3 and then fails the run.
_DEAD_LETTER_AWS_CODES = {"AWS-003", "AWS-007"}


class ObjectTask(NamedTuple):
    """An object to read, and the SQS message that announced it."""

    message: SqsMessage
    ref: ObjectRef
    kind: str = ""  # the source type it was classified as, e.g. "vpc_flow_logs"

    @property
    def name(self) -> str:
        return f"s3://{self.ref.bucket}/{self.ref.key}"

    def dead_letter(self, code: str, error: str, **source) -> DeadLetter:
        m = self.message
        return DeadLetter(
            m.service, m.region,
            {"bucket": self.ref.bucket, "key": self.ref.key, "type": self.kind,
             "queue_url": m.queue_url, "message_id": m.message_id, **source},
            code, error, notification_of(m.body))


class LineBatch(NamedTuple):
    """Lines ``index``-th batch of an object; ``first_line`` is the object's first line
    (a header for formats that have one)."""

    task: ObjectTask
    index: int
    first_line: bytes
    lines: list[bytes]


def object_chunks(client, bucket: str, key: str, chunk_size: int = 1 << 20,
                  resume_attempts: int = 3) -> Iterator[bytes]:
    """The raw bytes of an object, in chunks; resumes a broken read with a ranged GET."""
    offset = 0
    etag = None
    attempt = 0
    broke_at = -1
    while True:
        args = {"Bucket": bucket, "Key": key}
        if offset:
            args["Range"] = f"bytes={offset}-"
            if etag:
                args["IfMatch"] = etag  # the same object, not a newer one under the same key
        try:
            response = client.get_object(**args)
        except (ClientError, BotoCoreError) as e:
            raise aws_error(e, f"s3 GetObject s3://{bucket}/{key}") from e
        etag = etag or response.get("ETag")
        body = response["Body"]
        try:
            for chunk in body.iter_chunks(chunk_size):
                offset += len(chunk)
                yield chunk
            return
        except (BotoCoreError, OSError) as e:
            # The budget is for breaks in a row without progress: a long object on a
            # flaky link still gets through.
            attempt = 1 if offset > broke_at else attempt + 1
            broke_at = offset
            if attempt > resume_attempts:
                raise CollectorError(
                    "AWS-008", f"s3 GetObject s3://{bucket}/{key} broke at byte {offset}"
                               f" {attempt} times in a row: {e}") from e
            log.info("read of s3://%s/%s broke at byte %d (%s); resuming", bucket, key, offset, e)
            time.sleep(0.2 * attempt)
        finally:
            body.close()


def _text_only(chunks: Iterator[bytes], name: str) -> Iterator[bytes]:
    first = True
    for chunk in chunks:
        if first and chunk:
            first = False
            if looks_binary(chunk[:8192]):
                raise CollectorError("SRC-002", f"{name}: binary data, not text")
        yield chunk


class _Guarded:
    """Iterates chunks until the first CollectorError, which it keeps instead of raising,
    so the lines read before a fault are still delivered."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self.fault: CollectorError | None = None
        self.ended_with_newline = True

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._chunks:
                if chunk:
                    self.ended_with_newline = chunk.endswith(b"\n")
                yield chunk
        except CollectorError as e:
            self.fault = e


class ReadS3Lines(beam.DoFn):
    """ObjectTask -> LineBatch*, with DeadLetter on the DEAD_LETTER output."""

    def __init__(self, access: AwsAccess, batch_bytes: int = 1 << 20) -> None:
        self._access = access
        self._batch_bytes = batch_bytes

    def setup(self) -> None:
        self._objects = Metrics.counter("s3", "objects_read")
        self._lines = Metrics.counter("s3", "lines_read")
        self._bytes = Metrics.counter("s3", "bytes_read")
        self._debug = log.isEnabledFor(logging.DEBUG)  # once, not per object or chunk

    def process(self, task: ObjectTask):
        ref = task.ref
        started = time.monotonic()
        sizes = [0, 0]  # bytes read from S3; bytes after decompression (counted if debug)
        client = self._access.client("s3", task.message.region)
        raw = object_chunks(client, ref.bucket, ref.key)
        chunks = decompressed_chunks(self._counted(raw, sizes), task.name)
        if self._debug:
            chunks = _measured(chunks, sizes)
        text = _Guarded(_text_only(chunks, task.name))
        index, lines_read, first_line = 0, 0, b""
        pending: list[bytes] | None = None  # one batch held back: the last may end cut
        try:
            for lines in iter_line_batches(text, self._batch_bytes):
                if pending is not None:
                    yield LineBatch(task, index, first_line, pending)
                    index += 1
                    lines_read += len(pending)
                if index == 0 and pending is None:
                    first_line = lines[0]
                pending = lines
        except CollectorError as e:  # an AWS error while reading: retryable ones fail the run
            text.fault = text.fault or e
        finally:
            raw.close()
        fault = text.fault
        if self._debug:
            log.debug("s3 GetObject s3://%s/%s: %d bytes, %d uncompressed, %.3fs%s",
                      ref.bucket, ref.key, sizes[0], sizes[1], time.monotonic() - started,
                      f", stopped by {fault.code}" if fault is not None else "")
        partial = None
        if pending and fault is not None and not text.ended_with_newline:
            partial = pending.pop()  # the line the fault cut in two: not an event
        if pending:
            yield LineBatch(task, index, first_line, pending)
            lines_read += len(pending)
        if fault is None:
            self._objects.inc()
            self._lines.inc(lines_read)
            return
        if fault.code.startswith("SRC-") or fault.code in _DEAD_LETTER_AWS_CODES:
            extra = {"lines_read": lines_read}
            if partial is not None:
                extra["partial_line"] = partial[:1000].decode("utf-8", "replace")
            yield beam.pvalue.TaggedOutput(
                DEAD_LETTER, task.dead_letter(fault.code, fault.message, **extra))
            return
        raise fault

    def _counted(self, chunks: Iterator[bytes], sizes: list[int]) -> Iterator[bytes]:
        for chunk in chunks:
            self._bytes.inc(len(chunk))
            sizes[0] += len(chunk)
            yield chunk


def _measured(chunks: Iterator[bytes], sizes: list[int]) -> Iterator[bytes]:
    for chunk in chunks:
        sizes[1] += len(chunk)
        yield chunk
