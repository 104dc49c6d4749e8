"""Read SQS messages, deleting each only after its bundle has been delivered.

``ReadFromSqs`` is a splittable DoFn that long-polls one queue per reader. Each
bundle receives a few batches of messages and then checkpoints
(``defer_remainder``); the runner completes the bundle only after every step
fused after it (parsing, the Devo sink, the dead-letter writer) has finished,
and only then runs the bundle finalizer that deletes the messages. A crash
before that leaves them in the queue, and SQS delivers them again.

While a message is in flight its visibility timeout is extended in the
background, so a slow object (or, on Flink, a wait for the next checkpoint) does
not hand it to a second reader. When the reader's worker shuts down (the run
ends, fails or is stopped), what it received and did not delete is made visible
again at once, so the next run gets it without waiting out the timeout.

A run stops its readers through the ``StopSignal`` it passes in (io/stop.py):
they stop polling, and what they received is delivered and deleted.

Usage::

    queues = [SqsQueue("non-cloudwatch-logs", "us-east-1", "aws-logs", reader=0)]
    messages = pipeline | ReadFromSqs(queues, aws_access, idle_seconds=10)

With ``idle_seconds`` the read is bounded: a reader stops once its queue has
returned nothing for that long. Without it the read never ends (streaming).

Each reader is one element of a splittable DoFn, named by a string key. Flink
places elements on its parallel subtasks by a hash of that key;
``spread_over=N`` picks keys that put the readers on N subtasks in turn, so that
``readers: N`` really run in parallel there.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.metrics import Metrics
from apache_beam.transforms.core import RestrictionProvider
from botocore.exceptions import BotoCoreError, ClientError

from awscollector.awserrors import aws_error
from awscollector.flink.partition import spread_keys
from awscollector.io.access import AwsAccess
from awscollector.io.counters import STATS, stats_name
from awscollector.io.stats import StatsHandle, attached
from awscollector.io.stop import StopSignal

log = logging.getLogger(__name__)

_END = sys.maxsize  # a reader's restriction is [next poll, _END): it ends only when told


@dataclass(frozen=True)
class SqsQueue:
    """One reader of one queue: a queue name or URL, in a region, for a service."""

    service: str
    region: str
    queue: str  # name or https URL
    reader: int = 0
    max_receive_count: int | None = None  # received more often: dead-lettered, not parsed

    @property
    def is_url(self) -> bool:
        return self.queue.startswith(("http://", "https://"))

    @property
    def key(self) -> str:
        """The reader's name: its element in the pipeline."""
        return f"{self.service}|{self.region}|{self.queue}|{self.reader}"


@dataclass(frozen=True)
class SqsMessage:
    """A received message, with where it came from (kept for dead-letter entries)."""

    service: str
    region: str
    queue_url: str
    message_id: str
    body: str
    receive_count: int = 1
    max_receive_count: int | None = None  # its queue's

    def received_too_often(self) -> bool:
        """Received more than ``max_receive_count`` times: every earlier attempt failed
        (a run crashed or failed on it), so it goes to the dead letter instead of
        blocking its queue."""
        return self.max_receive_count is not None and self.receive_count > self.max_receive_count


class _PollRestrictionProvider(RestrictionProvider):
    def initial_restriction(self, element: SqsQueue) -> OffsetRange:
        return OffsetRange(0, _END)

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return OffsetRestrictionTracker(restriction)

    def restriction_size(self, element, restriction) -> int:
        return 1

    def split(self, element, restriction):
        yield restriction  # one reader is one restriction; `readers` makes more elements


_READER_RESTRICTION = beam.DoFn.RestrictionParam(_PollRestrictionProvider())


