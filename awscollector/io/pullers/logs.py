"""CloudWatch Logs (FilterLogEvents), one stream per log group: cloudwatch-logs.

The groups are those of ``log_group_names``, ``log_group_prefixes`` and
``log_group_pattern`` (a regular expression, searched in the name); none of
them: every group. They are listed when the run starts: a group created later
is read from the next start on. Each group has its own checkpoint, and a long
backfill of a group is read a day at a time in parallel pieces.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from awscollector.io.pullers.base import ApiStream, Page, Puller
from awscollector.transforms import cloudwatch_logs
from awscollector.transforms.formats import Parsed


class FilterLogEvents(Puller):
    name = "cloudwatch_logs"
    operation = "FilterLogEvents"
    actions = ("logs:DescribeLogGroups", "logs:FilterLogEvents")
    aws_service = "logs"
    window_ms = 3_600_000
    align_ms = 1
    piece_ms = 86_400_000
    rate = None  # botocore's adaptive retries
    lag_s = 120

    def streams(self, client: Any, config: Any) -> list[str]:
        names = list(getattr(config, "log_group_names", None) or [])
        prefixes = list(getattr(config, "log_group_prefixes", None) or [])
        pattern = getattr(config, "log_group_pattern", None)
        if names and not prefixes and not pattern:
            return names
        found = set(names)
        paginator = client.get_paginator("describe_log_groups")
        for prefix in prefixes or [None]:
            args = {"logGroupNamePrefix": prefix} if prefix else {}
            for page in paginator.paginate(**args):
                for group in page.get("logGroups", []):
                    name = group["logGroupName"]
                    if pattern is None or re.search(pattern, name):
                        found.add(name)
        return sorted(found)

    def fetch(self, client: Any, stream: ApiStream, start_ms: int, end_ms: int,
              token: str | None) -> Page:
        # endTime is inclusive: ask up to end_ms - 1.
        args: dict[str, Any] = {"logGroupName": stream.stream, "startTime": start_ms,
                                "endTime": end_ms - 1}
        if token:
            args["nextToken"] = token
        response = client.filter_log_events(**args)
        events = [dict(e, logGroupName=stream.stream) for e in response.get("events", [])
                  if start_ms <= e.get("timestamp", start_ms) < end_ms]
        return Page(events, response.get("nextToken"))

    def parse(self, records: list[Any], stream: ApiStream, options: Mapping[str, Any]
              ) -> Parsed:
        return cloudwatch_logs.parse(records)


PULLER = FilterLogEvents()
