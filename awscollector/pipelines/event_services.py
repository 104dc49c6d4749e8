"""The services that collect EventBridge events an SQS queue receives.

Each is a declaration, like the S3 services (pipelines/s3_services.py): its name,
the registry types whose formats it collects, and the options its parsers get.
``ReadEventsFromSqs`` (pipelines/sqs_events.py) does the rest. Two event services
configured on one queue read it together, each event going to the service whose
formats take it; an S3 service and an event service cannot share a queue (CFG-018,
in ``share_queues``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import apache_beam as beam

from awscollector.io.routes import Route, Routes
from awscollector.pipelines.context import RunContext, ServicePlan
from awscollector.pipelines.s3_services import group_label, shared_readers
from awscollector.pipelines.sqs_events import ReadEventsFromSqs
from awscollector.transforms import eventbridge, guardduty_events, securityhub
from awscollector.transforms.formats import Format


@dataclass(frozen=True)
class EventService:
    name: str
    collects: tuple[str, ...]  # the registry types of its formats (it has no config `types`)
    options: Callable[[Any], dict[str, Any]] = lambda config: {}

    def types(self, config: Any) -> tuple[str, ...]:
        return self.collects

    def sources(self, config: Any) -> list[tuple[str, Any]]:
        return [("", config)]  # one plan per service

    def formats(self, config: Any) -> tuple[Format, ...]:
        return ()  # its formats are built in

    def route(self, plan: ServicePlan) -> Route:
        options = {"flatten": bool(getattr(plan.config, "flatten", False)),
                   **self.options(plan.config)}
        return Route(plan.label, self.collects, options)


def expand_events(pbegin, plans: list[ServicePlan], ctx: RunContext
                  ) -> dict[str, beam.PCollection]:
    """The events and dead letters of event services that read one queue, as named
    PCollections."""
    routes = Routes(EVENT_SERVICES[p.name].route(p) for p in plans)
    return pbegin | f"{group_label(plans)} events" >> ReadEventsFromSqs(
        shared_readers(plans), ctx.access, ctx.registry, routes, **ctx.sqs_options)


# Every event an AWS service sends (its rule takes every aws.* source).
SERVICE_EVENTS_ALL = EventService(
    "service-events-all", (eventbridge.TYPE,),
    options=lambda config: {"auto_event_type": bool(config.auto_event_type)})

# Security Hub findings and insight results, GuardDuty findings.
SQS_CLOUDWATCH_CONSUMER = EventService(
    "sqs-cloudwatch-consumer", (securityhub.TYPE, guardduty_events.TYPE))

EVENT_SERVICES: dict[str, EventService] = {s.name: s for s in (SERVICE_EVENTS_ALL,
                                                                SQS_CLOUDWATCH_CONSUMER)}
