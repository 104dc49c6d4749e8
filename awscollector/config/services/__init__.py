"""The services of ``inputs.aws.services``: one module each.

A new service is a module here with its ``ServiceConfig`` subclass (see base.py)
and one line in ``SERVICE_CLASSES``; their order is the order messages list them in.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Discriminator, Tag

from awscollector.config.services.audit_events_all import AuditEventsAll
from awscollector.config.services.base import SERVICE_TAG, ServiceConfig
from awscollector.config.services.cisco_umbrella import CiscoUmbrella
from awscollector.config.services.cloudwatch_logs import CloudwatchLogs
from awscollector.config.services.custom_s3 import CustomS3, CustomS3Source
from awscollector.config.services.guardduty import Guardduty
from awscollector.config.services.metrics_all import MetricsAll
from awscollector.config.services.non_cloudwatch_logs import NonCloudwatchLogs
from awscollector.config.services.service_events_all import ServiceEventsAll
from awscollector.config.services.sqs_cloudwatch_consumer import SqsCloudwatchConsumer

SERVICE_CLASSES: tuple[type[ServiceConfig], ...] = (
    NonCloudwatchLogs,
    AuditEventsAll,
    CiscoUmbrella,
    ServiceEventsAll,
    SqsCloudwatchConsumer,
    Guardduty,
    MetricsAll,
    CloudwatchLogs,
    CustomS3,
)
SERVICES: dict[str, type[ServiceConfig]] = {c.NAME: c for c in SERVICE_CLASSES}


def _service_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get(SERVICE_TAG)
    return getattr(value, "NAME", None)


AnyService = Annotated[
    Union[tuple(Annotated[c, Tag(c.NAME)] for c in SERVICE_CLASSES)],  # noqa: UP007
    Discriminator(_service_tag),
]

__all__ = [
    "SERVICES", "SERVICE_CLASSES", "SERVICE_TAG", "AnyService", "AuditEventsAll",
    "CiscoUmbrella", "CloudwatchLogs", "CustomS3", "CustomS3Source", "Guardduty", "MetricsAll",
    "NonCloudwatchLogs",
    "ServiceConfig", "ServiceEventsAll", "SqsCloudwatchConsumer",
]
