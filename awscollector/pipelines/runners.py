"""Which Beam runner a run uses, and what each needs to keep the delivery guarantees.

DirectRunner (the default): the whole pipeline runs in this process. Options
Beam does not know are typos (RUN-004).

Flink (``--runner FlinkRunner --flink_master HOST:PORT``, or ``PortableRunner
--job_endpoint`` of a Flink job server): the pipeline is submitted to a cluster
and runs in its task managers. Messages are deleted by bundle finalizers, which
portable Flink runs only in streaming mode, after the checkpoint that covers the
bundle completes; so the collector runs streaming, with checkpoints, and finishes
each bundle before a checkpoint (without that, nothing flows). Options the
Python SDK does not declare (``--checkpointing_interval``, ...) are the job
server's and are passed on to it. Where Beam would download a job-server jar that
is not published, the collector supplies its own (``awscollector/flink``).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from apache_beam.options.pipeline_options import (
    DirectOptions,
    PipelineOptions,
    StandardOptions,
)
from apache_beam.runners.runner import PipelineRunner

from awscollector.errors import CollectorError

log = logging.getLogger(__name__)

DIRECT = frozenset({None, "DirectRunner", "direct", "BundleBasedDirectRunner",
                    "SwitchingDirectRunner"})
FLINK = frozenset({"FlinkRunner", "flink"})
DEFAULT_CHECKPOINT_MS = 10_000
FLINK_VERSION = "1.19"  # the Flink of the job server the collector supplies


@dataclass
class RunnerSetup:
    """The pipeline options of a run, and what the run loop needs to know of its runner."""

    options: PipelineOptions
    on_flink: bool = False
    parallelism: int | None = None  # Flink: to place the SQS readers on every subtask
    max_parallelism: int | None = None
    job_name: str | None = None
    flink_master: str | None = None  # Flink's REST address: how a stop reaches the job
    runner: PipelineRunner | None = None  # given to beam.Pipeline; None: the options' runner


def runner_setup(beam_args: list[str]) -> RunnerSetup:
    """The options for ``beam_args``, completed for the runner they name."""
    options = PipelineOptions(beam_args)
    all_options = options.get_all_options()
    runner = options.view_as(StandardOptions).runner
    flink = runner in FLINK or (runner == "PortableRunner" and (
        all_options.get("flink_master") or _mentions_flink(beam_args)))
    if not flink:
        _refuse_unknown(options)
    if runner in DIRECT:
        direct = options.view_as(DirectOptions)
        if (direct.direct_num_workers or 1) != 1:
            # Beam 2.77's multi-worker FnApiRunner drops the residuals of splittable
            # DoFns (it merges only metrics and errors of the parallel bundles): the SQS
            # readers would stop after their first bundle. One worker is correct.
            log.warning("RUN-003 --direct_num_workers=%s ignored: the DirectRunner runs the "
                        "collector with one worker", direct.direct_num_workers)
        direct.direct_num_workers = 1
        if runner != "BundleBasedDirectRunner":
            return RunnerSetup(options, runner=InProcessRunner())
        return RunnerSetup(options)
    if not flink:
        return RunnerSetup(options)
    return _flink_setup(beam_args, options)


class InProcessRunner(PipelineRunner):
    """The DirectRunner's in-process runner, the FnApiRunner, without the detour.

    Beam 2.77's DirectRunner first tries its Prism runner on every run: it converts
    the pipeline to its portable form and fetches a Prism binary from GitHub. Where it
    can, the collector would then run on Prism (several times the CPU, and bundles it
    does not finalize as the SQS readers need); where it cannot, the fetch fails (after
    a DNS look-up, or a connection timeout behind a firewall) and the DirectRunner
    falls back to the FnApiRunner, which converts the pipeline again. The collector's
    pipeline is one the FnApiRunner supports (batch, no Pub/Sub, no real-time
    timers), so a run goes there directly, set up as the DirectRunner sets it up.
    """

    def run_pipeline(self, pipeline, options):
        from apache_beam.portability.api import beam_provision_api_pb2
        from apache_beam.runners.portability.fn_api_runner import fn_runner
        from apache_beam.runners.portability.portable_runner import JobServiceHandle

        encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
        provision_info = fn_runner.ExtendedProvisionInfo(
            beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
        return fn_runner.FnApiRunner(provision_info=provision_info).run_pipeline(
            pipeline, options)


def _refuse_unknown(options: PipelineOptions) -> None:
    unknown = set(options.get_all_options(retain_unknown_options=True)) - set(
        options.get_all_options())
    if unknown:
        raise CollectorError("RUN-004", "unknown option(s): " + ", ".join(
            f"--{name}" for name in sorted(unknown)))


def _mentions_flink(beam_args: list[str]) -> bool:
    return any(a.startswith(("--checkpointing_interval", "--finish_bundle_before_checkpointing"))
               for a in beam_args)


def _given(beam_args: list[str], name: str) -> bool:
    return any(a == f"--{name}" or a.startswith(f"--{name}=") for a in beam_args)


def _flink_setup(beam_args: list[str], options: PipelineOptions) -> RunnerSetup:
    given = options.get_all_options()
    args = list(beam_args)
    if given.get("environment_type") in (None, "DOCKER"):
        raise CollectorError("RUN-004", "on Flink, say where the Python code runs: "
                                        "--environment_type=EXTERNAL --environment_config="
                                        "HOST:PORT of the Beam Python worker pool (the "
                                        "sidecar of each task manager), or "
                                        "--environment_type=LOOPBACK to run it in this process")
    for unaligned in ("unaligned_checkpoint_enabled", "force_unaligned_checkpoint_enabled"):
        if _given(args, unaligned) and not any(a.endswith(("=false", "=False")) for a in args
                                               if a.startswith(f"--{unaligned}")):
            # A message is deleted when the checkpoint that covers it completes; that
            # means delivered only if the checkpoint waits for the data before it.
            raise CollectorError("RUN-004", f"--{unaligned}: unaligned checkpoints complete "
                                            "before the events they cover are delivered; the "
                                            "collector needs aligned ones")
    if not given.get("streaming"):
        log.info("on Flink the collector runs in streaming mode (--streaming): only then are "
                 "SQS messages deleted, after the checkpoint that covers them")
        args.append("--streaming")
    if not _given(args, "finish_bundle_before_checkpointing"):
        args.append("--finish_bundle_before_checkpointing")  # without it nothing flows
    if not _given(args, "checkpointing_interval"):
        args.append(f"--checkpointing_interval={DEFAULT_CHECKPOINT_MS}")
    job_name = given.get("job_name")
    if not job_name:
        job_name = f"aws-collector-{uuid.uuid4().hex[:8]}"
        args.append(f"--job_name={job_name}")
    if not given.get("job_endpoint") and not given.get("flink_job_server_jar"):
        from awscollector.flink.jobserver import job_server_jar

        if not _given(args, "flink_version"):
            args.append(f"--flink_version={FLINK_VERSION}")
        args.append(f"--flink_job_server_jar={job_server_jar()}")
    flink_master = given.get("flink_master")
    if flink_master in (None, "[auto]", "[local]"):
        flink_master = None
        log.warning("RUN-006 no --flink_master: a stop cannot reach the Flink job through "
                    "Flink's REST API; it is cancelled, and the messages it held come back "
                    "after their visibility timeout")
    parallelism = given.get("parallelism")
    max_parallelism = given.get("max_parallelism")
    return RunnerSetup(
        PipelineOptions(args), on_flink=True,
        parallelism=parallelism if parallelism and parallelism > 0 else None,
        max_parallelism=max_parallelism if max_parallelism and max_parallelism > 0 else None,
        job_name=job_name, flink_master=flink_master)
