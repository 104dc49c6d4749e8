"""How a run tells its readers to stop polling.

A ``StopSignal`` is made by whoever runs the pipeline and passed to the readers
as an argument; it is small and picklable. Through Beam's ``Shared`` handle,
every copy of it in one process reaches the same flag::

    stop = StopSignal()
    pipeline | ReadFromSqs(queues, access, stop=stop)
    signal.signal(signal.SIGTERM, lambda *_: stop.request())

On the DirectRunner the readers run in the process that made the signal, so
``request()`` reaches them: they stop polling, what they received is delivered
and deleted, and the pipeline ends. On Flink the readers run in other processes
(other machines) that no flag of ours reaches: there the run is stopped through
the job itself, with a savepoint (see ``awscollector/flink/rest.py``).
"""

from __future__ import annotations

import threading

from apache_beam.utils.shared import Shared


class _Flag:
    """A threading.Event that Beam's Shared can hold (it needs a weak reference)."""

    def __init__(self) -> None:
        self.event = threading.Event()


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
        self._get().event.set()

    def requested(self) -> bool:
        return self._get().event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, less if a stop is requested; whether it was."""
        return self._get().event.wait(seconds)

    def __getstate__(self) -> dict:
        return {"_shared": self._shared}

    def __setstate__(self, state: dict) -> None:
        self._shared = state["_shared"]
        self._flag = None

    def __repr__(self) -> str:
        return f"StopSignal(requested={self._flag is not None and self._flag.event.is_set()})"
