"""Builds and runs the whole collection: one Beam pipeline for every enabled service.

Usage::

    config = load_config("collector.yaml")
    result = run_collector(config, ["--runner=DirectRunner"], idle_seconds=10)
    print(format_summary(result.rows))   # pipelines/summary.py
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.runners.runner import PipelineState

from awscollector.errors import CollectorError, as_collector_error
from awscollector.io.access import AwsAccess
from awscollector.io.checkpoints import checkpoints_from_config
from awscollector.io.counters import DeadLetterKey, DeliveredKey, RunCounts
from awscollector.io.deadletter import DEAD_LETTER, DeadLetterTarget, WriteDeadLetters
from awscollector.io.delivery import STOPPED_UNCONFIRMED
from awscollector.io.devo import DevoTarget, WriteToDevo
from awscollector.io.sqs import SqsQueue
from awscollector.io.stats import API, EVENTS, S3, Counts, StatsHandle, StatsRow
from awscollector.io.stop import StopSignal
from awscollector.pipelines.api_services import API_SERVICES, expand_api
from awscollector.pipelines.context import RunContext, ServicePlan, label_of
from awscollector.pipelines.event_services import EVENT_SERVICES, expand_events
from awscollector.pipelines.idle import ApisCaughtUp, QueuesIdle
from awscollector.pipelines.runners import RunnerSetup, runner_setup
from awscollector.pipelines.s3_services import S3_SERVICES, expand_s3, group_label, share_queues
from awscollector.pipelines.summary import SummaryRow
from awscollector.transforms.formats import Registry
from awscollector.transforms.registry import default_registry

log = logging.getLogger(__name__)

# service name -> expand(pbegin, plans, ctx) -> {"events": ..., "dead_letter/...": ...};
# the plans are one service's, or those of services that share a queue.
SERVICES: dict[str, Callable] = {name: expand_s3 for name in S3_SERVICES}
SERVICES.update({name: expand_events for name in EVENT_SERVICES})
# service name -> its declaration (types, options, sources): S3 and event services
DECLARED = {**S3_SERVICES, **EVENT_SERVICES}


def config_globals(config):
    return getattr(config, "globals_", None) or config.globals


def availability(name: str, service) -> tuple[bool, tuple[str, ...]]:
    """Whether this version runs an enabled service, and which of its config types it
    skips (none, today: audit-events-all collects ``audits_s3`` from S3 and
    ``audit_apis`` from CloudTrail's API)."""
    api = name in API_SERVICES and API_SERVICES[name].runs(service)
    if name not in SERVICES:
        return api, ()
    asked = tuple(getattr(service, "types", None) or ())
    if name not in S3_SERVICES or not asked:
        return True, ()
    collected = S3_SERVICES[name].types(service)
    skipped = tuple(t for t in asked if t not in collected and not (api and t == "audit_apis"))
    return bool(collected) or api, skipped


def plan_services(config, registry: Registry | None = None, warn: bool = True
                  ) -> list[ServicePlan]:
    """The services this version runs, with their regions and SQS readers: a plan per
    service, or per source of a service of several (custom-s3). ``warn``: log RUN-002
    for what this version skips."""
    registry = registry or run_registry(config)
    aws = config.inputs.aws
    plans = []
    if not aws.enabled:
        return plans
    for name, service in aws.enabled_services().items():
        runs, skipped_types = availability(name, service)
        if not runs:
            if warn:
                    log.warning("RUN-002 service %s is enabled but not available in this version:"
                            " skipped%s", name,
                            f" (types {', '.join(skipped_types)})" if skipped_types else "")
            continue
        if skipped_types and warn:
            log.warning("RUN-002 service %s: types %s not available in this version: skipped",
                        name, ", ".join(skipped_types))
        if name in API_SERVICES and API_SERVICES[name].runs(service):
            plans.append(ServicePlan(name, service, service.regions or aws.regions_for(name),
                                     default_table=API_SERVICES[name].table, api=True))
        if name not in DECLARED or (name in S3_SERVICES and not S3_SERVICES[name].types(service)):
            continue
        for source, cfg in DECLARED[name].sources(service):  # custom-s3: one per source
            label = label_of(name, source)
            regions = cfg.regions or aws.regions_for(name)
            queues = []
            queue = getattr(cfg, "sqs_queue_url", None) or getattr(cfg, "sqs_queue_name", None)
            if queue:
                readers = getattr(cfg, "readers", None) or 1
                queues = [SqsQueue(label, region, queue, reader, cfg.max_receive_count)
                          for region in regions for reader in range(readers)]
            formats = registry.of_types(DECLARED[name].types(cfg))
            plans.append(ServicePlan(name, cfg, regions, queues,
                                     formats[0].table if formats else "-", source))
    return plans


def run_registry(config) -> Registry:
    """The built-in formats, and the formats the config declares (custom-s3 sources)."""
    registry = default_registry()
    for name, service in config.inputs.aws.enabled_services().items():
        if name in S3_SERVICES:
            for fmt in S3_SERVICES[name].formats(service):
                registry.register(fmt)
    return registry


@dataclass
class RunResult:
    rows: list[SummaryRow] = field(default_factory=list)


def output_transform(name: str, output, access: AwsAccess | None = None,
                     region: str = "us-east-1", stats: StatsHandle | None = None,
                     stop: StopSignal | None = None) -> beam.PTransform:
    """The sink of a config ``outputs.<name>`` entry; ``name`` goes into its counters.
    ``access`` and ``region``: the run's AWS, for an archive in S3; ``stats``: the run's
    statistics; ``stop``: the run's stop, after which slow confirmations are given up."""
    # Each sink imported when an output of its kind is configured (Avro and Parquet
    # writers, an HTTP client): a run pays only for the outputs it has.
    if output.type == "archive":
        from awscollector.io.archive import ArchiveTarget, WriteToArchive

        return WriteToArchive(ArchiveTarget.from_config(output), name=name, access=access,
                              region=region, stats=stats, stop=stop)
    if output.type == "devo_http":
        from awscollector.io.devo_http import DevoHttpTarget, WriteToDevoHttp

        return WriteToDevoHttp(DevoHttpTarget.from_config(output), name=name, stats=stats,
                               stop=stop)
    return WriteToDevo(DevoTarget.from_config(output), name=name, stats=stats, stop=stop)


def build_pipeline(pipeline: beam.Pipeline, config, plans: list[ServicePlan],
                   sqs_options: dict, registry: Registry | None = None,
                   process: tuple[int, int] | None = None) -> RunContext:
    """Adds every service, its dead letters and its outputs; returns the run's context
    (its AWS access, and the API streams it reads). ``process``: (index, count) of a
    process of ``run --processes``, which reads its share of the API streams."""
    aws = config.inputs.aws
    parallelism = sum(len(p.queues) for p in plans) or 1
    access = AwsAccess(aws, max_pool_connections=max(10, 2 * parallelism))
    g = config_globals(config)
    dl_region = (aws.regions or ["us-east-1"])[0]
    dl_target = DeadLetterTarget.from_config(g.dead_letter, dl_region)
    checkpoints = checkpoints_from_config(g.persistence, access, ".")
    ctx = RunContext(access, dl_target, registry or run_registry(config), sqs_options,
                     checkpoints)
    stats = sqs_options.get("stats")
    for group in share_queues(plans):
        label = group_label(group)
        if group[0].api:
            label += " API"
            named = expand_api(pipeline, group, ctx, process)
        else:
            named = SERVICES[group[0].name](pipeline, group, ctx)
        for key, pcoll in named.items():
            if key.startswith(DEAD_LETTER):
                # One writer per dead-letter PCollection: a Flatten would break the fusion
                # that makes SQS deletes wait for the dead letters (see io/deadletter.py).
                pcoll | f"{label} {key}" >> WriteDeadLetters(dl_target, access, stats)
        for out_name, output in config.outputs.items():
            named["events"] | f"{label} to {out_name}" >> output_transform(
                out_name, output, access, dl_region, stats, sqs_options.get("stop"))
    return ctx


def run_collector(config, beam_args: list[str] | None = None,
                  idle_seconds: float | None = None, stop: StopSignal | None = None,
                  metrics_port: int | None = None, progress: bool = False,
                  process: tuple[int, int] | None = None, stats_file: str | None = None,
                  **sqs_options) -> RunResult:
    """Runs every enabled service until idle (idle_seconds) or until ``stop`` is requested.

    On the DirectRunner the readers see ``stop`` themselves; on Flink this process
    watches it and stops the job with a savepoint (io/stop.py, flink/rest.py).

    While it runs: a statistics line per service and region every
    ``globals.stats_interval_seconds``; with ``metrics_port``, the same counters as a
    Prometheus endpoint; with ``progress``, a live progress line on stderr (the
    caller checks it is a terminal). See io/stats.py.

    ``process``: (index, count) when this is one of the processes of ``run
    --processes``: the queues' messages are shared by SQS itself, the API streams by
    ``share_streams`` (pipelines/api_services.py). Such a process writes its
    statistics to ``stats_file`` instead of reporting them: its supervisor reports
    for the whole run (io/stats_files.py).
    """
    registry = run_registry(config)
    plans = plan_services(config, registry)
    if not plans:
        raise CollectorError("CFG-012", "no enabled service is available in this version")
    setup = runner_setup(beam_args or [])
    stop = stop or StopSignal()
    stats = StatsHandle(stats_rows(plans), config_globals(config).stats_interval_seconds,
                        list(config.outputs)[0])
    sqs_options = {"idle_seconds": idle_seconds, "stop": stop, "stats": stats, **sqs_options}
    if setup.on_flink:
        debug = config_globals(config).debug
        sqs_options.update(spread_over=setup.parallelism, max_parallelism=setup.max_parallelism,
                           log_level=logging.DEBUG if debug else logging.INFO)
    try:
        pipeline = beam.Pipeline(runner=setup.runner, options=setup.options)
    except (ValueError, TypeError) as e:  # e.g. an unknown --runner
        raise CollectorError("RUN-004", f"invalid Beam pipeline option: {e}") from e
    ctx = build_pipeline(pipeline, config, plans, sqs_options, registry, process)
    try:
        with _live_stats(stats, setup, metrics_port, progress, stats_file):
            counters = _run(pipeline, setup, ctx, plans, stop, idle_seconds)
    except BaseException as e:
        error = as_collector_error(e)
        if not (stop.requested() and error.code == STOPPED_UNCONFIRMED):
            raise error from e
        # Stopped in time rather than waiting for a slow receiver: not a failure. The
        # pipeline's counters died with it; this process's statistics hold the same.
        log.warning("%s", error)
        return RunResult(summary_rows(stats_counts(stats.get().snapshot()), plans,
                                      list(config.outputs)[0]))
    return RunResult(summary_rows(RunCounts.from_counters(counters), plans,
                                  list(config.outputs)[0]))


def _run(pipeline: beam.Pipeline, setup: RunnerSetup, ctx: RunContext,
         plans: list[ServicePlan], stop: StopSignal, idle_seconds: float | None
         ) -> dict[tuple[str, str], int]:
    """Runs the pipeline to its end; returns its counters."""
    result = pipeline.run()
    if setup.on_flink:
        idle = None
        if idle_seconds is not None:
            queues = QueuesIdle(ctx.access, [q for p in plans for q in p.queues],
                                idle_seconds)
            apis = ApisCaughtUp(ctx.checkpoints, ctx.api_streams)

            def idle() -> bool:
                return apis() and queues()
        counters = _follow_flink_job(result, setup, stop, idle)
    else:
        result.wait_until_finish()
        counters = beam_counters(result)
    return counters



def stats_counts(snapshot: dict[tuple[str, str], Counts]) -> RunCounts:
    """The summary's counts from this process's statistics, for a run whose pipeline
    ended without its counters."""
    counts = RunCounts()
    for (service, region), c in snapshot.items():
        for (output, table), n in c.events.items():
            counts.delivered[DeliveredKey(output, service, region, table)] = n
        counts.dead_lettered[DeadLetterKey(service, region)] = c.dead_lettered
    return counts


def stats_rows(plans: list[ServicePlan]) -> list[StatsRow]:
    """The statistics lines of a run: one per service (label) and region, saying what
    it reads (an S3 plan and an API plan of one service make one line)."""
    kinds: dict[tuple[str, str], set[str]] = {}
    for plan in plans:
        kind = API if plan.api else S3 if plan.name in S3_SERVICES else EVENTS
        for region in plan.regions:
            kinds.setdefault((plan.label, region), set()).add(kind)
    return [StatsRow(service, region, frozenset(k)) for (service, region), k in kinds.items()]


@contextmanager
def _live_stats(stats: StatsHandle, setup: RunnerSetup, metrics_port: int | None,
                progress: bool, stats_file: str | None = None) -> Iterator[None]:
    """What shows the run's statistics while it runs; stopped (threads joined) after.

    On Flink the steps run in SDK workers, which report themselves (io/stats.py),
    unless they run in this process (``--environment_type=LOOPBACK``). A process of
    ``run --processes`` only writes its counts to ``stats_file``."""
    here = not setup.on_flink or setup.options.get_all_options().get(
        "environment_type") == "LOOPBACK"
    with ExitStack() as stack:
        if stats_file is not None:
            from awscollector.io.stats_files import StatsPublisher

            publisher = StatsPublisher(stats, stats_file, stats.rows, stats.interval_seconds,
                                       stats.output)
            publisher.start()
            stack.callback(publisher.stop)
        elif here:
            stack.enter_context(stats.reporting())
        if metrics_port is not None:
            from awscollector.io.prometheus import serving

            stack.enter_context(serving(stats, metrics_port))
        if progress:
            from awscollector.io.progress import progress_line

            stack.enter_context(progress_line(stats))
        yield


_TERMINAL = frozenset({PipelineState.DONE, PipelineState.FAILED, PipelineState.CANCELLED,
                       PipelineState.STOPPED, PipelineState.UPDATED, PipelineState.DRAINED})


def _follow_flink_job(result, setup: RunnerSetup, stop: StopSignal,
                      idle: Callable[[], bool] | None) -> dict[tuple[str, str], int]:
    """Wait while the job runs; when ``stop`` is requested (or, with ``idle``, once
    every queue is idle), stop it with a savepoint. Returns the job's counters.

    Polls the job's state: Beam's wait_until_finish() blocks in gRPC where a signal
    handler cannot run, and may be called only once.
    """
    from awscollector.flink.rest import FlinkRest

    flink = FlinkRest(setup.flink_master) if setup.flink_master else None
    jid = None
    log.info("submitted %s to Flink%s", setup.job_name,
             f" at {setup.flink_master}" if setup.flink_master else "")
    while True:
        state = result.state
        if state in _TERMINAL:
            break
        if flink is not None and jid is None:
            jid = flink.wait_for_job(setup.job_name, timeout=0.5)
        if idle is not None and idle():
            log.info("every queue idle: stopping %s", setup.job_name)
            stop.request()
        if stop.requested():
            if flink is not None and jid is not None:
                how = flink.stop(jid)
                log.info("Flink job %s %s", setup.job_name, how)
            result.cancel()  # the Beam job server's view of it
            break
        time.sleep(0.5)
    if result.state == PipelineState.FAILED:
        result.wait_until_finish()  # raises the job's error
    if flink is not None and jid is not None:
        # Beam's job server forgets them once Flink ends the job; Flink keeps them.
        return flink.user_counters(jid)
    return beam_counters(result)


def beam_counters(result) -> dict[tuple[str, str], int]:
    """The run's user counters, (namespace, name) -> value, from Beam's result."""
    counters: dict[tuple[str, str], int] = {}
    try:
        found = result.metrics().query(MetricsFilter())["counters"]
    except Exception as e:  # a job server that keeps no metrics
        log.warning("RUN-006 the run's counters are not available: %s", e)
        found = []
    for counter in found:
        key = (counter.key.metric.namespace, counter.key.metric.name)
        counters[key] = counters.get(key, 0) + (counter.committed or counter.attempted or 0)
    return counters


def summary_rows(counts: RunCounts, plans: list[ServicePlan], output: str
                 ) -> list[SummaryRow]:
    """The summary's rows: what each service and region delivered to ``output``."""
    delivered: dict[tuple[str, str, str], int] = {}
    for key, value in counts.delivered.items():
        if key.output == output:
            at = (key.service, key.region, key.table)
            delivered[at] = delivered.get(at, 0) + value
    dead = {(key.service, key.region): value for key, value in counts.dead_lettered.items()}
    rows = []
    shown = set()  # audit-events-all has an S3 plan and an API plan: its rows once
    for plan in plans:
        for region in plan.regions:
            label = plan.label
            if (label, region) in shown:
                continue
            shown.add((label, region))
            tables = sorted(t for (s, r, t) in delivered if s == label and r == region)
            tables = tables or [plan.default_table]
            for i, table in enumerate(tables):
                rows.append(SummaryRow(label, region, table,
                                       delivered.get((label, region, table), 0),
                                       dead.get((label, region), 0) if i == 0 else 0))
    return rows

