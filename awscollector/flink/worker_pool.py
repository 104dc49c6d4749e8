"""The Beam Python SDK worker pool of an EXTERNAL environment, on loopback only.

Beam's own `worker_pool_main` listens on every interface, starts each worker with
whatever `python` is first on PATH, and gives it a stdout pipe nobody reads (a
worker that prints enough blocks). This one binds 127.0.0.1, starts workers with
this interpreter and writes each worker's output to its own log file (or, without
``--log-dir``, to its own output: the pod's log, as a Kubernetes sidecar).

    python -m awscollector.flink.worker_pool --port 50000 [--log-dir logs/]
"""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
import time
import traceback
from concurrent import futures
from pathlib import Path

import grpc
from apache_beam.portability.api import beam_fn_api_pb2, beam_fn_api_pb2_grpc
from apache_beam.runners.worker.worker_pool_main import BeamFnExternalWorkerPoolServicer

log = logging.getLogger("worker_pool")

HARNESS = (
    "from apache_beam.runners.worker.sdk_worker import SdkHarness; "
    "SdkHarness({url!r}, worker_id={worker_id!r}).run()"
)


class LoopbackWorkerPool(BeamFnExternalWorkerPoolServicer):
    def __init__(self, log_dir: Path | None):
        super().__init__(use_process=True)
        self._log_dir = log_dir

    def StartWorker(self, request, context):  # noqa: N802 (gRPC method name)
        try:
            cmd = [sys.executable, "-c", HARNESS.format(
                url=request.control_endpoint.url, worker_id=request.worker_id)]
            if self._log_dir is None:
                proc = subprocess.Popen(cmd, close_fds=True)  # our own output
            else:
                with open(self._log_dir / f"sdk-worker-{request.worker_id}.log", "ab") as out:
                    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                            close_fds=True)
            self._worker_processes[request.worker_id] = proc
            log.info("started worker %s (pid %d) for %s", request.worker_id, proc.pid,
                     request.control_endpoint.url)
            return beam_fn_api_pb2.StartWorkerResponse()
        except Exception:
            return beam_fn_api_pb2.StartWorkerResponse(error=traceback.format_exc())

    def reap(self) -> None:
        """Forget workers that ended on their own (their TaskManager went away)."""
        for worker_id, proc in list(self._worker_processes.items()):
            if proc.poll() is not None:
                log.info("worker %s (pid %d) exited with %s", worker_id, proc.pid,
                         proc.returncode)
                self._worker_processes.pop(worker_id, None)

    def stop_all(self) -> None:
        for proc in self._worker_processes.values():
            proc.terminate()
        for proc in self._worker_processes.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-dir", type=Path, default=None,
                        help="one log file per worker here (default: this process's output)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        force=True)  # importing Beam already configured the root logger

    pool = LoopbackWorkerPool(args.log_dir)
    server = grpc.server(futures.ThreadPoolExecutor(16))
    beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(pool, server)
    if not server.add_insecure_port(f"127.0.0.1:{args.port}"):
        sys.exit(f"worker pool: cannot listen on 127.0.0.1:{args.port}")
    server.start()
    log.info("worker pool listening on 127.0.0.1:%d", args.port)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(1)
            pool.reap()
    finally:
        server.stop(0)
        pool.stop_all()


if __name__ == "__main__":
    main()
