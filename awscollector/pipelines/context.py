"""What every service pipeline gets: how to reach AWS, outputs, and its own plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from awscollector.io.access import AwsAccess
from awscollector.io.deadletter import DeadLetterTarget
from awscollector.io.sqs import SqsQueue
from awscollector.transforms.formats import Registry


@dataclass
class RunContext:
    access: AwsAccess
    dead_letter: DeadLetterTarget
    registry: Registry
    sqs_options: dict[str, Any] = field(default_factory=dict)  # ReadFromSqs keyword arguments


@dataclass
class ServicePlan:
    """One enabled service: its config, its regions and, for SQS services, its readers."""

    name: str
    config: Any  # the service's config model
    regions: list[str]
    queues: list[SqsQueue] = field(default_factory=list)
    default_table: str = "-"  # for summary rows of a service that delivered nothing

    @property
    def label(self) -> str:
        return self.name
