"""What `run` loads before it polls: only what the configured run needs.

A VPC Flow Logs run to the syslog relay is started as a user starts it (a child
process, the embedded AWS and relay) and, once it has delivered, reports which
modules it loaded: none of the embedded AWS (moto, Flask), none of the commands
other than `run`, no sink of an output it does not have, and not Beam's Prism
runner (on the DirectRunner the pipeline goes to the FnApiRunner directly; see
pipelines/runners.py). The garbage collector, off while `run` imports, is on again.
benchmarks/startup_bench.py measures the time all this saves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from awscollector.embedded.seed import vpc_key
from awscollector.pipelines.runners import InProcessRunner, runner_setup
from tests.vpc_helpers import ENV, put_object, setup_queue, tagged_lines, write_config

NEVER_IN_RUN = (
    "moto", "flask", "werkzeug",  # the embedded AWS: tests and the demo only
    "awscollector.embedded", "awscollector.demo", "awscollector.provision",
    "awscollector.iampolicy",
    "awscollector.io.archive", "awscollector.io.devo_http",  # outputs not configured
    "awscollector.io.prometheus", "awscollector.io.progress",  # no --metrics-port, no tty
    "awscollector.flink.jobserver",
    "apache_beam.runners.portability.prism_runner",
    "pyarrow.compute",  # only when a Parquet object is read
)

# Runs `run` in this interpreter, then says which of the modules it loaded.
PROBE = """
import gc, json, sys
from awscollector.cli import main
code = main(["run", "--config", sys.argv[1], "--until-idle", "--idle-seconds", "1"])
print(json.dumps({"exit": code, "loaded": [m for m in sys.argv[2:] if m in sys.modules],
                  "gc_enabled": gc.isenabled()}))
"""


def test_a_vpc_run_loads_nothing_it_does_not_use(embedded_aws, relay, pki, tmp_path):
    bucket, queue, _ = setup_queue(embedded_aws)
    lines = tagged_lines(1, 50)
    put_object(embedded_aws, bucket, vpc_key("us-east-1", 1), lines)
    config = write_config(embedded_aws, relay, pki, queue, tmp_path)
    done = subprocess.run([sys.executable, "-c", PROBE, str(config), *NEVER_IN_RUN],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **ENV})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["exit"] == 0, done.stderr
    assert relay.wait_for_total(len(lines), 10)  # it did run: every line delivered
    assert report["loaded"] == []
    assert report["gc_enabled"]  # off only while `run` imports


def test_the_direct_runner_is_the_fn_api_runner_unless_bundle_based_is_asked_for():
    for args in ([], ["--runner=DirectRunner"], ["--runner=direct"]):
        assert isinstance(runner_setup(args).runner, InProcessRunner), args
    assert runner_setup(["--runner=BundleBasedDirectRunner"]).runner is None
