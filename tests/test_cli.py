"""The `aws-collector` command as a user runs it: a child process, real sockets.

`python -m awscollector ...` runs against the embedded AWS (moto's server on
loopback) and the embedded TLS Devo relay of conftest.py. What is checked is
what a user or a supervisor sees: exit codes, stdout/stderr, what the relay
received and what is left in the SQS queue.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from awscollector.embedded.aws import EmbeddedAws, free_port
from awscollector.embedded.seed import vpc_key
from tests.vpc_helpers import (
    ENV,
    queue_depth,
    queue_keys,
    raw_config,
    run_cli,
    seed_objects,
    setup_queue,
    write_config,
)

TABLE = "cloud.aws.vpc.flow"
SECRET = "SuperSecret123XYZ"
SECRET_KEY_ID = "TESTKEYIDNOTREAL00042"  # not AKIA-shaped: no real-key lookalike
SUMMARY_TOTAL = re.compile(r"^total: (\d+) delivered, (\d+) dead-lettered$", re.MULTILINE)
PROBLEM_LINE = re.compile(r"^(CFG-\d{3}) (\S+): (.+)$")


# ---------------------------------------------------------------------------- helpers


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, **ENV, **extra}


def _cli(*args: str, timeout: float = 120, cwd: Path | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "awscollector", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env=env or _env())


class Collector:
    """`aws-collector run` as a background process; its output goes to files."""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.out_path, self.err_path = workdir / "run.out", workdir / "run.err"
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "awscollector", "run", *args],
                stdout=out, stderr=err, env=_env())

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `condition` until it holds; fail at once if the collector has exited."""
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.alive(), (f"the collector exited ({self.proc.returncode}) while "
                                  f"waiting for {what}:\n{self.stderr}")
            assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{self.stderr}"
            time.sleep(0.1)

    def signal_and_wait(self, signum: int, timeout: float) -> float:
        """Send `signum`; returns how long the process took to exit."""
        start = time.monotonic()
        self.proc.send_signal(signum)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"no exit {timeout}s after signal {signum}:\n{self.stderr}")
        return time.monotonic() - start

    def stop(self) -> None:
        """Kill it if it still runs (test cleanup)."""
        if self.alive():
            self.proc.kill()
            self.proc.wait()


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _summary_total(stdout: str) -> tuple[int, int]:
    found = SUMMARY_TOTAL.findall(stdout)
    assert len(found) == 1, f"no single summary total in:\n{stdout}"
    return int(found[0][0]), int(found[0][1])


def _summary_rows(stdout: str) -> list[list[str]]:
    """The rows of the summary table (after the header and its dashes)."""
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["service", "region"])
    assert set(lines[header + 1].replace(" ", "")) == {"-"}
    rows = []
    for line in lines[header + 2:]:
        if line.startswith("total:"):
            return rows
        rows.append(line.split())
    raise AssertionError(f"no total line after the summary table:\n{stdout}")


def _all_lines(objects: dict[int, list[str]]) -> list[str]:
    return [line for lines in objects.values() for line in lines]


def _not_visible(aws, url: str) -> int:
    attrs = aws.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessagesNotVisible"])


def _write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _secret_config(aws, relay, pki, queue: str, workdir: Path, debug: bool = True) -> dict:
    """A valid config whose credentials are literal values, with debug logs on."""
    raw = raw_config(aws, relay, pki, queue, workdir)
    raw["globals"]["debug"] = debug
    raw["inputs"]["aws"]["credentials"] = {"access_key": SECRET_KEY_ID, "access_secret": SECRET}
    return raw


def _assert_no_secret(*outputs: str) -> None:
    for text in outputs:
        assert SECRET not in text
        assert SECRET_KEY_ID not in text


def _failure_line(stderr: str, code: str) -> str:
    """The coded line a failed run ends with: the last line of stderr, printed once."""
    lines = stderr.splitlines()
    assert lines and lines[-1].startswith(f"{code} "), stderr[-3000:]
    assert sum(line.startswith(f"{code} ") for line in lines) == 1, stderr[-3000:]
    return lines[-1]


