"""metrics-all: CloudWatch metrics, from the API."""

from __future__ import annotations

from pydantic import Field

from awscollector.config.base import NonEmpty
from awscollector.config.services.base import ApiService


class MetricsAll(ApiService):
    NAME = "metrics-all"

    namespaces: list[NonEmpty] = Field(default_factory=list)  # empty: every namespace
    period_seconds: int = Field(300, ge=1)
