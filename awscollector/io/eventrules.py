"""The EventBridge rules that feed the event services' SQS queues.

``aws-collector setup`` creates them (with an SQS target and a queue policy that lets
``events.amazonaws.com`` send); the event services read what they deliver. One place
for the patterns, so what ``setup`` creates and what the collector expects agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SECURITY_HUB_DETAIL_TYPES = ("Security Hub Findings - Imported",
                             "Security Hub Findings - Custom Action",
                             "Security Hub Insight Results")


@dataclass(frozen=True)
class EventRule:
    """A rule by its suffix (``setup`` names it ``<queue name>-<suffix>``) and pattern."""

    suffix: str
    pattern: dict[str, Any]


# Every event an AWS service sends (their sources all start with "aws.").
SERVICE_EVENTS = EventRule("aws-service-events", {"source": [{"prefix": "aws."}]})
SECURITY_HUB_FINDINGS = EventRule("securityhub-findings", {
    "source": ["aws.securityhub"], "detail-type": list(SECURITY_HUB_DETAIL_TYPES)})
GUARDDUTY_FINDINGS = EventRule("guardduty-findings", {
    "source": ["aws.guardduty"], "detail-type": ["GuardDuty Finding"]})

# service name -> the rules that send to its queue
RULES: dict[str, tuple[EventRule, ...]] = {
    "service-events-all": (SERVICE_EVENTS,),
    "sqs-cloudwatch-consumer": (SECURITY_HUB_FINDINGS, GUARDDUTY_FINDINGS),
}
