"""GuardDuty findings read from its API (service ``guardduty``).

The findings are those GetFindings returns: one Devo event per finding, as
compact JSON, in ``cloud.aws.guardduty.findings``, the same message as a finding
that arrives through EventBridge (transforms/guardduty_events.py). A finding that
is not a JSON object or has no ``id`` is rejected (SRC-014) and the others of the
page are delivered.

    >>> parsed = parse([{"id": "f1", "type": "Recon:EC2/PortProbeUnprotectedPort"},
    ...                 {"type": "Recon:EC2/Portscan"}])
    >>> parsed.events
    {'cloud.aws.guardduty.findings': [b'{"id":"f1","type":"Recon:EC2/PortProbeUnprotectedPort"}']}
    >>> [(r.code, r.reason) for r in parsed.rejected]
    [('SRC-014', "finding 1 of 2: no 'id' (a GuardDuty finding's identifier)")]
"""

from __future__ import annotations

from typing import Any

from awscollector.transforms.eventbridge import encode
from awscollector.transforms.formats import Parsed
from awscollector.transforms.guardduty_events import TABLE
from awscollector.transforms.securityhub import BAD_FINDING

__all__ = ["BAD_FINDING", "TABLE", "parse"]


def parse(findings: list[Any]) -> Parsed:
    """GetFindings findings as messages; those without an id are rejected."""
    parsed = Parsed()
    for n, finding in enumerate(findings):
        problem = _not_a_finding(finding)
        if problem:
            parsed.reject(BAD_FINDING, f"finding {n} of {len(findings)}: {problem}", finding)
        else:
            parsed.add(TABLE, encode(finding))
    return parsed


def _not_a_finding(finding: Any) -> str:
    if not isinstance(finding, dict):
        return f"a JSON {type(finding).__name__}, not a GuardDuty finding object"
    if not isinstance(finding.get("id"), str) or not finding["id"]:
        return "no 'id' (a GuardDuty finding's identifier)"
    return ""
