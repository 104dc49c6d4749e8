"""CloudWatch metrics (ListMetrics, GetMetricData), one stream per namespace: metrics-all.

The namespaces are those of ``namespaces``, or, when it is empty, every namespace
ListMetrics returns when the run starts. In each, the metrics are those
ListMetrics lists (with the ``dimensions`` filters); CloudWatch lists only
metrics that had data in the last two weeks, so an older backfill misses metrics
that have been quiet since. The list is kept a few minutes per stream.

Each metric is read with every statistic of ``statistics``, one query each,
500 queries a GetMetricData call (so a namespace with many metrics takes several
calls per window), in periods of ``period_seconds`` aligned on the epoch (for a
period dividing an hour: on the hour, as CloudWatch answers fastest).

A datapoint covers its period ``[t, t + period)`` and is read once that period
has ended: a window ``[start, end)`` returns the periods that end in
``(start, end]``. So any window, aligned or not, takes each period once and only
when complete, whatever the period (any multiple of 60 s), and the collector's
windows (an hour, cut at now minus ``lag_seconds``) need not follow the period.
The event's ``timestamp`` is the period's start, as CloudWatch gives it.

A page's token is the collector's own JSON: the last metric of the calls done
(by name and dimensions, not by position, so a refreshed list does not shift the
calls) and GetMetricData's NextToken within a call.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from awscollector.config.services.metrics_all import STATISTICS
from awscollector.io.pullers.base import ApiStream, Page, Puller
from awscollector.transforms import cloudwatch_metrics
from awscollector.transforms.formats import Parsed

QUERIES_PER_CALL = 500  # GetMetricData's limit
LIST_TTL_S = 300.0  # how long a namespace's metric list is reused
ERROR_STATUS = frozenset({"Forbidden", "InternalError"})


class Metric(NamedTuple):
    key: str  # orders the metrics of a namespace: name, then dimensions
    name: str
    dimensions: tuple[tuple[str, str], ...]


def metric_key(name: str, dimensions: Iterable[tuple[str, str]]) -> str:
    return json.dumps([name, sorted(map(list, dimensions))], separators=(",", ":"))


def dimension_filters(dimensions: Iterable[Any]) -> list[dict[str, str]]:
    """ListMetrics' ``Dimensions`` from the config's filters (models or dicts)."""
    out = []
    for d in dimensions or ():
        name, value = ((d.get("name"), d.get("value")) if isinstance(d, Mapping)
                       else (d.name, d.value))
        out.append({"Name": name, **({"Value": value} if value is not None else {})})
    return out


def _time(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _ms(value: Any) -> int:
    if isinstance(value, dt.datetime):
        return int(round(value.timestamp() * 1000))
    return int(float(value) * 1000)


class GetMetricData(Puller):
    name = "cloudwatch_metrics"
    operation = "GetMetricData"
    actions = ("cloudwatch:ListMetrics", "cloudwatch:GetMetricData")
    aws_service = "cloudwatch"
    window_ms = 3_600_000
    align_ms = 60_000  # periods are whole minutes
    piece_ms = 86_400_000  # GetMetricData allows 50 calls a second: pieces in parallel
    rate = None  # botocore's adaptive retries
    lag_s = 600  # AWS publishes most of its metrics within minutes
    max_lookback_s = 455 * 86_400  # CloudWatch keeps metrics 15 months

    def __init__(self) -> None:
        self._lists: dict[tuple[str, str], tuple[float, list[Metric]]] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:  # the cache and its lock stay in their process
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def streams(self, client: Any, config: Any) -> list[str]:
        names = list(getattr(config, "namespaces", None) or [])
        if names:
            return list(dict.fromkeys(names))
        filters = dimension_filters(getattr(config, "dimensions", None) or [])
        found: set[str] = set()
        paginator = client.get_paginator("list_metrics")
        for page in paginator.paginate(**({"Dimensions": filters} if filters else {})):
            found.update(m["Namespace"] for m in page.get("Metrics", []) if m.get("Namespace"))
        return sorted(found)

    def metrics(self, client: Any, stream: ApiStream) -> list[Metric]:
        """The stream's metrics, sorted by key; listed again after LIST_TTL_S."""
        filters = dimension_filters(stream.options.get("dimensions") or [])
        cache_key = (stream.key, json.dumps(filters, sort_keys=True))
        with self._lock:
            cached = self._lists.get(cache_key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        args: dict[str, Any] = {"Namespace": stream.stream}
        if filters:
            args["Dimensions"] = filters
        found: dict[str, Metric] = {}
        for page in client.get_paginator("list_metrics").paginate(**args):
            for m in page.get("Metrics", []):
                dims = tuple((d["Name"], d["Value"]) for d in m.get("Dimensions", []))
                key = metric_key(m["MetricName"], dims)
                found[key] = Metric(key, m["MetricName"], dims)  # once each
        listed = [found[k] for k in sorted(found)]
        with self._lock:
            self._lists[cache_key] = (time.monotonic() + LIST_TTL_S, listed)
        return listed

    def fetch(self, client: Any, stream: ApiStream, start_ms: int, end_ms: int,
              token: str | None) -> Page:
        period_ms = int(stream.options.get("period_seconds", 300)) * 1000
        stats = list(stream.options.get("statistics") or STATISTICS)
        # The periods that end in (start_ms, end_ms]: they start in [first, last).
        first = start_ms - start_ms % period_ms
        last = end_ms - end_ms % period_ms
        if last <= first:
            return Page([])
        state = json.loads(token) if token else {}
        metrics = self.metrics(client, stream)
        keys = [m.key for m in metrics]
        after = state.get("after")
        begin = bisect.bisect_right(keys, after) if after is not None else 0
        chunk = []
        if state.get("next"):  # the same call, on: the same metrics
            chunk = metrics[begin:bisect.bisect_right(keys, state["last"])]
            if not chunk:  # they are no longer listed: the next call
                state = {"after": state["last"]}
                begin = bisect.bisect_right(keys, state["after"])
                after = state["after"]
        if not state.get("next"):
            chunk = metrics[begin:begin + max(1, QUERIES_PER_CALL // len(stats))]
        if not chunk:
            return Page([])
        queries = [
            {"Id": f"m{i * len(stats) + j}", "ReturnData": True,
             "MetricStat": {"Metric": {"Namespace": stream.stream, "MetricName": m.name,
                                       "Dimensions": [{"Name": n, "Value": v}
                                                      for n, v in m.dimensions]},
                            "Period": period_ms // 1000, "Stat": stat}}
            for i, m in enumerate(chunk) for j, stat in enumerate(stats)]
        args: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": _time(first),
                                "EndTime": _time(last), "ScanBy": "TimestampAscending"}
        if state.get("next"):
            args["NextToken"] = state["next"]
        response = client.get_metric_data(**args)
        records = []
        for result in response.get("MetricDataResults", []):
            index = int(result["Id"][1:])
            metric, stat = chunk[index // len(stats)], stats[index % len(stats)]
            base = {"namespace": stream.stream, "metricName": metric.name,
                    "dimensions": dict(metric.dimensions), "statistic": stat, "unit": None,
                    "period": period_ms // 1000}
            if result.get("StatusCode") in ERROR_STATUS:
                # Rejected (SRC-017) with CloudWatch's messages: nothing is dropped silently.
                records.append({**base, "error": result["StatusCode"],
                                "messages": result.get("Messages", []),
                                "window": [first, last]})
                continue
            for when, value in zip(result.get("Timestamps", []), result.get("Values", []),
                                   strict=False):
                ms = _ms(when)
                if first <= ms < last:
                    records.append({**base, "value": value, "timestamp": ms})
        nxt = response.get("NextToken")
        if nxt:
            return Page(records, json.dumps({"after": after, "last": chunk[-1].key,
                                             "next": nxt}))
        if begin + len(chunk) < len(metrics):
            return Page(records, json.dumps({"after": chunk[-1].key}))
        return Page(records)

    def parse(self, records: list[Any], stream: ApiStream, options: Mapping[str, Any]
              ) -> Parsed:
        return cloudwatch_metrics.parse(records, region=stream.region, account=stream.account)


PULLER = GetMetricData()
