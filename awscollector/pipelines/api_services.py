"""The services that poll AWS APIs: CloudTrail LookupEvents, GuardDuty, CloudWatch.

Each is a declaration: its config name, its puller (io/pullers/), when it runs,
and the options its parser gets. ``ReadFromApi`` (io/api.py) does the rest the
same way for all. The streams (log groups, detectors, namespaces) are listed
when the pipeline is built, in every region of the service; under ``run
--processes N`` each process keeps its share of them (``share_streams``).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from botocore.exceptions import BotoCoreError, ClientError

from awscollector.awserrors import aws_error
from awscollector.io.access import AwsAccess
from awscollector.io.api import ParseApiRecords, ReadFromApi
from awscollector.io.deadletter import DEAD_LETTER
from awscollector.io.pullers import PULLERS, ApiStream
from awscollector.io.pullers.base import Puller
from awscollector.pipelines.context import RunContext, ServicePlan
from awscollector.transforms import (
    cloudtrail,
    cloudwatch_logs,
    cloudwatch_metrics,
    guardduty_findings,
)

# Where a first run begins without ``start_time``: a day back.
DEFAULT_LOOKBACK_S = 86_400


@dataclass(frozen=True)
class ApiService:
    name: str
    puller: str  # a key of PULLERS
    table: str  # its default Devo table (summary rows)
    runs: Callable[[Any], bool] = lambda config: True
    options: Callable[[Any], dict[str, Any]] = lambda config: {}

    def streams(self, plan: ServicePlan, access: AwsAccess) -> list[ApiStream]:
        """The plan's streams in each of its regions, listed now."""
        config = plan.config
        puller = PULLERS[self.puller]
        start_time = getattr(config, "start_time", None)
        start = (int(start_time.timestamp() * 1000) if start_time is not None
                 else int((time.time() - DEFAULT_LOOKBACK_S) * 1000))
        lag = getattr(config, "lag_seconds", None)
        lag_ms = (puller.lag_s if lag is None else lag) * 1000
        options = {"flatten": bool(getattr(config, "flatten", False)), **self.options(config)}
        streams = []
        for region in plan.regions:
            account = account_of(access, region)
            client = access.client(puller.aws_service, region)
            try:
                names = puller.streams(client, config)
            except (ClientError, BotoCoreError) as e:
                raise aws_error(e, f"{puller.aws_service} listing the streams of {plan.label}"
                                   f" in {region}") from e
            streams += [ApiStream(plan.label, puller.name, account, region, name, start,
                                  lag_ms, float(config.request_period_in_seconds), options)
                        for name in names]
        return streams


def account_of(access: AwsAccess, region: str) -> str:
    """The account the credentials reach (its checkpoints are that account's)."""
    try:
        return access.client("sts", region).get_caller_identity()["Account"]
    except (ClientError, BotoCoreError) as e:
        raise aws_error(e, f"sts GetCallerIdentity in {region}") from e


def share_streams(streams: list[ApiStream], index: int, count: int) -> list[ApiStream]:
    """The streams process ``index`` of ``count`` reads (``run --processes``): those
    whose key hashes to it. A stable hash (not ``hash()``, salted per process), so that
    every process, on every run, agrees on who reads which stream and its checkpoint."""
    return [s for s in streams if zlib.crc32(s.key.encode()) % count == index]


def expand_api(pbegin, plans: list[ServicePlan], ctx: RunContext,
               process: tuple[int, int] | None = None) -> dict[str, beam.PCollection]:
    """The events and dead letters of an API service, as named PCollections.
    ``process``: (index, count) of a process of ``run --processes``, which reads only
    its share of the streams."""
    (plan,) = plans
    streams = API_SERVICES[plan.name].streams(plan, ctx.access)
    if process is not None:
        streams = share_streams(streams, *process)
    ctx.api_streams.extend(streams)
    options = ctx.sqs_options
    read = ReadFromApi(streams, ctx.access, ctx.checkpoints,
                       follow=options.get("idle_seconds") is None, stop=options.get("stop"),
                       spread_over=options.get("spread_over"),
                       max_parallelism=options.get("max_parallelism"),
                       log_level=options.get("log_level"), stats=options.get("stats"))
    parsed = (pbegin
              | f"{plan.label} API" >> read
              | f"{plan.label} API parse" >> beam.ParDo(ParseApiRecords(read.streams))
              .with_outputs(DEAD_LETTER, main="events"))
    return {"events": parsed.events, f"{DEAD_LETTER}/api": parsed[DEAD_LETTER]}


def api_puller(name: str) -> Puller:
    return PULLERS[API_SERVICES[name].puller]


AUDIT_APIS = ApiService(
    "audit-events-all", "cloudtrail_lookup", cloudtrail.TABLE,
    runs=lambda config: "audit_apis" in (config.types or ()),
    options=lambda config: {"auto_event_type": bool(config.auto_event_type)})

CLOUDWATCH_LOGS = ApiService("cloudwatch-logs", "cloudwatch_logs", cloudwatch_logs.TABLE)

GUARDDUTY = ApiService("guardduty", "guardduty_findings", guardduty_findings.TABLE)

METRICS = ApiService(
    "metrics-all", "cloudwatch_metrics", cloudwatch_metrics.TABLE,
    options=lambda config: {"period_seconds": config.period_seconds,
                            "statistics": list(config.statistics),
                            "dimensions": [d.model_dump() for d in config.dimensions]})

API_SERVICES: dict[str, ApiService] = {s.name: s for s in (AUDIT_APIS, CLOUDWATCH_LOGS,
                                                                  GUARDDUTY, METRICS)}
