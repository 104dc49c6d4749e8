"""What the configured services need on AWS, queue by queue and region by region.

    for need in queue_needs(config):
        print(need.region, need.name, [r.suffix for r in need.rules], need.buckets)

Services configured on one queue (CFG-017 makes them read it in the same regions)
share one ``QueueNeed``: one queue, one dead-letter queue, one policy that lets
every sender of every one of them in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from awscollector.io.eventrules import RULES, EventRule

# The collector's own count when a service (a model without the field) gives none.
DEFAULT_MAX_RECEIVE_COUNT = 5
S3_SERVICES = ("non-cloudwatch-logs", "audit-events-all", "cisco-umbrella", "custom-s3")


@dataclass
class QueueNeed:
    """One SQS queue in one region and what must send to it."""

    region: str
    queue: str  # the name, or the URL of a queue the user made
    services: list[str] = field(default_factory=list)  # labels: name, or custom-s3/<source>
    max_receive_count: int = 0  # the highest of its services'
    rules: list[EventRule] = field(default_factory=list)
    buckets: list[str] = field(default_factory=list)
    unlisted_s3: list[str] = field(default_factory=list)  # S3 services without s3_buckets

    @property
    def is_url(self) -> bool:
        return self.queue.startswith(("http://", "https://"))

    @property
    def name(self) -> str:
        return self.queue.rstrip("/").rsplit("/", 1)[-1] if self.is_url else self.queue

    def rule_name(self, rule: EventRule) -> str:
        return f"{self.name}-{rule.suffix}"


def _sources(name: str, service) -> list[tuple[str, object]]:
    """(label, config holding the queue, regions, s3_buckets) of a service."""
    if name == "custom-s3":
        return [(f"custom-s3/{s.name}", s) for s in service.sources]
    return [(name, service)]


def queue_needs(config) -> tuple[list[QueueNeed], list[str]]:
    """The queues to set up, and the enabled services that need nothing (API pullers)."""
    aws = config.inputs.aws
    needs: dict[tuple[str, str], QueueNeed] = {}
    nothing: list[str] = []
    for name, service in aws.enabled_services().items():
        if name not in RULES and name not in S3_SERVICES:
            nothing.append(name)
            continue
        if name == "audit-events-all" and "audits_s3" not in (service.types or []):
            nothing.append(name)  # audit_apis only: no queue
            continue
        count = getattr(service, "max_receive_count", None) or DEFAULT_MAX_RECEIVE_COUNT
        for label, cfg in _sources(name, service):
            queue = getattr(cfg, "sqs_queue_url", None) or getattr(cfg, "sqs_queue_name", None)
            if not queue:
                continue
            regions = getattr(cfg, "regions", None) or service.regions or aws.regions
            for region in regions:
                need = needs.setdefault((region, queue), QueueNeed(region, queue))
                need.services.append(label)
                need.max_receive_count = max(need.max_receive_count, count)
                for rule in RULES.get(name, ()):
                    if rule not in need.rules:
                        need.rules.append(rule)
                if name in S3_SERVICES:
                    buckets = getattr(cfg, "s3_buckets", None)
                    if not buckets:
                        need.unlisted_s3.append(label)
                    for bucket in buckets or ():
                        if bucket not in need.buckets:
                            need.buckets.append(bucket)
    return list(needs.values()), nothing
