"""EventBridge events from an SQS queue: decoding a message, and AWS service events.

AWS services announce what happens to them as EventBridge events; a rule sends
them to an SQS queue, one event per message, as JSON::

    {"version": "0", "id": "...", "detail-type": "EC2 Instance State-change
     Notification", "source": "aws.ec2", "account": "...", "time": "...",
     "region": "us-east-1", "resources": [...], "detail": {...}}

A rule whose target is an SNS topic, with an SQS queue subscribed to it, gives
the same event wrapped by SNS (``{"Type": "Notification", "Message": "<event>"}``);
it is unwrapped the way S3 notifications are (transforms/notifications.py).

``decode_event`` turns a message body into the event, or raises
``CollectorError``: SRC-011 for a body that is not JSON (directly, or the SNS
message), SRC-012 for JSON that is not an EventBridge event (an object with a
string ``source``, a string ``detail-type`` and an object ``detail``).

``FORMAT`` (config service ``service-events-all``) takes any event: one Devo
event per message, the event as compact JSON (its keys and values, in order),
to ``cloud.aws.cloudwatch.events``; with ``auto_event_type: true`` a table per
AWS service, from the source: ``aws.ec2`` -> ``cloud.aws.cloudwatch.ec2``. A
source that is not ``aws.<service>`` with a plain service name (your own
applications' ``com.example.app``, partner sources ``aws.partner/...``) keeps the
default table: its name says nothing Devo's tables can be named by.

    >>> event = decode_event('{"source":"aws.ec2","detail-type":"EC2 Instance '
    ...                      'State-change Notification","detail":{"state":"running"}}')
    >>> parsed = parse(RecordBatch("q", "", 0, [event]), {"auto_event_type": True})
    >>> list(parsed.events)
    ['cloud.aws.cloudwatch.ec2']
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from awscollector.errors import CollectorError
from awscollector.transforms.formats import EVENTS, Format, Parsed, RecordBatch
from awscollector.transforms.notifications import sns_message

TYPE = "service_events"  # the registry type of service-events-all (no config `types`)
TABLE = "cloud.aws.cloudwatch.events"
TABLE_PREFIX = "cloud.aws.cloudwatch."
NOT_JSON = "SRC-011"
NOT_AN_EVENT = "SRC-012"

_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False,
                            check_circular=False).encode
_ascii = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
_SERVICE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def encode(value: Any) -> bytes:
    """Compact JSON, UTF-8; a lone surrogate (no UTF-8 for it) stays escaped."""
    text = _compact(value)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return _ascii(value).encode()


def decode_event(body: str) -> dict[str, Any]:
    """The EventBridge event of an SQS message body (SNS-wrapped or not)."""
    doc = _json(body, "the message body")
    wrapped, message = sns_message(doc) if isinstance(doc, dict) else (False, None)
    if wrapped:
        if not isinstance(message, str):
            raise CollectorError(NOT_AN_EVENT, "an SNS notification whose Message is not "
                                               "a string")
        doc = _json(message, "the SNS notification's Message")
    problem = not_an_event(doc)
    if problem:
        raise CollectorError(NOT_AN_EVENT, f"not an EventBridge event{' (SNS-wrapped)' * wrapped}"
                                           f": {problem}")
    return doc


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, TypeError) as e:
        shown = "it is empty" if not text.strip() else f"{e}"
        raise CollectorError(NOT_JSON, f"{what} is not JSON: {shown}") from None


def not_an_event(doc: Any) -> str:
    """Why ``doc`` is not an EventBridge event ("" if it is one)."""
    if not isinstance(doc, dict):
        return f"a JSON {type(doc).__name__}, not an object"
    missing = [k for k in ("source", "detail-type", "detail") if k not in doc]
    if missing:
        return f"no {', '.join(repr(k) for k in missing)} in it"
    if not isinstance(doc["source"], str) or not doc["source"]:
        return "'source' is not a non-empty string"
    if not isinstance(doc["detail-type"], str):
        return "'detail-type' is not a string"
    if not isinstance(doc["detail"], dict):
        return "'detail' is not an object"
    return ""


def table_of(source: str) -> str:
    """The table of an event from ``source`` under ``auto_event_type``."""
    service = source[4:].lower() if source.startswith("aws.") else ""
    return TABLE_PREFIX + service if _SERVICE.fullmatch(service) else TABLE


def parse(batch: RecordBatch, options: Mapping[str, Any]) -> Parsed:
    """Decoded events (dicts), each one message, whole."""
    parsed = Parsed()
    auto = options.get("auto_event_type")
    for event in batch.records:
        parsed.add(table_of(event["source"]) if auto else TABLE, encode(event))
    return parsed


def any_event(event: Mapping[str, Any]) -> bool:
    return True  # service-events-all takes whatever its rule sends (every aws.* event)


FORMAT = Format(name="service_events", type=TYPE, table=TABLE, parse=parse, framing=EVENTS,
                json_messages=True, recognize=any_event)
