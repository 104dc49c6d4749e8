"""Keep every event in files: Avro or Parquet, in a local directory or in S3.

``WriteToArchive`` takes the same PCollections as ``WriteToDevo`` (``EventBatch``
elements or ``(table, message)`` tuples)::

    events | WriteToArchive(ArchiveTarget("s3://my-archive/aws-collector", "avro"),
                            access=access)

Batching per table, retries with backoff and the wait for confirmation before a
bundle completes are shared with every output (``io/delivery.py``). What is
particular to the archive:

- Each flush of a table becomes one file,
  ``<path>/<table>/<YYYY>/<MM>/<DD>/<HH>/<window start>-<uuid>.avro|.parquet``: the
  window is the flush time floored to ``window_minutes`` (UTC), and the date and
  hour directories are the window start's. The name is chosen once per flush, so a
  retried flush writes the same file again, never a second one.
- A record is ``{"table", "message", "received"}``: the message decoded as UTF-8
  (undecodable bytes replaced), ``received`` the flush time in milliseconds (UTC).
  Avro files are deflate-compressed, Parquet files zstd-compressed.
- A local file is written under a temporary name in its directory, fsynced and
  renamed: a reader never sees a partial file. An S3 file is one PutObject of the
  whole object. A flush is confirmed only after the rename or the PutObject
  succeeded; any error is retried (OUT-006, naming the file or bucket and key).
"""

from __future__ import annotations

import io
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import apache_beam as beam
import fastavro
import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import BotoCoreError, ClientError

from awscollector.errors import one_line
from awscollector.io.delivery import BatchingWriteFn, DeliveryFailed, EventBatch, Receipt

__all__ = ["AVRO_SCHEMA", "ArchivePayload", "ArchiveTarget", "ArchiveTransport", "EventBatch",
           "WriteToArchive", "archive_name"]

log = logging.getLogger(__name__)

