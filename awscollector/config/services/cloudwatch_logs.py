"""cloudwatch-logs: CloudWatch Logs log groups, from the API."""

from __future__ import annotations

from pydantic import Field

from awscollector.config.base import NonEmpty
from awscollector.config.services.base import ApiService


class CloudwatchLogs(ApiService):
    NAME = "cloudwatch-logs"

    log_group_prefixes: list[NonEmpty] = Field(default_factory=list)  # empty: every group
