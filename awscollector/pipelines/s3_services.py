"""The services that collect what AWS (or Cisco) writes to S3 and announces by SQS.

Each is a declaration: its name, the config types it collects (their formats are
in the registry) and the options its parsers get. The spine (s3_sqs.py) does
the rest, the same way for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import apache_beam as beam

from awscollector.pipelines.context import RunContext, ServicePlan
from awscollector.pipelines.s3_sqs import ReadFromS3Sqs
from awscollector.transforms import custom, umbrella
from awscollector.transforms.formats import Format


@dataclass(frozen=True)
class S3Service:
    name: str
    types: Callable[[Any], tuple[str, ...]]  # service config -> the types it collects
    options: Callable[[Any], dict[str, Any]] = lambda config: {}
    # service config -> (source name, source config) per plan: "" for the service itself
    sources: Callable[[Any], list[tuple[str, Any]]] = lambda config: [("", config)]
    # service config -> the formats it declares (custom-s3), added to the run's registry
    formats: Callable[[Any], tuple[Format, ...]] = lambda config: ()

    def expand(self, pbegin, plan: ServicePlan, ctx: RunContext) -> dict[str, beam.PCollection]:
        """The service's events and dead letters, as named PCollections."""
        options = {"flatten": bool(getattr(plan.config, "flatten", False)),
                   **self.options(plan.config)}
        return pbegin | f"{plan.label} S3+SQS" >> ReadFromS3Sqs(
            plan.queues, ctx.access, ctx.registry, self.types(plan.config), options,
            **ctx.sqs_options)


NON_CLOUDWATCH_LOGS = S3Service(
    "non-cloudwatch-logs", types=lambda config: tuple(config.types))

# CloudTrail's files in S3; "audit_apis" (CloudTrail's LookupEvents API) is not an S3
# type: the collector warns RUN-002 for it, and skips the service if it is all there is.
AUDIT_EVENTS_ALL = S3Service(
    "audit-events-all", types=lambda config: tuple(t for t in config.types if t == "audits_s3"),
    options=lambda config: {"auto_event_type": bool(config.auto_event_type)})

# Cisco's export of Umbrella logs: every kind (dns, ip, proxy, ...), told by its folder.
CISCO_UMBRELLA = S3Service("cisco-umbrella", types=lambda config: (umbrella.TYPE,))

# The user's own sources: each is a plan of its own, with a format made from its config.
CUSTOM_S3 = S3Service(
    custom.SERVICE, types=lambda source: (custom.format_name(source.name),),
    sources=lambda config: [(s.name, s) for s in config.sources],
    formats=lambda config: tuple(custom.source_format(s, config.flatten)
                                 for s in config.sources))

S3_SERVICES: dict[str, S3Service] = {s.name: s for s in (NON_CLOUDWATCH_LOGS, AUDIT_EVENTS_ALL,
                                                          CISCO_UMBRELLA, CUSTOM_S3)}
