"""Stopping a collector job on Flink through Flink's REST API.

On Flink the readers run in task managers that no signal of the submitting
process reaches, and Beam's job server (2.62) does not pass a cancel on to a
running streaming job. So the submitting ``aws-collector run`` stops its job
itself: with a savepoint (``POST /jobs/<id>/stop``), which, like every
checkpoint, completes only after the bundles before it were delivered, and then
runs their finalizers, which delete the SQS messages. Only if that fails or
takes too long is the job cancelled; the messages it held come back after the
visibility timeout.

    flink = FlinkRest("127.0.0.1:8081")
    job = flink.wait_for_job("aws-collector-1234", timeout=120)
    flink.stop(job)
"""

from __future__ import annotations

import base64
import json
import logging
import time
import urllib.error
import urllib.request
from typing import Any

log = logging.getLogger(__name__)

ENDED = frozenset({"FINISHED", "FAILED", "CANCELED"})


class FlinkRest:
    """A Flink cluster's REST endpoint (``--flink_master``)."""

    def __init__(self, address: str, timeout: float = 10.0) -> None:
        self.base = address if address.startswith(("http://", "https://")) \
            else f"http://{address}"
        self.base = self.base.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.base}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            text = response.read()
        return json.loads(text) if text else {}

    def jobs(self) -> list[dict]:
        """Every job the cluster knows: id ("jid"), "name", "state"."""
        return self._call("GET", "/jobs/overview")["jobs"]

    def job_state(self, jid: str) -> str:
        return self._call("GET", f"/jobs/{jid}")["state"]

    def wait_for_job(self, name: str, timeout: float) -> str | None:
        """The id of the job called ``name`` once Flink has it, or None after timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                for job in self.jobs():
                    if job["name"] == name and job["state"] not in ENDED:
                        return job["jid"]
            except (OSError, ValueError, KeyError):
                pass  # not up yet, or restarting
            time.sleep(1.0)
        return None

    def wait_until_ended(self, jid: str, timeout: float) -> str | None:
        """The job's final state, or None if it still runs after timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                state = self.job_state(jid)
                if state in ENDED:
                    return state
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.5)
        return None

    def stop(self, jid: str, timeout: float = 120.0) -> str:
        """Stop the job with a savepoint; cancel it if that cannot be done.

        Returns how it ended: "stopped" (savepoint taken, finalizers ran) or
        "cancelled".
        """
        try:
            trigger = self._call("POST", f"/jobs/{jid}/stop", {"drain": False})["request-id"]
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                status = self._call("GET", f"/jobs/{jid}/savepoints/{trigger}")
                if status["status"]["id"] == "COMPLETED":
                    failure = status.get("operation", {}).get("failure-cause")
                    if failure:
                        raise RuntimeError(" ".join(str(failure.get("stack-trace", failure))
                                                    .split())[:300])
                    if self.wait_until_ended(jid, timeout) is not None:
                        return "stopped"
                    break
                time.sleep(0.5)
            log.warning("RUN-006 Flink job %s: stop with a savepoint did not end it in %.0fs;"
                        " cancelling it", jid, timeout)
        except (OSError, ValueError, KeyError, RuntimeError, urllib.error.HTTPError) as e:
            log.warning("RUN-006 Flink job %s: stop with a savepoint failed (%s); cancelling "
                        "it: messages it received and did not delete come back after their "
                        "visibility timeout", jid, " ".join(str(e).split())[:300])
        self.cancel(jid, timeout)
        return "cancelled"

    def cancel(self, jid: str, timeout: float = 60.0) -> None:
        try:
            self._call("PATCH", f"/jobs/{jid}?mode=cancel")
        except (OSError, ValueError) as e:
            log.warning("RUN-006 Flink job %s: cancel failed: %s", jid, e)
        self.wait_until_ended(jid, timeout)

    def user_counters(self, jid: str) -> dict[tuple[str, str], int]:
        """The job's Beam user counters, (namespace, name) -> value.

        Beam's Flink runner keeps them in the accumulator ``__metricscontainers``:
        monitoring infos whose payload is the value as a varint.
        """
        counters: dict[tuple[str, str], int] = {}
        try:
            found = self._call("GET", f"/jobs/{jid}/accumulators")
        except (OSError, ValueError) as e:
            log.warning("RUN-006 the counters of Flink job %s are not available: %s", jid, e)
            return counters
        for accumulator in found.get("user-task-accumulators", []):
            if accumulator.get("name") != "__metricscontainers":
                continue
            for info in json.loads(accumulator["value"])["metrics"].get("attempted", []):
                if info.get("urn") != "beam:metric:user:sum_int64:v1":
                    continue
                labels = info.get("labels", {})
                key = (labels.get("NAMESPACE", ""), labels.get("NAME", ""))
                counters[key] = counters.get(key, 0) + _varint(base64.b64decode(info["payload"]))
        return counters


def _varint(data: bytes) -> int:
    value = shift = 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return value