class VisibilityKeeper:
    """Extends the visibility of in-flight messages until they are deleted or released."""

    def __init__(self, timeout: int) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        # (queue url, message id) -> (client, receipt handle)
        self._inflight: dict[tuple[str, str], tuple[object, str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqs-visibility", daemon=True)
        self._thread.start()

    def track(self, client, url: str, messages: list[dict]) -> None:
        with self._lock:
            for m in messages:
                self._inflight[(url, m["MessageId"])] = (client, m["ReceiptHandle"])

    def forget(self, url: str, message_ids: list[str]) -> None:
        with self._lock:
            for mid in message_ids:
                self._inflight.pop((url, mid), None)

    def release_all(self) -> None:
        """Make every in-flight message visible again now (the run failed or stops)."""
        self._change_all(0)
        with self._lock:
            self._inflight.clear()

    def in_flight(self) -> int:
        with self._lock:
            return len(self._inflight)

    def close(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        interval = max(1.0, self.timeout / 3)
        while not self._stop.wait(interval):
            try:
                self._change_all(self.timeout)
            except Exception as e:  # keep the thread alive; SQS may recover
                log.warning("AWS-008 extending SQS visibility failed: %s", e)

    def _change_all(self, timeout: int) -> None:
        with self._lock:
            items = list(self._inflight.items())
        by_queue: dict[tuple[int, str], list] = {}
        for (url, mid), (client, handle) in items:
            by_queue.setdefault((id(client), url), []).append((client, mid, handle))
        for (_, url), entries in by_queue.items():
            client = entries[0][0]
            for i in range(0, len(entries), 10):
                batch = [{"Id": str(n), "ReceiptHandle": h, "VisibilityTimeout": timeout}
                         for n, (_, _, h) in enumerate(entries[i:i + 10])]
                client.change_message_visibility_batch(QueueUrl=url, Entries=batch)


class _ReadSqsFn(beam.DoFn):
    def __init__(self, queues: dict[str, SqsQueue], access: AwsAccess, stop: StopSignal | None,
                 idle_seconds: float | None, bundle_seconds: float,
                 max_messages_per_bundle: int, visibility_timeout: int,
                 wait_seconds: int, log_level: int | None,
                 stats: StatsHandle | None = None) -> None:
        self._queues = queues  # element key -> the reader it names
        self._stats_handle = stats
        self._log_level = log_level
        self._access = access
        self._stop = stop or StopSignal()
        self._idle_seconds = idle_seconds
        self._bundle_seconds = bundle_seconds
        self._max_messages = max_messages_per_bundle
        self._visibility = visibility_timeout
        self._wait_seconds = wait_seconds

    def setup(self) -> None:
        if self._log_level is not None:
            # On Flink this runs in a worker process that the CLI's logging setup never
            # reached; the level (globals.debug) travels with the reader.
            logging.getLogger("awscollector").setLevel(self._log_level)
        self._keeper = VisibilityKeeper(self._visibility)
        self._urls: dict[SqsQueue, str] = {}
        self._idle_since: dict[SqsQueue, float] = {}
        self._received = Metrics.counter("sqs", "messages_received")
        self._deleted = Metrics.counter("sqs", "messages_deleted")
        self._stats = attached(self._stats_handle)
        self._oldest: dict[SqsQueue, object] = {}  # Beam gauges of the oldest held message
        self._debug = log.isEnabledFor(logging.DEBUG)  # once: receives are the hot path

    def teardown(self) -> None:
        # The worker is going away (the run ended, failed or was stopped): whatever was
        # received and not deleted goes back to the queue now, not after the timeout.
        self._keeper.close()
        if self._keeper.in_flight():
            log.info("releasing %d received and undeleted SQS messages",
                     self._keeper.in_flight())
            try:
                self._keeper.release_all()
            except Exception as e:  # they come back after the visibility timeout anyway
                log.warning("AWS-008 releasing in-flight SQS messages failed: %s", e)
        self._stats.release_queues(self._urls.values())
        if self._stats_handle is not None:
            self._stats_handle.detach()

    def process(self, key: str,
                finalizer=beam.DoFn.BundleFinalizerParam,
                tracker=_READER_RESTRICTION,
                ) -> Iterator[SqsMessage]:
        # The finalizer parameter must come before the restriction: Beam 2.77 binds
        # them by position otherwise ("got multiple values for argument 'tracker'").
        queue = self._queues[key]
        client = self._access.client("sqs", queue.region)
        url = self._queue_url(client, queue)
        position = tracker.current_restriction().start
        deadline = time.monotonic() + self._bundle_seconds
        received = 0
        while True:
            if self._stop.requested():
                tracker.try_claim(_END)
                return
            if self._idle_seconds is not None and self._idle_for(queue) >= self._idle_seconds:
                log.info("queue %s (%s, reader %d) idle for %.0fs: reader done",
                         queue.queue, queue.region, queue.reader, self._idle_for(queue))
                tracker.try_claim(_END)  # nothing more to claim: the restriction is done
                return
            if not tracker.try_claim(position):
                return
            position += 1
            # Long-poll when the bundle starts; once it has messages, only take what
            # is there at once, so a bundle (and its delivery) doesn't wait on an
            # empty queue.
            messages = self._receive(client, url, queue, long_poll=received == 0)
            if messages:
                self._idle_since.pop(queue, None)
                self._keeper.track(client, url, messages)
                finalizer.register(self._deleter(client, url, queue, messages))
                self._received.inc(len(messages))
                self._stats.add("messages", queue.service, queue.region, len(messages))
                self._stats.hold(queue.service, queue.region, url,
                                 [m["MessageId"] for m in messages])
                received += len(messages)
                for m in messages:
                    count = int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
                    yield SqsMessage(queue.service, queue.region, url, m["MessageId"],
                                     m["Body"], count, queue.max_receive_count)
            else:
                self._idle_since.setdefault(queue, time.monotonic())
            self._gauge(queue).set(int(self._stats.oldest_unacked(queue.service, queue.region)))
            if not messages or received >= self._max_messages or time.monotonic() >= deadline:
                tracker.defer_remainder()
                return

    def _gauge(self, queue: SqsQueue):
        gauge = self._oldest.get(queue)
        if gauge is None:
            gauge = self._oldest[queue] = Metrics.gauge(
                STATS, stats_name("oldest_unacked_seconds", queue.service, queue.region))
        return gauge

    def _idle_for(self, queue: SqsQueue) -> float:
        since = self._idle_since.get(queue)
        return 0.0 if since is None else time.monotonic() - since

    def _receive(self, client, url: str, queue: SqsQueue, long_poll: bool) -> list[dict]:
        wait = self._wait_seconds if long_poll else 0
        if self._idle_seconds is not None:
            remaining = self._idle_seconds - self._idle_for(queue)
            wait = max(0, min(wait, math.ceil(remaining)))
        started = time.monotonic()
        try:
            response = client.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait,
                VisibilityTimeout=self._visibility,
                AttributeNames=["ApproximateReceiveCount"])
        except (ClientError, BotoCoreError) as e:
            raise aws_error(e, f"sqs ReceiveMessage on {url}") from e
        messages = response.get("Messages", [])
        if self._debug:
            log.debug("sqs ReceiveMessage %s (%s, reader %d): %d messages in %.2fs (wait %ds)",
                      url, queue.region, queue.reader, len(messages),
                      time.monotonic() - started, wait)
        return messages

    def _queue_url(self, client, queue: SqsQueue) -> str:
        url = self._urls.get(queue)
        if url is None:
            if queue.is_url:
                url = queue.queue
            else:
                try:
                    url = client.get_queue_url(QueueName=queue.queue)["QueueUrl"]
                except (ClientError, BotoCoreError) as e:
                    raise aws_error(e, f"sqs GetQueueUrl {queue.queue} in {queue.region}") from e
            self._urls[queue] = url
        return url

    def _deleter(self, client, url: str, queue: SqsQueue, messages: list[dict]):
        entries = [(m["MessageId"], m["ReceiptHandle"]) for m in messages]

        def delete() -> None:
            ids = [mid for mid, _ in entries]
            # Stopping: a message whose object was abandoned mid-read goes back instead.
            abandoned = self._stop.take_abandoned(ids)
            done = [(mid, h) for mid, h in entries if mid not in abandoned]
            failures = 0
            try:
                if abandoned:
                    try:
                        self._release(client, url, [h for m, h in entries if m in abandoned])
                    except (ClientError, BotoCoreError) as e:  # back after the timeout
                        log.warning("AWS-008 releasing %d abandoned messages to %s failed: %s",
                                    len(abandoned), url, e)
                for i in range(0, len(done), 10):
                    batch = [{"Id": str(n), "ReceiptHandle": h}
                             for n, (_, h) in enumerate(done[i:i + 10])]
                    result = client.delete_message_batch(QueueUrl=url, Entries=batch)
                    for failed in result.get("Failed", []):
                        failures += 1
                        log.warning("AWS-009 could not delete a delivered message from %s (%s):"
                                    " it will be delivered again", url, failed.get("Code"))
                self._deleted.inc(len(done))
            except (ClientError, BotoCoreError) as e:
                failures = len(done)
                log.warning("AWS-009 could not delete %d delivered messages from %s: %s;"
                            " they will be delivered again", len(done), url, e)
            finally:
                self._keeper.forget(url, ids)
                self._stats.release(queue.service, queue.region, url, ids)
            if self._debug:
                log.debug("sqs DeleteMessageBatch %s (%s, reader %d): %d deleted, %d failed, "
                          "%d released", url, queue.region, queue.reader,
                          len(done) - failures, failures, len(abandoned))

        return delete

    @staticmethod
    def _release(client, url: str, handles: list[str]) -> None:
        """Visible again at once, for the next run (a failure: after the timeout)."""
        for i in range(0, len(handles), 10):
            client.change_message_visibility_batch(QueueUrl=url, Entries=[
                {"Id": str(n), "ReceiptHandle": h, "VisibilityTimeout": 0}
                for n, h in enumerate(handles[i:i + 10])])


class ReadFromSqs(beam.PTransform):
    """Reads messages from SQS queues; each is deleted after its bundle is delivered.

    Args:
      queues: one ``SqsQueue`` per reader (several readers of a queue: reader=0..n-1).
      access: how to reach AWS (``AwsAccess``).
      stop: a ``StopSignal`` that makes the readers stop polling (SIGINT/SIGTERM).
      idle_seconds: bounded mode: a reader stops after its queue was empty this long.
        None: keep polling forever (streaming).
      bundle_seconds: how long a bundle reads before it checkpoints and delivers.
      max_messages_per_bundle: or after this many messages.
      visibility_timeout: seconds a received message stays hidden; extended while in flight.
      wait_seconds: long-poll wait of each ReceiveMessage call. Short, because the
        readers placed on one worker (all of them on the DirectRunner) take turns:
        a long wait on an empty queue would hold up a busy one.
      spread_over: on Flink, the pipeline's parallelism: readers are named so that
        Flink places them on its subtasks in turn.
      max_parallelism: on Flink, its number of key groups, if set (``--max_parallelism``).
      log_level: the level of the "awscollector" loggers in the worker processes.
      stats: the run's statistics (io/stats.py): messages received, and the age of
        the oldest one not yet deleted.
    """

    def __init__(self, queues: list[SqsQueue], access: AwsAccess, *,
                 stop: StopSignal | None = None, idle_seconds: float | None = None,
                 bundle_seconds: float = 5.0, max_messages_per_bundle: int = 100,
                 visibility_timeout: int = 120, wait_seconds: int = 1,
                 spread_over: int | None = None, max_parallelism: int | None = None,
                 log_level: int | None = None, stats: StatsHandle | None = None) -> None:
        super().__init__()
        keys = [q.key for q in queues]
        if spread_over and spread_over > 1:
            keys = spread_keys(keys, spread_over, max_parallelism)
        self._keys = keys
        self._fn = _ReadSqsFn(dict(zip(keys, queues, strict=True)), access, stop, idle_seconds,
                              bundle_seconds, max_messages_per_bundle, visibility_timeout,
                              wait_seconds, log_level, stats)

    def expand(self, pbegin):
        return (pbegin
                | "Readers" >> beam.Create(self._keys)
                | "Poll" >> beam.ParDo(self._fn))
