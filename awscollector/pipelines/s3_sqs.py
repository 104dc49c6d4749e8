"""The S3+SQS spine shared by every source that AWS writes to S3 and announces by SQS.

    SQS message -> notification -> ObjectTask (classified) -> LineBatch

``ReadLinesFromS3Sqs`` composes the SQS reader, the notification parser, a
classifier (which source type an object is) and the S3 line reader. It returns
the line batches and the dead letters of each step; a service's pipeline parses
the lines of its format and writes the results.

Usage::

    read = pipeline | ReadLinesFromS3Sqs(queues, access, classify=my_classifier)
    read["lines"] | beam.ParDo(MyParser()) | WriteToDevo(target)
    for name, pcoll in read.items():
        if name.startswith(DEAD_LETTER):
            pcoll | f"DL {name}" >> WriteDeadLetters(dl_target)
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import apache_beam as beam
from apache_beam.metrics import Metrics

from awscollector.errors import CollectorError
from awscollector.io.access import AwsAccess
from awscollector.io.deadletter import DEAD_LETTER, DeadLetter, notification_of
from awscollector.io.s3 import ObjectTask, ReadS3Lines
from awscollector.io.sqs import ReadFromSqs, SqsMessage, SqsQueue
from awscollector.transforms.notifications import ObjectRef, parse_notification

log = logging.getLogger(__name__)

SKIP = "skip"  # a classifier's answer for objects collected on purpose by no one

# classify(ref) -> a type name, SKIP, or raises CollectorError (-> dead letter)
Classifier = Callable[[ObjectRef], str]


class ExtractObjects(beam.DoFn):
    """SqsMessage -> ObjectTask per announced object; test events are skipped."""

    def __init__(self, classify: Classifier) -> None:
        self._classify = classify

    def setup(self) -> None:
        self._skipped = Metrics.counter("s3_sqs", "skipped")

    def process(self, message: SqsMessage):
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
            self._skipped.inc()
            return
        if not notification.objects:
            # e.g. only ObjectRemoved records: nothing to collect, counted and logged
            log.info("skipped message %s from %s: no created object in it", message.message_id,
                     message.queue_url)
            self._skipped.inc()
            return
        for ref in notification.objects:
            task = ObjectTask(message, ref)
            try:
                kind = self._classify(ref)
            except CollectorError as e:
                yield beam.pvalue.TaggedOutput(DEAD_LETTER, task.dead_letter(e.code, e.message))
                continue
            if kind == SKIP:
                log.info("skipped s3://%s/%s: not a type %s collects", ref.bucket, ref.key,
                         message.service)
                self._skipped.inc()
                continue
            yield task._replace(kind=kind)


class ReadLinesFromS3Sqs(beam.PTransform):
    """Reads the lines of the S3 objects announced on SQS queues.

    Args:
      queues: the readers (``SqsQueue``), one per queue, region and reader index.
      access: an ``AwsAccess``.
      classify: tells each object's type from its reference.
      sqs_options: keyword arguments for ``ReadFromSqs`` (idle_seconds, ...).
    """

    def __init__(self, queues: list[SqsQueue], access: AwsAccess, classify: Classifier,
                 **sqs_options) -> None:
        super().__init__()
        self._queues = queues
        self._access = access
        self._classify = classify
        self._sqs_options = sqs_options

    def expand(self, pbegin) -> dict[str, beam.PCollection]:
        """Returns {"lines": LineBatch, "dead_letter/<step>": DeadLetter, ...}."""
        messages = pbegin | "ReadSqs" >> ReadFromSqs(self._queues, self._access,
                                                     **self._sqs_options)
        tasks = messages | "Notifications" >> beam.ParDo(
            ExtractObjects(self._classify)).with_outputs(DEAD_LETTER, main="tasks")
        lines = tasks.tasks | "ReadS3" >> beam.ParDo(
            ReadS3Lines(self._access)).with_outputs(DEAD_LETTER, main="lines")
        return {"lines": lines.lines,
                f"{DEAD_LETTER}/notifications": tasks[DEAD_LETTER],
                f"{DEAD_LETTER}/objects": lines[DEAD_LETTER]}
