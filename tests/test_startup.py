"""What `run` loads before it polls: only what the configured run needs.

A VPC Flow Logs run to the syslog relay is started as a user starts it (a child
process, the embedded AWS and relay) and, once it has delivered, reports which
modules it loaded: none of the embedded AWS (moto, Flask), none of the commands
other than `run`, no sink of an output it does not have, and not Beam's Prism
runner (on the DirectRunner the pipeline goes to the FnApiRunner directly; see
pipelines/runners.py). The garbage collector, off while `run` imports, is on again.
The modules of lazy_imports.LAZY_MODULES, which Beam imports, never ran; a run that
uses one (a Parquet object, a Parquet archive) runs it then and delivers as usual.
benchmarks/startup_bench.py measures the time all this saves.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pyarrow.parquet as pq
import pytest
import yaml

from awscollector.embedded.seed import (
    CUSTOM_FIELDS,
    put_vpc_parquet_object,
    vpc_flow_lines,
    vpc_key,
)
from awscollector.lazy_imports import LAZY_MODULES, is_lazy, lazy_modules
from awscollector.pipelines.runners import InProcessRunner, runner_setup
from tests.vpc_helpers import (
    ENV,
    put_object,
    raw_config,
    setup_queue,
    tagged_lines,
    write_config,
)

NEVER_IN_RUN = (
    "moto", "flask", "werkzeug",  # the embedded AWS: tests and the demo only
    "awscollector.embedded", "awscollector.demo", "awscollector.provision",
    "awscollector.iampolicy",
    "awscollector.io.archive", "awscollector.io.devo_http",  # outputs not configured
    "awscollector.io.prometheus", "awscollector.io.progress",  # no --metrics-port, no tty
    "awscollector.flink.jobserver",
    "apache_beam.runners.portability.prism_runner",
    "pyarrow.compute",  # only when a Parquet object is read
    "pyparsing",  # httplib2's, which stays lazy
)

# Runs `run` in this interpreter, then says which of the modules it loaded, and of
# LAZY_MODULES which were imported but never ran ("lazy") and which ran ("ran").
PROBE = """
import gc, json, sys
from awscollector.cli import main
from awscollector.lazy_imports import LAZY_MODULES, is_lazy
code = main(["run", "--config", sys.argv[1], "--until-idle", "--idle-seconds", "1"])
print(json.dumps({"exit": code, "loaded": [m for m in sys.argv[2:] if m in sys.modules],
                  "gc_enabled": gc.isenabled(),
                  "lazy": {m: ("lazy" if is_lazy(sys.modules[m]) else "ran")
                           for m in LAZY_MODULES if m in sys.modules}}))
"""


def _probe(config, *modules: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, str(config), *modules],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **ENV})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["exit"] == 0, done.stderr
    return report


def test_a_vpc_run_loads_nothing_it_does_not_use(embedded_aws, relay, pki, tmp_path):
    bucket, queue, _ = setup_queue(embedded_aws)
    lines = tagged_lines(1, 50)
    put_object(embedded_aws, bucket, vpc_key("us-east-1", 1), lines)
    config = write_config(embedded_aws, relay, pki, queue, tmp_path)
    report = _probe(config, *NEVER_IN_RUN)
    assert relay.wait_for_total(len(lines), 10)  # it did run: every line delivered
    assert report["loaded"] == []
    assert report["gc_enabled"]  # off only while `run` imports
    # Beam imported each of them (else the list is stale) and none of them ran.
    assert report["lazy"] == {m: "lazy" for m in LAZY_MODULES}


def test_a_lazy_module_runs_when_a_run_uses_it(embedded_aws, relay, pki, tmp_path):
    """pyarrow.parquet stays lazy until a Parquet object is read and a Parquet archive
    written: both work as they did, every record in the relay and in the archive."""
    bucket, queue, _ = setup_queue(embedded_aws)
    lines = vpc_flow_lines(300, CUSTOM_FIELDS, seed=7)
    put_vpc_parquet_object(embedded_aws.client("s3"), bucket, "us-east-1", 1, lines)
    raw = raw_config(embedded_aws, relay, pki, queue, tmp_path)
    archive = tmp_path / "archive"
    raw["outputs"]["archive_1"] = {"type": "archive", "config": {
        "format": "parquet", "path": str(archive), "window_minutes": 60}}
    config = tmp_path / "collector.yaml"
    config.write_text(yaml.safe_dump(raw))
    report = _probe(config)
    assert relay.wait_for_total(len(lines), 10)
    files = sorted(archive.rglob("*.parquet"))
    assert files and sum(pq.read_metadata(f).num_rows for f in files) == len(lines)
    assert report["lazy"]["pyarrow.parquet"] == "ran"


def test_the_direct_runner_is_the_fn_api_runner_unless_bundle_based_is_asked_for():
    for args in ([], ["--runner=DirectRunner"], ["--runner=direct"]):
        assert isinstance(runner_setup(args).runner, InProcessRunner), args
    assert runner_setup(["--runner=BundleBasedDirectRunner"]).runner is None


def _module_file(tmp_path, monkeypatch, name: str, body: str) -> str:
    (tmp_path / f"{name}.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return name


def test_threads_that_touch_a_lazy_module_at_once_all_see_it_whole(tmp_path, monkeypatch):
    name = _module_file(tmp_path, monkeypatch, "startup_slow_module",
                        "import time\nRAN = []\nRAN.append(1)\ntime.sleep(0.3)\nVALUE = 42\n")
    with lazy_modules((name,)):
        module = importlib.import_module(name)
    assert is_lazy(module)
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda _: module.VALUE, range(4))) == [42] * 4
    assert not is_lazy(module) and module.RAN == [1]  # its code ran once
    assert sys.modules[name] is module and importlib.import_module(name) is module


def test_a_missing_module_fails_at_import_and_a_broken_one_at_each_use(tmp_path, monkeypatch):
    with lazy_modules(("startup_no_such_module",)), pytest.raises(ModuleNotFoundError):
        importlib.import_module("startup_no_such_module")
    name = _module_file(tmp_path, monkeypatch, "startup_broken_module",
                        "raise RuntimeError('broken on purpose')\n")
    with lazy_modules((name,)):
        module = importlib.import_module(name)  # found: its code has not run yet
    for _ in range(2):
        with pytest.raises(RuntimeError, match="broken on purpose"):
            module.anything  # noqa: B018
