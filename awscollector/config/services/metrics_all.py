"""metrics-all: CloudWatch metrics, from the API (ListMetrics, GetMetricData)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from awscollector.config.base import Model, NonEmpty
from awscollector.config.problems import error
from awscollector.config.services.base import ApiService

STATISTICS = ("Average", "Sum", "Minimum", "Maximum", "SampleCount")
# A percentile: p0 to p100, with up to two decimals (p99, p99.9, p99.99).
_PERCENTILE = re.compile(r"p(\d{1,3})(\.\d{1,2})?")


def _period(value: int) -> int:
    # CloudWatch keeps standard metrics per minute: a period is whole minutes.
    if value < 60 or value % 60:
        raise error("CFG-004", "must be 60 or a multiple of 60 (seconds)")
    return value


def _statistic(value: str) -> str:
    match = _PERCENTILE.fullmatch(value)
    if value in STATISTICS or (match and float(value[1:]) <= 100):
        return value
    raise error("CFG-004", f"'{value}' is not a statistic: {', '.join(STATISTICS)}, or a "
                           "percentile p0 to p100 such as p99 or p99.9")


def _statistics(value: list[str]) -> list[str]:
    return list(dict.fromkeys(value))  # each once: one query per metric and statistic


Period = Annotated[int, AfterValidator(_period)]
Statistic = Annotated[str, AfterValidator(_statistic)]


class DimensionFilter(Model):
    """Only metrics with this dimension (of this value, if given)."""

    name: NonEmpty
    value: NonEmpty | None = None


class MetricsAll(ApiService):
    NAME = "metrics-all"

    namespaces: list[NonEmpty] = Field(default_factory=list)  # empty: every namespace
    # The datapoints' period; any multiple of 60. A period is read once it has ended.
    period_seconds: Period = 300
    statistics: Annotated[list[Statistic], AfterValidator(_statistics)] = Field(
        default_factory=lambda: list(STATISTICS), min_length=1, max_length=500)
    # ListMetrics' dimension filters (at most 10, as AWS allows): only the metrics
    # having every one of these dimensions.
    dimensions: list[DimensionFilter] = Field(default_factory=list, max_length=10)
