"""Dead letters: input that cannot be delivered, kept with its error and notification.

Each entry is one JSON line::

    {"time": ..., "service": ..., "region": ..., "source": {...}, "code": ...,
     "error": ..., "notification": ...}

Steps that can fail on bad input emit ``DeadLetter`` elements on a tagged output
named ``DEAD_LETTER``; ``WriteDeadLetters`` writes them to a directory (one
``<service>.jsonl`` file per service) or to an SQS queue. Apply it to each
dead-letter PCollection separately, not to a Flatten of them: Beam does not fuse
through a Flatten, and the writer must run in the same bundle as the read so an
SQS message is deleted only after its dead letters are written.

Usage::

    parsed = lines | beam.ParDo(ParseFn()).with_outputs(DEAD_LETTER, main="events")
    parsed[DEAD_LETTER] | "DL parse" >> WriteDeadLetters(DeadLetterTarget("filesystem", "dl"))
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import apache_beam as beam

from awscollector.errors import CollectorError
from awscollector.io.counters import DeadLetterKey
from awscollector.io.stats import attached

log = logging.getLogger(__name__)

DEAD_LETTER = "dead_letter"
# An entry must fit in one SQS message (256 KiB) with room to spare.
MAX_ENTRY_BYTES = 200_000
_MAX_FIELD_CHARS = 1000


class DeadLetter(NamedTuple):
    service: str
    region: str
    source: dict[str, Any]
    code: str
    error: str
    notification: Any = None

    def to_json(self) -> str:
        """One JSON line of at most MAX_ENTRY_BYTES; a bigger entry is shortened and
        marked ``"truncated": true`` in its source."""
        doc = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "service": self.service, "region": self.region, "source": self.source,
            "code": self.code, "error": self.error, "notification": self.notification,
        }
        line = _dumps(doc)
        if len(line.encode("utf-8")) > MAX_ENTRY_BYTES:
            line = _dumps(_shortened(doc))
        return line


def _dumps(doc: dict) -> str:
    return json.dumps(doc, separators=(",", ":"), default=str, ensure_ascii=False)


def _shortened(doc: dict) -> dict:
    """The entry with long strings cut and long lists thinned until it fits."""
    def cut(value):
        if isinstance(value, str) and len(value) > _MAX_FIELD_CHARS:
            return value[:_MAX_FIELD_CHARS] + "..."
        if isinstance(value, list):
            return [cut(v) for v in value]
        return value

    source = {k: cut(v) for k, v in doc["source"].items()}
    source["truncated"] = True
    notification = doc["notification"]
    if len(_dumps({"n": notification})) > MAX_ENTRY_BYTES // 2:
        notification = _dumps({"n": notification})[5:-1][: MAX_ENTRY_BYTES // 2]
    short = {**doc, "source": source, "error": cut(doc["error"]), "notification": notification}
    for key, value in source.items():  # still too big: keep fewer items of each list
        while isinstance(value, list) and value and len(_dumps(short)) > MAX_ENTRY_BYTES:
            value = source[key] = value[: len(value) // 2]
    return short


def message_dead_letter(message, code: str, error: str, **source) -> DeadLetter:
    """A dead letter of an SQS message (``io.sqs.SqsMessage``), naming its queue and id."""
    return DeadLetter(message.service, message.region,
                      {"queue_url": message.queue_url, "message_id": message.message_id,
                       **source},
                      code, f"{message.queue_url} message {message.message_id}: {error}",
                      notification_of(message.body))


TOO_OFTEN = "SRC-015"


def received_too_often(message) -> DeadLetter:
    """The dead letter of a message received more than its queue's max_receive_count."""
    return message_dead_letter(
        message, TOO_OFTEN, f"received {message.receive_count} times (max_receive_count "
                            f"{message.max_receive_count}): no earlier attempt finished with "
                            f"it, so it is dead-lettered instead of tried again",
        receive_count=message.receive_count)


def notification_of(body: str) -> Any:
    """The SQS message body as JSON when it is JSON, else as the raw string."""
    try:
        return json.loads(body)
    except (ValueError, TypeError):
        return body


