"""AWS WAF logs, as AWS WAF (v2) delivers them to an S3 bucket (config type ``waf_logs``).

A web ACL logging to a bucket (named ``aws-waf-logs-...``) writes a gzip'd file every
5 minutes (or at 75 MB) under::

    [prefix/]AWSLogs/[o-orgid/]<account>/WAFLogs/<region or cloudfront>/<web ACL>/
        YYYY/MM/DD/HH/mm/<account>_waflogs_<region or cloudfront>_<web ACL>_<time>_<hash>.log.gz

(``<time>`` like ``20261127T1205Z``, ``<hash>`` 8 hex digits). Only the key tells these
objects apart: WAF logs that reach S3 through a Kinesis Data Firehose stream carry
the stream's key layout, not this one, and are not taken here (no sniffing).

Records: one JSON object per line, ``formatVersion`` 1 (the only one so far; AWS
adds fields without changing it): ``timestamp`` (epoch ms), ``webaclId``,
``terminatingRuleId``, ``terminatingRuleType``, ``action`` (ALLOW, BLOCK, COUNT,
CAPTCHA, CHALLENGE), ``terminatingRuleMatchDetails``, ``httpSourceName``,
``httpSourceId``, ``ruleGroupList`` (each group with its terminating rule, its
non-terminating matches and ``excludedRules``), ``rateBasedRuleList``,
``nonTerminatingMatchingRules``, ``requestHeadersInserted``, ``responseCodeSent``,
``httpRequest`` (``clientIp``, ``country``, ``headers``, ``uri``, ``args``,
``httpVersion``, ``httpMethod``, ``requestId``, ``fragment``, ``scheme``, ``host``),
and, when they apply, ``labels``, ``captchaResponse``, ``challengeResponse``,
``ja3Fingerprint``, ``ja4Fingerprint``, ``oversizeFields``, ``requestBodySize``,
``requestBodySizeInspectedByWAF``. Any field is kept as it is.

Message, in ``cloud.aws.waf.logs``: the record as compact JSON, AWS's keys in AWS's
order (``flatten: true`` applies). A line that is not JSON (cut, malformed, not UTF-8)
is rejected with SRC-007, JSON that is not an object with SRC-008, and an object
without ``webaclId``, ``action`` or ``httpRequest`` with SRC-020: every WAF record has
them, so such a line is not one (a damaged or hand-made file). The other lines of the
batch are delivered.

    >>> line = (b'{"timestamp":1795000000000,"formatVersion":1,"webaclId":"arn:aws:wafv2:'
    ...         b'us-east-1:123456789012:regional/webacl/shop/a1","action":"ALLOW",'
    ...         b'"httpRequest":{"clientIp":"203.0.113.7","uri":"/"}}')
    >>> parsed = parse(RecordBatch("s3://b/k", "k", 0, [line, b'{"timestamp":1}']), {})
    >>> parsed.events[TABLE] == [line], [r.code for r in parsed.rejected]
    (True, ['SRC-020'])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from awscollector.transforms.formats import JSON_LINES, Format, Parsed, RecordBatch
from awscollector.transforms.json_lines import decode_lines, messages

TYPE = "waf_logs"
TABLE = "cloud.aws.waf.logs"
REQUIRED = ("webaclId", "action", "httpRequest")


def parse(batch: RecordBatch, options: Mapping[str, Any]) -> Parsed:
    """A batch of lines of a WAF log: every WAF record a compact JSON message."""
    parsed = Parsed()
    lines, records = decode_lines(batch.records, REQUIRED, "WAF log", parsed)
    parsed.extend(TABLE, messages(lines, records))
    return parsed


_ACCOUNT = r"(^|/)AWSLogs/(o-[a-z0-9]{10,32}/)?\d{12}/"
# region or "cloudfront", web ACL, then the date folders (to the minute).
KEY = (_ACCOUNT + r"WAFLogs/[^/]+/[^/]+/\d{4}/\d{2}/\d{2}/\d{2}/\d{2}/"
       r"\d{12}_waflogs_[^/]+\.log(\.gz)?$")

FORMAT = Format(name="waf_logs", type=TYPE, table=TABLE, parse=parse, framing=JSON_LINES,
                keys=(KEY,), json_messages=True)
