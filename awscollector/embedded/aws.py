"""An embedded AWS: moto's server on a free loopback port, spoken to over real HTTP.

Used by the demo, the tests and the benchmarks, so that boto3 runs unchanged.

    with EmbeddedAws() as aws:
        aws.client("s3").create_bucket(Bucket="logs")
        factory = ClientFactory(endpoint_url=aws.endpoint_url)

`in_process=False` runs the server as a child process (its own GIL), and is the only
way to give it environment settings, such as `INITIAL_NO_AUTH_ACTION_COUNT` to
enforce IAM, because moto reads them when it is imported.

`apis=True` puts an emulator of the calls moto lacks (CloudTrail LookupEvents,
GuardDuty ListFindings/GetFindings; awscollector/embedded/apis.py) in front of moto:
`endpoint_url` is then the emulator's, which forwards every other request to moto,
and `aws.apis` seeds and inspects it.
"""

from __future__ import annotations

import http.client
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

import boto3

HOST = "127.0.0.1"  # never listen on anything but loopback
DUMMY_KEY = "testing"
START_TIMEOUT_SECONDS = 30.0


def free_port() -> int:
    """A port that was free on loopback a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


class EmbeddedAws:
    """moto's server on a free loopback port."""

    def __init__(self, in_process: bool = True, port: int = 0, env: dict | None = None,
                 apis: bool = False) -> None:
        if in_process and env:
            # moto reads its settings at import time, already done in this process.
            raise ValueError("env applies only with in_process=False")
        self.in_process = in_process
        self.port = port
        self.env = dict(env or {})
        self._server: Any = None  # moto.server.ThreadedMotoServer when in process
        self._process: subprocess.Popen | None = None
        self._log: Any = None  # the child's stderr, kept to explain a failed start
        self._with_apis = apis
        self.apis: Any = None  # awscollector.embedded.apis.ApiEmulator, with apis=True

    @property
    def endpoint_url(self) -> str:
        if self.apis is not None and self.apis.port:
            return self.apis.endpoint_url
        return self.moto_endpoint_url

    @property
    def moto_endpoint_url(self) -> str:
        """moto's own address (with apis=True, behind the emulator)."""
        if not self.port:
            raise RuntimeError("EmbeddedAws is not started")
        return f"http://{HOST}:{self.port}"

    def start(self) -> EmbeddedAws:
        """Start the server; returns once it answers HTTP."""
        if self._server is not None or self._process is not None:
            return self
        if self.in_process:
            # werkzeug logs every request at INFO: noise in the collector's own log.
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
            self._start_thread()
        else:
            self._start_process()
        try:
            self._wait_until_ready()
            if self._with_apis:
                from awscollector.embedded.apis import ApiEmulator

                self.apis = ApiEmulator(self.moto_endpoint_url).start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_thread(self) -> None:
        from moto.server import ThreadedMotoServer  # heavy import: only when used

        if self.port and not port_is_free(self.port):
            # ThreadedMotoServer.start() would wait forever if its bind failed.
            raise RuntimeError(f"port {self.port} on {HOST} is in use")
        # With port 0 the OS assigns the port at bind time, so no other process can
        # take it between choosing and binding.
        self._server = ThreadedMotoServer(ip_address=HOST, port=self.port, verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]

    def _start_process(self) -> None:
        if not self.port:
            self.port = free_port()
        self._log = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(self.port)],
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,  # a file, not a pipe: an unread pipe would block the server
        )

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(
                    f"moto server exited with {self._process.returncode}: {self._log_tail()}"
                )
            if self._answers():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"moto server did not answer on {self.endpoint_url} within "
                    f"{START_TIMEOUT_SECONDS:.0f}s: {self._log_tail()}"
                )
            time.sleep(0.05)

    def _answers(self) -> bool:
        # /moto-api/ is not an AWS action, so it does not use up INITIAL_NO_AUTH_ACTION_COUNT.
        conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
        try:
            conn.request("GET", "/moto-api/")
            conn.getresponse().read()
            return True
        except OSError:
            return False
        finally:
            conn.close()

    def _log_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read()[-2000:].decode("utf-8", "replace").strip()

    def stop(self) -> None:
        """Stop the server. Safe to call twice."""
        if self.apis is not None:
            self.apis.stop()  # its seeded data and request log stay readable
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def client(self, service: str, region: str = "us-east-1") -> Any:
        """A boto3 client pointed at this server, with dummy keys."""
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=DUMMY_KEY,
            aws_secret_access_key=DUMMY_KEY,
        )

    def __enter__(self) -> EmbeddedAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        mode = "in_process" if self.in_process else "subprocess"
        return f"EmbeddedAws({mode}, port={self.port or None})"
