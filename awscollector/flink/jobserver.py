"""The Beam Flink job server, resolved from Maven Central and cached.

Beam's FlinkRunner submits a pipeline through a job server: a Java program that
translates it for Flink. Beam would download a shaded job-server jar, but none is
published that fits this project (no ``beam-runners-flink-1.19-job-server`` at
all, and of the runner itself only 2.62.0 resolves with its dependencies). So
the collector resolves ``pom.xml`` (next to this file) with Maven into a cache,
once, and makes a jar that holds only a manifest naming that classpath: Beam's
``--flink_job_server_jar`` takes it as it would take the shaded one.

Needs ``java`` and ``mvn`` on PATH the first time. The cache is
``$AWS_COLLECTOR_FLINK_CACHE`` or ``~/.cache/aws-collector/flink``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from awscollector.errors import CollectorError

log = logging.getLogger(__name__)

POM = Path(__file__).with_name("pom.xml")
MAIN_CLASS = "org.apache.beam.runners.flink.FlinkJobServerDriver"


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "aws-collector" / "flink"
    return Path(os.environ.get("AWS_COLLECTOR_FLINK_CACHE", default)).expanduser()


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """One resolution at a time, even from two processes starting together."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def job_server_home() -> Path:
    """<cache>/beam-job-server-<hash of pom.xml>/lib: the job server's classpath."""
    home = cache_dir() / f"beam-job-server-{hashlib.sha256(POM.read_bytes()).hexdigest()[:12]}"
    with locked(cache_dir() / ".lock"):
        if (home / "lib").is_dir():
            return home
        if shutil.which("mvn") is None or shutil.which("java") is None:
            raise CollectorError("RUN-005", "the Flink runner needs java and mvn on PATH to "
                                            "fetch its job server once (or pass --job_endpoint "
                                            "of a running Beam Flink job server)")
        log.info("fetching the Beam Flink job server with Maven into %s (once)", home)
        with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
            mvn = subprocess.run(["mvn", "-q", "-B", "-f", str(POM),
                                  "dependency:copy-dependencies",
                                  f"-DoutputDirectory={tmp}/job-server/lib"],
                                 capture_output=True, text=True)
            if mvn.returncode:  # -q still prints colour codes when all is well
                tail = " ".join((mvn.stdout + mvn.stderr).split())[-500:]
                raise CollectorError("RUN-005", f"mvn could not fetch the Beam Flink job "
                                                f"server ({mvn.returncode}): {tail}")
            (Path(tmp) / "job-server").rename(home)
    return home


def job_server_classpath() -> str:
    return f"{job_server_home()}/lib/*"


def job_server_jar() -> Path:
    """A jar for ``--flink_job_server_jar``: a manifest whose Class-Path names the
    cached jars (relative to it), so nothing is copied."""
    home = job_server_home()
    jar = home / "beam-flink-job-server.jar"
    if jar.exists():
        return jar
    jars = sorted((home / "lib").glob("*.jar"))
    manifest = "".join(_manifest_line(k, v) for k, v in (
        ("Manifest-Version", "1.0"),
        ("Main-Class", MAIN_CLASS),
        ("Class-Path", " ".join(os.path.relpath(j, home) for j in jars)))) + "\r\n"
    tmp = jar.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w") as z:
        z.writestr("META-INF/MANIFEST.MF", manifest)
    tmp.rename(jar)
    return jar


def _manifest_line(key: str, value: str) -> str:
    """Manifest lines are at most 72 bytes; a continuation line starts with a space."""
    line = f"{key}: {value}"
    parts = [line[:72]] + [" " + line[i:i + 71] for i in range(72, len(line), 71)]
    return "\r\n".join(parts) + "\r\n"
