"""The container image, built and run for real.

`image/build.sh` (what `make image` runs) builds the image with buildah from a
Debian base made here; the image is then run with `buildah run` (chroot
isolation, the host's loopback) against the embedded AWS and relay of this test:
config and certificates mounted read-only, the state directory as the volume.
What the collector writes there (checkpoints, dead letters) is owned by the
image's own non-root user, which only a process running as that user can do.

Slow (about two minutes, most of it pip inside the build); needs root, as CI has.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from awscollector.embedded.config import embedded_config
from awscollector.embedded.seed import vpc_key
from awscollector.embedded.seed_apis import put_log_group
from awscollector.pipelines.processes import usable_cores
from tests.vpc_helpers import ENV, put_object, queue_depth, setup_queue, tagged_lines, unique

ROOT = Path(__file__).resolve().parent.parent
TAG = "localhost/aws-collector:test"
COLLECTOR_UID = 10001  # the Dockerfile's `collector` user
BUILDAH_ENV = {**os.environ, "STORAGE_DRIVER": "vfs", "BUILDAH_ISOLATION": "chroot"}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0 and shutil.which("buildah") is None,
                       reason="building an image needs root (or buildah set up rootless)"),
]


def _buildah(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["buildah", *args], capture_output=True, text=True, env=BUILDAH_ENV,
                          timeout=timeout)


@pytest.fixture(scope="module")
def image() -> str:
    if os.environ.get("AWS_COLLECTOR_TEST_IMAGE_BUILT"):  # iterating on the test itself
        return TAG
    built = subprocess.run([str(ROOT / "image" / "build.sh"), TAG], capture_output=True,
                           text=True, timeout=1200)
    assert built.returncode == 0, built.stderr[-3000:]
    assert built.stdout.split()[0] == TAG, built.stdout  # "<tag> <size>"
    return TAG


@pytest.fixture
def container(image: str):
    made = _buildah("from", "--quiet", image)
    assert made.returncode == 0, made.stderr
    name = made.stdout.strip()
    try:
        yield name
    finally:
        _buildah("rm", name)


def _run_in(container: str, mounts: list[str], *command: str, timeout: float = 300
            ) -> subprocess.CompletedProcess:
    args = ["run"]
    for mount in mounts:
        args += ["--volume", mount]
    for name, value in ENV.items():
        args += ["--env", f"{name}={value}"]
    return _buildah(*args, container, "--", *command, timeout=timeout)


def _container_config(aws, relay, pki, queue: str, log_prefix: str, start_ms: int) -> dict:
    """The config as the container sees it: certificates under /etc/aws-collector,
    state and dead letters relative, so in the working directory, the volume."""
    raw = embedded_config(aws.endpoint_url, relay.port, pki, Path("/unused"), queue,
                          services={
                              "non-cloudwatch-logs": {"types": ["vpc_flow_logs"],
                                                      "sqs_queue_name": queue},
                              "cloudwatch-logs": {"log_group_prefixes": [log_prefix],
                                                  "start_time": _iso(start_ms),
                                                  "lag_seconds": 0}})
    raw["globals"]["persistence"]["config"]["directory_name"] = "state"
    raw["globals"]["dead_letter"]["config"]["directory_name"] = "deadletter"
    raw["outputs"]["devo_1"]["config"].update(chain="/etc/aws-collector/certs/chain.crt",
                                              cert="/etc/aws-collector/certs/domain.crt",
                                              key="/etc/aws-collector/certs/domain.key")
    return raw


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def test_the_image_collects_as_a_non_root_user_into_its_volume(container, embedded_aws, relay,
                                                               pki, tmp_path):
    # Seed: 3 VPC Flow Logs objects, one object that is not a flow log, one log group.
    bucket, queue, url = setup_queue(embedded_aws)
    lines = []
    for n in range(3):
        lines += tagged_lines(n, 400)
        put_object(embedded_aws, bucket, vpc_key("us-east-1", n), lines[-400:])
    bad_key = vpc_key("us-east-1", 99)
    embedded_aws.client("s3").put_object(Bucket=bucket, Key=bad_key,
                                         Body=b"this is not a flow log\nnor is this\n")
    log_prefix = f"/{unique('app')}/"
    now_ms = int(time.time() * 1000)
    messages = put_log_group(embedded_aws.client("logs"), log_prefix + "api", 300,
                             now_ms - 3_600_000, now_ms - 60_000)

    # The operator's side: config and certificates (the key readable by the image's
    # user only), and an empty volume directory the image's user owns.
    etc, volume = tmp_path / "etc", tmp_path / "volume"
    (etc / "certs").mkdir(parents=True)
    for source, name in ((pki.ca_cert, "chain.crt"), (pki.client_cert, "domain.crt"),
                         (pki.client_key, "domain.key")):
        shutil.copy(source, etc / "certs" / name)
    os.chown(etc / "certs" / "domain.key", COLLECTOR_UID, -1)
    os.chmod(etc / "certs" / "domain.key", 0o600)
    config = _container_config(embedded_aws, relay, pki, queue, log_prefix, now_ms - 7_200_000)
    (etc / "collector.yaml").write_text(yaml.safe_dump(config))
    volume.mkdir()
    os.chown(volume, COLLECTOR_UID, COLLECTOR_UID)
    mounts = [f"{etc}:/etc/aws-collector:ro", f"{volume}:/var/lib/aws-collector"]

    checked = _run_in(container, mounts, "aws-collector", "validate", "--config",
                      "/etc/aws-collector/collector.yaml")
    assert checked.returncode == 0, checked.stderr
    assert "config OK: 2 services" in checked.stdout
    policy = _run_in(container, mounts, "aws-collector", "iam-policy", "--config",
                     "/etc/aws-collector/collector.yaml")
    assert policy.returncode == 0, policy.stderr
    assert json.loads(policy.stdout)["Statement"]

    ran = _run_in(container, mounts, "aws-collector", "run", "--config",
                  "/etc/aws-collector/collector.yaml", "--until-idle", "--idle-seconds", "3")

    assert ran.returncode == 0, ran.stderr[-3000:]
    cores = usable_cores()  # the container's: no CPU limit here
    if cores > 1:  # the default: a collector process per core, one summary
        assert f"started {cores} collector processes" in ran.stderr, ran.stderr[-3000:]
        assert ran.stdout.count("Devo table") == 1
    assert sorted(relay.events("cloud.aws.vpc.flow")) == sorted(lines)
    delivered_logs = [json.loads(e)["message"] for e in relay.events("cloud.aws.cloudwatch.logs")]
    assert sorted(delivered_logs) == sorted(messages)
    assert queue_depth(embedded_aws, url) == 0

    # What the run wrote into the volume, as the image's user (not root, not the host's).
    checkpoints = [p for p in (volume / "state").rglob("*") if p.is_file()]
    assert checkpoints, "no API checkpoint in the volume"
    dead = volume / "deadletter" / "non-cloudwatch-logs.jsonl"
    entries = [json.loads(line) for line in dead.read_text().splitlines()]
    assert entries and all(bad_key in json.dumps(e["source"]) for e in entries), entries
    for path in [*checkpoints, dead]:
        assert path.stat().st_uid == COLLECTOR_UID, path


def test_the_image_holds_no_test_machinery(container):
    found = _run_in(container, [], "python3", "-c",
                    "import importlib.util as u; print([m for m in ('moto', 'flask', 'pytest')"
                    " if u.find_spec(m)])")
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "[]"
    demo = _run_in(container, [], "aws-collector", "demo")
    assert demo.returncode == 2
    assert "pip install 'awscollector[demo]'" in demo.stderr


def test_the_compose_example_mounts_what_the_image_expects():
    service = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"][
        "aws-collector"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    workdir = [line.split()[1] for line in dockerfile.splitlines()
               if line.startswith("WORKDIR")][-1]
    mounts = {m.split(":")[1]: m.split(":")[2:] for m in service["volumes"]}
    assert mounts == {"/etc/aws-collector": ["ro"], workdir: []}
    config = service["command"][service["command"].index("--config") + 1]
    assert config.startswith("/etc/aws-collector/")
    assert service["restart"] in ("always", "unless-stopped")
    assert int(service["stop_grace_period"].rstrip("s")) >= 30
