"""Benchmark: CloudTrail files from S3+SQS to Devo, the collector against a plain-Python loop.

    .venv/bin/python benchmarks/cloudtrail_bench.py      # make bench: 200 MB in 40 files, 3 rounds
    .venv/bin/python benchmarks/cloudtrail_bench.py --mb 50 --objects 10 --rounds 1

Seeds an embedded AWS (moto's server, its own process) with gzip CloudTrail log
files (``{"Records":[...]}``, realistic events of several services, under AWS's
key layout) in a bucket that notifies an SQS queue, then measures, on the same
objects and against the same embedded Devo relay (TLS, client certificate):

* baseline: a plain Python process that lists the bucket and, in one loop,
  downloads each object, gunzips it, ``json.loads`` it whole, makes one compact
  ``json.dumps`` per record, and writes the syslog lines
  (``<14>date host cloud.aws.cloudtrail.events: {...}``) to the relay in one
  write per object over one TLS connection; then half-closes and waits for the
  relay's EOF, as the collector does;
* collector: ``python -m awscollector run --config FILE --until-idle`` with the
  ``audit-events-all`` service (``types: [audits_s3]``), as a user runs it.

Both are measured as vpc_flow_bench.py measures them (its helpers, imported):
wall, active (process start to the relay having every event), steady events/s
(first event to last), peak RSS, CPU seconds of the measured process; and, per
core, events and MB (uncompressed, 10^6 bytes) per CPU second of the measured
process, which says what one core of it does whatever else shares the machine.

Checks (exit 1 if one fails): every event arrived (more from the collector are
reported as at-least-once duplicates), every line parsed, only CloudTrail
tables, collector exit 0, queue empty, nothing dead-lettered.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import socket
import ssl
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

from vpc_flow_bench import (
    REGION,
    TARGET_RATIO,
    Phase,
    Seeded,
    baseline_loop_seconds,
    dead_letter_lines,
    in_workdir,
    measure,
    queue_depth,
    syslog_header,
    tail,
)

TABLE = "cloud.aws.cloudtrail.events"
BUCKET = "bench-cloudtrail"
QUEUE = "bench-cloudtrail"
SERVICE = "audit-events-all"


# -- the baseline: one plain loop, run in its own process (only stdlib and boto3 imported)


def baseline_worker(spec: dict) -> int:
    import boto3

    s3 = boto3.client("s3", region_name=spec["region"], endpoint_url=spec["endpoint_url"])
    context = ssl.create_default_context(cafile=spec["ca"])
    context.load_cert_chain(spec["cert"], spec["key"])
    hostname = socket.gethostname()
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    started = time.monotonic()
    keys = [obj["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=spec["bucket"])
            for obj in page.get("Contents", ())]
    events = 0
    raw = socket.create_connection(("127.0.0.1", spec["port"]))
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
        for key in keys:
            body = s3.get_object(Bucket=spec["bucket"], Key=key)["Body"].read()
            records = json.loads(gzip.decompress(body))["Records"]
            header = syslog_header(TABLE, hostname)
            lines = [header + dumps(r).encode() for r in records]
            sock.sendall(b"\n".join(lines) + b"\n")
            events += len(lines)
        try:  # done: close_notify, then the relay closes once it has read everything
            plain = sock.unwrap()
            while plain.recv(65536):
                pass
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
            pass
    print(json.dumps({"objects": len(keys), "events": events,
                      "loop_seconds": time.monotonic() - started}))
    return 0


# -- seeding


def seed(aws, megabytes: float, objects: int) -> Seeded:
    """CloudTrail files of about ``megabytes`` MB uncompressed in all, in ``objects`` files."""
    from awscollector.embedded.seed import (
        cloudtrail_key,
        cloudtrail_object,
        cloudtrail_records,
        create_s3_sqs,
    )

    started = time.monotonic()
    s3, sqs = aws.client("s3", REGION), aws.client("sqs", REGION)
    queue_url = create_s3_sqs(s3, sqs, BUCKET, QUEUE, REGION)
    sample = len(json.dumps({"Records": cloudtrail_records(200)}, separators=(",", ":")))
    per_object = max(1, round(megabytes * 1e6 / sample * 200 / objects))
    keys, bodies = [], []
    events = raw = packed = 0
    for n in range(objects):
        # Each file its own events, as consecutive deliveries of a trail would be.
        records = cloudtrail_records(per_object, seed=n + 1, region=REGION)
        body = cloudtrail_object(records)
        key = cloudtrail_key(REGION, n)
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        keys.append(key)
        bodies.append(body)
        events += len(records)
        raw += len(gzip.decompress(body))
        packed += len(body)
    return Seeded(keys, bodies, events, raw, packed, queue_url, time.monotonic() - started)


def rearm(aws, seeded: Seeded) -> None:
    """Put every object again, so that the queue announces them for another phase."""
    s3 = aws.client("s3", REGION)
    for key, body in zip(seeded.keys, seeded.bodies, strict=True):
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def collector_config(aws, relay, pki, workdir: Path, readers: int, auto_event_type: bool,
                     flatten: bool) -> dict:
    from awscollector.embedded.config import embedded_config

    raw = embedded_config(aws.endpoint_url, relay.port, pki, workdir, QUEUE, (REGION,),
                          readers)
    raw["inputs"]["aws"]["services"] = {SERVICE: {
        "types": ["audits_s3"], "sqs_queue_name": QUEUE, "readers": readers,
        "auto_event_type": auto_event_type, "flatten": flatten}}
    return raw


# -- reporting


def per_cpu(phase: Phase) -> tuple[float | None, float | None]:
    """Events and MB per CPU second of the measured process."""
    if phase.cpu <= 0:
        return None, None
    return phase.expected / phase.cpu, phase.uncompressed_bytes / 1e6 / phase.cpu


def format_table(phases: list[Phase]) -> str:
    header = ("phase", "round", "events", "wall s", "active s", "events/s", "MB/s",
              "steady events/s", "CPU s", "events/CPU-s", "MB/CPU-s", "peak RSS MB",
              "moto CPU s", "relay CPU s", "other CPU s")
    rows = [header]
    for p in phases:
        events_cpu, mb_cpu = per_cpu(p)
        rows.append((p.phase, str(p.round), f"{p.received:,}", f"{p.wall:.2f}",
                     num(p.active, ".2f"), f"{p.events_per_second:,.0f}",
                     f"{p.mb_per_second:.1f}", num(p.steady_events_per_second, ",.0f"),
                     f"{p.cpu:.1f}", num(events_cpu, ",.0f"), num(mb_cpu, ".1f"),
                     f"{p.peak_rss_mb:.0f}", num(p.aws_cpu, ".1f"), f"{p.relay_cpu:.1f}",
                     num(p.other_cpu, ".1f")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    out = []
    for n, row in enumerate(rows):
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def check(name: str, phase: Phase, relay, log_path: Path, auto_event_type: bool) -> list[str]:
    failures = []
    if phase.exit_code != 0:
        failures.append(f"{name} round {phase.round}: exit code {phase.exit_code}; "
                        f"its log ends:\n{tail(log_path)}")
    if phase.received < phase.expected:
        failures.append(f"{name} round {phase.round}: relay got {phase.received:,} of "
                        f"{phase.expected:,} events")
    elif phase.received > phase.expected:
        extra = phase.received - phase.expected
        if name == "baseline":
            failures.append(f"baseline round {phase.round}: {extra:,} events too many")
        else:
            print(f"  note: {extra:,} duplicate events (at-least-once delivery)")
    tables = set(relay.counts())
    if auto_event_type and name == "collector":
        wrong = {t for t in tables if not t.startswith("cloud.aws.cloudtrail.")}
    else:
        wrong = tables - {TABLE}
    if wrong:
        failures.append(f"{name} round {phase.round}: unexpected tables {sorted(wrong)}")
    bad = relay.bad_lines()
    if bad:
        failures.append(f"{name} round {phase.round}: relay could not parse {len(bad)} lines, "
                        f"first {bad[0][:200]!r}")
    return failures


def check_collector(aws, seeded: Seeded, workdir: Path) -> list[str]:
    failures = []
    depth = queue_depth(aws, seeded.queue_url)
    if depth:
        failures.append(f"collector: {depth} messages left in the queue")
    dead = dead_letter_lines(workdir)
    if dead:
        failures.append(f"collector: {dead} dead-letter entries in {workdir / 'deadletter'}")
    return failures


# -- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="CloudTrail files: the collector against a plain-Python baseline.")
    parser.add_argument("--mb", type=float, default=200.0,
                        help="MB (10^6 bytes) of uncompressed CloudTrail files in all "
                             "(default 200)")
    parser.add_argument("--objects", type=int, default=40,
                        help="gzip files they are spread over (default 40)")
    parser.add_argument("--readers", type=int, default=1,
                        help="the collector's SQS readers (config `readers`, default 1)")
    parser.add_argument("--auto-event-type", action="store_true",
                        help="collector only: one table per service (the baseline does not)")
    parser.add_argument("--flatten", action="store_true",
                        help="collector only: flatten: true (the baseline does not)")
    parser.add_argument("--idle-seconds", type=float, default=2.0,
                        help="the collector's --idle-seconds (default 2)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="measure each phase this many times, alternating (default 3)")
    parser.add_argument("--only", choices=("baseline", "collector"),
                        help="run one phase only (no ratio)")
    parser.add_argument("--collector-arg", action="append", default=[], metavar="ARG",
                        help="extra argument for `aws-collector run` (a Beam option), "
                             "repeatable")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds before a phase is killed (default 900)")
    parser.add_argument("--workdir", help="keep config, logs and certificates here "
                                          "(default: a temporary directory, removed)")
    parser.add_argument("--json", dest="json_path", help="also write the results here as JSON")
    parser.add_argument("--baseline-worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.mb <= 0 or args.objects < 1 or args.rounds < 1 or args.readers < 1:
        parser.error("--mb must be positive; --objects, --rounds and --readers at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.baseline_worker:
        return baseline_worker(json.loads(args.baseline_worker))
    return in_workdir(args, "cloudtrail-bench-", run)


def run(args: argparse.Namespace, workdir: Path) -> int:
    import yaml

    from awscollector.embedded.aws import EmbeddedAws
    from awscollector.embedded.certs import make_test_pki
    from awscollector.embedded.relay import DevoRelay

    pki = make_test_pki(workdir / "pki")
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; moto server, "
          "relay and the measured process share them", flush=True)
    with EmbeddedAws(in_process=False) as aws, DevoRelay(pki, keep_events=False) as relay:
        seeded = seed(aws, args.mb, args.objects)
        print(f"seeded {seeded.events:,} CloudTrail events in {len(seeded.keys)} gzip files: "
              f"{seeded.uncompressed_bytes / 1e6:.1f} MB uncompressed, "
              f"{seeded.compressed_bytes / 1e6:.1f} MB gzip, in {seeded.seconds:.1f}s",
              flush=True)
        config_path = workdir / "collector.yaml"
        config_path.write_text(yaml.safe_dump(collector_config(
            aws, relay, pki, workdir, args.readers, args.auto_event_type, args.flatten)))
        spec = {"endpoint_url": aws.endpoint_url, "region": REGION, "bucket": BUCKET,
                "port": relay.port, "ca": str(pki.ca_cert), "cert": str(pki.client_cert),
                "key": str(pki.client_key)}
        commands = {
            "baseline": [sys.executable, str(Path(__file__).resolve()),
                         "--baseline-worker", json.dumps(spec)],
            "collector": [sys.executable, "-m", "awscollector", "run", "--config",
                          str(config_path), "--until-idle", "--idle-seconds",
                          str(args.idle_seconds), *args.collector_arg],
        }
        phases: list[Phase] = []
        failures: list[str] = []
        collector_runs = 0
        for round_ in range(1, args.rounds + 1):
            order = ["baseline", "collector"] if round_ % 2 else ["collector", "baseline"]
            for name in order:
                if args.only and name != args.only:
                    continue
                if name == "collector" and collector_runs:
                    rearm(aws, seeded)  # the previous collector phase emptied the queue
                log_path = workdir / f"{name}-{round_}.log"
                print(f"round {round_}: {name} ...", flush=True)
                phase = measure(name, round_, commands[name], relay, seeded.events,
                                seeded.uncompressed_bytes, log_path, args.timeout)
                phases.append(phase)
                failures += check(name, phase, relay, log_path, args.auto_event_type)
                if name == "collector":
                    collector_runs += 1
                    failures += check_collector(aws, seeded, workdir)
                note = ""
                if name == "baseline":
                    loop = baseline_loop_seconds(log_path)
                    if loop is not None:
                        note = f" (its loop alone, without interpreter start: {loop:.2f}s)"
                print(f"  {phase.received:,} events, active {num(phase.active, '.2f')}s, "
                      f"wall {phase.wall:.2f}s, CPU {phase.cpu:.1f}s{note}", flush=True)

    print()
    print(format_table(phases))
    options = " ".join(o for o, on in (("auto_event_type", args.auto_event_type),
                                       ("flatten", args.flatten)) if on)
    print(f"\n{seeded.events:,} events in {len(seeded.keys)} files, "
          f"{seeded.uncompressed_bytes / 1e6:.1f} MB uncompressed. events/s and MB/s: over "
          "active time (startup in, idle tail out); steady events/s: the relay's first event "
          "to its last; per CPU-s: of the measured process alone. Collector "
          f"readers={args.readers}{', ' + options if options else ''}.")

    summary = {}
    for name in ("baseline", "collector"):
        mine = [p for p in phases if p.phase == name]
        if mine:
            summary[name] = {
                "best_events_per_second": max(p.events_per_second for p in mine),
                "median_events_per_second": statistics.median(p.events_per_second
                                                              for p in mine),
                "median_events_per_cpu_second": statistics.median(
                    per_cpu(p)[0] or 0.0 for p in mine),
            }
    ratio = None
    if len(summary) == 2:
        b, c = summary["baseline"], summary["collector"]
        ratio = c["best_events_per_second"] / b["best_events_per_second"]
        verdict = "PASS" if ratio >= TARGET_RATIO else "BELOW"
        print(f"collector/baseline best events/s: {c['best_events_per_second']:,.0f} / "
              f"{b['best_events_per_second']:,.0f} = {ratio:.2f}  (target >= {TARGET_RATIO}): "
              f"{verdict}")
        print(f"collector/baseline median events per CPU second: "
              f"{c['median_events_per_cpu_second']:,.0f} / "
              f"{b['median_events_per_cpu_second']:,.0f} = "
              f"{c['median_events_per_cpu_second'] / b['median_events_per_cpu_second']:.2f}")

    if args.json_path:
        Path(args.json_path).write_text(json.dumps({
            "events": seeded.events, "objects": len(seeded.keys),
            "uncompressed_bytes": seeded.uncompressed_bytes,
            "phases": [{**asdict(p), "events_per_second": p.events_per_second,
                        "mb_per_second": p.mb_per_second,
                        "steady_events_per_second": p.steady_events_per_second,
                        "events_per_cpu_second": per_cpu(p)[0],
                        "mb_per_cpu_second": per_cpu(p)[1]} for p in phases],
            "summary": summary, "ratio": ratio, "target": TARGET_RATIO,
            "failures": failures}, indent=2) + "\n")

    if failures:
        print("\nFAILED checks:", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
