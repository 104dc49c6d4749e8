"""Benchmark: a CloudWatch Logs backfill to Devo, the collector against a plain-boto3 loop.

    .venv/bin/python benchmarks/cloudwatch_logs_bench.py   # make bench: 4 x 60,000, 3 rounds
    .venv/bin/python benchmarks/cloudwatch_logs_bench.py --events 20000 --groups 2 --rounds 1

Seeds an embedded AWS (moto's server, its own process) with log groups under one
prefix (PutLogEvents; by default 4 groups of 60,000 events over the last 4 hours,
4 streams each), then measures, against the same embedded Devo relay (TLS, client
certificate) and over the same time range:

* baseline: a plain Python process with boto3 that lists the groups under the
  prefix and, for each, pages FilterLogEvents over the whole range, makes of each
  event the collector's message (compact JSON ``{"logGroup","logStream","eventId",
  "timestamp","ingestionTime","message"}``) and writes the syslog lines
  (``<14>date host cloud.aws.cloudwatch.logs: {...}``) in one write per page over
  one TLS connection; then half-closes and waits for the relay's EOF;
* collector: ``python -m awscollector run --config FILE --until-idle`` with the
  ``cloudwatch-logs`` service (``log_group_prefixes``, ``start_time``,
  ``lag_seconds: 0``) and a fresh state directory per round, so that every round
  backfills everything: windows of an hour, a FilterLogEvents page per bundle, a
  checkpoint per group.

Measured as vpc_flow_bench.py measures (its helpers, imported): wall, active,
steady events/s, MB/s (the delivered messages, 10^6 bytes, without the syslog
header), peak RSS, CPU seconds of the measured process and events per CPU
second; the moto server's CPU seconds beside them, since moto serves
FilterLogEvents in Python and that is most of the work in both phases.

Checks (exit 1 if one fails): every seeded event arrived, compared by group and
message, and no event twice (by its eventId; duplicates are counted and reported:
a failure for the baseline, a note for the collector, which delivers at least
once), every line parsed, one table, collector exit 0, a finished checkpoint per
group, nothing dead-lettered.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from vpc_flow_bench import (
    REGION,
    TARGET_RATIO,
    Phase,
    add_output_args,
    add_phase_args,
    baseline_note,
    close_relay,
    collector_command,
    dead_letter_failures,
    dispatch,
    exit_failures,
    finish,
    measure,
    num,
    parse_failures,
    per_cpu,
    per_cpu_table,
    phase_records,
    phase_runs,
    print_machine,
    print_ratios,
    relay_context,
    relay_socket,
    relay_spec,
    summarize,
    syslog_header,
    worker_command,
)

TABLE = "cloud.aws.cloudwatch.logs"
SERVICE = "cloudwatch-logs"
PREFIX = "/bench/cwl/"
ACCOUNT = "123456789012"  # moto's


# -- the baseline: one plain loop, run in its own process (only stdlib and boto3 imported)


def baseline_worker(spec: dict) -> int:
    import boto3

    logs = boto3.client("logs", region_name=spec["region"], endpoint_url=spec["endpoint_url"])
    context = relay_context(spec)
    hostname = socket.gethostname()
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    started = time.monotonic()
    end_ms = int(time.time() * 1000)  # up to now, as the collector with lag_seconds: 0
    groups = sorted(g["logGroupName"]
                    for page in logs.get_paginator("describe_log_groups").paginate(
                        logGroupNamePrefix=spec["prefix"])
                    for g in page["logGroups"])
    events = pages = 0
    with relay_socket(context, spec) as sock:
        for group in groups:
            for page in logs.get_paginator("filter_log_events").paginate(
                    logGroupName=group, startTime=spec["start_ms"], endTime=end_ms):
                header = syslog_header(TABLE, hostname)
                lines = [header + dumps({
                    "logGroup": group, "logStream": e.get("logStreamName"),
                    "eventId": e.get("eventId"), "timestamp": e.get("timestamp"),
                    "ingestionTime": e.get("ingestionTime"), "message": e["message"],
                }).encode("utf-8", "surrogatepass") for e in page.get("events", ())]
                pages += 1
                if lines:
                    sock.sendall(b"\n".join(lines) + b"\n")
                    events += len(lines)
        close_relay(sock)
    print(json.dumps({"groups": len(groups), "pages": pages, "events": events,
                      "loop_seconds": time.monotonic() - started}))
    return 0


# -- seeding


@dataclass
class SeededLogs:
    groups: list[str]
    expected: Counter  # (group, message) -> how many (a message may recur in a group)
    events: int
    start_ms: int  # the range both phases read from
    seconds: float


def group_sizes(events: int, groups: int) -> list[int]:
    base, extra = divmod(events, groups)
    return [base + (1 if i < extra else 0) for i in range(groups)]


def seed(aws, events: int, groups: int, streams: int, hours: float) -> SeededLogs:
    """``events`` log events over ``groups`` groups under PREFIX, spread over the last
    ``hours`` (up to a minute ago) and over ``streams`` streams per group."""
    from awscollector.embedded.seed_apis import put_log_group

    started = time.monotonic()
    logs = aws.client("logs", REGION)
    end_ms = int(time.time() * 1000) - 60_000
    first_ms = end_ms - int(hours * 3_600_000)
    names, expected = [], Counter()
    for n, size in enumerate(group_sizes(events, groups)):
        name = f"{PREFIX}app-{n}"
        # Each group its own messages (seed), as different applications' would be.
        messages = put_log_group(logs, name, size, first_ms, end_ms, streams=streams,
                                 seed=n + 1)
        names.append(name)
        expected.update((name, m) for m in messages)
    # Both phases read from a minute before the first event.
    return SeededLogs(names, expected, sum(expected.values()), first_ms - 60_000,
                      time.monotonic() - started)


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat()


def collector_config(aws, relay, pki, workdir: Path, state: Path, start_ms: int) -> dict:
    from awscollector.embedded.config import embedded_config

    raw = embedded_config(aws.endpoint_url, relay.port, pki, workdir, "-", services={
        SERVICE: {"log_group_prefixes": [PREFIX], "start_time": iso(start_ms),
                  "lag_seconds": 0}})
    raw["globals"]["persistence"]["config"]["directory_name"] = str(state)
    return raw


# -- checking


def check(name: str, phase: Phase, relay, seeded: SeededLogs, log_path: Path) -> list[str]:
    """Exit code, and every seeded event at the relay, by (group, message); sets the
    phase's byte count (the delivered messages, each event once)."""
    failures = exit_failures(name, phase, log_path)
    tables = set(relay.counts()) - {TABLE}
    if tables:
        failures.append(f"{name} round {phase.round}: unexpected tables {sorted(tables)}")
    failures += parse_failures(name, phase, relay)
    # An event is its eventId (moto's are unique): a second one is a duplicate. What
    # arrived once each must then be what was seeded, message by message per group.
    seen: set[str] = set()
    received: Counter = Counter()
    nbytes = duplicates = 0
    for text in relay.events(TABLE):
        event = json.loads(text)
        if event["eventId"] in seen:
            duplicates += 1
            continue
        seen.add(event["eventId"])
        received[(event["logGroup"], event["message"])] += 1
        nbytes += len(text.encode("utf-8", "surrogatepass"))
    phase.uncompressed_bytes = nbytes
    missing = sum((seeded.expected - received).values())
    unknown = sum((received - seeded.expected).values())
    if missing or unknown:
        failures.append(f"{name} round {phase.round}: {missing:,} of {seeded.events:,} events "
                        f"missing, {unknown:,} unknown events")
    if duplicates:
        if name == "baseline":
            failures.append(f"baseline round {phase.round}: {duplicates:,} duplicate events")
        else:
            print(f"  note: {duplicates:,} duplicate events (at-least-once delivery)")
    return failures


