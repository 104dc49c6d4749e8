"""Benchmark: how long `aws-collector run` takes from process start to its first SQS poll.

    .venv/bin/python benchmarks/startup_bench.py            # 7 runs, and the floor
    .venv/bin/python benchmarks/startup_bench.py --runs 10 --importtime
    .venv/bin/python benchmarks/startup_bench.py --processes 1   # one collector process

Starts an embedded AWS (moto's server, its own process, so its CPU is not ours)
with an empty S3-notified SQS queue, and an embedded Devo relay. Between them and
the measured processes sits a small HTTP front in this process that forwards
every request to moto and notes when each arrives: the time of a run's first
ReceiveMessage, as the server sees it, is what is reported.

* collector: ``python -m awscollector run --config F --until-idle --idle-seconds 1``
  (VPC Flow Logs from one queue), started N times; per run the seconds from
  starting the process to its first request and to its first ReceiveMessage,
  the CPU seconds its process tree had used by then, and the wall time to its
  exit. Without ``--processes`` a run has its default: on the DirectRunner a
  supervisor and a collector process per core, each of which imports Beam (the
  first ReceiveMessage is the first child's, and the CPU is all of theirs);
* floor: ``python -c "import boto3; boto3.client('sqs', ...).receive_message(...)"``
  against the same front, N times: what any Python process that polls SQS with
  boto3 costs, the least the collector could take.

``--compare DIR`` adds a third process: the collector of another checkout (its
``awscollector`` package found first on PYTHONPATH), e.g. the commit before a
change, exported with ``git archive COMMIT awscollector | tar -x -C DIR``.

``--importtime`` also prints the heaviest top-level imports of
``python -X importtime -c "import awscollector.cli"`` and of one run (one process:
``--processes 1``; the
cumulative microseconds of each package, as Python reports them).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from process_tree import tree_cpu_seconds
from vpc_flow_bench import ENV, QUEUE, REGION, format_rows

import awscollector
from awscollector.embedded.front import FrontHandler, HttpFront

RECEIVE = "ReceiveMessage"


class Arrivals(HttpFront):
    """Forwards everything to moto; notes (monotonic time, SQS operation) per request."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        super().__init__(upstream, scheme="http", host=host, port=int(port),
                         upstream_timeout=60.0, handler=_ArrivalHandler,
                         thread_name="startup-bench-front")
        self._lock = threading.Lock()
        self._seen: list[tuple[float, str]] = []
        self.pid: int | None = None  # the measured process
        # its tree's CPU seconds (with `run --processes`' children) at its first ReceiveMessage
        self.cpu_at_receive: float | None = None

    def note(self, arrived: float, operation: str) -> None:
        with self._lock:
            self._seen.append((arrived, operation))
            if operation == RECEIVE and self.cpu_at_receive is None and self.pid:
                self.cpu_at_receive = tree_cpu_seconds(self.pid)

    def reset(self, pid: int | None = None) -> None:
        with self._lock:
            self._seen.clear()
            self.pid, self.cpu_at_receive = pid, None

    def first(self, operation: str | None = None) -> float | None:
        """When the first request (of that operation) arrived, or None."""
        with self._lock:
            return next((t for t, op in self._seen if operation in (None, op)), None)


class _ArrivalHandler(FrontHandler):
    bad_gateway_text = "startup bench front"

    def _handle(self) -> None:
        front: Arrivals = self.server.front  # type: ignore[assignment]
        arrived = time.monotonic()  # headers read: the request has reached the server
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        # boto3 speaks SQS as JSON (X-Amz-Target) or, older, as a query (Action=...).
        target = self.headers.get("X-Amz-Target", "")
        operation = target.rpartition(".")[2] if target else ""
        if not operation and b"Action=" in body:
            operation = body.split(b"Action=", 1)[1].split(b"&", 1)[0].decode()
        front.note(arrived, operation or f"{self.command} {self.path}")
        self._forward(body, len(body), False)


def create_queue(endpoint_url: str) -> str:
    import boto3

    from awscollector.embedded.seed import create_s3_sqs

    kwargs = {"region_name": REGION, "endpoint_url": endpoint_url,
              "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return create_s3_sqs(boto3.client("s3", **kwargs), boto3.client("sqs", **kwargs),
                         "startup-bench", QUEUE, REGION)


