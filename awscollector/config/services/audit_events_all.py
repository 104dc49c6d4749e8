"""audit-events-all: CloudTrail events, from S3 (audits_s3) or the API (audit_apis)."""

from __future__ import annotations

from pydantic import Field

from awscollector.config.services.base import LagSeconds, RequestPeriod, S3SqsService, StartTime


class AuditEventsAll(S3SqsService):
    NAME = "audit-events-all"
    # A new type: add it here.
    TYPES = ("audits_s3", "audit_apis")

    types: list[str] = Field(default_factory=lambda: ["audits_s3"])
    auto_event_type: bool = False
    # The API half's options. Declared here rather than by ApiService as a second base,
    # so that they come after the SQS ones in messages and dumps.
    start_time: StartTime = None
    request_period_in_seconds: RequestPeriod = 60
    lag_seconds: LagSeconds = None

    @classmethod
    def _needs_queue(cls, data: dict) -> bool:
        # Only the S3 half reads SQS; audit_apis alone calls CloudTrail LookupEvents.
        kinds = data.get("types", ["audits_s3"])
        return super()._needs_queue(data) and isinstance(kinds, list) and "audits_s3" in kinds
