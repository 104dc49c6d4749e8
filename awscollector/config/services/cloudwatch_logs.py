"""cloudwatch-logs: CloudWatch Logs log groups, from the API."""

from __future__ import annotations

from pydantic import Field

from awscollector.config.base import NonEmpty
from awscollector.config.services.base import ApiService
from awscollector.config.services.custom_s3 import Regex


class CloudwatchLogs(ApiService):
    NAME = "cloudwatch-logs"

    # The groups read: these names, the groups with these prefixes, and those whose
    # name the pattern (a regular expression) finds a match in. None of the three:
    # every group of the region.
    log_group_names: list[NonEmpty] = Field(default_factory=list)
    log_group_prefixes: list[NonEmpty] = Field(default_factory=list)
    log_group_pattern: Regex | None = None
