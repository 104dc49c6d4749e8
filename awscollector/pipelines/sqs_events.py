"""EventBridge events from SQS queues, as Devo events.

    SQS message -> EventBridge event (decoded, SNS-unwrapped) -> FormatBatch (the
      format that recognizes it) -> EventBatch per Devo table (parsed by its format)

AWS services announce what happens to them as EventBridge events; a rule sends
them to an SQS queue (io/eventrules.py has the rules' patterns). Each message is
one event. ``ReadEventsFromSqs`` composes the SQS reader (which deletes a
message only after its bundle's events and dead letters are written), the
decoding step here, and the same generic parse step as the S3 sources
(``ParseBatches``): the formats (transforms/eventbridge.py, securityhub.py,
guardduty_events.py) are in the registry, like any other.

Usage::

    queues = [SqsQueue("sqs-cloudwatch-consumer", "us-east-1", "security-events")]
    out = pipeline | ReadEventsFromSqs(queues, access, registry,
                                       types=("securityhub_events", "guardduty_events"))
    out["events"] | WriteToDevo(target)
    for name, pcoll in out.items():
        if name.startswith(DEAD_LETTER):
            pcoll | f"DL {name}" >> WriteDeadLetters(dl_target)

A message that is not JSON (SRC-011), not an EventBridge event (SRC-012) or an
event no format of ``types`` takes (SRC-013) is dead-lettered with its queue and
message id, and deleted like any other: the queue keeps flowing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics

from awscollector.errors import CollectorError
from awscollector.io.access import AwsAccess
from awscollector.io.deadletter import (
    DEAD_LETTER,
    DeadLetter,
    message_dead_letter,
    received_too_often,
)
from awscollector.io.routes import Routes
from awscollector.io.s3 import FormatBatch
from awscollector.io.sqs import ReadFromSqs, SqsMessage, SqsQueue
from awscollector.pipelines.s3_sqs import ParseBatches
from awscollector.transforms.eventbridge import decode_event
from awscollector.transforms.formats import RecordBatch, Registry

NOT_COLLECTED = "SRC-013"


class EventTask(NamedTuple):
    """An event to parse, and the SQS message it came in (for counters, dead letters).

    What ``ParseBatches`` needs of a task: ``message``, ``name`` and ``dead_letter``.
    """

    message: SqsMessage
    event_id: str
    source: str
    detail_type: str
    kind: str = ""  # its format's name

    @property
    def name(self) -> str:
        return f"event {self.event_id} ({self.source}, {self.detail_type})"

    def dead_letter(self, code: str, error: str, **source) -> DeadLetter:
        return message_dead_letter(self.message, code, error, event_id=self.event_id,
                                   event_source=self.source, detail_type=self.detail_type,
                                   type=self.kind, **source)



class DecodeEvents(beam.DoFn):
    """SqsMessage -> FormatBatch of its one EventBridge event, by the format that takes it.

    ``types`` may be the ``Routes`` of a queue several event services share: each
    event is then labelled with the service whose format recognizes it (formats are
    tried in the registry's order, specific ones first).
    """

    def __init__(self, registry: Registry, types: Iterable[str] | Routes) -> None:
        self._registry = registry
        self._routes = Routes.of(types)

    def setup(self) -> None:
        self._events = Metrics.counter("sqs_events", "events")

    def process(self, message: SqsMessage):
        if message.received_too_often():
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, received_too_often(message))
            return
        try:
            event = decode_event(message.body)
        except CollectorError as e:
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, message_dead_letter(
                message, e.code, e.message))
            return
        fmt = self._registry.classify_event(event, self._routes.types)
        task = EventTask(message, str(event.get("id", "")), event["source"],
                         event["detail-type"])
        if fmt is None:
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, task.dead_letter(
                NOT_COLLECTED, f"{task.name}: an event of a kind no service on this queue "
                               f"collects"))
            return
        self._events.inc()
        task = task._replace(message=self._routes.claim(message, fmt.type), kind=fmt.name)
        yield FormatBatch(task, fmt.name, RecordBatch(task.name, "", 0, [event]))


class ReadEventsFromSqs(beam.PTransform):
    """Collects the EventBridge events of ``types`` from SQS queues, as Devo events.

    Args:
      queues: the readers (``SqsQueue``), one per queue, region and reader index.
      access: an ``AwsAccess``.
      registry: the run's formats (the event formats are built in).
      types: the registry types the service collects (``service_events``;
        ``securityhub_events`` and ``guardduty_events``); or, for a queue several
        event services share, their ``Routes``.
      options: the service's parser options (``flatten``, ``auto_event_type``).
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
        batches = messages | "Events" >> beam.ParDo(
            DecodeEvents(self._registry, self._routes)).with_outputs(DEAD_LETTER,
                                                                     main="batches")
        parsed = batches.batches | "Parse" >> beam.ParDo(
            ParseBatches(self._registry, routes=self._routes)).with_outputs(
                DEAD_LETTER, main="events")
        return {"events": parsed.events,
                f"{DEAD_LETTER}/events": batches[DEAD_LETTER],
                f"{DEAD_LETTER}/parse": parsed[DEAD_LETTER]}
