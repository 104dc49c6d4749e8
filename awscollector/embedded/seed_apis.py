"""Sample data for the API pullers: CloudWatch Logs groups and CloudWatch metrics.

Made through the AWS APIs (PutLogEvents, PutMetricData) on the embedded AWS, as
applications leave them. Used by the demo, the tests and the benchmarks.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from typing import Any

LOG_LINE_KINDS = ("START RequestId: {id} Version: $LATEST",
                  "INFO handled GET /api/orders/{n} in {ms} ms",
                  "WARN slow query on orders ({ms} ms)",
                  "END RequestId: {id}",
                  "REPORT RequestId: {id} Duration: {ms}.12 ms Billed Duration: {ms} ms")


def log_messages(n: int, seed: int = 1) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        kind = LOG_LINE_KINDS[i % len(LOG_LINE_KINDS)]
        out.append(kind.format(id=f"{rnd.getrandbits(64):016x}-{i}", n=rnd.randint(1, 9999),
                               ms=rnd.randint(1, 900)))
    return out


def put_log_group(logs: Any, group: str, n: int, start_ms: int, end_ms: int, streams: int = 2,
                  seed: int = 1) -> list[str]:
    """``n`` events in ``group`` (made if missing), spread evenly over ``[start_ms,
    end_ms)`` and over ``streams`` streams; returns their messages."""
    try:
        logs.create_log_group(logGroupName=group)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    messages = log_messages(n, seed)
    step = max(1, (end_ms - start_ms) // max(n, 1))
    for s in range(streams):
        stream = f"{dt.date.today():%Y/%m/%d}/[$LATEST]{seed:04x}{s:028x}"
        try:
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        events = [{"timestamp": start_ms + i * step, "message": messages[i]}
                  for i in range(s, n, streams)]
        for i in range(0, len(events), 10_000):
            logs.put_log_events(logGroupName=group, logStreamName=stream,
                                logEvents=events[i:i + 10_000])
    return messages


def put_metric_series(cw: Any, namespace: str, metrics: list[tuple[str, dict[str, str]]],
                      periods: int, period_s: int = 300, seed: int = 1) -> int:
    """One value per metric in each of ``periods`` whole periods that ended at least a
    period ago; returns how many (metric, period) pairs hold data."""
    rnd = random.Random(seed)
    now = int(time.time())
    last_end = now - now % period_s - period_s
    first = last_end - periods * period_s
    data = []
    for name, dims in metrics:
        for p in range(periods):
            data.append({
                "MetricName": name, "Unit": "Count", "Value": float(rnd.randint(0, 500)),
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                "Timestamp": dt.datetime.fromtimestamp(first + p * period_s + 7, dt.UTC)})
    for i in range(0, len(data), 500):
        cw.put_metric_data(Namespace=namespace, MetricData=data[i:i + 500])
    return len(metrics) * periods
