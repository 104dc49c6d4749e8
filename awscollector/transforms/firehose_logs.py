"""CloudWatch Logs delivered by a Kinesis Data Firehose stream to S3 (config type
``firehose_cloudwatch_logs``).

A CloudWatch Logs subscription filter sends a Firehose stream one record per batch
of log events: a JSON document, gzip'd by CloudWatch Logs::

    {"messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "/app",
     "logStream": "i-0abc", "subscriptionFilters": ["to-firehose"],
     "logEvents": [{"id": "3726...", "timestamp": 1795000000000, "message": "..."}]}

Firehose writes the records it buffered one after another, with nothing between
them, to ``<prefix>YYYY/MM/DD/HH/<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid>``
(an extension such as ``.gz`` if the stream compresses): an object is several
gzip members, each one document. With the stream's record decompression on, the
documents are plain JSON, newline-separated or not; with the stream's own GZIP
compression on top, the whole is gzip'd once more. All of these are read (framing
``json_documents``; decompression is by magic bytes, member after member). The
key says only that Firehose wrote the object, not what it holds (WAF or Network
Firewall logs come the same way), so these objects are recognized by their first
bytes, ``{"messageType":``. (With Firehose's message extraction on, the objects
hold the bare messages, without their log group: collect those as a custom S3
source.)

One event per log event. In ``cloud.aws.cloudwatch.logs``, the message the
``cloudwatch-logs`` API service sends for the same event (so both ways give the
same events): compact JSON of the log group, the stream, the event's id, its
timestamp (epoch ms) and its message; ``ingestionTime`` is null, as a
subscription does not give it. A message that is a VPC Flow Logs line of the
default format (a flow log to CloudWatch Logs; versions 2 to 5) goes to
``cloud.aws.vpc.flow`` instead, as the line itself, as a flow log file in S3 gives it.

``CONTROL_MESSAGE`` documents (CloudWatch Logs checking the destination, no log
events) are skipped, counted and logged. A document that is not a subscription
payload (not an object, another ``messageType``, no ``logEvents`` list, no log
group), and a log event without a string message, are rejected with SRC-022 (the
rest is delivered). A document cut or malformed is SRC-007, a gzip member cut
short SRC-001: the events of the documents before are delivered.

    >>> doc = {"messageType": "DATA_MESSAGE", "logGroup": "/app", "logStream": "s",
    ...        "logEvents": [{"id": "1", "timestamp": 2, "message": "hi"}]}
    >>> parsed = parse(RecordBatch("s3://b/k", "k", 0, [doc]), {})
    >>> print(parsed.events[TABLE][0].decode())
    {"logGroup":"/app","logStream":"s","eventId":"1","timestamp":2,"ingestionTime":null,"message":"hi"}
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from typing import Any

from awscollector.transforms import cloudwatch_logs, vpcflow
from awscollector.transforms.decompress import GZIP_MAGIC
from awscollector.transforms.formats import JSON_DOCUMENTS, Format, Parsed, RecordBatch

TABLE = cloudwatch_logs.TABLE
VPC_TABLE = vpcflow.TABLE
NOT_A_PAYLOAD = "SRC-022"

DATA = "DATA_MESSAGE"
CONTROL = "CONTROL_MESSAGE"
_CONTROL_REASON = "CloudWatch Logs control messages (a check of the destination, no log events)"
_DEFAULT_FLOW = vpcflow.VpcFlowFormat(vpcflow.DEFAULT_FIELDS, True)
_FLOW_VERSIONS = ("2 ", "3 ", "4 ", "5 ")


def parse(batch: RecordBatch, options: Mapping[str, Any]) -> Parsed:
    """A batch of subscription payloads (decoded documents) as Devo messages."""
    parsed = Parsed()
    events: list[dict[str, Any]] = []
    for doc in batch.records:
        kind = doc.get("messageType") if type(doc) is dict else None
        if kind == CONTROL:
            parsed.skip(_CONTROL_REASON)
            continue
        problem = _payload_problem(doc, kind)
        if problem:
            parsed.reject(NOT_A_PAYLOAD, f"not a CloudWatch Logs subscription payload: {problem}",
                          doc)
            continue
        group, stream = doc["logGroup"], doc.get("logStream")
        for e in doc["logEvents"]:
            if type(e) is not dict or not isinstance(e.get("message"), str):
                parsed.reject(NOT_A_PAYLOAD, "log events without a message",
                              {"logGroup": group, "logStream": stream, "logEvent": e})
                continue
            events.append({"logGroupName": group, "logStreamName": stream,
                           "eventId": e.get("id"), "timestamp": e.get("timestamp"),
                           "ingestionTime": None, "message": e["message"]})
    events = _route_flow_logs(events, parsed)
    if events:
        parsed.extend(TABLE, cloudwatch_logs.parse(events).events.get(TABLE, []))
    return parsed


def _payload_problem(doc: Any, kind: Any) -> str:
    if type(doc) is not dict:
        return f"a JSON {type(doc).__name__}, not an object"
    if kind != DATA:
        return f"messageType {str(kind)[:40]!r}"
    if not isinstance(doc.get("logGroup"), str):
        return "no logGroup"
    if type(doc.get("logEvents")) is not list:
        return "no logEvents list"
    return ""


def _route_flow_logs(events: list[dict[str, Any]], parsed: Parsed) -> list[dict[str, Any]]:
    """Puts the events that are default-format VPC Flow Logs lines in the flow table, as
    vpcflow.py does for the same line in a file; returns the others."""
    candidates = [e for e in events if e["message"][:2] in _FLOW_VERSIONS]
    if not candidates:
        return events
    lines = [e["message"].encode("utf-8", "surrogatepass") for e in candidates]
    flows, _ = vpcflow.to_messages(_DEFAULT_FLOW, lines)
    if not flows:
        return events
    parsed.extend(VPC_TABLE, flows)
    taken = set(flows)
    taken_ids = {id(e) for e, line in zip(candidates, lines, strict=True) if line in taken}
    return [e for e in events if id(e) not in taken_ids]


# -- the format, for the registry (transforms/registry.py)

_SNIFF = re.compile(rb'\s*\{\s*"messageType"\s*:')


def looks_like_payload(head: bytes) -> bool:
    """Whether an object's first bytes (decompressed once) open a subscription payload;
    a gzip member there is Firehose's own compression over CloudWatch Logs' own."""
    if head.startswith(GZIP_MAGIC):
        try:
            head = zlib.decompressobj(wbits=31).decompress(head, 256)
        except zlib.error:
            return False
    return _SNIFF.match(head) is not None


FORMAT = Format(
    name="firehose_cloudwatch_logs", type="firehose_cloudwatch_logs", table=TABLE,
    parse=parse, framing=JSON_DOCUMENTS, json_messages=True, sniff=looks_like_payload,
)
