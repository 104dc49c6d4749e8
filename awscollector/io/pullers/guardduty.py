"""GuardDuty findings (ListFindings, GetFindings), one stream per detector: guardduty.

The detectors are those of ``detector_ids``, or else every detector of the
region (ListDetectors, when the run starts). A window of a detector is the
findings whose ``updatedAt`` is in it: ListFindings filtered on ``updatedAt``,
oldest first, 50 ids a page, then GetFindings for those ids. Each finding goes
to ``cloud.aws.guardduty.findings`` as compact JSON (transforms/guardduty_findings.py),
the same message as a finding that arrives through EventBridge.

GuardDuty updates a finding in place when the activity it describes goes on (its
``count``, ``eventLastSeen`` and ``updatedAt`` move), or when a user archives it.
An updated finding is in the window of its new ``updatedAt``, so it is sent again
there, with its new state: Devo gets each state of a finding that the reads see,
not only the first. Its ``id`` ties the states together.

GuardDuty writes and updates findings within minutes of the activity, and
``updatedAt`` is stamped when it does; a window is read only once it is five
minutes old by default (``lag_seconds``), a margin for a finding stamped just
before the window closed to become listable before the window is read and
checkpointed. GuardDuty keeps findings 90 days: a start further back is moved up.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from awscollector.io.pullers.base import ApiStream, Page, Puller
from awscollector.transforms import guardduty_findings
from awscollector.transforms.formats import Parsed

PAGE = 50  # ListFindings' and GetFindings' most ids per call


def updated_ms(finding: Any) -> int | None:
    """A finding's ``updatedAt`` (ISO 8601, e.g. "2026-11-27T11:00:00.123Z") in epoch
    ms; None when it has none that parses."""
    value = finding.get("updatedAt") if isinstance(finding, dict) else None
    if not isinstance(value, str):
        return None
    try:
        at = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if at.tzinfo is None:  # GuardDuty's times are UTC
        at = at.replace(tzinfo=dt.UTC)
    return int(at.timestamp() * 1000)


class Findings(Puller):
    name = "guardduty_findings"
    operation = "ListFindings"
    actions = ("guardduty:ListDetectors", "guardduty:ListFindings", "guardduty:GetFindings")
    aws_service = "guardduty"
    window_ms = 3_600_000
    align_ms = 1  # updatedAt has milliseconds
    piece_ms = 86_400_000
    rate = None  # botocore's adaptive retries
    lag_s = 300
    max_lookback_s = 90 * 86_400

    def streams(self, client: Any, config: Any) -> list[str]:
        ids = list(getattr(config, "detector_ids", None) or [])
        if ids:
            return list(dict.fromkeys(ids))
        found: list[str] = []
        for page in client.get_paginator("list_detectors").paginate():
            found += page.get("DetectorIds", [])
        return sorted(set(found))

    def fetch(self, client: Any, stream: ApiStream, start_ms: int, end_ms: int,
              token: str | None) -> Page:
        args: dict[str, Any] = {
            "DetectorId": stream.stream,
            "FindingCriteria": {"Criterion": {"updatedAt": {
                "GreaterThanOrEqual": start_ms, "LessThan": end_ms}}},
            "SortCriteria": {"AttributeName": "updatedAt", "OrderBy": "ASC"},
            "MaxResults": PAGE,
        }
        if token:
            args["NextToken"] = token
        response = client.list_findings(**args)
        ids = response.get("FindingIds", [])
        by_id: dict[str, Any] = {}
        _keep_wire_findings(client)
        for i in range(0, len(ids), PAGE):
            got = client.get_findings(DetectorId=stream.stream, FindingIds=ids[i:i + PAGE])
            for finding in got.get(_WIRE, []):
                key = finding.get("id") if isinstance(finding, dict) else None
                by_id[key if isinstance(key, str) else f"#{len(by_id)}"] = finding
        # In ListFindings' order; an id GetFindings no longer has (deleted since) is
        # skipped, and a finding without an id reaches the parser, which rejects it.
        records = [by_id.pop(i) for i in ids if i in by_id] + list(by_id.values())
        kept = []
        for finding in records:
            at = updated_ms(finding)
            # Updated again between the two calls: its new state belongs to a later
            # window, which sends it. Without a readable updatedAt, ListFindings' filter
            # placed it in this window: kept, rather than lost.
            if at is None or start_ms <= at < end_ms:
                kept.append(finding)
        token = response.get("NextToken") or None
        return Page(kept, token)

    def parse(self, records: list[Any], stream: ApiStream, options: Mapping[str, Any]
              ) -> Parsed:
        return guardduty_findings.parse(records)


# boto3 renames every field of a finding (``updatedAt`` -> ``UpdatedAt``) and parses its
# timestamps; Devo gets the finding as GuardDuty sends it, as EventBridge does too. So the
# findings are taken from GetFindings' own JSON, kept beside boto3's result.
_WIRE = "WireFindings"


def _keep_wire_findings(client: Any) -> None:
    """Make ``client``'s GetFindings results carry the findings as sent (once per client)."""
    client.meta.events.register("after-call.guardduty.GetFindings", _wire_findings,
                                unique_id="awscollector-guardduty-wire-findings")


def _wire_findings(http_response: Any, parsed: dict, **_: Any) -> None:
    if 200 <= http_response.status_code < 300:
        parsed[_WIRE] = json.loads(http_response.content).get("findings", [])


PULLER = Findings()
