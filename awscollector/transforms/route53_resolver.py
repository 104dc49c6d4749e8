"""Route 53 VPC Resolver query logs, as Resolver delivers them to an S3 bucket (config
type ``route53_resolver_logs``).

A query logging configuration with an S3 destination writes gzip'd files, a few
minutes of queries each, per VPC, under::

    [prefix/]AWSLogs/[o-orgid/]<account>/vpcdnsquerylogs/<vpc-id>/YYYY/MM/DD/
        <account>_vpcdnsquerylogs_<vpc-id>_<time>_<hash>.log.gz

(``<time>`` like ``20261127T1205Z``). Only the key tells these objects apart (no
sniffing): query logs that go through a Firehose stream have its layout instead.

Records: one JSON object per line. ``version`` (``"1.100000"``: 1.1, the current
one; AWS adds fields in minor versions), ``account_id``, ``region``, ``vpc_id``,
``query_timestamp`` (ISO 8601), ``query_name``, ``query_type``, ``query_class``,
``rcode``, ``answers`` (a list of ``{"Rdata", "Type", "Class"}``, empty without an
answer), ``srcaddr``, ``srcport``, ``transport``, ``srcids`` (``instance`` or
``resolver_endpoint``, and ``resolver_network_interface``; may be empty), and for
queries a DNS Firewall rule matched, ``firewall_rule_action``,
``firewall_rule_group_id``, ``firewall_domain_list_id``. Fields AWS adds later are
kept too, as they come.

Message, in ``dns.aws.route53``: the record as compact JSON, AWS's keys in AWS's
order (``flatten: true`` applies). A line that is not JSON is rejected with SRC-007,
JSON that is not an object with SRC-008, an object without ``query_name`` or
``query_timestamp`` (every query has them) with SRC-020; the other lines are delivered.

    >>> line = (b'{"version":"1.100000","vpc_id":"vpc-0a1","query_timestamp":'
    ...         b'"2026-11-27T12:00:00Z","query_name":"example.com.","rcode":"NOERROR",'
    ...         b'"answers":[{"Rdata":"93.184.215.14","Type":"A","Class":"IN"}]}')
    >>> parsed = parse(RecordBatch("s3://b/k", "k", 0, [line, b"1.1"]), {})
    >>> parsed.events[TABLE] == [line], [r.code for r in parsed.rejected]
    (True, ['SRC-008'])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from awscollector.transforms.formats import JSON_LINES, Format, Parsed, RecordBatch
from awscollector.transforms.json_lines import decode_lines, messages

TYPE = "route53_resolver_logs"
TABLE = "dns.aws.route53"
REQUIRED = ("query_name", "query_timestamp")


def parse(batch: RecordBatch, options: Mapping[str, Any]) -> Parsed:
    """A batch of lines of a Resolver query log: every query a compact JSON message."""
    parsed = Parsed()
    lines, records = decode_lines(batch.records, REQUIRED, "Route 53 Resolver query log",
                                  parsed)
    parsed.extend(TABLE, messages(lines, records))
    return parsed


_ACCOUNT = r"(^|/)AWSLogs/(o-[a-z0-9]{10,32}/)?\d{12}/"
KEY = (_ACCOUNT + r"vpcdnsquerylogs/[^/]+/\d{4}/\d{2}/\d{2}/"
       r"\d{12}_vpcdnsquerylogs_[^/]+\.log(\.gz)?$")

FORMAT = Format(name="route53_resolver_logs", type=TYPE, table=TABLE, parse=parse,
                framing=JSON_LINES, keys=(KEY,), json_messages=True)
