"""CloudWatch metric datapoints, as GetMetricData returns them (service metrics-all).

One Devo event per datapoint, in ``cloud.aws.cloudwatch.metrics``: a compact JSON
object with the metric (namespace, name, dimensions), the statistic, its unit
(null: not known), its value, the start of its period (``timestamp``, ISO 8601
UTC) and the period in seconds, and the region and account it was read in. A
datapoint without a finite number as value, or a query CloudWatch answered with
an error instead of datapoints (``error``), is rejected (SRC-017).

    >>> parsed = parse([{"namespace": "AWS/EC2", "metricName": "CPUUtilization",
    ...                  "dimensions": {"InstanceId": "i-1"}, "statistic": "Average",
    ...                  "unit": None, "value": 12.5, "timestamp": 1700000100000,
    ...                  "period": 300}], region="eu-west-1", account="123456789012")
    >>> print(parsed.events[TABLE][0].decode())
    {"namespace":"AWS/EC2","metricName":"CPUUtilization","dimensions":{"InstanceId":"i-1"},"statistic":"Average","unit":null,"value":12.5,"timestamp":"2023-11-14T22:15:00Z","period":300,"region":"eu-west-1","account":"123456789012"}
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

from awscollector.transforms.formats import Parsed

TABLE = "cloud.aws.cloudwatch.metrics"
BAD_DATAPOINT = "SRC-017"

_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False,
                            allow_nan=False).encode


def iso(ms: int) -> str:
    """Epoch ms as ISO 8601 UTC, whole seconds unless it has milliseconds."""
    t = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    if ms % 1000:
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _bad(d: Any) -> str | None:
    """Why a datapoint cannot be sent, or None."""
    if not isinstance(d, dict):
        return "a datapoint that is not an object"
    if d.get("error"):
        return f"GetMetricData answered {d['error']} for the query"
    value = d.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "a datapoint without a value"
    if not isinstance(d.get("timestamp"), int) or not d.get("metricName"):
        return "a datapoint without a timestamp or metric name"
    return None


def parse(datapoints: list[dict[str, Any]], *, region: str, account: str) -> Parsed:
    """Datapoints (as the metrics puller makes them) as messages."""
    parsed = Parsed()
    messages = []
    for d in datapoints:
        reason = _bad(d)
        if reason:
            parsed.reject(BAD_DATAPOINT, reason, d)
            continue
        messages.append(_compact({
            "namespace": d.get("namespace"), "metricName": d["metricName"],
            "dimensions": d.get("dimensions") or {}, "statistic": d.get("statistic"),
            "unit": d.get("unit"), "value": d["value"], "timestamp": iso(d["timestamp"]),
            "period": d.get("period"), "region": region, "account": account,
        }).encode("utf-8", "surrogatepass"))
    parsed.extend(TABLE, messages)
    return parsed
