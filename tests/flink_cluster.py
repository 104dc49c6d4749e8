"""A real Flink 1.19 session cluster for tests, run with flink/cluster.py.

    with FlinkCluster(tmp_path / "flink") as cluster:
        pipeline = beam.Pipeline(options=PipelineOptions(cluster.pipeline_args("my-job")))

The first use on a machine downloads Flink (PyPI) and the Beam job server
(Maven) into the cache of flink/cluster.py; later ones start in about 15 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "flink" / "cluster.py"


class FlinkCluster:
    """JobManager, TaskManager, Beam job server and SDK worker pool; stopped on exit."""

    def __init__(self, state_dir: Path, slots: int = 2, start_timeout: float = 1200):
        self.state_dir = Path(state_dir)
        self.slots = slots
        self.start_timeout = start_timeout
        self.state: dict = {}

    def __enter__(self) -> FlinkCluster:
        try:
            self._script("up", "--slots", str(self.slots), timeout=self.start_timeout)
        except BaseException:
            self.stop()
            raise
        self.state = json.loads((self.state_dir / "state.json").read_text())
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._script("down", timeout=300)

    @property
    def flink_master(self) -> str:
        return self.state["flink_master"]

    @property
    def job_endpoint(self) -> str:
        return self.state["job_endpoint"]

    @property
    def environment_config(self) -> str:
        """The worker pool's address, for --environment_config with EXTERNAL."""
        return self.state["environment_config"]

    def pipeline_args(self, job_name: str) -> list[str]:
        """Options of a streaming pipeline with checkpoints on this cluster."""
        return ["--runner=PortableRunner", f"--job_endpoint={self.job_endpoint}",
                f"--job_name={job_name}", "--environment_type=EXTERNAL",
                f"--environment_config={self.environment_config}",
                "--streaming", "--checkpointing_interval=1000",
                "--finish_bundle_before_checkpointing", f"--parallelism={self.slots}"]

    def kill_taskmanager(self) -> None:
        """kill -9 the TaskManager and wait until it is gone."""
        self._script("kill-taskmanager")

    def start_taskmanager(self) -> str:
        """Start a new TaskManager; returns its id once its slots are registered."""
        return self._script("start-taskmanager", timeout=300).strip()

    def cancel_job(self, job_name: str) -> None:
        """Cancel the Flink job of that name and wait until it ends.

        Needed after PipelineResult.cancel(): the Beam job server marks the job
        CANCELLED but does not cancel a running streaming job on Flink.
        """
        self._script("cancel-jobs", "--name", job_name, timeout=120)

    def rest(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://{self.flink_master}{path}", timeout=10) as r:
            return json.load(r)

    def job(self, job_name: str) -> dict:
        """The newest Flink job of that name (jid, state, ...)."""
        jobs = [j for j in self.rest("/jobs/overview")["jobs"] if j["name"] == job_name]
        if not jobs:
            raise LookupError(f"no Flink job named {job_name}")
        return max(jobs, key=lambda j: j["start-time"])

    def checkpoints(self, job_name: str) -> dict:
        return self.rest(f"/jobs/{self.job(job_name)['jid']}/checkpoints")

    def logs(self) -> dict[str, Path]:
        """Each process's log file by name (jobmanager, taskmanager-1, sdk-worker-1-1, ...)."""
        return {p.stem: p for p in sorted((self.state_dir / "logs").glob("*.log"))}

    def log(self, name: str) -> str:
        return self.logs()[name].read_text(errors="replace")

    def _script(self, *args: str, timeout: float = 120) -> str:
        cmd = [sys.executable, str(SCRIPT), *args, "--state-dir", str(self.state_dir)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if done.returncode:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n"
                               f"{done.stdout}{done.stderr}")
        return done.stdout


def wait_until(predicate, timeout: float, what: str, interval: float = 0.5):
    """Poll until predicate() is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f}s")
        time.sleep(interval)
