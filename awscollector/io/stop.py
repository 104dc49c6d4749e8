"""How a run tells its readers to stop polling.

A ``StopSignal`` is made by whoever runs the pipeline and passed to the readers
as an argument; it is small and picklable. Through Beam's ``Shared`` handle,
every copy of it in one process reaches the same flag::

    stop = StopSignal()
    pipeline | ReadFromSqs(queues, access, stop=stop)
    signal.signal(signal.SIGTERM, lambda *_: stop.request())

On the DirectRunner the readers run in the process that made the signal, so
``request()`` reaches them: they stop polling, what they received is delivered
and deleted, and the pipeline ends. An object still being read ``DRAIN_SECONDS``
after the request is abandoned (``abandon``), so that a large one cannot hold the
run past a container platform's grace period: its SQS message is released
instead of deleted, and the next run reads the object again.

On Flink the readers run in other processes (other machines) that no flag of ours
reaches: there the run is stopped through the job itself, with a savepoint (see
``awscollector/flink/rest.py``).
"""

from __future__ import annotations

import threading
import time

from apache_beam.utils.shared import Shared

# Seconds after a stop request during which objects in flight are still read whole;
# then they are abandoned. With the delivery of what was read and the pipeline's end,
# a run stops well within the 30 s that Docker and Kubernetes give by default.
DRAIN_SECONDS = 8.0
# Seconds after a stop request from which outputs stop waiting for flushes to be
# confirmed (a slow or hung receiver): the run ends, their messages go back to SQS.
GIVE_UP_SECONDS = 15.0


class _Flag:
    """A threading.Event that Beam's Shared can hold (it needs a weak reference)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.requested_at = 0.0
        self.lock = threading.Lock()
        self.abandoned: set[str] = set()  # SQS message ids


class StopSignal:
    """A stop request for the readers of one run, shared by the copies in one process."""

    def __init__(self) -> None:
        self._shared = Shared()
        self._flag: _Flag | None = None

    def _get(self) -> _Flag:
        if self._flag is None:
            # The strong reference keeps the flag alive as long as this copy is.
            self._flag = self._shared.acquire(_Flag)
        return self._flag

    def request(self) -> None:
        """Ask the readers of this process to stop polling."""
        flag = self._get()
        if not flag.event.is_set():
            flag.requested_at = time.monotonic()
        flag.event.set()

    def requested(self) -> bool:
        return self._get().event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, less if a stop is requested; whether it was."""
        return self._get().event.wait(seconds)

    def draining_over(self, drain_seconds: float = DRAIN_SECONDS) -> bool:
        """Whether a stop was requested more than ``drain_seconds`` ago: time to
        abandon what is still being read (or, after GIVE_UP_SECONDS, delivered)."""
        flag = self._get()
        return flag.event.is_set() and time.monotonic() - flag.requested_at >= drain_seconds

    def abandon(self, message_id: str) -> None:
        """The input of an SQS message was not read whole: release it, don't delete it."""
        flag = self._get()
        with flag.lock:
            flag.abandoned.add(message_id)

    def take_abandoned(self, message_ids: list[str]) -> set[str]:
        """Which of ``message_ids`` were abandoned (forgotten once asked)."""
        flag = self._get()
        with flag.lock:
            found = flag.abandoned.intersection(message_ids)
            flag.abandoned.difference_update(found)
        return found

    def __getstate__(self) -> dict:
        return {"_shared": self._shared}

    def __setstate__(self, state: dict) -> None:
        self._shared = state["_shared"]
        self._flag = None

    def __repr__(self) -> str:
        return f"StopSignal(requested={self._flag is not None and self._flag.event.is_set()})"
