"""The run's statistics as a Prometheus text endpoint (``run --metrics-port N``).

Served by the standard client library (prometheus_client) on every interface, at
any path (``/metrics`` by convention), from the same aggregate as the statistics
lines (io/stats.py), so both always agree::

    awscollector_messages_received_total{service="...",region="..."} 12.0
    awscollector_events_delivered_total{service=...,region=...,output=...,table=...} 12000.0
    awscollector_oldest_unacked_seconds{service="...",region="..."} 3.0
    awscollector_api_lag_seconds{service=...,region=...,stream=...} 65.0
    process_resident_memory_bytes 2.2e+08

It shows what the run counts: everything on the DirectRunner (with ``--processes``,
the supervisor serves the sum of its processes); on Flink, use
Flink's own metrics (the Beam counters in namespace ``stats``, ``delivered`` and
``deadletter``). prometheus_client is imported only when the endpoint is asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from awscollector.errors import CollectorError
from awscollector.io.stats import Counts, StatsView

# Counts field -> (metric name without _total, help)
COUNTERS = {
    "messages": ("awscollector_messages_received", "SQS messages received"),
    "objects": ("awscollector_objects_read", "S3 objects read whole"),
    "bytes": ("awscollector_bytes_read", "bytes read from S3, as stored"),
    "pages": ("awscollector_api_pages", "AWS API pages read"),
    "records": ("awscollector_api_records", "AWS API records read"),
    "dead_lettered": ("awscollector_dead_lettered", "dead-letter entries written"),
    "skipped": ("awscollector_skipped", "messages, objects or records skipped on purpose"),
}


class _StatsCollector:
    """A prometheus_client collector: reads the aggregate at each scrape."""

    def __init__(self, stats: StatsView) -> None:
        self._stats = stats

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        snapshot = self._stats.snapshot()
        for row in self._stats.rows:  # every configured line, zeros included
            snapshot.setdefault((row.service, row.region), Counts())
        keys = sorted(snapshot)
        for field, (name, help_text) in COUNTERS.items():
            family = CounterMetricFamily(name, help_text, labels=["service", "region"])
            for service, region in keys:
                family.add_metric([service, region], getattr(snapshot[(service, region)], field))
            yield family
        events = CounterMetricFamily("awscollector_events_delivered",
                                     "events confirmed delivered",
                                     labels=["service", "region", "output", "table"])
        oldest = GaugeMetricFamily("awscollector_oldest_unacked_seconds",
                                   "age of the oldest SQS message received and not deleted",
                                   labels=["service", "region"])
        lag = GaugeMetricFamily("awscollector_api_lag_seconds",
                                "now less the end of an API stream's checkpoint",
                                labels=["service", "region", "stream"])
        for service, region in keys:
            counts = snapshot[(service, region)]
            for (output, table), n in sorted(counts.events.items()):
                events.add_metric([service, region, output, table], n)
            oldest.add_metric([service, region], counts.oldest_unacked or 0.0)
            for stream, seconds in sorted(counts.lags.items()):
                lag.add_metric([service, region, stream], seconds)
        yield from (events, oldest, lag)


@contextmanager
def serving(stats: StatsView, port: int, addr: str = "0.0.0.0") -> Iterator[int]:
    """Serves the endpoint while the block runs; yields the port it listens on."""
    from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server

    registry = CollectorRegistry()
    registry.register(_StatsCollector(stats))
    ProcessCollector(registry=registry)  # process_resident_memory_bytes, CPU seconds, ...
    try:
        server, thread = start_http_server(port, addr=addr, registry=registry)
    except (OSError, OverflowError) as e:  # in use, not allowed, out of range
        raise CollectorError("RUN-012", f"cannot serve metrics on port {port}: {e}") from e
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
