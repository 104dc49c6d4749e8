"""Security Hub events from EventBridge (config service ``sqs-cloudwatch-consumer``).

Security Hub sends three kinds of events (source ``aws.securityhub``):

* ``Security Hub Findings - Imported`` (a finding was created or updated) and
  ``Security Hub Findings - Custom Action`` (a user sent findings to a custom
  action): ``detail.findings`` is a list of up to 100 findings, each a whole
  finding in the AWS Security Finding Format (ASFF, up to 240 KB). Each finding
  is one Devo event, as compact JSON, in ``cloud.aws.securityhub.findings``: the
  same message as the finding read from Security Hub's API. A finding that is
  not a JSON object, or has no ``Id`` (ASFF requires it), is rejected (SRC-014)
  and the other findings of the event are delivered. A ``findings`` that is
  not a list rejects the event whole (SRC-014).
* ``Security Hub Insight Results``: a user asked for an insight's results, in
  ``detail.insightResults``. No finding in it: the event is sent whole, one
  Devo event per message, to the same table (no Devo table of its own is
  documented for them); its ``detail-type`` tells it apart from the findings,
  which have none.

    >>> event = {"source": "aws.securityhub", "detail-type": "Security Hub Findings - Imported",
    ...          "detail": {"findings": [{"Id": "f-1", "SchemaVersion": "2018-10-08"}, 7]}}
    >>> parsed = FINDINGS.parse(RecordBatch("q", "", 0, [event]), {})
    >>> parsed.events
    {'cloud.aws.securityhub.findings': [b'{"Id":"f-1","SchemaVersion":"2018-10-08"}']}
    >>> [(r.code, r.record) for r in parsed.rejected]
    [('SRC-014', 7)]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from awscollector.io.eventrules import SECURITY_HUB_DETAIL_TYPES
from awscollector.transforms.eventbridge import encode
from awscollector.transforms.formats import EVENTS, Format, Parsed, RecordBatch

TYPE = "securityhub_events"  # a registry type of sqs-cloudwatch-consumer
TABLE = "cloud.aws.securityhub.findings"
SOURCE = "aws.securityhub"
BAD_FINDING = "SRC-014"
FINDING_TYPES = tuple(t for t in SECURITY_HUB_DETAIL_TYPES if t.startswith("Security Hub Findings"))
INSIGHT_TYPE = "Security Hub Insight Results"


def parse_findings(batch: RecordBatch, options: Mapping[str, Any]) -> Parsed:
    """Findings events: one message per finding of ``detail.findings``."""
    parsed = Parsed()
    for event in batch.records:
        findings = event["detail"].get("findings")
        if not isinstance(findings, list):
            parsed.reject(BAD_FINDING, f"{event['detail-type']} event {event.get('id')}: "
                                       f"'detail.findings' is not a list", event)
            continue
        for n, finding in enumerate(findings):
            problem = _not_a_finding(finding)
            if problem:
                parsed.reject(BAD_FINDING, f"finding {n} of {len(findings)} in event "
                                           f"{event.get('id')}: {problem}", finding)
            else:
                parsed.add(TABLE, encode(finding))
    return parsed


def _not_a_finding(finding: Any) -> str:
    if not isinstance(finding, dict):
        return f"a JSON {type(finding).__name__}, not an ASFF finding object"
    if not isinstance(finding.get("Id"), str) or not finding["Id"]:
        return "no 'Id' (an ASFF finding's identifier)"
    return ""


def parse_insight_results(batch: RecordBatch, options: Mapping[str, Any]) -> Parsed:
    """Insight Results events: each whole."""
    parsed = Parsed()
    parsed.extend(TABLE, [encode(event) for event in batch.records])
    return parsed


def is_findings(event: Mapping[str, Any]) -> bool:
    return event.get("source") == SOURCE and event.get("detail-type") in FINDING_TYPES


def is_insight_results(event: Mapping[str, Any]) -> bool:
    return event.get("source") == SOURCE and event.get("detail-type") == INSIGHT_TYPE


FINDINGS = Format(name="securityhub_findings", type=TYPE, table=TABLE, parse=parse_findings,
                  framing=EVENTS, json_messages=True, recognize=is_findings)
INSIGHT_RESULTS = Format(name="securityhub_insight_results", type=TYPE, table=TABLE,
                         parse=parse_insight_results, framing=EVENTS, json_messages=True,
                         recognize=is_insight_results)
FORMATS = (FINDINGS, INSIGHT_RESULTS)
