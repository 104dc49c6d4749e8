"""S3 object notifications, from the body of an SQS message.

Four shapes reach the queues this collector reads:

* ``s3``: an S3 event notification, ``{"Records": [{"eventSource": "aws:s3", ...}]}``,
  one or more records; only ``ObjectCreated:*`` records give objects;
* ``sns``: the same, wrapped by SNS (``{"Type": "Notification", "Message": "<JSON>"}``);
  an SNS subscription with raw message delivery gives the ``s3`` shape instead;
* ``eventbridge``: an EventBridge event from S3 (``"source": "aws.s3"``); only
  ``"detail-type": "Object Created"`` gives an object;
* ``test``: the ``s3:TestEvent`` S3 sends when notifications are configured,
  direct or through SNS; no objects.

Object keys: S3 event notifications (direct or through SNS) URL-encode them, form
style (``red flower+1.jpg`` arrives as ``red+flower%2B1.jpg``), so they are decoded
with ``unquote_plus``. EventBridge events carry the key as it is: AWS's examples
show keys with ``:`` unencoded, consumers that tested keys with ``+``, ``%`` and
spaces found them verbatim, and moto (``moto/s3/notifications.py``) encodes only
the S3 event notification key. Decoding an EventBridge key would turn a real
``a+b.log`` into ``a b.log``, so it is kept unchanged.

Anything else raises ``CollectorError("SRC-005", ...)``.

    >>> body = '{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put",'
    >>> body += '"s3":{"bucket":{"name":"logs"},"object":{"key":"a/red+flower.gz","size":5}}}]}'
    >>> parse_notification(body).objects[0].key
    'a/red flower.gz'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote_plus

from awscollector.errors import CollectorError


@dataclass(frozen=True)
class ObjectRef:
    """One S3 object to read; key decoded, ready for GetObject."""

    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None
    event_time: str | None = None


@dataclass(frozen=True)
class Notification:
    """What one SQS message announces: objects (maybe none) and its shape."""

    objects: tuple[ObjectRef, ...]
    kind: str  # "s3", "sns", "eventbridge" or "test"


class _NotS3(Exception):
    """Raised inside the parser; parse_notification turns it into SRC-005."""


def parse_notification(body: str) -> Notification:
    """Parse an SQS message body; SRC-005 if it is not an S3 notification."""
    try:
        return _parse(body)
    except _NotS3:
        shown = body[:200] if body.strip() else "the message body is empty"
        raise CollectorError("SRC-005", f"not an S3 notification: {shown}") from None


def sns_message(doc: dict) -> tuple[bool, object]:
    """(True, the message) if ``doc`` is an SNS notification envelope, else (False, None).

    SNS wraps what was published (an S3 notification, an EventBridge event) as a
    JSON string under ``Message``; raw message delivery sends it unwrapped instead.

        >>> sns_message({"Type": "Notification", "MessageId": "m", "Message": "{}"})
        (True, '{}')
    """
    if doc.get("Type") == "Notification" and "Message" in doc:
        return True, doc["Message"]
    return False, None


def _parse(body: str) -> Notification:
    doc = _load(body)
    wrapped, message = sns_message(doc)
    if wrapped:
        if not isinstance(message, str):
            raise _NotS3
        kind, objects = _parse_event(_load(message))
        return Notification(objects, "test" if kind == "test" else "sns")
    kind, objects = _parse_event(doc)
    return Notification(objects, kind)


def _load(text: str) -> dict:
    try:
        doc = json.loads(text)
    except (ValueError, TypeError):
        raise _NotS3 from None
    if not isinstance(doc, dict):
        raise _NotS3
    return doc


def _parse_event(doc: dict) -> tuple[str, tuple[ObjectRef, ...]]:
    if doc.get("Event") == "s3:TestEvent":
        return "test", ()
    if "Records" in doc:
        return "s3", _s3_records(doc["Records"])
    if doc.get("source") == "aws.s3" and "detail-type" in doc:
        return "eventbridge", _eventbridge(doc)
    raise _NotS3


def _s3_records(records: object) -> tuple[ObjectRef, ...]:
    if not isinstance(records, list) or not records:
        raise _NotS3
    objects = []
    for record in records:
        if not isinstance(record, dict) or record.get("eventSource") != "aws:s3":
            raise _NotS3
        event = record.get("eventName")
        if not isinstance(event, str):
            raise _NotS3
        # "ObjectCreated:Put"; S3-compatible stores sometimes write "s3:ObjectCreated:Put".
        if not event.removeprefix("s3:").startswith("ObjectCreated:"):
            continue
        s3 = _dict(record.get("s3"))
        bucket = _str(_dict(s3.get("bucket")).get("name"))
        obj = _dict(s3.get("object"))
        objects.append(
            ObjectRef(
                bucket=bucket,
                key=unquote_plus(_str(obj.get("key"))),
                size=_size(obj.get("size")),
                etag=_opt_str(obj.get("eTag")),
                event_time=_opt_str(record.get("eventTime")),
            )
        )
    return tuple(objects)


def _eventbridge(doc: dict) -> tuple[ObjectRef, ...]:
    if doc["detail-type"] != "Object Created":  # deleted, restored, tagged...: nothing to read
        return ()
    detail = _dict(doc.get("detail"))
    obj = _dict(detail.get("object"))
    return (
        ObjectRef(
            bucket=_str(_dict(detail.get("bucket")).get("name")),
            key=_str(obj.get("key")),  # not URL-encoded in EventBridge events: see module doc
            size=_size(obj.get("size")),
            etag=_opt_str(obj.get("etag", obj.get("eTag"))),  # AWS: etag; moto: eTag
            event_time=_time(doc.get("time")),
        ),
    )


def _dict(value: object) -> dict:
    if not isinstance(value, dict):
        raise _NotS3
    return value


def _str(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise _NotS3
    return value


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _size(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _time(value: object) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        # moto writes a Unix timestamp where AWS writes ISO 8601: normalise.
        try:
            moment = datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
        return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
    return _opt_str(value)
