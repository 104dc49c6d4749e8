"""The ``aws-collector`` command (also ``python -m awscollector``).

    aws-collector run --config FILE [--until-idle] [--idle-seconds N] [--metrics-port N]
                      [--processes N] [BEAM OPTIONS]
    aws-collector validate --config FILE
    aws-collector setup --config FILE [--dry-run]
    aws-collector iam-policy --config FILE [--identity keys|base-role|target-role]
    aws-collector demo [--out DIR] [--output syslog|http|both]

Exit codes: 0 done, 1 runtime failure, 2 bad config or usage.
"""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from awscollector.errors import CollectorError

log = logging.getLogger("awscollector")


def setup_logging(debug: bool = False, process: str | None = None) -> None:
    """Logs to stderr; `debug` (globals.debug) adds the collector's DEBUG lines and the
    tracebacks of failures. Safe to call again (cmd_run does, once the config is read).
    `process` (``process=1/2``, a child of `run --processes`) goes into every line, so
    that the lines of processes sharing one stderr can be told apart."""
    tag = f"{process} " if process else ""
    log_format = f"%(asctime)s %(levelname)s {tag}%(name)s: %(message)s"
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=log_format)
    if process:  # basicConfig set the format already, on the first call
        for handler in logging.getLogger().handlers:
            handler.setFormatter(logging.Formatter(log_format))
    logging.getLogger("awscollector").setLevel(logging.DEBUG if debug else logging.INFO)
    _beam_tracebacks.debug = debug
    # Beam is chatty at INFO; botocore at DEBUG logs request headers (session tokens).
    for name in ("apache_beam", "botocore", "boto3", "urllib3", "s3transfer", "werkzeug",
                 "devo.sender"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("apache_beam.runners.worker.sdk_worker").setLevel(logging.ERROR)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_drop_beam_import_noise)  # addFilter adds each filter once
        handler.addFilter(_beam_tracebacks)


_BEAM_NOISE = (
    "apitools not found",  # on import, when the GCP extras are absent: we use none
    # Options for Flink's job server, unknown to the Python SDK: the collector checks
    # options itself (RUN-004) and passes these on.
    "nparseable arg",
)


def _drop_beam_import_noise(record: logging.LogRecord) -> bool:
    return not any(noise in record.getMessage() for noise in _BEAM_NOISE)


class _BeamTracebacks(logging.Filter):
    """Drops, unless debug, Beam's ERROR records of an exception with its traceback.

    When a DoFn raises, Beam's DoFnRunner logs the exception with its traceback
    (apache_beam.runners.common, `_LOGGER.exception`) and re-raises it; the SDK
    harness and the old DirectRunner's executor do the like. The exception then ends
    the run, and `run` prints it as its one coded line: the traceback is for debugging.
    """

    debug = False

    def filter(self, record: logging.LogRecord) -> bool:
        if self.debug or record.levelno < logging.ERROR:
            return True
        if not record.name.startswith("apache_beam"):
            return True
        return not (record.exc_info or "Traceback (most recent call last)" in record.getMessage())


_beam_tracebacks = _BeamTracebacks()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aws-collector",
                                     description="Collect AWS data into Devo.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the collection (Beam options may follow)")
    run.add_argument("--config", required=True, help="the YAML config file")
    run.add_argument("--until-idle", action="store_true",
                     help="stop once every queue has been empty for --idle-seconds")
    run.add_argument("--idle-seconds", type=float, default=None,
                     help="with --until-idle: how long every queue must be empty (default 10)")
    run.add_argument("--sqs-visibility-timeout", type=int, default=120, metavar="SECONDS",
                     help="how long a received message stays hidden (extended while in "
                          "flight); after a crash, messages come back after this long")
    run.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                     help="serve the run's statistics as Prometheus metrics on this port")
    run.add_argument("--processes", type=_at_least_1, default=None, metavar="N",
                     help="run N collector pipelines as processes (a core each) sharing the "
                          "queues and the API streams; one summary and one statistics "
                          "stream (default: $AWS_COLLECTOR_PROCESSES, else a process per "
                          "core; 1 on Flink)")
    # What `run --processes N` tells each of its children (pipelines/processes.py).
    run.add_argument("--process-index", type=int, default=None, help=argparse.SUPPRESS)
    run.add_argument("--process-count", type=int, default=None, help=argparse.SUPPRESS)
    run.add_argument("--summary-file", default=None, help=argparse.SUPPRESS)
    run.add_argument("--stats-file", default=None, help=argparse.SUPPRESS)
    validate = sub.add_parser("validate", help="check a config without touching AWS or Devo")
    validate.add_argument("--config", required=True)
    setup = sub.add_parser("setup", help="create on AWS what the configured services need "
                                         "(queues, policies, rules, bucket notifications)")
    setup.add_argument("--config", required=True)
    setup.add_argument("--dry-run", action="store_true",
                       help="print what would be created; change nothing")
    policy = sub.add_parser("iam-policy", help="print the least-privilege IAM policy `run` "
                                               "needs for the config")
    policy.add_argument("--config", required=True)
    policy.add_argument("--identity", choices=("keys", "base-role", "target-role"),
                        default="keys", help="whose policy: the identity of the keys (default),"
                                             " or an assumed role of the config")
    demo = sub.add_parser("demo", help="collect sample data from an embedded AWS to an "
                                       "embedded Devo relay")
    demo.add_argument("--out", default="demo-out", help="where the relay writes <table>.log")
    demo.add_argument("--output", choices=("syslog", "http", "both"), default="syslog",
                      help="deliver to the embedded syslog relay, HTTP endpoint, or both")
    return parser