_DEBUG = re.compile(r" DEBUG awscollector\.io\.\w+: (.*)$", re.MULTILINE)
_RECEIVED = re.compile(r"^sqs ReceiveMessage (\S+) \((us-east-1), reader 0\): (\d+) messages in ")
_DELETED = re.compile(r"^sqs DeleteMessageBatch (\S+) \((us-east-1), reader 0\): "
                      r"(\d+) deleted, (\d+) failed, 0 released$")  # none: no stop
_READ = re.compile(r"^s3 GetObject s3://([^/]+)/(\S+): (\d+) bytes, (\d+) uncompressed, "
                   r"[\d.]+s$")


_SENT = re.compile(r"^sent to (\S+): table (\S+), (\d+) events, (\d+) bytes, attempt (\d+)$")
_CONFIRMED = re.compile(r"^confirmed by (\S+) \(([^)]+)\), attempt (\d+): (\d+) events: (.+)$")


def _debug_lines(stderr: str) -> dict[str, list[tuple[str, ...]]]:
    """The SQS, S3 and Devo debug lines of a run's log, parsed."""
    found: dict[str, list[tuple[str, ...]]] = {"received": [], "deleted": [], "read": [],
                                               "sent": [], "confirmed": []}
    patterns = (("received", _RECEIVED), ("deleted", _DELETED), ("read", _READ),
                ("sent", _SENT), ("confirmed", _CONFIRMED))
    for text in _DEBUG.findall(stderr):
        for kind, pattern in patterns:
            match = pattern.match(text)
            if match:
                found[kind].append(match.groups())
    return found


# Validate never touches AWS or Devo: these point at nothing.
NOWHERE_AWS = SimpleNamespace(endpoint_url="http://127.0.0.1:9")
NOWHERE_RELAY = SimpleNamespace(port=9)


# ---------------------------------------------------------------------------- validate


