"""non-cloudwatch-logs: logs AWS services write to S3 (VPC Flow Logs, CloudFront)."""

from __future__ import annotations

from pydantic import Field

from awscollector.config.services.base import S3SqsService


class NonCloudwatchLogs(S3SqsService):
    NAME = "non-cloudwatch-logs"
    # A new type: add it here (and to the default below if it is collected by default).
    TYPES = ("vpc_flow_logs", "cloudfront_logs")

    types: list[str] = Field(default_factory=lambda: ["vpc_flow_logs", "cloudfront_logs"])