def compile_bytecode(package: Path) -> None:
    """Writes the package's missing or stale bytecode: where PYTHONDONTWRITEBYTECODE
    is set, a run would otherwise compile every new or changed module again, each
    time (~0.05 s for the whole package here), and an exported checkout has none."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True,
                   env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})


def floor_command(endpoint_url: str, queue_url: str) -> list[str]:
    code = (f"import boto3; boto3.client('sqs', region_name={REGION!r}, "
            f"endpoint_url={endpoint_url!r}).receive_message(QueueUrl={queue_url!r}, "
            "WaitTimeSeconds=0)")
    return [sys.executable, "-c", code]


def collector_command(config_path: Path, processes: int | None) -> list[str]:
    return [sys.executable, "-m", "awscollector", "run", "--config", str(config_path),
            "--until-idle", "--idle-seconds", "1",
            *([] if processes is None else ["--processes", str(processes)])]


def timed(cmd: list[str], front: Arrivals, log_path: Path, timeout: float,
          env: dict[str, str]
          ) -> tuple[float | None, float | None, float | None, float, int]:
    """(to first request, to first ReceiveMessage, CPU seconds until it, wall, exit code)
    of one process. The CPU seconds are its tree's (user + system), which other load
    on the machine disturbs much less than the elapsed time."""
    front.reset()
    with open(log_path, "wb") as log:
        start = time.monotonic()
        # Run from the log's directory: `python -m` puts the working directory first
        # on sys.path, ahead of PYTHONPATH (--compare).
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, cwd=log_path.parent,
                                stdout=log, stderr=subprocess.STDOUT)
        front.reset(proc.pid)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
    wall = time.monotonic() - start
    first, receive = front.first(), front.first(RECEIVE)
    return (None if first is None else first - start,
            None if receive is None else receive - start, front.cpu_at_receive, wall, code)


def top_imports(cmd_prefix: list[str], args: list[str], n: int) -> list[tuple[str, int]]:
    """The n top-level packages whose modules took the most import µs (-X importtime):
    each module's own time, summed per package, so that a package imported by another
    (grpc by apache_beam) is counted as itself."""
    proc = subprocess.run([*cmd_prefix, "-X", "importtime", *args], env={**os.environ, **ENV},
                          capture_output=True, text=True, timeout=120)
    totals: dict[str, int] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        own, _, name = line[len("import time:"):].split("|")
        if not own.strip().isdigit():
            continue  # the header line
        top = name.strip().split(".")[0]
        totals[top] = totals.get(top, 0) + int(own)
    return sorted(totals.items(), key=lambda kv: -kv[1])[:n]


def stats(values: list[float | None]) -> tuple[str, str]:
    got = [v for v in values if v is not None]
    if not got:
        return "-", "-"
    return f"{statistics.median(got):.3f}", f"{min(got):.3f}"


def run(args: argparse.Namespace, workdir: Path) -> int:
    import yaml

    from awscollector.embedded.aws import EmbeddedAws
    from awscollector.embedded.certs import make_test_pki
    from awscollector.embedded.config import embedded_config
    from awscollector.embedded.relay import DevoRelay

    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}", flush=True)
    pki = make_test_pki(workdir / "pki")
    failures = []
    with EmbeddedAws(in_process=False) as aws, DevoRelay(pki, keep_events=False) as relay, \
            Arrivals(aws.endpoint_url) as front:
        queue_url = create_queue(front.endpoint_url)
        compile_bytecode(Path(awscollector.__file__).parent)
        config_path = workdir / "collector.yaml"
        config_path.write_text(yaml.safe_dump(embedded_config(
            front.endpoint_url, relay.port, pki, workdir, QUEUE, (REGION,))))
        env = {**os.environ, **ENV}
        commands = {"floor": (floor_command(front.endpoint_url, queue_url), env),
                    "collector": (collector_command(config_path, args.processes), env)}
        if args.compare:
            source = str(Path(args.compare).resolve())
            compile_bytecode(Path(source) / "awscollector")
            commands["collector (compare)"] = (collector_command(config_path, args.processes),
                                               {**env, "PYTHONPATH": source})
        rows, results = [], {name: [] for name in commands}
        cpus: dict[str, list[float | None]] = {name: [] for name in commands}
        for n in range(1, args.runs + 1):
            for name, (cmd, cmd_env) in commands.items():  # alternate: load hits all alike
                log_path = workdir / f"{name.replace(' ', '-')}-{n}.log"
                first, receive, cpu, wall, code = timed(cmd, front, log_path, args.timeout,
                                                        cmd_env)
                results[name].append(receive)
                cpus[name].append(cpu)
                rows.append((name, str(n), "-" if first is None else f"{first:.3f}",
                             "-" if receive is None else f"{receive:.3f}",
                             "-" if cpu is None else f"{cpu:.2f}", f"{wall:.2f}", str(code)))
                if code != 0 or receive is None:
                    failures.append(f"{name} run {n}: exit {code}, "
                                    f"ReceiveMessage {'seen' if receive else 'never seen'}"
                                    f" (log {log_path})")
        print(format_rows(("process", "run", "1st request s", "1st ReceiveMessage s",
                           "CPU s until it", "wall s", "exit"), rows))
        print()
        print(format_rows(("process", "median s", "min s", "median CPU s", "min CPU s"),
                          [(name, *stats(v), *stats(cpus[name]))
                           for name, v in results.items()]))
        if args.importtime:
            for label, cmd_args in (
                    ("import awscollector.cli", ["-c", "import awscollector.cli"]),
                    ("run", ["-m", "awscollector", "run", "--config", str(config_path),
                             "--until-idle", "--idle-seconds", "1",
                             "--processes", "1"])):  # the imports are the child's
                print(f"\nheaviest imports of {label} (ms, own time per package):")
                for name, us in top_imports([sys.executable], cmd_args, args.top):
                    print(f"  {name:30} {us / 1000:8.1f}")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each process (default 7)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per run")
    parser.add_argument("--compare", metavar="DIR",
                        help="also time the collector of the checkout in DIR")
    parser.add_argument("--processes", type=int, metavar="N",
                        help="run the collectors with --processes N (default: run's own)")
    parser.add_argument("--importtime", action="store_true",
                        help="also print the heaviest imports (python -X importtime)")
    parser.add_argument("--top", type=int, default=15, help="how many imports to print")
    parser.add_argument("--workdir", help="keep configs and logs here (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.workdir:
        workdir = Path(args.workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        return run(args, workdir)
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as tmp:
        return run(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
