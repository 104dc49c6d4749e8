"""CloudWatch Logs events, as FilterLogEvents returns them (service cloudwatch-logs).

One Devo event per log event, in ``cloud.aws.cloudwatch.logs``: a compact JSON
object with the group, the stream, the event's id, its timestamp and ingestion
time (epoch ms, as AWS gives them) and its message. An event without a message
is rejected (SRC-016).

    >>> parsed = parse([{"logGroupName": "/app", "logStreamName": "s", "eventId": "1",
    ...                  "timestamp": 1, "ingestionTime": 2, "message": "hi"}])
    >>> print(parsed.events[TABLE][0].decode())
    {"logGroup":"/app","logStream":"s","eventId":"1","timestamp":1,"ingestionTime":2,"message":"hi"}
"""

from __future__ import annotations

import json
from typing import Any

from awscollector.transforms.formats import Parsed

TABLE = "cloud.aws.cloudwatch.logs"
BAD_EVENT = "SRC-016"

_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def parse(events: list[dict[str, Any]]) -> Parsed:
    """FilterLogEvents events (each with its ``logGroupName``) as messages."""
    parsed = Parsed()
    messages = []
    for e in events:
        if not isinstance(e, dict) or not isinstance(e.get("message"), str):
            parsed.reject(BAD_EVENT, "a log event without a message", e)
            continue
        messages.append(_compact({
            "logGroup": e.get("logGroupName"), "logStream": e.get("logStreamName"),
            "eventId": e.get("eventId"), "timestamp": e.get("timestamp"),
            "ingestionTime": e.get("ingestionTime"), "message": e["message"],
        }).encode("utf-8", "surrogatepass"))
    parsed.extend(TABLE, messages)
    return parsed
