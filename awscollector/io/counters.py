"""The Beam counters the run's summary is made of, named in one place.

A Beam counter is named by two strings, and only those strings reach the end of a
run (from Beam's result, or from Flink's REST API for a job on a cluster). The
counters of what was delivered and dead-lettered therefore carry their key in the
name. Here a key becomes a counter (``DeliveredKey.counter``) and, at the end of
the run, the names become keys again (``RunCounts.from_counters``); the rest of the
collector deals in the keys::

    DeliveredKey("devo", "non-cloudwatch-logs", "us-east-1", "cloud.aws.vpc.flow"
                 ).counter().inc(120)
    ...
    counts = RunCounts.from_counters(beam_counters(result))
    counts.delivered[DeliveredKey("devo", ...)]   # 120
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

DELIVERED = "delivered"  # events an output confirmed
DEAD_LETTER = "deadletter"  # dead-letter entries written
STATS = "stats"  # the statistics' counts, for Flink's metrics (io/stats.py)

_SEP = "|"


def _counter(namespace: str, name: str):
    from apache_beam.metrics import Metrics  # here: the supervisor of --processes has no Beam

    return Metrics.counter(namespace, name)


@dataclass(frozen=True)
class DeliveredKey:
    """Events of a service in a region that an output confirmed, per Devo table."""

    output: str
    service: str
    region: str
    table: str

    def name(self) -> str:
        return _SEP.join((self.output, self.service, self.region, self.table))

    def counter(self):
        return _counter(DELIVERED, self.name())


@dataclass(frozen=True)
class DeadLetterKey:
    """Dead-letter entries of a service in a region."""

    service: str
    region: str

    def name(self) -> str:
        return _SEP.join((self.service, self.region))

    def counter(self):
        return _counter(DEAD_LETTER, self.name())


def stats_name(what: str, service: str, region: str) -> str:
    """The name of a statistics counter or gauge (namespace ``STATS``): read on
    Flink's dashboards, never parsed back."""
    return _SEP.join((what, service, region))


@dataclass
class RunCounts:
    """What a run delivered and dead-lettered, per key: what its summary shows."""

    delivered: dict[DeliveredKey, int] = field(default_factory=dict)
    dead_lettered: dict[DeadLetterKey, int] = field(default_factory=dict)

    @classmethod
    def from_counters(cls, counters: Mapping[tuple[str, str], int]) -> RunCounts:
        """From a run's Beam counters, (namespace, name) -> value; others are ignored."""
        counts = cls()
        for (namespace, name), value in counters.items():
            if namespace == DELIVERED:
                key = DeliveredKey(*name.split(_SEP, 3))
                counts.delivered[key] = counts.delivered.get(key, 0) + value
            elif namespace == DEAD_LETTER:
                key = DeadLetterKey(*name.split(_SEP, 1))
                counts.dead_lettered[key] = counts.dead_lettered.get(key, 0) + value
        return counts