@dataclass(frozen=True)
class DeadLetterTarget:
    type: str = "filesystem"  # filesystem | sqs
    directory: str = "deadletter"
    queue_url: str | None = None
    region: str = "us-east-1"

    @classmethod
    def from_config(cls, dead_letter, default_region: str = "us-east-1") -> DeadLetterTarget:
        c = dead_letter.config
        if dead_letter.type == "sqs":
            url = c.queue_url
            # https://sqs.<region>.amazonaws.com/...: write in the queue's own region
            parts = url.split("/")[2].split(".") if "://" in url else []
            region = parts[1] if len(parts) > 2 and parts[0] == "sqs" else default_region
            return cls("sqs", queue_url=url, region=region)
        return cls("filesystem", directory=str(c.directory_name))


class _WriteDeadLettersFn(beam.DoFn):
    def __init__(self, target: DeadLetterTarget, access=None, stats=None) -> None:
        self._target = target
        self._access = access
        self._stats_handle = stats

    def setup(self) -> None:
        self._stats = attached(self._stats_handle)

    def teardown(self) -> None:
        if self._stats_handle is not None:
            self._stats_handle.detach()

    def start_bundle(self) -> None:
        self._pending: dict[str, list[str]] = {}
        self._written: dict[tuple[str, str], int] = {}  # (service, region) -> entries

    def process(self, entry: DeadLetter) -> None:
        log.warning("%s dead-lettered (%s, %s): %s %s", entry.code, entry.service, entry.region,
                    entry.error, json.dumps(entry.source, default=str)[:300])
        self._pending.setdefault(entry.service, []).append(entry.to_json())
        DeadLetterKey(entry.service, entry.region).counter().inc()
        key = (entry.service, entry.region)
        self._written[key] = self._written.get(key, 0) + 1

    def finish_bundle(self) -> None:
        # Written before the bundle completes, so before the SQS message is deleted.
        try:
            if self._target.type == "sqs":
                self._send_sqs()
            else:
                self._write_files()
        except Exception as e:
            raise CollectorError("OUT-003", f"cannot write dead letters to {self._where()}: {e}") \
                from e
        for (service, region), n in self._written.items():  # counted once written
            self._stats.add("dead_lettered", service, region, n)
        self._pending = {}
        self._written = {}

    def _where(self) -> str:
        return self._target.queue_url if self._target.type == "sqs" else self._target.directory

    def _write_files(self) -> None:
        if not self._pending:
            return
        directory = Path(self._target.directory)
        directory.mkdir(parents=True, exist_ok=True)
        for service, lines in self._pending.items():
            path = directory / f"{service}.jsonl"
            # One write per bundle in append mode: concurrent writers don't interleave lines.
            with open(path, "ab") as f:
                f.write(("\n".join(lines) + "\n").encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())

    def _send_sqs(self) -> None:
        if not self._pending:
            return
        if self._access is None:
            raise CollectorError("OUT-003", "an SQS dead-letter queue needs AWS access")
        client = self._access.client("sqs", self._target.region)
        lines = [line for group in self._pending.values() for line in group]
        for batch in _sqs_batches(lines):
            entries = [{"Id": str(n), "MessageBody": body} for n, body in enumerate(batch)]
            result = client.send_message_batch(QueueUrl=self._target.queue_url, Entries=entries)
            if result.get("Failed"):
                raise CollectorError("OUT-003", f"SQS refused {len(result['Failed'])} dead letters")


def _sqs_batches(lines: list[str], max_bytes: int = 250_000) -> list[list[str]]:
    """Groups of at most 10 entries and max_bytes, as SendMessageBatch takes them."""
    batches: list[list[str]] = []
    size = 0
    for line in lines:
        n = len(line.encode("utf-8"))
        if not batches or len(batches[-1]) == 10 or size + n > max_bytes:
            batches.append([])
            size = 0
        batches[-1].append(line)
        size += n
    return batches


class WriteDeadLetters(beam.PTransform):
    """Writes ``DeadLetter`` entries to a directory or an SQS queue, before the bundle ends.

    Args:
      target: a ``DeadLetterTarget``.
      access: an ``AwsAccess``, needed only for an SQS target.
      stats: the run's statistics (a ``StatsHandle``, io/stats.py): entries written.
    """

    def __init__(self, target: DeadLetterTarget, access=None, stats=None) -> None:
        super().__init__()
        self._fn = _WriteDeadLettersFn(target, access, stats)

    def expand(self, pcoll):
        return pcoll | "Write" >> beam.ParDo(self._fn)