def check_collector(seeded: SeededLogs, workdir: Path, state: Path, round_: int) -> list[str]:
    from awscollector.io.checkpoints import CheckpointKey, FileCheckpoints

    failures = []
    store = FileCheckpoints(state)
    for group in seeded.groups:
        saved = store.load(CheckpointKey(SERVICE, ACCOUNT, REGION, group))
        if saved is None or saved.get("open") or not saved.get("done"):
            failures.append(f"collector round {round_}: checkpoint of {group} not finished: "
                            f"{saved!r}")
    return failures + dead_letter_failures(workdir)


# -- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="CloudWatch Logs backfill: the collector against a plain-boto3 baseline.")
    parser.add_argument("--events", type=int, default=240_000,
                        help="log events in all (default 240,000)")
    parser.add_argument("--groups", type=int, default=4,
                        help="log groups they are spread over (default 4)")
    parser.add_argument("--streams", type=int, default=4,
                        help="log streams per group (default 4)")
    parser.add_argument("--hours", type=float, default=4.0,
                        help="the events span this many hours, ending a minute before "
                             "seeding (default 4; at most 23)")
    add_phase_args(parser, workdir_help="keep configs, state, logs and certificates here "
                                        "(default: a temporary directory, removed)")
    add_output_args(parser)
    args = parser.parse_args(argv)
    if args.groups < 1 or args.streams < 1 or args.rounds < 1 or args.events < args.groups:
        parser.error("need --groups, --streams and --rounds >= 1 and --events >= --groups")
    if not 0 < args.hours <= 23:  # PutLogEvents refuses events older than its retention
        parser.error("--hours must be in (0, 23]")
    return args


