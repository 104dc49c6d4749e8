"""What every API puller declares: how to find its streams, fetch a page, parse it.

A puller is one AWS API read over time (CloudTrail LookupEvents, GuardDuty
findings, CloudWatch metrics, CloudWatch Logs). ``ReadFromApi`` (io/api.py) does
the rest the same way for all: windows, pages, rate limits, backoff, checkpoints.
Adding an API is one module in this package and one line in ``PULLERS``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from awscollector.transforms.formats import Parsed


@dataclass(frozen=True)
class Page:
    """One API call's records, and the token of the next page of the same window
    (None: the window is done)."""

    records: list[Any]
    token: str | None = None


@dataclass(frozen=True)
class ApiStream:
    """One stream of an API: what one checkpoint is of.

    ``options`` are the service's (``period_seconds``, ``statistics``, ...), as a
    plain dict; ``start`` (epoch ms) is where a first run begins.
    """

    service: str  # the service's label, e.g. "cloudwatch-logs"
    api: str  # the puller's name, a key of PULLERS
    account: str
    region: str
    stream: str  # a log group, a detector id, a namespace, "events"
    start: int
    lag_ms: int
    request_period_s: float
    options: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> str:
        """The stream's name: its element in the pipeline."""
        return f"{self.service}|{self.account}|{self.region}|{self.stream}"


class Puller(ABC):
    """An API read over time. Subclasses set the class attributes and methods.

    name: its key in PULLERS; operation: the API call named in errors ("LookupEvents").
    aws_service: the boto3 client's service name.
    window_ms: a window's length: the grid the reads (and checkpoints) follow.
    align_ms: times are rounded down to this (an API of whole seconds: 1000).
    piece_ms: a backfill is cut into pieces this long that may run in parallel;
      None where the API's rate limit is shared by the whole stream anyway.
    rate: requests per second per account and region, shared by every reader of
      them in a process; None: botocore's adaptive retries alone.
    lag_s: default of the service's ``lag_seconds``: how far behind now it reads,
      for data that becomes visible late.
    max_lookback_s: how far back the API keeps data (a start before is moved up).
    actions: the IAM actions its calls need (``iam-policy`` prints them).
    """

    name = ""
    operation = ""
    aws_service = ""
    window_ms = 3_600_000
    align_ms = 1000
    piece_ms: int | None = None
    rate: float | None = None
    lag_s = 60
    max_lookback_s: int | None = None
    actions: tuple[str, ...] = ()

    @abstractmethod
    def streams(self, client: Any, config: Any) -> list[str]:
        """The streams to read in one account and region (``client`` is this
        puller's boto3 client there), from the service's config."""
        ...

    @abstractmethod
    def fetch(self, client: Any, stream: ApiStream, start_ms: int, end_ms: int,
              token: str | None) -> Page:
        """One page of ``stream``'s records in ``[start_ms, end_ms)``, from ``token``
        (None: the first page). Only records of that window, each once."""
        ...

    @abstractmethod
    def parse(self, records: list[Any], stream: ApiStream, options: Mapping[str, Any]
              ) -> Parsed:
        """The records of a page as messages per Devo table."""
        ...

    def limit_key(self, stream: ApiStream) -> str:
        """What shares one rate limit."""
        return f"{self.operation}|{stream.account}|{stream.region}"
