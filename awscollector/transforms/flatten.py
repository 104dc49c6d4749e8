"""``flatten: true``: a JSON message as one flat object with dotted keys.

    >>> flatten_message(b'{"userIdentity":{"type":"Root","arn":"arn:aws:iam::1:root"},'
    ...                 b'"resources":[{"ARN":"x"}],"n":1}')
    b'{"userIdentity.type":"Root","userIdentity.arn":"arn:aws:iam::1:root","resources":[{"ARN":"x"}],"n":1}'

Lists stay JSON lists, as they are; an empty object stays an empty object under
its key. A message that is not a JSON object is returned unchanged.
"""

from __future__ import annotations

import json
from typing import Any


def flatten(record: dict[str, Any], prefix: str = "", out: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    """The record with nested objects' keys joined by dots."""
    if out is None:
        out = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flatten(value, f"{name}.", out)
        else:
            out[name] = value
    return out


def flatten_message(message: bytes) -> bytes:
    if not message.startswith(b"{"):
        return message
    try:
        record = json.loads(message)
    except ValueError:
        return message
    if not isinstance(record, dict):
        return message
    return json.dumps(flatten(record), separators=(",", ":"), ensure_ascii=False).encode()
