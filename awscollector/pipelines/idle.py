"""``--until-idle`` where the readers run elsewhere: watched from the submitting process.

On the DirectRunner each reader stops once its queue returned nothing for the
idle time, and the pipeline ends. A Flink streaming job does not end when its
readers do, so on Flink the submitting process watches the queues instead: once
every queue has held nothing, neither waiting nor in flight (received and not yet
deleted), for the idle time, and every API stream's checkpoint covers the time
up to now less its lag as of the run's start (a checkpoint moves only after the
Flink checkpoint that covers the pages), the run stops the job with a savepoint.
"""

from __future__ import annotations

import logging
import time

from botocore.exceptions import BotoCoreError, ClientError

from awscollector.io.access import AwsAccess
from awscollector.io.api import caught_up, checkpoint_key, target_of
from awscollector.io.pullers import ApiStream
from awscollector.io.sqs import SqsQueue

log = logging.getLogger(__name__)

_COUNTS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
           "ApproximateNumberOfMessagesDelayed")


class QueuesIdle:
    """Whether every queue of a run has been empty for ``seconds``."""

    def __init__(self, access: AwsAccess, queues: list[SqsQueue], seconds: float) -> None:
        self._access = access
        self._queues = sorted({(q.region, q.queue) for q in queues})
        self._seconds = seconds
        self._urls: dict[tuple[str, str], str] = {}
        self._empty_since: float | None = None

    def __call__(self) -> bool:
        if self._messages():
            self._empty_since = None
            return False
        now = time.monotonic()
        if self._empty_since is None:
            self._empty_since = now
        return now - self._empty_since >= self._seconds

    def _messages(self) -> int:
        total = 0
        for region, queue in self._queues:
            client = self._access.client("sqs", region)
            try:
                url = self._urls.get((region, queue))
                if url is None:
                    url = queue if queue.startswith(("http://", "https://")) else \
                        client.get_queue_url(QueueName=queue)["QueueUrl"]
                    self._urls[(region, queue)] = url
                attrs = client.get_queue_attributes(QueueUrl=url, AttributeNames=list(_COUNTS))
            except (ClientError, BotoCoreError) as e:
                log.warning("AWS-008 cannot read the depth of %s in %s: %s", queue, region, e)
                return 1  # not known to be empty
            total += sum(int(attrs["Attributes"].get(name, 0)) for name in _COUNTS)
        return total


class ApisCaughtUp:
    """Whether every API stream of a run has delivered up to where the run aims."""

    def __init__(self, checkpoints, streams: list[ApiStream]) -> None:
        self._checkpoints = checkpoints
        self._left = {s.key: (s, target_of(s)) for s in streams}

    def __call__(self) -> bool:
        for key, (stream, target) in list(self._left.items()):
            try:
                saved = self._checkpoints.load(checkpoint_key(stream))
            except Exception as e:  # a checkpoint being replaced: ask again later
                log.debug("checkpoint of %s not read: %s", stream.stream, e)
                return False
            if not caught_up(stream, saved, target):
                return False
            del self._left[key]
        return True