def test_validate_a_good_config_prints_the_summary_and_exits_0(pki, tmp_path):
    path = write_config(NOWHERE_AWS, NOWHERE_RELAY, pki, "some-queue", tmp_path)
    done = _cli("validate", "--config", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "config OK: 1 services, 1 regions\n"
    assert done.stderr == ""


def test_validate_counts_enabled_services_and_distinct_regions(pki, tmp_path):
    raw = raw_config(NOWHERE_AWS, NOWHERE_RELAY, pki, "q", tmp_path,
                     regions=("us-east-1", "eu-west-1"))
    raw["inputs"]["aws"]["services"].update({
        "guardduty": {"regions": ["ap-southeast-2"]},
        "cisco-umbrella": {"sqs_queue_name": "u", "regions": ["eu-west-1"]},
        "metrics-all": {"enabled": False, "regions": ["sa-east-1"]},
    })
    done = _cli("validate", "--config", str(_write_yaml(tmp_path / "c.yaml", raw)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "config OK: 3 services, 3 regions"


def test_validate_reports_every_problem_one_line_each_and_exits_2(pki, tmp_path):
    raw = _secret_config(NOWHERE_AWS, NOWHERE_RELAY, pki, "q", tmp_path)
    raw["globals"]["debug"] = "maybe"
    aws = raw["inputs"]["aws"]
    aws["regions"] = ["us-east-1", "nowhere"]
    aws["credentials"] = {"acess_secret": SECRET,  # a typo: the key is unknown
                          "access_key": SECRET_KEY_ID,
                          "assume_role_external_id": SECRET + " !"}
    aws["services"]["non-cloudwatch-logs"]["readerz"] = 2
    aws["services"]["made-up"] = {}
    raw["outputs"]["devo_1"]["config"]["port"] = 99999
    del raw["outputs"]["devo_1"]["config"]["key"]
    done = _cli("validate", "--config", str(_write_yaml(tmp_path / "bad.yaml", raw)))

    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    problems = []
    for line in lines:
        match = PROBLEM_LINE.match(line)
        assert match, f"not a `<CODE> <path>: <message>` line: {line!r}"
        problems.append(match.groups()[:2])
    assert set(problems) == {
        ("CFG-004", "globals.debug"),
        ("CFG-004", "inputs.aws.regions.1"),
        ("CFG-003", "inputs.aws.credentials.acess_secret"),
        ("CFG-005", "inputs.aws.credentials.access_secret"),  # required with access_key
        ("CFG-004", "inputs.aws.credentials.assume_role_external_id"),
        ("CFG-009", "inputs.aws.credentials.assume_role_external_id"),
        ("CFG-003", "inputs.aws.services.non-cloudwatch-logs.readerz"),
        ("CFG-006", "inputs.aws.services.made-up"),
        ("CFG-004", "outputs.devo_1.config.port"),
        ("CFG-005", "outputs.devo_1.config.key"),
    }
    assert len(problems) == len(set(problems))  # each problem once
    _assert_no_secret(done.stdout, done.stderr)


def test_validate_unreadable_or_broken_files_exit_2(tmp_path):
    missing = _cli("validate", "--config", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2
    assert missing.stderr.startswith(f"CFG-001 {tmp_path / 'nope.yaml'}: cannot read")
    broken = tmp_path / "broken.yaml"
    broken.write_text(f"inputs:\n  aws: {{credentials: {{access_secret: {SECRET}\n")
    done = _cli("validate", "--config", str(broken))
    assert done.returncode == 2
    assert re.match(r"CFG-001 \S+: invalid YAML", done.stderr)
    _assert_no_secret(done.stdout, done.stderr)


def test_validate_unset_environment_variable_is_cfg_002(pki, tmp_path):
    raw = raw_config(NOWHERE_AWS, NOWHERE_RELAY, pki, "q", tmp_path)
    env = {k: v for k, v in _env().items() if k != "AWS_SECRET_ACCESS_KEY"}
    done = _cli("validate", "--config", str(_write_yaml(tmp_path / "c.yaml", raw)), env=env)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "CFG-002 inputs.aws.credentials.access_secret: "
        "environment variable AWS_SECRET_ACCESS_KEY is not set"]


def test_secret_from_the_environment_is_not_printed(pki, tmp_path):
    raw = raw_config(NOWHERE_AWS, NOWHERE_RELAY, pki, "q", tmp_path)
    raw["globals"]["debug"] = True
    # The secret comes from ${AWS_SECRET_ACCESS_KEY}; a second problem makes validate fail.
    raw["inputs"]["aws"]["credentials"]["assume_role_external_id"] = "${AWS_SECRET_ACCESS_KEY}"
    done = _cli("validate", "--config", str(_write_yaml(tmp_path / "c.yaml", raw)),
                env=_env(AWS_SECRET_ACCESS_KEY=SECRET, AWS_ACCESS_KEY_ID=SECRET_KEY_ID))
    assert done.returncode == 2
    assert "CFG-009 inputs.aws.credentials.assume_role_external_id" in done.stderr
    _assert_no_secret(done.stdout, done.stderr)


# ---------------------------------------------------------------------------- usage


@pytest.mark.parametrize("args", [
    (),
    ("frobnicate",),
    ("run",),  # --config is required
    ("validate",),
    ("validate", "--config", "x.yaml", "--runner=DirectRunner"),  # Beam options: run only
    ("demo", "--bogus"),
    ("run", "--config", "x.yaml", "--idle-seconds", "soon"),
])
def test_usage_errors_exit_2_with_usage_on_stderr(args):
    done = _cli(*args)
    assert done.returncode == 2
    assert "usage: aws-collector" in done.stderr
    assert done.stdout == ""


def test_help_exits_0():
    done = _cli("run", "--help")
    assert done.returncode == 0
    assert "--until-idle" in done.stdout and "--sqs-visibility-timeout" in done.stdout
    assert "--processes" in done.stdout and "--metrics-port" in done.stdout
    assert "--process-index" not in done.stdout  # the children's own options stay hidden


# ---------------------------------------------------------------------------- run


def test_run_with_a_bad_config_exits_2_and_touches_nothing(embedded_aws, relay, pki, tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    seed_objects(embedded_aws, bucket, n=1, m=10)
    raw = _secret_config(embedded_aws, relay, pki, queue, tmp_path)
    raw["inputs"]["aws"]["services"]["non-cloudwatch-logs"]["types"] = ["vpc_flow_logz"]
    done = run_cli(_write_yaml(tmp_path / "c.yaml", raw))
    assert done.returncode == 2
    problems = [line for line in done.stderr.splitlines() if line.startswith("CFG-")]
    assert problems == [
        "CFG-011 inputs.aws.services.non-cloudwatch-logs.types: unknown type vpc_flow_logz; "
        "valid types: vpc_flow_logs, cloudfront_logs, elb_logs, s3_access_logs, waf_logs, "
        "network_firewall_logs, route53_resolver_logs, config_logs, firehose_cloudwatch_logs"]
    assert done.stdout == ""
    _assert_no_secret(done.stdout, done.stderr)
    assert relay.connections() == 0
    assert queue_depth(embedded_aws, url) == 2  # the s3:TestEvent and the object's


def test_run_with_no_enabled_service_exits_2(embedded_aws, relay, pki, tmp_path):
    raw = raw_config(embedded_aws, relay, pki, "q", tmp_path)
    raw["inputs"]["aws"]["services"] = {"guardduty": {"enabled": False}}
    done = run_cli(_write_yaml(tmp_path / "c.yaml", raw), timeout=60)
    assert done.returncode == 2, done.stderr
    assert "CFG-012" in done.stderr
    assert relay.connections() == 0


def test_run_passes_beam_options_through(embedded_aws, relay, pki, tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    objects = seed_objects(embedded_aws, bucket, n=3, m=50)
    path = write_config(embedded_aws, relay, pki, queue, tmp_path)
    done = run_cli(path, "--runner=DirectRunner", "--direct_num_workers=4", timeout=120)
    assert done.returncode == 0, done.stderr
    # --direct_num_workers reached Beam's options: the collector saw it and overrode it.
    assert "RUN-003 --direct_num_workers=4 ignored" in done.stderr
    assert sorted(relay.events(TABLE)) == sorted(_all_lines(objects))
    assert _summary_total(done.stdout) == (150, 0)
    assert _summary_rows(done.stdout) == [
        ["non-cloudwatch-logs", "us-east-1", TABLE, "150", "0"]]
    assert queue_depth(embedded_aws, url) == 0


@pytest.mark.parametrize("option", ["--runner=NoSuchRunner", "--no_such_beam_option=1"])
def test_run_with_an_unknown_or_invalid_beam_option_is_a_usage_error(pki, tmp_path, option):
    path = write_config(NOWHERE_AWS, NOWHERE_RELAY, pki, "q", tmp_path)
    done = run_cli(path, option, timeout=60)
    assert "Traceback" not in done.stderr
    assert "RUN-004" in done.stderr
    assert done.returncode == 2


def test_idle_seconds_without_until_idle_is_a_usage_error(pki, tmp_path):
    path = write_config(NOWHERE_AWS, NOWHERE_RELAY, pki, "q", tmp_path)
    done = _cli("run", "--config", str(path), "--idle-seconds", "3")
    assert done.returncode == 2
    assert "--idle-seconds needs --until-idle" in done.stderr


def test_run_with_debug_logs_never_prints_a_secret(embedded_aws, relay, pki, tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    objects = seed_objects(embedded_aws, bucket, n=2, m=20)
    path = _write_yaml(tmp_path / "c.yaml", _secret_config(embedded_aws, relay, pki, queue,
                                                          tmp_path))
    checked = _cli("validate", "--config", str(path))
    assert checked.returncode == 0, checked.stderr
    _assert_no_secret(checked.stdout, checked.stderr)

    done = run_cli(path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(relay.events(TABLE)) == sorted(_all_lines(objects))
    _assert_no_secret(done.stdout, done.stderr)
    # debug: each receive, delete and object read is logged.
    logged = _debug_lines(done.stderr)
    assert {(u.endswith("/" + queue), r) for u, r, _ in logged["received"]} == {
        (True, "us-east-1")}
    assert sum(int(n) for _, _, n in logged["received"]) == 3  # 2 objects, the s3:TestEvent
    assert sum(int(n) for _, _, n, _ in logged["deleted"]) == 3
    assert all(u.endswith("/" + queue) and f == "0" for u, _, _, f in logged["deleted"])
    assert len(logged["read"]) == 2
    for got_bucket, _, compressed, uncompressed in logged["read"]:
        assert got_bucket == bucket and 0 < int(compressed) < int(uncompressed)
    # ... and each flush to Devo, when sent and when confirmed, and how.
    assert {(o, t, a) for o, t, _, _, a in logged["sent"]} == {("devo_1", TABLE, "1")}
    assert sum(int(n) for _, _, n, _, _ in logged["sent"]) == 40
    assert {(o, how) for o, how, _, _, _ in logged["confirmed"]} == {("devo_1", "close_notify")}
    assert sum(int(n) for _, _, _, n, _ in logged["confirmed"]) == 40

    # The run fails (the relay is down): still no secret, in any output.
    seed_objects(embedded_aws, bucket, n=1, m=20, first=2)
    relay.stop()
    failed = run_cli(path, timeout=120)
    assert failed.returncode == 1, failed.stderr
    _failure_line(failed.stderr, "OUT-001")
    assert "Traceback (most recent call last)" in failed.stderr  # debug: the log has it
    assert queue_depth(embedded_aws, url) == 1
    _assert_no_secret(failed.stdout, failed.stderr)


def test_a_failed_run_prints_its_coded_line_and_no_traceback(embedded_aws, pki, tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    objects = seed_objects(embedded_aws, bucket, n=1, m=20)
    dead_relay = SimpleNamespace(port=free_port())  # nothing listens there
    raw = _secret_config(embedded_aws, dead_relay, pki, queue, tmp_path, debug=False)
    failed = run_cli(_write_yaml(tmp_path / "c.yaml", raw), timeout=120)

    assert failed.returncode == 1, failed.stderr
    line = _failure_line(failed.stderr, "OUT-001")
    assert f"127.0.0.1:{dead_relay.port}" in line and "Connection refused" in line
    assert "Traceback" not in failed.stderr
    assert " DEBUG " not in failed.stderr  # no debug lines without debug: true
    assert failed.stdout == ""
    _assert_no_secret(failed.stdout, failed.stderr)
    # Not delivered, so not deleted.
    assert queue_keys(embedded_aws, url) == {vpc_key("us-east-1", n) for n in objects}


def test_a_wrong_secret_is_aws_001(relay, pki, tmp_path):
    """moto enforcing IAM refuses a wrong secret as AWS does: SignatureDoesNotMatch."""
    with EmbeddedAws(in_process=False, env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"}) as aws:
        iam = aws.client("iam")
        iam.create_user(UserName="collector")
        key_id = iam.create_access_key(UserName="collector")["AccessKey"]["AccessKeyId"]
        aws.client("sqs").create_queue(QueueName="logs")
        raw = _secret_config(aws, relay, pki, "logs", tmp_path, debug=False)
        raw["inputs"]["aws"]["credentials"]["access_key"] = key_id
        failed = run_cli(_write_yaml(tmp_path / "c.yaml", raw), timeout=120)

    assert failed.returncode == 1, failed.stderr
    line = _failure_line(failed.stderr, "AWS-001")
    assert line.startswith("AWS-001 sqs GetQueueUrl logs in us-east-1 failed: "
                           "SignatureDoesNotMatch: The request signature we calculated")
    assert "Traceback" not in failed.stderr
    _assert_no_secret(failed.stdout, failed.stderr)
    assert relay.connections() == 0


# ---------------------------------------------------------------------------- demo


# The demo's good records per (service, region, table) (awscollector/demo.py seeds them).
DEMO_DELIVERED = {
    ("non-cloudwatch-logs", "eu-west-1", TABLE): 750,
    ("non-cloudwatch-logs", "ap-southeast-2", TABLE): 750,
    ("non-cloudwatch-logs", "us-east-1", "cloud.aws.cloudfront.web_1"): 250,
    # The rest of the log-archive bucket (demo.seed_more_aws_logs): a file of each, and
    # Config's history (6 items) and snapshot (8); a Firehose object's 8 application
    # log events (its 10 VPC Flow Logs lines are in the VPC row below).
    ("non-cloudwatch-logs", "us-east-1", "web.aws.alb.access"): 20,
    ("non-cloudwatch-logs", "us-east-1", "web.aws.nlb.access"): 10,
    ("non-cloudwatch-logs", "us-east-1", "web.aws.elb.access"): 10,
    ("non-cloudwatch-logs", "us-east-1", "web.aws.s3.access"): 15,
    ("non-cloudwatch-logs", "us-east-1", "cloud.aws.waf.logs"): 12,
    ("non-cloudwatch-logs", "us-east-1", "cloud.aws.firewall.alert"): 8,
    ("non-cloudwatch-logs", "us-east-1", "cloud.aws.firewall.netflow"): 12,
    ("non-cloudwatch-logs", "us-east-1", "dns.aws.route53"): 15,
    ("non-cloudwatch-logs", "us-east-1", "cloud.aws.configlogs.events"): 14,
    ("non-cloudwatch-logs", "us-east-1", "cloud.aws.cloudwatch.logs"): 8,
    # 200 + 6 Insights from S3, 180 from the event history (LookupEvents)
    ("audit-events-all", "us-east-1", "cloud.aws.cloudtrail.events"): 386,
    ("cisco-umbrella", "us-east-1", "sig.cisco.umbrella.dns"): 120,
    ("cisco-umbrella", "us-east-1", "sig.cisco.umbrella.ip"): 80,
    ("cisco-umbrella", "us-east-1", "sig.cisco.umbrella.proxy"): 80,
    ("cisco-umbrella", "us-east-1", "sig.cisco.umbrella.firewall"): 60,
    ("custom-s3.app", "us-east-1", "my.app.login"): 80,
    ("custom-s3.app", "us-east-1", "my.app.request"): 80,
    ("custom-s3.app", "us-east-1", "my.app.logout"): 80,
    # EventBridge events: EC2 state changes in two regions; a Security Hub import of 5
    # findings and a GuardDuty finding reach both event services (both rules match).
    ("service-events-all", "us-east-1", "cloud.aws.cloudwatch.ec2"): 8,
    ("service-events-all", "eu-west-1", "cloud.aws.cloudwatch.ec2"): 4,
    ("service-events-all", "us-east-1", "cloud.aws.cloudwatch.securityhub"): 1,
    ("service-events-all", "us-east-1", "cloud.aws.cloudwatch.guardduty"): 1,
    ("sqs-cloudwatch-consumer", "us-east-1", "cloud.aws.securityhub.findings"): 5,
    ("sqs-cloudwatch-consumer", "us-east-1", "cloud.aws.guardduty.findings"): 1,
    # The API pullers: a detector's findings; 3 log groups; 3 metrics x 12 periods x 2
    # statistics.
    ("guardduty", "us-east-1", "cloud.aws.guardduty.findings"): 60,
    ("cloudwatch-logs", "us-east-1", "cloud.aws.cloudwatch.logs"): 950,
    ("metrics-all", "us-east-1", "cloud.aws.cloudwatch.metrics"): 72,
}
# VPC Flow Logs of the shared queue's region: 750 text, 200 Parquet, 200 Transit
# Gateway records and 10 lines in CloudWatch Logs through Firehose, and the first of the
# truncated object's 2000 lines (not all).
DEMO_VPC_FIRST_REGION = 1160
# audit-events-all reads the shared queue in every region; only the first has CloudTrail.
DEMO_EMPTY = {("audit-events-all", "eu-west-1", "cloud.aws.cloudtrail.events"),
              ("audit-events-all", "ap-southeast-2", "cloud.aws.cloudtrail.events")}


def check_demo_run(done: subprocess.CompletedProcess, out: Path) -> None:
    """What every run of the demo must show, whatever its output: a summary row per
    source and table with every good record seeded, each table's ``<out>/<table>.log``
    holding what its rows delivered, the truncated object as the one dead letter, the
    digest file skipped, and a valid config."""
    assert done.returncode == 0, done.stdout + done.stderr
    assert len([line for line in done.stdout.splitlines() if line.startswith("seeded ")]) == 17
    rows = _summary_rows(done.stdout)
    got = {(row[0], row[1], row[2]): int(row[3]) for row in rows}
    assert len(got) == len(rows)  # one row per (service, region, table)
    vpc = got.pop(("non-cloudwatch-logs", "us-east-1", TABLE))
    assert DEMO_VPC_FIRST_REGION < vpc < DEMO_VPC_FIRST_REGION + 2000
    assert {key for key, n in got.items() if n == 0} == DEMO_EMPTY
    assert {key: n for key, n in got.items() if n} == DEMO_DELIVERED
    delivered, dead = _summary_total(done.stdout)
    assert delivered == sum(int(row[3]) for row in rows)
    assert dead == sum(int(row[4]) for row in rows) == 1  # the truncated object, on purpose
    per_table: dict[str, int] = {}
    for row in rows:
        per_table[row[2]] = per_table.get(row[2], 0) + int(row[3])
    assert sorted(p.name for p in out.glob("*.log")) == sorted(f"{t}.log" for t in per_table)
    for table, n in per_table.items():
        assert len((out / f"{table}.log").read_text().splitlines()) == n, table
    assert sorted(p.name for p in (out / "deadletter").iterdir()) == ["non-cloudwatch-logs.jsonl"]
    [entry] = (out / "deadletter" / "non-cloudwatch-logs.jsonl").read_text().splitlines()
    assert vpc_key("us-east-1", 99) in entry
    # The digest file is skipped: not sent (206 CloudTrail events), not dead-lettered.
    assert any("skipped s3://" in line and "/CloudTrail-Digest/" in line
               for line in done.stderr.splitlines())
    assert any("skipped s3://" in line and "/Config/ConfigWritabilityCheckFile" in line
               for line in done.stderr.splitlines())
    # The config it wrote is a valid one (its secrets are ${...} references).
    check = _cli("validate", "--config", str(out / "collector.yaml"),
                 env=_env(DEVO_HTTP_TOKEN="set-by-the-test"))
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "config OK: 9 services, 3 regions"


def test_demo_prints_the_summary_and_writes_what_the_relay_received(tmp_path):
    out = tmp_path / "out"
    done = _cli("demo", "--out", str(out), timeout=120, cwd=tmp_path)
    check_demo_run(done, out)
    delivered, _ = _summary_total(done.stdout)
    assert f"the relay received {delivered} events: {out}/<table>.log" in done.stdout


# As a production install (no `demo` extra) runs it: moto, Flask and the embedded
# AWS cannot be imported (None in sys.modules makes both `import` and find_spec fail).
WITHOUT_DEMO_EXTRA = ("import runpy, sys\n"
                      "for name in ('moto', 'flask', 'awscollector.embedded'):\n"
                      "    sys.modules[name] = None\n"
                      "runpy.run_module('awscollector', run_name='__main__', alter_sys=True)\n")


def _cli_without_demo_extra(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_DEMO_EXTRA, *args],
                          capture_output=True, text=True, timeout=120, env=_env())


def test_demo_without_the_demo_extra_exits_2_saying_what_to_install(tmp_path):
    out = tmp_path / "out"
    done = _cli_without_demo_extra("demo", "--out", str(out))
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("aws-collector demo needs the embedded AWS (moto)")
    assert line.endswith("pip install 'awscollector[demo]'")
    assert done.stdout == ""
    assert not out.exists()  # nothing started


def test_validate_and_iam_policy_run_without_the_demo_extra(pki, tmp_path):
    path = write_config(NOWHERE_AWS, NOWHERE_RELAY, pki, "some-queue", tmp_path)
    done = _cli_without_demo_extra("validate", "--config", str(path))
    assert (done.returncode, done.stdout, done.stderr) == (
        0, "config OK: 1 services, 1 regions\n", "")
    policy = _cli_without_demo_extra("iam-policy", "--config", str(path))
    assert policy.returncode == 0, policy.stderr
    assert "sqs:ReceiveMessage" in policy.stdout


# ---------------------------------------------------------------------------- streaming


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_streaming_run_collects_until_stopped_by_a_signal(embedded_aws, relay, pki, tmp_path,
                                                          signum):
    bucket, queue, url = setup_queue(embedded_aws)
    path = write_config(embedded_aws, relay, pki, queue, tmp_path)
    run = Collector(tmp_path, "--config", str(path))  # no --until-idle: runs until stopped
    try:
        # Polling: the bucket's s3:TestEvent is consumed and deleted.
        run.wait_until(lambda: queue_depth(embedded_aws, url) == 0, 60, "the s3:TestEvent")
        objects = seed_objects(embedded_aws, bucket, n=3, m=200)
        run.wait_until(lambda: relay.total() >= 600, 60, "the first 600 events")
        objects.update(seed_objects(embedded_aws, bucket, n=4, m=150, first=3))
        run.wait_until(lambda: relay.total() >= 1200, 60, "the next 600 events")
        assert run.alive()
        took = run.signal_and_wait(signum, timeout=30)
    finally:
        run.stop()

    assert run.proc.returncode == 0, run.stderr
    assert took < 20, f"took {took:.1f}s to stop"
    expected = _all_lines(objects)
    assert sorted(relay.events(TABLE)) == sorted(expected)
    assert _summary_total(run.stdout) == (len(expected), 0)
    assert queue_depth(embedded_aws, url) == 0


def test_signal_with_data_in_flight_delivers_it_and_leaves_the_rest(embedded_aws, relay, pki,
                                                                   tmp_path):
    """SIGINT mid-collection: what was received is delivered and deleted, the rest stays."""
    bucket, queue, url = setup_queue(embedded_aws)
    objects = seed_objects(embedded_aws, bucket, n=30, m=3000)
    path = write_config(embedded_aws, relay, pki, queue, tmp_path)
    run = Collector(tmp_path, "--config", str(path))
    try:
        run.wait_until(lambda: relay.total() > 0, 90, "the first events")
        took = run.signal_and_wait(signal.SIGINT, timeout=60)
    finally:
        run.stop()
    assert run.proc.returncode == 0, run.stderr
    assert took < 45, f"took {took:.1f}s to stop"
    received = relay.events(TABLE)
    delivered, _ = _summary_total(run.stdout)
    assert delivered == len(received)
    complete = {obj for obj, lines in objects.items() if set(lines) <= set(received)}
    # Nothing half-delivered: every object received was delivered whole.
    assert {obj for obj, lines in objects.items() if set(lines) & set(received)} == complete
    # Its messages are deleted; the others are still there (visible at once).
    assert queue_depth(embedded_aws, url) == len(objects) - len(complete)
    assert _not_visible(embedded_aws, url) == 0

    done = run_cli(path)
    assert done.returncode == 0, done.stderr
    assert sorted(relay.events(TABLE)) == sorted(_all_lines(objects))  # each line once
    assert queue_depth(embedded_aws, url) == 0


# ---------------------------------------------------------------------------- crash


def test_kill_9_mid_run_loses_nothing(embedded_aws, relay, pki, tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    objects = seed_objects(embedded_aws, bucket, n=40, m=4000)
    expected = _all_lines(objects)
    path = write_config(embedded_aws, relay, pki, queue, tmp_path)
    run = Collector(tmp_path, "--config", str(path), "--until-idle", "--idle-seconds", "2",
                    "--sqs-visibility-timeout", "5")
    try:
        run.wait_until(lambda: relay.total() > 0, 120, "the first events")
        assert run.alive()
        run.proc.kill()  # SIGKILL: no handler, no cleanup
        run.proc.wait(timeout=10)
    finally:
        run.stop()
    at_kill = relay.total()
    assert 0 < at_kill < len(expected), "the run was not killed mid-way"
    assert queue_depth(embedded_aws, url) > 0

    # The messages in flight were not released: they come back after their timeout.
    _wait_for(lambda: _not_visible(embedded_aws, url) == 0, 30, "the messages to reappear")
    done = run_cli(path)
    assert done.returncode == 0, done.stderr

    received = relay.events(TABLE)
    missing = set(expected) - set(received)
    assert not missing, f"{len(missing)} lines lost"
    assert queue_depth(embedded_aws, url) == 0
    duplicates = len(received) - len(set(received))
    # Events of the killed connection may end with a line cut short; nothing else.
    unexpected = set(received) - set(expected)
    assert len(unexpected) <= 1, sorted(unexpected)[:3]
    print(f"\nkill -9 after {at_kill} of {len(expected)} events; second run: "
          f"{_summary_total(done.stdout)[0]} delivered; {duplicates} duplicates, "
          f"{len(unexpected)} cut lines")


def test_validate_has_no_warning_when_every_service_is_available(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({
        "outputs": {"d": {"type": "devo_platform",
                          "config": {"address": "127.0.0.1", "port": 1, "type": "TCP"}}},
        "inputs": {"aws": {"id": "1", "services": {
            "non-cloudwatch-logs": {"sqs_queue_name": "q"}, "guardduty": {}}}}}))
    done = _cli("validate", "--config", str(path))
    assert done.returncode == 0
    assert done.stdout == "config OK: 2 services, 1 regions\n"
    assert done.stderr == ""  # guardduty is an API puller now, not skipped (RUN-002)
