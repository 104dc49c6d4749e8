"""Stream S3 objects as batches of records, framed by their format.

``ReadS3Records`` takes ``ObjectTask`` elements (an object announced by an SQS
message, classified as a format of the registry, or to be sniffed) and emits
``FormatBatch`` elements: about ``batch_bytes`` of records each, framed as the
object's format says (lines, a JSON document's records, JSON lines, CSV lines,
Parquet rows, JSON documents one after another). An object is never held whole in
memory: it is read in chunks, decompressed by its magic bytes as a stream and cut
into batches as it goes (a Parquet object, which needs random access, is spooled
to a temporary file). A read that breaks mid-object resumes with a ranged GET at the byte where it
stopped.

An object that cannot be read (gone, access denied, corrupt, binary where text
was expected, of no format we can tell) becomes a ``DeadLetter`` on the
``DEAD_LETTER`` output, after the records read before the fault were emitted.
Transient AWS errors that persist past the retries fail the bundle, so the
message stays in SQS for the next attempt.

Usage::

    batches = tasks | beam.ParDo(ReadS3Records(access, registry, types)).with_outputs(
        DEAD_LETTER, main="batches")
"""

from __future__ import annotations

import gc
import logging
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics
from botocore.exceptions import BotoCoreError, ClientError

from awscollector.awserrors import aws_error
from awscollector.errors import CollectorError
from awscollector.io.access import AwsAccess
from awscollector.io.deadletter import DEAD_LETTER, DeadLetter, notification_of
from awscollector.io.routes import Routes
from awscollector.io.sqs import SqsMessage
from awscollector.io.stats import StatsHandle, attached
from awscollector.io.stop import StopSignal
from awscollector.transforms.decompress import decompressed_chunks, looks_binary
from awscollector.transforms.formats import (
    CSV,
    JSON_DOCUMENTS,
    JSON_RECORDS,
    PARQUET,
    SNIFF,
    Format,
    RecordBatch,
    Registry,
)
from awscollector.transforms.framing import (
    frame_lines,
    json_documents,
    json_records,
    parquet_rows,
)
from awscollector.transforms.notifications import ObjectRef

log = logging.getLogger(__name__)

# Dead-letter these; anything else AWS says is retried by boto3 and then fails the run.
_DEAD_LETTER_AWS_CODES = {"AWS-003", "AWS-007"}


class ObjectTask(NamedTuple):
    """An object to read, and the SQS message that announced it."""

    message: SqsMessage
    ref: ObjectRef
    kind: str = ""  # the format it was classified as, e.g. "vpc_flow_logs", or SNIFF

    @property
    def name(self) -> str:
        return f"s3://{self.ref.bucket}/{self.ref.key}"

    def as_format(self, fmt: Format, routes: Routes) -> ObjectTask:
        """Classified as ``fmt``, labelled with the service that collects its type."""
        return self._replace(message=routes.claim(self.message, fmt.type), kind=fmt.name)

    def dead_letter(self, code: str, error: str, **source) -> DeadLetter:
        m = self.message
        return DeadLetter(
            m.service, m.region,
            {"bucket": self.ref.bucket, "key": self.ref.key, "type": self.kind,
             "queue_url": m.queue_url, "message_id": m.message_id, **source},
            code, error, notification_of(m.body))


class FormatBatch(NamedTuple):
    """A batch of records of an object, and its format's name."""

    task: ObjectTask
    format: str
    batch: RecordBatch


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


_PARQUET_IN_MEMORY = 32 << 20  # bytes of a Parquet object kept in memory; the rest spills
_SNIFF_BYTES = 4096


class _Read:
    """One object's read: its batches so far, and what stopped it."""

    def __init__(self, task: ObjectTask) -> None:
        self.task = task
        self.index = 0
        self.records = 0
        self.fault: CollectorError | None = None
        self.partial: bytes | None = None  # a line a fault cut in two

    def batches(self, fmt: Format, frames: Iterator[tuple[tuple[bytes, ...], list]]
                ) -> Iterator[FormatBatch]:
        for header, records in frames:
            if not records:
                continue
            yield FormatBatch(self.task, fmt.name, RecordBatch(
                self.task.name, self.task.ref.key, self.index, records, header))
            self.index += 1
            self.records += len(records)


