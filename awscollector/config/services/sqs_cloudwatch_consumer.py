"""sqs-cloudwatch-consumer: events (Security Hub, ...) delivered to an SQS queue."""

from __future__ import annotations

from awscollector.config.services.base import SqsService


class SqsCloudwatchConsumer(SqsService):
    NAME = "sqs-cloudwatch-consumer"
