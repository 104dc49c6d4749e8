"""service-events-all: AWS service events (EventBridge) from an SQS queue."""

from __future__ import annotations

from awscollector.config.services.base import SqsService


class ServiceEventsAll(SqsService):
    NAME = "service-events-all"

    auto_event_type: bool = False
