"""A streaming Beam pipeline on a real Flink 1.19 session cluster (flink/cluster.py).

The shape the collector's readers need on Flink: a splittable DoFn that polls
forever with defer_remainder and registers a bundle finalizer per poll, which
Flink runs only after the checkpoint that covers the poll's output completes.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineState
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.utils.timestamp import Duration

from tests.flink_cluster import FlinkCluster, wait_until

pytestmark = pytest.mark.slow


def append(path: Path, record: dict) -> None:
    """One JSON line; the SDK workers are other processes, so tests read files."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class Forever(RestrictionProvider):
    def initial_restriction(self, element):
        return OffsetRange(0, sys.maxsize)

    def create_tracker(self, restriction):
        return OffsetRestrictionTracker(restriction)

    def restriction_size(self, element, restriction):
        return 1

    def split(self, element, restriction):
        yield restriction


FOREVER = beam.DoFn.RestrictionParam(Forever())


@beam.DoFn.unbounded_per_element()
class Poll(beam.DoFn):
    """Claims one position per poll, finalizes it after the checkpoint, defers the rest."""

    def __init__(self, out: str):
        self.out = Path(out)

    # The finalizer must come before the restriction parameter (Beam binds them by
    # position; the other order fails with "got multiple values for argument").
    def process(self, element, finalizer=beam.DoFn.BundleFinalizerParam,
                tracker=FOREVER):
        pos = tracker.current_restriction().start
        if not tracker.try_claim(pos):
            return
        record = {"el": element, "pos": pos, "pid": os.getpid(), "t": time.time()}
        append(self.out / "polled", record)
        finalizer.register(lambda: append(self.out / "finalized", record))
        yield record
        tracker.defer_remainder(Duration(seconds=0.2))


class Deliver(beam.DoFn):
    def __init__(self, out: str):
        self.out = Path(out)

    def process(self, record):
        append(self.out / "delivered", record)


def start_polling(cluster: FlinkCluster, out: Path, job_name: str):
    out.mkdir(parents=True, exist_ok=True)
    p = beam.Pipeline(options=PipelineOptions(cluster.pipeline_args(job_name)))
    (p | beam.Create(["a", "b"]) | beam.ParDo(Poll(str(out))) | beam.ParDo(Deliver(str(out))))
    return p.run()


def keys(rows: list[dict]) -> set[tuple]:
    return {(r["el"], r["pos"]) for r in rows}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with FlinkCluster(tmp_path_factory.mktemp("flink")) as c:
        yield c


def test_finalizers_run_after_checkpoints_and_job_cancels(cluster, tmp_path):
    job = f"finalizers-{uuid.uuid4().hex[:8]}"
    result = start_polling(cluster, tmp_path, job)
    try:
        # Submission stages the job server's jars to Flink: allow for a slow machine.
        wait_until(lambda: len(records(tmp_path / "finalized")) >= 10, 300, "10 finalizers")
        assert cluster.job(job)["state"] == "RUNNING"
        assert cluster.checkpoints(job)["counts"]["completed"] > 0
    finally:
        result.cancel()
    assert wait_until(lambda: result.state == PipelineState.CANCELLED, 60, "Beam CANCELLED")
    # The job server's Cancel leaves the Flink job running; the cluster cancels it.
    cluster.cancel_job(job)
    assert cluster.job(job)["state"] == "CANCELED"

    finalized = keys(records(tmp_path / "finalized"))
    delivered = keys(records(tmp_path / "delivered"))
    assert {el for el, _ in finalized} == {"a", "b"}
    # A finalizer runs only once the output of its poll went downstream.
    assert finalized <= delivered <= keys(records(tmp_path / "polled"))
    assert len(finalized) == len(records(tmp_path / "finalized")), "a finalizer ran twice"


def test_job_recovers_after_taskmanager_is_killed(cluster, tmp_path):
    job = f"recovery-{uuid.uuid4().hex[:8]}"
    workers_before = cluster.log("worker-pool").count("started worker")
    result = start_polling(cluster, tmp_path, job)
    try:
        wait_until(lambda: len(records(tmp_path / "finalized")) >= 5, 300, "5 finalizers")
        cluster.kill_taskmanager()
        killed_at = time.time()
        cluster.start_taskmanager()
        restarted_at = time.time()
        # Finalizers of polls made after the restart: the job runs again.
        wait_until(lambda: sum(r["t"] > killed_at for r in records(tmp_path / "finalized")) >= 5,
                   300, "5 finalizers after the TaskManager restart")
        checkpoints = cluster.checkpoints(job)
        assert checkpoints["counts"]["restored"] >= 1
        assert checkpoints["latest"]["restored"]["is_savepoint"] is False
    finally:
        result.cancel()
        cluster.cancel_job(job)

    # The worker pool started SDK workers for the new TaskManager: new processes poll.
    assert cluster.log("worker-pool").count("started worker") > workers_before + 1
    polled = records(tmp_path / "polled")
    assert {r["pid"] for r in polled if r["t"] > restarted_at}.isdisjoint(
        {r["pid"] for r in polled if r["t"] < killed_at})
    # Recovery resumes from the checkpoint: no position is skipped.
    for el in ("a", "b"):
        positions = {pos for e, pos in keys(records(tmp_path / "polled")) if e == el}
        assert positions == set(range(max(positions) + 1))