def main(argv: list[str] | None = None) -> int:
    return dispatch(parse_args(argv), baseline_worker, "cloudwatch-logs-bench-", run)


def run(args: argparse.Namespace, workdir: Path) -> int:
    import yaml

    from awscollector.embedded.aws import EmbeddedAws
    from awscollector.embedded.certs import make_test_pki
    from awscollector.embedded.relay import DevoRelay

    pki = make_test_pki(workdir / "pki")
    print_machine()
    # keep_events: the check compares every event, not only the count.
    with EmbeddedAws(in_process=False) as aws, DevoRelay(pki, keep_events=True) as relay:
        seeded = seed(aws, args.events, args.groups, args.streams, args.hours)
        print(f"seeded {seeded.events:,} log events in {len(seeded.groups)} groups x "
              f"{args.streams} streams over {args.hours:g} h, in {seeded.seconds:.1f}s",
              flush=True)
        spec = {"endpoint_url": aws.endpoint_url, "region": REGION, "prefix": PREFIX,
                "start_ms": seeded.start_ms, **relay_spec(relay, pki)}
        baseline_cmd = worker_command(__file__, spec)
        phases: list[Phase] = []
        failures: list[str] = []
        for round_, name, log_path in phase_runs(args, workdir):
            cmd = baseline_cmd
            state = workdir / f"state-{round_}"  # fresh: each round backfills it all
            if name == "collector":
                config_path = workdir / f"collector-{round_}.yaml"
                config_path.write_text(yaml.safe_dump(collector_config(
                    aws, relay, pki, workdir, state, seeded.start_ms)))
                # One process, as the baseline loop is one: the figures stay comparable
                # with those measured before `run` had a process per core.
                cmd = collector_command(config_path, args, processes=1)
            phase = measure(name, round_, cmd, relay, seeded.events, 0, log_path,
                            args.timeout)
            phases.append(phase)
            failures += check(name, phase, relay, seeded, log_path)
            if name == "collector":
                failures += check_collector(seeded, workdir, state, round_)
            print(f"  {phase.received:,} events, active {num(phase.active, '.2f')}s, "
                  f"wall {phase.wall:.2f}s, CPU {phase.cpu:.1f}s, moto CPU "
                  f"{num(phase.aws_cpu, '.1f')}s{baseline_note(name, log_path)}", flush=True)

    print()
    print(per_cpu_table(phases))
    mb = max((p.uncompressed_bytes for p in phases), default=0) / 1e6
    print(f"\n{seeded.events:,} events in {len(seeded.groups)} groups x {args.streams} "
          f"streams over {args.hours:g} h, {mb:.1f} MB of messages as delivered. events/s "
          "and MB/s: over active time (startup in, idle tail out); steady events/s: the "
          "relay's first event to its last; per CPU-s: of the measured process alone; moto "
          "CPU s: the embedded AWS serving FilterLogEvents meanwhile.")

    summary = summarize(phases, {
        "median_steady_events_per_second": lambda p: p.steady_events_per_second or 0.0,
        "median_events_per_cpu_second": lambda p: per_cpu(p)[0] or 0.0,
        "median_moto_cpu_seconds": lambda p: p.aws_cpu or 0.0})
    ratio = print_ratios(summary, (
        ("median events/s", "median_events_per_second"),
        ("median steady events/s", "median_steady_events_per_second"),
        ("median events per CPU second", "median_events_per_cpu_second")))
    if ratio is not None:
        b, c = summary["baseline"], summary["collector"]
        print(f"moto CPU seconds per phase (medians): baseline "
              f"{b['median_moto_cpu_seconds']:.1f}, collector {c['median_moto_cpu_seconds']:.1f}")

    if args.json_path:
        Path(args.json_path).write_text(json.dumps({
            "events": seeded.events, "groups": len(seeded.groups), "streams": args.streams,
            "hours": args.hours,
            "phases": phase_records(phases, cpu=True),
            "summary": summary, "ratio": ratio, "target": TARGET_RATIO,
            "failures": failures}, indent=2) + "\n")
    return finish(failures)


if __name__ == "__main__":
    sys.exit(main())
