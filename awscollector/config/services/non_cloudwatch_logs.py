"""non-cloudwatch-logs: logs AWS services write to S3.

Types (each the formats of transforms/registry.py that carry it): ``vpc_flow_logs``
(text and Parquet), ``cloudfront_logs``, ``elb_logs`` (Application, Network and
Classic Load Balancers), ``s3_access_logs``, ``waf_logs``, ``network_firewall_logs``,
``route53_resolver_logs``, ``config_logs`` (AWS Config history and snapshot files)
and ``firehose_cloudwatch_logs`` (CloudWatch Logs delivered to S3 by Firehose).

By default a service collects every type: on an organization's log-archive bucket,
one queue then reaches every table without listing them. ``types`` narrows it.
"""

from __future__ import annotations

from pydantic import Field

from awscollector.config.services.base import S3SqsService


class NonCloudwatchLogs(S3SqsService):
    NAME = "non-cloudwatch-logs"
    # A new type: add it here (the default is every type).
    TYPES = ("vpc_flow_logs", "cloudfront_logs", "elb_logs", "s3_access_logs", "waf_logs",
             "network_firewall_logs", "route53_resolver_logs", "config_logs",
             "firehose_cloudwatch_logs")

    types: list[str] = Field(default_factory=lambda: list(NonCloudwatchLogs.TYPES))
