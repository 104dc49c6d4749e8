"""CloudTrail's event history (LookupEvents): audit-events-all with ``audit_apis``.

LookupEvents returns management events of the last 90 days, 50 a page, newest
first; each carries the record CloudTrail writes to S3 in ``CloudTrailEvent`` (a
JSON string), so the events go to the same tables as the S3 files
(transforms/cloudtrail.py). AWS allows 2 calls per second per account and region,
for all callers together. Events reach the API up to about 15 minutes after they
happen: the puller reads 15 minutes behind now by default (``lag_seconds``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from awscollector.io.pullers.base import ApiStream, Page, Puller
from awscollector.transforms import cloudtrail
from awscollector.transforms.formats import Parsed, RecordBatch

STREAM = "events"  # one stream per account and region


def _time(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _ms(value: Any) -> int:
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1000)
    return int(float(value) * 1000)


class LookupEvents(Puller):
    name = "cloudtrail_lookup"
    operation = "LookupEvents"
    actions = ("cloudtrail:LookupEvents",)
    aws_service = "cloudtrail"
    window_ms = 3_600_000
    align_ms = 1000  # CloudTrail's times are whole seconds
    piece_ms = None  # one rate limit for the whole account and region: no gain
    # AWS allows 2 a second; a little under, so that jitter on the way never puts a third
    # call into one second.
    rate = 1.8
    lag_s = 900
    max_lookback_s = 90 * 86_400

    def streams(self, client: Any, config: Any) -> list[str]:
        return [STREAM]

    def fetch(self, client: Any, stream: ApiStream, start_ms: int, end_ms: int,
              token: str | None) -> Page:
        args: dict[str, Any] = {"StartTime": _time(start_ms), "EndTime": _time(end_ms),
                                "MaxResults": 50}
        if token:
            args["NextToken"] = token
        response = client.lookup_events(**args)
        records = []
        for event in response.get("Events", []):
            # The API's range is inclusive at both ends: an event at end_ms belongs
            # to the next window.
            if not start_ms <= _ms(event["EventTime"]) < end_ms:
                continue
            raw = event.get("CloudTrailEvent")
            try:
                records.append(json.loads(raw))
            except (TypeError, ValueError):
                records.append(raw)  # rejected by the parser, with its code
        return Page(records, response.get("NextToken"))

    def parse(self, records: list[Any], stream: ApiStream, options: Mapping[str, Any]
              ) -> Parsed:
        batch = RecordBatch(f"cloudtrail:LookupEvents {stream.region}", "", 0, records)
        return cloudtrail.parse(batch, options)


PULLER = LookupEvents()
