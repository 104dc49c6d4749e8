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
  relay's EOF, as the collector does (with 2 processes: two such loops, each
  the files of its index mod 2);
* collector: ``python -m awscollector run --config FILE --until-idle
  --processes N`` with the ``audit-events-all`` service (``types:
  [audits_s3]``), as a user runs it.

Both are measured as vpc_flow_bench.py measures them (its helpers, imported):
each with 1 and 2 processes (--processes 1,2): wall, active (process start to
the relay having every event), steady events/s (first event to last), peak RSS
per process, CPU seconds of the measured process tree; and events per CPU second
of it, which says what one core of it does whatever else shares the machine.

Checks (exit 1 if one fails): every event arrived (more from the collector are
reported as at-least-once duplicates), every line parsed, only CloudTrail
tables, collector exit 0, queue empty, nothing dead-lettered.
"""

from __future__ import annotations

import argparse
import gzip
import json
import socket
import sys
import time
from pathlib import Path

from vpc_flow_bench import (
    REGION,
    TARGET_RATIO,
    Phase,
    Seeded,
    add_output_args,
    add_phase_args,
    add_processes_arg,
    close_relay,
    count_failures,
    dispatch,
    exit_failures,
    finish,
    parse_failures,
    phase_records,
    print_machine,
    print_process_summary,
    process_summary,
    process_table,
    relay_context,
    relay_socket,
    relay_spec,
    run_phases,
    syslog_header,
    worker_share,
)

TABLE = "cloud.aws.cloudtrail.events"
BUCKET = "bench-cloudtrail"
QUEUE = "bench-cloudtrail"
SERVICE = "audit-events-all"


# -- the baseline: one plain loop, run in its own process (only stdlib and boto3 imported)


def baseline_worker(spec: dict) -> int:
    import boto3

    s3 = boto3.client("s3", region_name=spec["region"], endpoint_url=spec["endpoint_url"])
    context = relay_context(spec)
    hostname = socket.gethostname()
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    started = time.monotonic()
    keys = worker_share([obj["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=spec["bucket"]) for obj in page.get("Contents", ())], spec)
    events = 0
    with relay_socket(context, spec) as sock:
        for key in keys:
            body = s3.get_object(Bucket=spec["bucket"], Key=key)["Body"].read()
            records = json.loads(gzip.decompress(body))["Records"]
            header = syslog_header(TABLE, hostname)
            lines = [header + dumps(r).encode() for r in records]
            sock.sendall(b"\n".join(lines) + b"\n")
            events += len(lines)
        close_relay(sock)
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


def collector_config(aws, relay, pki, workdir: Path, readers: int, auto_event_type: bool,
                     flatten: bool) -> dict:
    from awscollector.embedded.config import embedded_config

    raw = embedded_config(aws.endpoint_url, relay.port, pki, workdir, QUEUE, (REGION,),
                          readers)
    raw["inputs"]["aws"]["services"] = {SERVICE: {
        "types": ["audits_s3"], "sqs_queue_name": QUEUE, "readers": readers,
        "auto_event_type": auto_event_type, "flatten": flatten}}
    return raw


# -- checking


def check(name: str, phase: Phase, relay, log_path: Path, auto_event_type: bool) -> list[str]:
    failures = exit_failures(name, phase, log_path) + count_failures(name, phase)
    tables = set(relay.counts())
    if auto_event_type and name == "collector":
        wrong = {t for t in tables if not t.startswith("cloud.aws.cloudtrail.")}
    else:
        wrong = tables - {TABLE}
    if wrong:
        failures.append(f"{name} round {phase.round}: unexpected tables {sorted(wrong)}")
    return failures + parse_failures(name, phase, relay)


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
    add_phase_args(parser)
    add_processes_arg(parser)
    add_output_args(parser)
    args = parser.parse_args(argv)
    if args.mb <= 0 or args.objects < 1 or args.rounds < 1 or args.readers < 1:
        parser.error("--mb must be positive; --objects, --rounds and --readers at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    return dispatch(parse_args(argv), baseline_worker, "cloudtrail-bench-", run)


def run(args: argparse.Namespace, workdir: Path) -> int:
    import yaml

    from awscollector.embedded.aws import EmbeddedAws
    from awscollector.embedded.certs import make_test_pki
    from awscollector.embedded.relay import DevoRelay

    pki = make_test_pki(workdir / "pki")
    print_machine()
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
                **relay_spec(relay, pki)}
        phases, failures = run_phases(
            args, workdir, aws, relay, seeded, __file__, spec, config_path,
            lambda name, phase, relay, log_path: check(name, phase, relay, log_path,
                                                       args.auto_event_type))

    print()
    print(process_table(phases, cpu_rates=True))
    options = " ".join(o for o, on in (("auto_event_type", args.auto_event_type),
                                       ("flatten", args.flatten)) if on)
    print(f"\n{seeded.events:,} events in {len(seeded.keys)} files, "
          f"{seeded.uncompressed_bytes / 1e6:.1f} MB uncompressed. events/s and MB/s: over "
          "active time (startup in, idle tail out); steady events/s: the relay's first event "
          "to its last; CPU and per CPU-s: the measured process and its children. Collector "
          f"readers={args.readers}{', ' + options if options else ''}.\n")
    summary = process_summary(phases)
    ratios = print_process_summary(summary)

    if args.json_path:
        Path(args.json_path).write_text(json.dumps({
            "events": seeded.events, "objects": len(seeded.keys),
            "uncompressed_bytes": seeded.uncompressed_bytes,
            "phases": phase_records(phases, cpu=True),
            "summary": summary, "ratios": ratios, "target": TARGET_RATIO,
            "failures": failures}, indent=2) + "\n")
    return finish(failures)


if __name__ == "__main__":
    sys.exit(main())
