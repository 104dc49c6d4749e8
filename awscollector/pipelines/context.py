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
    checkpoints: Any = None  # the API pullers' store (io/checkpoints.py)
    api_streams: list[Any] = field(default_factory=list)  # the ApiStreams the run reads


@dataclass
class ServicePlan:
    """One enabled service (or one source of a service that has several, like custom-s3):
    its config, its regions and, for SQS services, its readers."""

    name: str  # the service
    config: Any  # the service's config model, or the source's
    regions: list[str]
    queues: list[SqsQueue] = field(default_factory=list)
    default_table: str = "-"  # for summary rows of a service that delivered nothing
    source: str = ""  # the source's name, for a service of several sources
    api: bool = False  # it polls an API (pipelines/api_services.py) rather than SQS

    @property
    def label(self) -> str:
        """Its name in summary rows, counters, dead letters and pipeline steps."""
        return label_of(self.name, self.source)


def label_of(service: str, source: str = "") -> str:
    """``custom-s3.myapp`` for a source, the service's name for a service."""
    return f"{service}.{source}" if source else service