def _at_least_1(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not 1 or more")
    return value


def _load(path: str, say=None):
    """The config, or exit 2 with its problems said (on stderr, or by ``say``)."""
    from awscollector.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as e:
        _say([str(problem) for problem in e.problems], say)
        raise SystemExit(2) from None


def _say(lines: list[str], say=None) -> None:
    if say is not None:
        say(lines)
        return
    for line in lines:
        print(line, file=sys.stderr)


def cmd_validate(args) -> int:
    from awscollector.config import summary

    setup_logging()  # before Beam's import, whose GCP-extras warning it filters
    from awscollector.pipelines.collector import availability, plan_services
    from awscollector.pipelines.s3_services import share_queues

    config = _load(args.config)
    try:
        share_queues(plan_services(config, warn=False))  # one queue, same regions: CFG-017
    except CollectorError as e:
        print(str(e), file=sys.stderr)
        return 2
    print(summary(config))
    aws = config.inputs.aws
    for name, service in (aws.enabled_services() if aws.enabled else {}).items():
        runs, skipped_types = availability(name, service)
        if not runs:
            types = f" (types {', '.join(skipped_types)})" if skipped_types else ""
            print(f"RUN-002 inputs.aws.services.{name}: not available in this version{types};"
                  " `run` will skip it", file=sys.stderr)
        elif skipped_types:
            print(f"RUN-002 inputs.aws.services.{name}.types: {', '.join(skipped_types)} not"
                  " available in this version; `run` will skip them", file=sys.stderr)
    return 0


@contextmanager
def _loaded_outside_gc() -> Iterator[None]:
    """Imports with the cyclic garbage collector off, then what they loaded frozen
    (gc.freeze: kept for good, never walked again). Importing Beam and the collector
    makes over 200,000 long-lived objects and little garbage (under 2,000 objects
    here); the collector would walk them again and again while they load, and in
    every full collection after (0.1 s each here). Meanwhile the modules of
    lazy_imports.LAZY_MODULES (Beam imports them, a typical run never uses them) run
    only when first used."""
    from awscollector.lazy_imports import lazy_modules

    enabled = gc.isenabled()
    gc.disable()
    try:
        with lazy_modules():
            yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def cmd_run(args, beam_args: list[str]) -> int:
    if args.idle_seconds is not None and not args.until_idle:
        print("aws-collector run: --idle-seconds needs --until-idle", file=sys.stderr)
        return 2
    child = args.process_index is not None
    if child and not (args.process_count and 0 <= args.process_index < args.process_count
                      and args.summary_file and args.stats_file):
        print("aws-collector run: --process-index needs --process-count, --summary-file "
              "and --stats-file", file=sys.stderr)
        return 2
    # A live progress line only for a person watching a backfill: never in a pipe or a
    # log file, nor in the children of `run --processes` (their supervisor draws it).
    progress = args.until_idle and sys.stderr.isatty() and not child
    if child:
        from awscollector.pipelines.processes import end_with_parent

        end_with_parent()  # first: a supervisor killed meanwhile leaves no orphan
    else:
        count = _process_count(args, beam_args)
        if count is None:
            return 2
        if count > 1:
            return _run_processes(args, count, progress)

    with _loaded_outside_gc():
        from awscollector.io.stop import StopSignal
        from awscollector.pipelines.collector import config_globals, run_collector
        from awscollector.pipelines.summary import format_summary

    say = None
    process = None
    if child:
        from awscollector.pipelines.processes import process_tag, write_error

        process = (args.process_index, args.process_count)

        def say(lines: list[str]) -> None:  # the supervisor says it, once for all
            write_error(args.summary_file, lines)

    config = _load(args.config, say)
    setup_logging(config_globals(config).debug, process_tag(*process) if process else None)
    stop = StopSignal()

    def on_signal(signum, _frame):
        log.info("signal %d: stop polling, deliver what is in flight, then exit", signum)
        stop.request()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    idle = (args.idle_seconds or 10.0) if args.until_idle else None
    try:
        result = run_collector(config, beam_args, idle_seconds=idle, stop=stop,
                               metrics_port=None if child else args.metrics_port,
                               progress=progress,
                               visibility_timeout=args.sqs_visibility_timeout,
                               process=process, stats_file=args.stats_file)
    except Exception as e:
        # One line, the coded one; the traceback only in a debug log.
        error = e if isinstance(e, CollectorError) else CollectorError(
            "RUN-001", f"run failed: {type(e).__name__}: {e}")
        if not isinstance(e, CollectorError):
            log.debug("%s", error, exc_info=e)
        _say([str(error)], say)
        return 2 if error.code.startswith("CFG-") or error.code == "RUN-004" else 1
    if child:  # the supervisor prints one summary of every process
        from awscollector.pipelines.processes import write_summary

        write_summary(args.summary_file, result.rows)
    else:
        print(format_summary(result.rows))
    log.info("peak memory: %.0f MB", peak_memory_mb())
    return 0


def _process_count(args, beam_args: list[str]) -> int | None:
    """How many collector processes this run has; None (after saying why) when the
    options ask for what cannot be. Without ``--processes``: a process per core on the
    DirectRunner, one elsewhere (a cluster spreads the work itself)."""
    from awscollector.pipelines.processes import (
        PROCESSES_VARIABLE,
        default_processes,
        direct_runner,
    )

    if not direct_runner(beam_args):
        if (args.processes or 1) > 1:
            print("aws-collector run: --processes is for the DirectRunner; on Flink the "
                  "cluster's parallelism spreads the work", file=sys.stderr)
            return None
        return 1
    if args.processes is not None:
        return args.processes
    try:
        return default_processes()
    except ValueError as e:
        print(f"aws-collector run: {e} (set {PROCESSES_VARIABLE} or --processes)",
              file=sys.stderr)
        return None


def _run_processes(args, count: int, progress: bool) -> int:
    """`run --processes N`: N children run the pipelines; this process supervises.
    Neither Beam nor the config is loaded here: each child checks both (the first
    error is said once, by this process)."""
    from awscollector.pipelines.processes import run_processes

    try:
        return run_processes(args.argv, count, args.metrics_port, progress)
    except CollectorError as e:  # the metrics port
        print(str(e), file=sys.stderr)
        return 1


def peak_memory_mb() -> float:
    """This process's peak resident memory since it started (VmHWM).

    Not getrusage's ru_maxrss: on Linux that carries over the high-water mark of
    the parent that spawned us, which says nothing about the collector.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cmd_setup(args) -> int:
    """Exit 0 all set up, 1 an AWS failure or problem (coded lines on stderr), 2 config."""
    from awscollector.pipelines.collector import plan_services
    from awscollector.pipelines.s3_services import share_queues
    from awscollector.provision import run_setup

    config = _load(args.config)
    try:
        share_queues(plan_services(config, warn=False))  # one queue, same regions: CFG-017
        result = run_setup(config, dry_run=args.dry_run)
    except Exception as e:
        error = e if isinstance(e, CollectorError) else CollectorError(
            "RUN-001", f"setup failed: {type(e).__name__}: {e}")
        log.debug("%s", error, exc_info=e)
        print(str(error), file=sys.stderr)
        return 2 if error.code.startswith("CFG-") else 1
    return result.exit_code


def cmd_iam_policy(args) -> int:
    """Prints the policy document on stdout, notes (RUN-009, ...) on stderr; exit 0, or 2
    for a bad config or an identity the config does not go through."""
    import json

    setup_logging()  # before Beam's import, whose GCP-extras warning it filters
    from awscollector.iampolicy import iam_policy

    config = _load(args.config)
    try:
        found = iam_policy(config, args.identity)
    except ValueError as e:
        print(f"aws-collector iam-policy: --identity {args.identity}: {e}", file=sys.stderr)
        return 2
    except CollectorError as e:  # CFG-012, CFG-017, CFG-018: what `run` refuses
        print(str(e), file=sys.stderr)
        return 2
    for note in found.notes:
        print(note, file=sys.stderr)
    print(json.dumps(found.document, indent=2))
    return 0


def cmd_demo(args) -> int:
    import importlib.util

    # moto is the `demo` extra, left out of a production install: say so before
    # anything starts rather than fail mid-demo with an ImportError.
    if importlib.util.find_spec("moto") is None:
        print("aws-collector demo needs the embedded AWS (moto), which this install "
              "lacks: pip install 'awscollector[demo]'", file=sys.stderr)
        return 2
    from awscollector.demo import run_demo

    setup_logging()
    return run_demo(args.out, args.output)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args, rest = _parser().parse_known_args(argv)
    args.argv = argv  # what the children of `run --processes` run again
    if args.command != "run" and rest:
        _parser().error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "validate":
        return cmd_validate(args)
    if args.command == "iam-policy":
        return cmd_iam_policy(args)
    setup_logging()
    if args.command == "run":
        return cmd_run(args, rest)
    if args.command == "setup":
        return cmd_setup(args)
    return cmd_demo(args)


if __name__ == "__main__":
    sys.exit(main())
