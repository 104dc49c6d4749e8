"""A measured process and its descendants, read from Linux's /proc while they run.

``aws-collector run --processes 2`` is a supervisor whose children do the work, and
the baseline's two-process form is a parent with two loop processes: the CPU and
the memory of such a phase are those of the whole tree, not of the process the
benchmark started.

* CPU: user + system seconds of every live process of the tree, plus what each has
  from children it already reaped (cutime + cstime), so that a child which ended
  is still counted once (in its parent's figure) and never twice.
* Memory: each process's own peak (VmHWM), kept per pid while it is alive: a child's
  is read before it exits, since nothing reports it afterwards (wait4's ru_maxrss is
  a maximum over the children, and inherits this benchmark's own across fork).
"""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The direct children of pid (every thread's), [] if it is gone."""
    found = []
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(p) for p in path.read_text().split()]
        except (OSError, ValueError):
            pass  # the thread or the process ended meanwhile
    return found


def tree_pids(root: int) -> list[int]:
    """root and its live descendants, root first."""
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo += children(pid)
    return pids


def cpu_seconds(pid: int) -> float | None:
    """utime + stime + cutime + cstime of pid (its own and its reaped children's)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the ")": utime [11], stime [12], cutime [13], cstime [14].
    return sum(int(x) for x in fields[11:15]) / TICK


def tree_cpu_seconds(root: int) -> float | None:
    """The CPU seconds of the tree so far; None if root itself is gone."""
    total = cpu_seconds(root)
    if total is None:
        return None
    for pid in tree_pids(root)[1:]:
        total += cpu_seconds(pid) or 0.0  # one that just ended is in its parent's cutime
    return total


def vm_hwm_kb(pid: int) -> int:
    """The peak RSS of a running process (VmHWM), 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakMemory:
    """The peak RSS of each process of a tree, polled while they run.

    The tree is walked again every ``rescan`` samples only: finding children reads a
    file per thread (a collector has dozens, about 0.8 ms a walk), and this runs in
    the benchmark's process, whose CPU is reported as the relay's."""

    def __init__(self, root: int, rescan: int = 10) -> None:
        self.root, self.rescan = root, rescan
        self.peaks: dict[int, int] = {}  # pid -> highest VmHWM seen, kB
        self._pids: list[int] = []
        self._samples = 0

    def sample(self) -> None:
        if self._samples % self.rescan == 0:
            self._pids = tree_pids(self.root)
        self._samples += 1
        for pid in self._pids:
            self.peaks[pid] = max(self.peaks.get(pid, 0), vm_hwm_kb(pid))

    @property
    def root_mb(self) -> float:
        return self.peaks.get(self.root, 0) / 1024

    @property
    def max_mb(self) -> float:
        """The largest peak of any process of the tree."""
        return max(self.peaks.values(), default=0) / 1024

    @property
    def max_child_mb(self) -> float | None:
        """The largest peak of the root's descendants; None if it had none."""
        kids = [kb for pid, kb in self.peaks.items() if pid != self.root]
        return max(kids) / 1024 if kids else None
