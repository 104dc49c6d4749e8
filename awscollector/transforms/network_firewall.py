"""AWS Network Firewall logs, as a firewall delivers them to an S3 bucket: two formats of
one config type, ``network_firewall_logs``.

Each log type a firewall logs to S3 is written, gzip'd, every 5 minutes (or at 75
MB), under::

    [prefix/]AWSLogs/[o-orgid/]<account>/network-firewall/<log type>/<region>/<firewall>/
        YYYY/MM/DD/HH/<account>_network-firewall_<log type>_<region>_<firewall>_<time>_<hash>.log.gz

(``<time>`` like ``20261127T1205Z``). The log type in the key decides the format:
``alert`` (table ``cloud.aws.firewall.alert``) or ``flow`` (table
``cloud.aws.firewall.netflow``). ``tls`` logs (TLS inspection events) have no table
here: they are skipped on purpose, counted and logged, not dead-lettered. Only the key
tells these objects apart (no sniffing; logs through a Firehose stream have its layout).

Records: one JSON object per line, ``firewall_name``, ``availability_zone``,
``event_timestamp`` (epoch seconds, a string) and ``event``: the stateful engine's
(Suricata's) EVE record, ``timestamp``, ``flow_id``, ``event_type``, ``src_ip``,
``src_port``, ``dest_ip``, ``dest_port``, ``proto``, ``app_proto``, and per type
``alert`` (``action``, ``signature_id``, ``rev``, ``signature``, ``category``,
``severity``), ``netflow`` (``pkts``, ``bytes``, ``start``, ``end``, ``age``,
``min_ttl``, ``max_ttl``), ``tcp``, ``http``, ``tls``... Any field is kept.

Message: the record as compact JSON, AWS's keys in AWS's order (``flatten: true``
applies). A record whose ``event.event_type`` contradicts the key (an ``alert`` in a
flow file, a ``netflow`` in an alert file: not what AWS writes, but a hand-made or
misplaced file) goes to the table of its own event type, so each table holds one kind
of record; other event types (``http`` or ``tls`` events in an alert file) stay with
the key's table. A line that is not JSON is rejected with SRC-007, JSON that is not an
object with SRC-008, an object without ``firewall_name`` or ``event`` with SRC-020;
the other lines are delivered.

    >>> line = (b'{"firewall_name":"edge","availability_zone":"us-east-1a","event_timestamp":'
    ...         b'"1795000000","event":{"event_type":"netflow","src_ip":"10.0.0.5"}}')
    >>> parsed = FLOW.parse(RecordBatch("s3://b/k", "k", 0, [line, b'{"event":{}}']), {})
    >>> parsed.events[FLOW_TABLE] == [line], [r.code for r in parsed.rejected]
    (True, ['SRC-020'])
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import partial
from typing import Any

from awscollector.transforms.formats import JSON_LINES, Format, Parsed, RecordBatch
from awscollector.transforms.json_lines import decode_lines, messages

TYPE = "network_firewall_logs"
ALERT_TABLE = "cloud.aws.firewall.alert"
FLOW_TABLE = "cloud.aws.firewall.netflow"
REQUIRED = ("firewall_name", "event")
# event.event_type -> table, for the types that have one.
_TABLES = {"alert": ALERT_TABLE, "netflow": FLOW_TABLE}


def parse(table: str, batch: RecordBatch, options: Mapping[str, Any]) -> Parsed:
    """A batch of lines of a Network Firewall log whose key says ``table``."""
    parsed = Parsed()
    lines, records = decode_lines(batch.records, REQUIRED, "Network Firewall log", parsed)
    out = messages(lines, records)
    tables = [_table_of(record, table) for record in records]
    if tables.count(table) == len(tables):  # what AWS writes: the key's kind only
        parsed.extend(table, out)
        return parsed
    for found, message in zip(tables, out, strict=True):
        parsed.add(found, message)
    return parsed


def _table_of(record: dict, table: str) -> str:
    event = record["event"]
    kind = event.get("event_type") if type(event) is dict else None
    return _TABLES.get(kind, table) if type(kind) is str else table


_FOLDER = r"(^|/)AWSLogs/(o-[a-z0-9]{10,32}/)?\d{12}/network-firewall/"
_REST = r"/[^/]+/[^/]+/\d{4}/\d{2}/\d{2}/\d{2}/\d{12}_network-firewall_"
ALERT_KEY = _FOLDER + r"(alert|tls)" + _REST + r"(alert|tls)_[^/]+\.log(\.gz)?$"
FLOW_KEY = _FOLDER + "flow" + _REST + r"flow_[^/]+\.log(\.gz)?$"
_TLS = re.compile(_FOLDER + "tls/")


def skip_tls(key: str) -> str | None:
    """TLS logs are taken by the alert format's key pattern, to skip them by name."""
    if _TLS.search(key):
        return "a Network Firewall TLS log (TLS inspection events): not collected"
    return None


ALERT = Format(
    name="network_firewall_alert", type=TYPE, table=ALERT_TABLE,
    parse=partial(parse, ALERT_TABLE), framing=JSON_LINES, keys=(ALERT_KEY,),
    json_messages=True, skip=skip_tls)
FLOW = Format(
    name="network_firewall_flow", type=TYPE, table=FLOW_TABLE,
    parse=partial(parse, FLOW_TABLE), framing=JSON_LINES, keys=(FLOW_KEY,),
    json_messages=True)
FORMATS = (ALERT, FLOW)