class _Stream:
    """A file-like ``read`` over chunks, for copying into a file."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def read(self, size: int = -1) -> bytes:
        return next(self._chunks, b"")


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


class ReadS3Records(beam.DoFn):
    """ObjectTask -> FormatBatch*, with DeadLetter on the DEAD_LETTER output.

    Args:
      access: an ``AwsAccess``.
      registry: the run's formats (``transforms/registry.py``).
      types: the config types collected from the queue (or its ``Routes``): the
        formats a sniff may pick.
      batch_bytes: about this much of an object per batch.
      stats: the run's statistics (io/stats.py): objects read whole, bytes read.
      stop: the run's ``StopSignal``: an object still being read when the stop's
        draining is over is abandoned, and its SQS message released (io/stop.py).
    """

    def __init__(self, access: AwsAccess, registry: Registry,
                 types: Iterable[str] | Routes = (), batch_bytes: int = 1 << 20,
                 stats: StatsHandle | None = None, stop: StopSignal | None = None) -> None:
        self._stats_handle = stats
        self._stop = stop
        self._access = access
        self._registry = registry
        self._routes = Routes.of(types)
        self._types = self._routes.types
        self._batch_bytes = batch_bytes

    def setup(self) -> None:
        freeze_startup_heap()
        self._objects = Metrics.counter("s3", "objects_read")
        self._records = Metrics.counter("s3", "lines_read")
        self._bytes = Metrics.counter("s3", "bytes_read")
        self._debug = log.isEnabledFor(logging.DEBUG)  # once, not per object or chunk
        self._stats = attached(self._stats_handle)

    def teardown(self) -> None:
        if self._stats_handle is not None:
            self._stats_handle.detach()

    def process(self, task: ObjectTask):
        ref = task.ref
        if self._abandoned(task, 0):
            return
        started = time.monotonic()
        sizes = [0, 0]  # bytes read from S3; bytes after decompression (counted if debug)
        client = self._access.client("s3", task.message.region)
        raw = object_chunks(client, ref.bucket, ref.key)
        read = _Read(task)
        try:
            fmt, raw_chunks, chunks = self._format(task, self._counted(raw, sizes), sizes)
            if fmt is None:
                read.fault = CollectorError(
                    "SRC-006", f"{task.name}: cannot tell its log type from its key or its "
                               f"first bytes (expected one of {', '.join(self._types)})")
            else:
                if task.kind == SNIFF:
                    read.task = task.as_format(fmt, self._routes)
                for batch in read.batches(fmt, self._frame(fmt, read, raw_chunks, chunks)):
                    yield batch
                    if self._abandoned(task, read.records):
                        return
        except CollectorError as e:  # an AWS error while reading: retryable ones fail the run
            read.fault = read.fault or e
        finally:
            raw.close()
        fault = read.fault
        service, region = read.task.message.service, read.task.message.region
        self._stats.add("bytes", service, region, sizes[0])
        if self._debug:
            log.debug("s3 GetObject s3://%s/%s: %d bytes, %d uncompressed, %.3fs%s",
                      ref.bucket, ref.key, sizes[0], sizes[1], time.monotonic() - started,
                      f", stopped by {fault.code}" if fault is not None else "")
        if fault is None:
            self._objects.inc()
            self._records.inc(read.records)
            self._stats.add("objects", service, region)
            return
        if fault.code.startswith("SRC-") or fault.code in _DEAD_LETTER_AWS_CODES:
            extra = {"records_read": read.records}
            if read.partial is not None:
                extra["partial_line"] = read.partial[:1000].decode("utf-8", "replace")
            yield beam.pvalue.TaggedOutput(
                DEAD_LETTER, read.task.dead_letter(fault.code, fault.message, **extra))
            return
        raise fault

    def _abandoned(self, task: ObjectTask, records: int) -> bool:
        """Whether to give up on this object: the run stops, and has waited long enough
        for the objects in flight. Its message goes back to the queue, whole."""
        if self._stop is None or not self._stop.draining_over():
            return False
        self._stop.abandon(task.message.message_id)
        log.info("stopping: abandoned %s after %d records; its SQS message %s goes back to "
                 "the queue, and the next run reads the object again", task.name, records,
                 task.message.message_id)
        return True

    def _format(self, task: ObjectTask, raw: Iterator[bytes], sizes: list[int]):
        """The object's format, and its raw and decompressed chunks (nothing consumed)."""
        raw_head = next(raw, b"")
        raw_chunks = _chain(raw_head, raw)
        chunks = decompressed_chunks(raw_chunks, task.name)
        if self._debug:
            chunks = _measured(chunks, sizes)
        if task.kind != SNIFF:
            return self._registry[task.kind], raw_chunks, chunks
        head = b""
        if not raw_head.startswith(b"PAR1"):  # decompressing Parquet would read it all
            head = next(chunks, b"")
            chunks = _chain(head, chunks)
        return self._registry.sniff(head[:_SNIFF_BYTES], self._types,
                                    raw_head[:_SNIFF_BYTES]), raw_chunks, chunks

    def _frame(self, fmt: Format, read: _Read, raw: Iterator[bytes],
               chunks: Iterator[bytes]) -> Iterator[tuple[tuple[bytes, ...], list]]:
        """(header, records) batches of the object, as its framing cuts them."""
        name = read.task.name
        if fmt.framing == PARQUET:
            with tempfile.SpooledTemporaryFile(_PARQUET_IN_MEMORY) as spool:
                shutil.copyfileobj(_Stream(raw), spool)
                spool.seek(0)
                for rows in parquet_rows(spool, name):
                    yield (), rows
            return
        if fmt.framing == JSON_DOCUMENTS:
            # Firehose gzips, for S3, records that may be gzip'd already (CloudWatch
            # Logs payloads): decompressing once more is a pass-through if they are not.
            chunks = decompressed_chunks(chunks, name)
        text = _text_only(chunks, name)
        if fmt.framing == JSON_DOCUMENTS:
            for records in json_documents(text, name, self._batch_bytes):
                yield (), records
            return
        if fmt.framing == JSON_RECORDS:
            for records in json_records(text, fmt.records_field, name, self._batch_bytes):
                yield (), records
            return
        # LINES, CSV, JSON_LINES. The last batch is held back: a fault may have cut its
        # last line in two, and that piece is no record.
        guarded = _Guarded(text)
        pending: tuple[tuple[bytes, ...], list[bytes]] | None = None
        for frame in frame_lines(guarded, fmt.header, self._batch_bytes,
                                 quoted=fmt.framing == CSV):
            if pending is not None:
                yield pending
            pending = frame
        if pending is not None and guarded.fault is not None and not guarded.ended_with_newline:
            read.partial = pending[1].pop()
        if pending is not None:
            yield pending
        if guarded.fault is not None:
            raise guarded.fault

    def _counted(self, chunks: Iterator[bytes], sizes: list[int]) -> Iterator[bytes]:
        for chunk in chunks:
            self._bytes.inc(len(chunk))
            sizes[0] += len(chunk)
            yield chunk


_heap_frozen = False


def freeze_startup_heap() -> None:
    """Once per process, when the pipeline is built and running: what start-up left on
    the heap (Beam's modules and protos, the pipeline; over 100,000 objects) goes out of
    the cyclic garbage collector's reach. Each full collection walks every tracked
    object, and decoding JSON records allocates enough dicts to run many: that walk
    cost about 4.5 µs of CPU per CloudTrail record, 15%, on top of what the plain
    decoding costs. Garbage made later is collected as before."""
    global _heap_frozen
    if not _heap_frozen:
        _heap_frozen = True
        gc.collect()  # not to keep start-up's own garbage for ever
        gc.freeze()


def _measured(chunks: Iterator[bytes], sizes: list[int]) -> Iterator[bytes]:
    for chunk in chunks:
        sizes[1] += len(chunk)
        yield chunk