AVRO_SCHEMA = {
    "type": "record",
    "name": "Event",
    "namespace": "com.devo.awscollector.archive",
    "fields": [
        {"name": "table", "type": "string"},
        {"name": "message", "type": "string"},
        {"name": "received", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}
_PARSED_AVRO = fastavro.parse_schema(AVRO_SCHEMA)
_PARQUET_SCHEMA = pa.schema([
    ("table", pa.string()),
    ("message", pa.string()),
    ("received", pa.timestamp("ms", tz="UTC")),
])


@dataclass(frozen=True)
class ArchiveTarget:
    """Where and how to archive: ``path`` (a directory or ``s3://bucket/prefix``), the
    file ``format`` ("avro" or "parquet") and the window of file names in minutes."""

    path: str
    format: str = "avro"
    window_minutes: int = 60

    def __post_init__(self) -> None:
        if self.format not in ("avro", "parquet"):
            raise ValueError(f"format must be avro or parquet, not {self.format!r}")
        if self.window_minutes < 1:
            raise ValueError("window_minutes must be at least 1")

    @classmethod
    def from_config(cls, output) -> ArchiveTarget:
        """From a config ``outputs.<name>`` entry of type archive."""
        c = output.config
        return cls(c.path, c.format, c.window_minutes)

    @property
    def s3(self) -> bool:
        return self.path.startswith("s3://")

    def bucket_prefix(self) -> tuple[str, str]:
        """``(bucket, prefix)`` of an s3:// path; the prefix has no slash at either end."""
        bucket, _, prefix = self.path[5:].partition("/")
        return bucket, prefix.strip("/")

    def __str__(self) -> str:
        return f"archive {self.path} ({self.format})"


def archive_name(table: str, flushed: float, window_minutes: int, ext: str,
                 unique: str) -> str:
    """The relative name of a flush's file: ``<table>/<YYYY>/<MM>/<DD>/<HH>/<window
    start>-<unique>.<ext>``; ``flushed`` is epoch seconds."""
    width = window_minutes * 60
    start = datetime.fromtimestamp(int(flushed // width * width), UTC)
    safe_table = table.replace("/", "_").replace("\\", "_").lstrip(".") or "_"
    return (f"{safe_table}/{start:%Y/%m/%d/%H}/{start:%Y%m%dT%H%M%SZ}-{unique}.{ext}")


@dataclass
class ArchivePayload:
    """One table's messages of a flush, the file name they go to, and whether done."""

    table: str
    messages: list[bytes]
    received_ms: int
    name: str
    raw_bytes: int
    data: bytes | None = None  # the encoded file, made once in the sender thread
    written: bool = False  # written in an earlier attempt of this flush


class ArchiveTransport:
    """Writes a flush's payloads as files, locally or with S3 PutObject.

    ``clock`` (epoch seconds) dates the flushes; ``access`` (an ``AwsAccess``) is
    needed for s3:// paths only.
    """

    def __init__(self, target: ArchiveTarget, access=None, region: str = "us-east-1",
                 clock: Callable[[], float] = time.time) -> None:
        if target.s3 and access is None:
            raise ValueError(f"{target}: an s3:// path needs AWS access")
        self.target = target
        self._access = access
        self._region = region
        self._clock = clock

    def __repr__(self) -> str:
        return f"ArchiveTransport({self.target.path!r}, {self.target.format!r})"

    # -- Transport

    def prepare(self, table: str, messages: list[bytes]) -> ArchivePayload:
        now = self._clock()
        name = archive_name(table, now, self.target.window_minutes, self.target.format,
                            uuid.uuid4().hex)
        return ArchivePayload(table, messages, int(now * 1000), name,
                              sum(len(m) for m in messages))

    def payload_size(self, payload: ArchivePayload) -> int:
        return payload.raw_bytes

    def deliver(self, payloads: list[ArchivePayload]) -> Receipt:
        for payload in payloads:
            if payload.written:
                continue
            if payload.data is None:
                payload.data = self.encode(payload)
                payload.messages = []  # the file holds them now
            if self.target.s3:
                self._put(payload)
            else:
                self._write(payload)
            payload.written = True
            payload.data = None
        return Receipt("S3 PutObject" if self.target.s3 else "file renamed")

    def close(self) -> None:
        pass

    # -- encoding

    def encode(self, payload: ArchivePayload) -> bytes:
        """The payload as a whole Avro or Parquet file."""
        messages = [m.decode("utf-8", "replace") for m in payload.messages]
        buf = io.BytesIO()
        if self.target.format == "avro":
            received = datetime.fromtimestamp(payload.received_ms / 1000, UTC)
            fastavro.writer(buf, _PARSED_AVRO,
                            ({"table": payload.table, "message": m, "received": received}
                             for m in messages), codec="deflate")
        else:
            n = len(messages)
            table = pa.Table.from_arrays([
                pa.array([payload.table] * n, pa.string()),
                pa.array(messages, pa.string()),
                pa.array([payload.received_ms] * n, pa.timestamp("ms", tz="UTC")),
            ], schema=_PARQUET_SCHEMA)
            pq.write_table(table, buf, compression="zstd")
        return buf.getvalue()

    # -- writing

    def _write(self, payload: ArchivePayload) -> None:
        assert payload.data is not None
        path = os.path.join(self.target.path, payload.name)
        directory = os.path.dirname(path)
        tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp")
        try:
            os.makedirs(directory, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(payload.data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)  # atomic: the file appears whole or not at all
            _fsync_dir(directory)  # the rename itself survives a crash
        except OSError as e:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise DeliveryFailed("OUT-006", f"cannot write {path}: "
                                            f"{e.strerror or type(e).__name__}") from None

    def _put(self, payload: ArchivePayload) -> None:
        bucket, prefix = self.target.bucket_prefix()
        key = f"{prefix}/{payload.name}" if prefix else payload.name
        try:
            self._access.client("s3", self._region).put_object(
                Bucket=bucket, Key=key, Body=payload.data)
        except ClientError as e:
            err = e.response.get("Error", {})
            why = err.get("Code") or "error"
            if err.get("Message"):
                why += f": {one_line(err['Message'], 200)}"
            raise DeliveryFailed("OUT-006", f"cannot put s3://{bucket}/{key}: {why}") from None
        except BotoCoreError as e:
            raise DeliveryFailed("OUT-006", f"cannot put s3://{bucket}/{key}: "
                                            f"{type(e).__name__}: {one_line(str(e), 200)}"
                                 ) from None


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _MakeArchiveTransport:
    """Picklable factory: the transport (and its S3 client) is made in the worker."""

    def __init__(self, target: ArchiveTarget, access, region: str) -> None:
        self.target, self.access, self.region = target, access, region

    def __repr__(self) -> str:
        return f"_MakeArchiveTransport({self.target.path!r})"

    def __call__(self) -> ArchiveTransport:
        return ArchiveTransport(self.target, self.access, self.region)


class WriteToArchive(beam.PTransform):
    """Writes every event to Avro or Parquet files, locally or in S3, one file per
    flush of a table; each flush confirmed only once its file is complete.

    Usage::

        import apache_beam as beam
        from awscollector.io.archive import ArchiveTarget, WriteToArchive

        target = ArchiveTarget("/var/archive/aws-collector", format="parquet",
                               window_minutes=60)
        with beam.Pipeline() as p:
            (p | beam.Create([("my.app.table", "hello"), ("my.app.table", "world")])
               | WriteToArchive(target))

    For an ``s3://bucket/prefix`` path, pass ``access`` (the run's ``AwsAccess``).

    Args:
      target: where and how (``ArchiveTarget`` or a config output entry).
      name: the output's name, in the "delivered" counters and debug logs.
      stats: the run's statistics (a ``StatsHandle``, io/stats.py): events confirmed.
      access: an ``AwsAccess`` for S3 (required for s3:// paths).
      region: the region of the S3 client.
      max_batch_bytes: flush (a file) when this much is buffered, besides at bundle end.
      max_attempts: attempts per flush before the bundle fails with OUT-006.
      retry_delay: first backoff delay in seconds (doubles per attempt, up to 10 s).
      max_in_flight: flushes that may await confirmation at once.

    Counters (Beam metrics): ``devo/events|<table>``, ``devo/bytes|<table>`` and
    ``delivered/<name>|<service>|<region>|<table>``.
    """

    def __init__(self, target, *, name: str = "archive", access=None,
                 region: str = "us-east-1", max_batch_bytes: int = 16 << 20,
                 max_attempts: int = 5, retry_delay: float = 0.5,
                 max_in_flight: int = 4, stats=None, stop=None) -> None:
        super().__init__()
        self._target = (target if isinstance(target, ArchiveTarget)
                        else ArchiveTarget.from_config(target))
        if self._target.s3 and access is None:
            raise ValueError(f"{self._target}: an s3:// path needs access (an AwsAccess)")
        self._fn = BatchingWriteFn(
            _MakeArchiveTransport(self._target, access, region), name, str(self._target),
            max_batch_bytes, max_attempts, retry_delay, max_in_flight, stats=stats,
            stop=stop)

    def expand(self, pcoll):
        return pcoll | "Write" >> beam.ParDo(self._fn)
