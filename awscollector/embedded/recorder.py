"""What an embedded Devo endpoint received: events per tag, counts, and `<tag>.log` files.

The syslog relay and the HTTP endpoint record alike through this, so tests read either
with the same calls::

    recorder = EventRecorder(out_dir="demo-out")
    recorder.record({"my.app.table": [b"one", b"two"]})
    recorder.counts()                 # {"my.app.table": 2}
    recorder.wait_for_total(2, 5.0)   # True
    recorder.close_files()
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

MAX_BAD_LINES = 1000
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]")


class EventRecorder:
    """Events per tag, thread-safe.

    With out_dir, each message is also appended to `out_dir/<tag>.log`, one line per
    event (characters other than letters, digits, ".", "_" and "-" in a tag become "_");
    close_files() flushes and closes them. keep_events=False keeps counts only, for
    benchmarks. `lock` lets the owner share one lock between its own state and this
    (``cond`` is a condition on it, notified whenever events are recorded).
    """

    def __init__(self, out_dir: str | Path | None = None, keep_events: bool = True,
                 lock: threading.Lock | None = None) -> None:
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.keep_events = keep_events
        self.lock = lock or threading.Lock()
        self.cond = threading.Condition(self.lock)
        self._counts: dict[str, int] = {}
        self._events: dict[str, list[str]] = {}
        self._bad: list[bytes] = []
        self._total = 0
        self._files_lock = threading.Lock()
        self._files: dict[str, BinaryIO] = {}

    def record(self, batch: dict[str, list[bytes]], bad: Iterable[bytes] = (),
               valid: Callable[[], bool] | None = None) -> bool:
        """Record messages per tag (and lines that did not parse).

        ``valid`` is checked under the lock just before the events are counted: a
        connection killed meanwhile records nothing (its files are written already,
        like a crashed relay's disk). False when nothing was recorded for that reason.
        """
        if self.out_dir is not None and batch:
            self._write_files(batch)
        decoded: dict[str, list[str]] = {}
        if self.keep_events:
            decoded = {t: [m.decode("utf-8", "replace") for m in ms] for t, ms in batch.items()}
        bad = list(bad)
        # One lock per batch, not per line: the benchmark pushes a million events through.
        with self.cond:
            if valid is not None and not valid():
                return False
            for tag, msgs in batch.items():
                self._counts[tag] = self._counts.get(tag, 0) + len(msgs)
                self._total += len(msgs)
                if self.keep_events:
                    self._events.setdefault(tag, []).extend(decoded[tag])
            room = MAX_BAD_LINES - len(self._bad)
            if bad and room > 0:
                self._bad.extend(bad[:room])
            self.cond.notify_all()
        return True

    def counts(self) -> dict[str, int]:
        with self.lock:
            return dict(self._counts)

    def total(self) -> int:
        with self.lock:
            return self._total

    def events(self, tag: str) -> list[str]:
        """Messages received for tag, in arrival order."""
        if not self.keep_events:
            raise RuntimeError("made with keep_events=False: only counts are kept")
        with self.lock:
            return list(self._events.get(tag, ()))

    def bad_lines(self) -> list[bytes]:
        """Lines that did not parse (the first MAX_BAD_LINES of them)."""
        with self.lock:
            return list(self._bad)

    def wait_for_total(self, n: int, timeout: float) -> bool:
        """Wait until at least n events were recorded; False on timeout."""
        with self.cond:
            return self.cond.wait_for(lambda: self._total >= n, timeout)

    def reset(self) -> None:
        """Forget events and counts (files in out_dir are left as they are)."""
        with self.lock:
            self._counts.clear()
            self._events.clear()
            self._bad.clear()
            self._total = 0

    def close_files(self) -> None:
        with self._files_lock:
            files, self._files = self._files, {}
        for f in files.values():
            f.close()

    def _write_files(self, batch: dict[str, list[bytes]]) -> None:
        assert self.out_dir is not None
        with self._files_lock:
            for tag, msgs in batch.items():
                f = self._files.get(tag)
                if f is None:
                    self.out_dir.mkdir(parents=True, exist_ok=True)
                    # The tag comes off the network: keep it from naming a path.
                    name = _UNSAFE_FILENAME.sub("_", tag) or "_"
                    f = self._files[tag] = open(self.out_dir / f"{name}.log", "ab")
                f.write(b"\n".join(msgs) + b"\n")
