"""The services that collect what AWS (or Cisco) writes to S3 and announces by SQS.

Each is a declaration: its name, the config types it collects (their formats are
in the registry) and the options its parsers get. The spine (s3_sqs.py) does
the rest, the same way for all of them. Services configured on one queue (an
organization's log-archive bucket) read it together: see io/routes.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import apache_beam as beam

from awscollector.errors import CollectorError
from awscollector.io.routes import Route, Routes
from awscollector.io.sqs import SqsQueue
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

    def route(self, plan: ServicePlan) -> Route:
        """What the plan collects from its queue, and its parsers' options."""
        options = {"flatten": bool(getattr(plan.config, "flatten", False)),
                   **self.options(plan.config)}
        return Route(plan.label, self.types(plan.config), options)


def expand_s3(pbegin, plans: list[ServicePlan], ctx: RunContext) -> dict[str, beam.PCollection]:
    """The events and dead letters of services that read one queue (mostly one service),
    as named PCollections."""
    routes = Routes(S3_SERVICES[p.name].route(p) for p in plans)
    return pbegin | f"{group_label(plans)} S3+SQS" >> ReadFromS3Sqs(
        shared_readers(plans), ctx.access, ctx.registry, routes, **ctx.sqs_options)


def group_label(plans: list[ServicePlan]) -> str:
    return "+".join(p.label for p in plans)


def share_queues(plans: list[ServicePlan]) -> list[list[ServicePlan]]:
    """The plans in groups that read the same queues: a message goes to one reader, so
    services on one queue must read it together, each taking its own types.

    Plans on one queue must read it in the same regions (CFG-017): a service would
    otherwise get objects from a region it does not collect. S3 services and event
    services (pipelines/event_services.py) cannot share a queue (CFG-018): one reads
    S3 notifications, the other EventBridge events.
    """
    groups: list[list[ServicePlan]] = []
    for plan in plans:
        mine = _queue_ids(plan)
        joined = [g for g in groups if mine & set().union(*map(_queue_ids, g))]
        for g in joined:
            groups.remove(g)
        groups.append([p for g in joined for p in g] + [plan])
    for group in groups:
        first = group[0]
        s3 = [p.label for p in group if p.name in S3_SERVICES]
        events = [p.label for p in group if p.name not in S3_SERVICES]
        if s3 and events:
            raise CollectorError(
                "CFG-018", f"{s3[0]} and {events[0]} read one SQS queue, but {s3[0]} collects "
                           f"S3 objects it announces and {events[0]} EventBridge events: give "
                           f"them separate queues")
        for plan in group[1:]:
            if _queue_ids(plan) != _queue_ids(first):
                raise CollectorError(
                    "CFG-017", f"{first.label} and {plan.label} read one SQS queue, but not "
                               f"in the same regions ({', '.join(first.regions)} and "
                               f"{', '.join(plan.regions)}): services on one queue read it "
                               f"together; give them the same regions, or separate queues")
    return groups


def shared_readers(plans: list[ServicePlan]) -> list[SqsQueue]:
    """The readers of a group's queues: per queue and region, the most any plan asks for,
    labelled with the first plan (its message-level dead letters are that plan's), with
    the lowest ``max_receive_count`` of the plans."""
    readers: dict[tuple[str, str], tuple[SqsQueue, int, int | None]] = {}
    for plan in plans:
        for q in plan.queues:
            key = (q.region, _queue_name(q.queue))
            first, n, most = readers.get(key, (q, 0, q.max_receive_count))
            counts = [c for c in (most, q.max_receive_count) if c is not None]
            readers[key] = (first, max(n, q.reader + 1), min(counts) if counts else None)
    label = plans[0].label
    return [SqsQueue(label, q.region, q.queue, i, most)
            for q, n, most in readers.values() for i in range(n)]


def _queue_ids(plan: ServicePlan) -> set[tuple[str, str]]:
    return {(q.region, _queue_name(q.queue)) for q in plan.queues}


def _queue_name(queue: str) -> str:
    """A queue's name, from its name or its URL (``https://sqs.../<account>/<name>``)."""
    return queue.rstrip("/").rsplit("/", 1)[-1]


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
