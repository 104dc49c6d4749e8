"""GuardDuty findings from EventBridge (config service ``sqs-cloudwatch-consumer``).

GuardDuty sends each new finding, and each update of one, as an event with
source ``aws.guardduty`` and detail-type ``GuardDuty Finding``; the finding is
the event's ``detail``, in the shape GuardDuty's GetFindings API returns it.
One Devo event per message: the finding, as compact JSON, in
``cloud.aws.guardduty.findings``. A ``detail`` without the finding's ``id`` is
rejected (SRC-014).

    >>> event = {"source": "aws.guardduty", "detail-type": "GuardDuty Finding",
    ...          "detail": {"id": "f1", "type": "Recon:EC2/PortProbeUnprotectedPort"}}
    >>> FORMAT.parse(RecordBatch("q", "", 0, [event]), {}).events
    {'cloud.aws.guardduty.findings': [b'{"id":"f1","type":"Recon:EC2/PortProbeUnprotectedPort"}']}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from awscollector.transforms.eventbridge import encode
from awscollector.transforms.formats import EVENTS, Format, Parsed, RecordBatch
from awscollector.transforms.securityhub import BAD_FINDING

TYPE = "guardduty_events"  # a registry type of sqs-cloudwatch-consumer
TABLE = "cloud.aws.guardduty.findings"
SOURCE = "aws.guardduty"
DETAIL_TYPE = "GuardDuty Finding"


def parse(batch: RecordBatch, options: Mapping[str, Any]) -> Parsed:
    parsed = Parsed()
    for event in batch.records:
        finding = event["detail"]
        if isinstance(finding.get("id"), str) and finding["id"]:
            parsed.add(TABLE, encode(finding))
        else:
            parsed.reject(BAD_FINDING, f"GuardDuty Finding event {event.get('id')}: no 'id' "
                                       f"in its detail (the finding)", event)
    return parsed


def is_finding(event: Mapping[str, Any]) -> bool:
    return event.get("source") == SOURCE and event.get("detail-type") == DETAIL_TYPE


FORMAT = Format(name="guardduty_finding_events", type=TYPE, table=TABLE, parse=parse,
                framing=EVENTS, json_messages=True, recognize=is_finding)
