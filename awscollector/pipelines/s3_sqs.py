"""The S3+SQS spine shared by every source that AWS writes to S3 and announces by SQS.

    SQS message -> notification -> ObjectTask (classified by key) -> FormatBatch
      (framed by its format) -> EventBatch per Devo table (parsed by its format)

``ReadFromS3Sqs`` composes the SQS reader, the notification parser, the
classifier (which format an object is, from the registry), the S3 reader and
the one generic parse step. It knows no format itself: a service says which
config types it collects, and the registry has the formats of those types.

Usage::

    out = pipeline | ReadFromS3Sqs(queues, access, registry, types=("vpc_flow_logs",))
    out["events"] | WriteToDevo(target)
    for name, pcoll in out.items():
        if name.startswith(DEAD_LETTER):
            pcoll | f"DL {name}" >> WriteDeadLetters(dl_target)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from awscollector.errors import CollectorError
from awscollector.io.access import AwsAccess
from awscollector.io.deadletter import (
    DEAD_LETTER,
    DeadLetter,
    notification_of,
    received_too_often,
)
from awscollector.io.delivery import EventBatch
from awscollector.io.routes import Routes
from awscollector.io.s3 import FormatBatch, ObjectTask, ReadS3Records
from awscollector.io.sqs import ReadFromSqs, SqsMessage, SqsQueue
from awscollector.io.stats import StatsHandle, attached
from awscollector.transforms.flatten import flatten_message
from awscollector.transforms.formats import SKIP, SNIFF, Registry
from awscollector.transforms.notifications import parse_notification

log = logging.getLogger(__name__)

MAX_SAMPLES = 100  # rejected records kept in one dead-letter entry


class ExtractObjects(beam.DoFn):
    """SqsMessage -> ObjectTask per announced object of one of ``types``.

    ``types`` may be the ``Routes`` of a queue several services share: each object
    is then labelled with the service that collects its type. Test events, and
    objects of types no one collects or skipped on purpose (CloudTrail digest
    files), are counted and logged, not dead-lettered.
    """

    def __init__(self, registry: Registry, types: Iterable[str] | Routes,
                 stats: StatsHandle | None = None) -> None:
        self._registry = registry
        self._routes = Routes.of(types)
        self._types = self._routes.types
        self._stats_handle = stats

    def setup(self) -> None:
        self._skipped = Metrics.counter("s3_sqs", "skipped")
        self._stats = attached(self._stats_handle)

    def teardown(self) -> None:
        if self._stats_handle is not None:
            self._stats_handle.detach()

    def _skip(self, message: SqsMessage) -> None:
        self._skipped.inc()
        self._stats.add("skipped", message.service, message.region)

    def process(self, message: SqsMessage):
        if message.received_too_often():
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, received_too_often(message))
            return
        try:
            notification = parse_notification(message.body)
        except CollectorError as e:
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, DeadLetter(
                message.service, message.region,
                {"queue_url": message.queue_url, "message_id": message.message_id},
                e.code, e.message, notification_of(message.body)))
            return
        if notification.kind == "test":
            log.info("skipped s3:TestEvent from %s (message %s)", message.queue_url,
                     message.message_id)
            self._skip(message)
            return
        if not notification.objects:
            # e.g. only ObjectRemoved records: nothing to collect, counted and logged
            log.info("skipped message %s from %s: no created object in it", message.message_id,
                     message.queue_url)
            self._skip(message)
            return
        for ref in notification.objects:
            task = ObjectTask(message, ref)
            try:
                found = self._registry.classify(ref.key, self._types)
            except CollectorError as e:
                yield beam.pvalue.TaggedOutput(DEAD_LETTER, task.dead_letter(e.code, e.message))
                continue
            if found.kind == SKIP:
                log.info("skipped s3://%s/%s (%s): %s", ref.bucket, ref.key, message.service,
                         found.reason)
                self._skip(message)
                continue
            if found.kind == SNIFF:  # its service is known once its format is
                yield task._replace(kind=SNIFF)
            else:
                yield task.as_format(self._registry[found.kind], self._routes)


class ParseBatches(beam.DoFn):
    """FormatBatch -> EventBatch per Devo table, by the batch's format's parser.

    What a parser rejects is dead-lettered, one entry per code and batch with up to
    100 of the records; what it skips on purpose is counted (``s3_sqs/skipped``,
    beside skipped objects) and logged; a parser that rejects the whole object (its
    header, say) gets one entry for the object, and nothing of it is delivered.

    Args:
      registry: the run's formats.
      options: the service's options, given to every parser (``auto_event_type``,
        ...); ``flatten: true`` flattens the messages of JSON formats.
      routes: for a queue several services share, each type's options instead.
      stats: the run's statistics (io/stats.py): records skipped on purpose.
    """

    def __init__(self, registry: Registry, options: Mapping[str, Any] | None = None,
                 routes: Routes | None = None, stats: StatsHandle | None = None) -> None:
        self._registry = registry
        self._options = dict(options or {})
        self._routes = routes
        self._stats_handle = stats

    def setup(self) -> None:
        self._rejected = Metrics.counter("parse", "rejected_records")
        self._skipped = Metrics.counter("s3_sqs", "skipped")  # as objects skipped on purpose
        self._stats = attached(self._stats_handle)

    def teardown(self) -> None:
        if self._stats_handle is not None:
            self._stats_handle.detach()

    def process(self, item: FormatBatch):
        task, batch = item.task, item.batch
        fmt = self._registry[item.format]
        options = self._routes.options(fmt.type) if self._routes else self._options
        try:
            parsed = fmt.parse(batch, options)
        except CollectorError as e:
            if batch.index == 0:  # one entry per object, for its first batch
                source = {}
                if batch.header:
                    source["header"] = batch.header[0][:500].decode("utf-8", "replace")
                yield beam.pvalue.TaggedOutput(DEAD_LETTER, task.dead_letter(
                    e.code, e.message + " (nothing of this object was delivered)", **source))
            return
        service, region = task.message.service, task.message.region
        for table, messages in parsed.events.items():
            if fmt.json_messages and options.get("flatten"):
                messages = [flatten_message(m) for m in messages]
            yield EventBatch(table, messages, service, region)
        for reason, n in parsed.skipped.items():
            log.info("skipped %d records of %s (batch %d): %s", n, task.name, batch.index,
                     reason)
            self._skipped.inc(n)
            self._stats.add("skipped", service, region, n)
        if parsed.rejected:
            self._rejected.inc(len(parsed.rejected))
            yield from self._dead_letters(task, batch.index, parsed.rejected)

    @staticmethod
    def _dead_letters(task: ObjectTask, index: int, rejected: list):
        by_code: dict[str, list] = {}
        for r in rejected:
            by_code.setdefault(r.code, []).append(r)
        for code, group in by_code.items():
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, task.dead_letter(
                code, f"{task.name}: {group[0].reason}", batch=index, rejected=len(group),
                records=[_shown(r.record) for r in group[:MAX_SAMPLES]]))


def _shown(record: Any) -> Any:
    """A rejected record as a dead-letter entry keeps it: text, or JSON as it was."""
    if isinstance(record, bytes):
        return record[:1000].decode("utf-8", "replace")
    if isinstance(record, str):
        return record[:1000]
    return record


class ReadFromS3Sqs(beam.PTransform):
    """Collects the S3 objects of ``types`` announced on SQS queues, as Devo events.

    Args:
      queues: the readers (``SqsQueue``), one per queue, region and reader index.
      access: an ``AwsAccess``.
      registry: the run's formats.
      types: the config types the service collects; or, for queues several services
        share, their ``Routes`` (each with its own types and options).
      options: the service's parser options (``flatten``, ``auto_event_type``, ...).
      sqs_options: keyword arguments for ``ReadFromSqs`` (idle_seconds, stop, ...).

    Returns ``{"events": EventBatch, "dead_letter/<step>": DeadLetter, ...}``.
    """

    def __init__(self, queues: list[SqsQueue], access: AwsAccess, registry: Registry,
                 types: Iterable[str] | Routes, options: Mapping[str, Any] | None = None,
                 **sqs_options) -> None:
        super().__init__()
        self._queues = queues
        self._access = access
        self._registry = registry
        self._routes = Routes.of(types, options)
        self._sqs_options = sqs_options

    def expand(self, pbegin) -> dict[str, beam.PCollection]:
        messages = pbegin | "ReadSqs" >> ReadFromSqs(self._queues, self._access,
                                                     **self._sqs_options)
        stats = self._sqs_options.get("stats")  # the run's statistics (io/stats.py)
        tasks = messages | "Notifications" >> beam.ParDo(
            ExtractObjects(self._registry, self._routes, stats)).with_outputs(
                DEAD_LETTER, main="tasks")
        batches = tasks.tasks | "ReadS3" >> beam.ParDo(
            ReadS3Records(self._access, self._registry, self._routes, stats=stats,
                          stop=self._sqs_options.get("stop"))).with_outputs(
                DEAD_LETTER, main="batches")
        parsed = batches.batches | "Parse" >> beam.ParDo(
            ParseBatches(self._registry, routes=self._routes, stats=stats)).with_outputs(
                DEAD_LETTER, main="events")
        return {"events": parsed.events,
                f"{DEAD_LETTER}/notifications": tasks[DEAD_LETTER],
                f"{DEAD_LETTER}/objects": batches[DEAD_LETTER],
                f"{DEAD_LETTER}/parse": parsed[DEAD_LETTER]}
