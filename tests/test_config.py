"""Tests for awscollector.config: every problem kind reports its code at the user's path."""

from __future__ import annotations

import copy
import os
import pickle
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from awscollector.config import (
    AuditEventsAll,
    Config,
    ConfigError,
    Problem,
    S3Persistence,
    ServiceConfig,
    SqsDeadLetter,
    load_config,
    parse_config,
    summary,
)

# The full example config: every block and service the config knows.
FULL_EXAMPLE = """\
globals:
  debug: false
  persistence:
    type: filesystem
    config: {directory_name: state}
  dead_letter:
    type: filesystem
    config: {directory_name: deadletter}
outputs:
  devo_1:
    type: devo_platform
    config:
      address: collector-us.devo.io
      port: 443
      type: SSL
      chain: certs/chain.crt
      cert: certs/domain.crt
      key: certs/domain.key
inputs:
  aws:
    id: "100001"
    enabled: true
    endpoint_url: null
    credentials:
      access_key: ${AWS_ACCESS_KEY_ID}
      access_secret: ${AWS_SECRET_ACCESS_KEY}
      base_assume_role: null
      target_assume_role: null
      assume_role_external_id: null
    regions: [us-east-1]
    services:
      non-cloudwatch-logs:
        types: [vpc_flow_logs, cloudfront_logs]
        sqs_queue_name: aws-logs
        readers: 2
      audit-events-all:
        types: [audits_s3]
        sqs_queue_name: cloudtrail-events
        auto_event_type: false
      cisco-umbrella:
        sqs_queue_name: umbrella-logs
      service-events-all:
        sqs_queue_name: service-events
        auto_event_type: false
      sqs-cloudwatch-consumer:
        sqs_queue_name: securityhub-events
      guardduty: {}
      metrics-all:
        namespaces: [AWS/EC2]
        period_seconds: 300
      cloudwatch-logs:
        log_group_prefixes: [/aws/lambda/]
"""

# Distinctive, so a leak anywhere is found by a plain substring search.
SECRET = "Zq9-SECRET-VALUE-must-never-leak-7xK"
ENV = {"AWS_ACCESS_KEY_ID": "AKIA" + SECRET, "AWS_SECRET_ACCESS_KEY": SECRET}
ROLE = "arn:aws:iam::123456789012:role/collector"
DELETE = object()

# A small valid config that the problem cases below break one way each.
BASE: dict[str, Any] = {
    "outputs": {
        "devo_1": {
            "type": "devo_platform",
            "config": {
                "address": "collector-us.devo.io",
                "port": 443,
                "chain": "certs/chain.crt",
                "cert": "certs/domain.crt",
                "key": "certs/domain.key",
            },
        }
    },
    "inputs": {
        "aws": {
            "id": "100001",
            "services": {
                "cisco-umbrella": {"sqs_queue_name": "umbrella-logs"},
                "guardduty": {},
            },
        }
    },
}


@pytest.fixture
def confdir(tmp_path: Path) -> Path:
    """A directory with the certificate files the configs name."""
    (tmp_path / "certs").mkdir()
    for name in ("chain.crt", "domain.crt", "domain.key"):
        (tmp_path / "certs" / name).write_text("-----BEGIN TEST-----\n")
    return tmp_path


def write(confdir: Path, data: dict | str) -> Path:
    path = confdir / "config.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def changed(changes: dict[str, Any]) -> dict:
    """BASE with dotted paths set to values (DELETE removes the key)."""
    data = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return data


def problems(confdir: Path, data: dict | str, environ: dict | None = None) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(confdir, data), environ or {})
    return caught.value.problems


def codes(found: list[Problem]) -> list[tuple[str, str]]:
    return [(p.code, p.path) for p in found]


# ---------------------------------------------------------------------------- valid configs


def test_contract_example_loads_with_resolved_cert_paths(confdir: Path) -> None:
    config = load_config(write(confdir, FULL_EXAMPLE), ENV)

    assert summary(config) == "config OK: 8 services, 1 regions"
    devo = config.outputs["devo_1"].config
    assert (devo.address, devo.port, devo.type) == ("collector-us.devo.io", 443, "SSL")
    assert devo.cert == str(confdir / "certs" / "domain.crt")
    assert all(os.path.isabs(p) for p in (devo.chain, devo.cert, devo.key))
    assert config.globals_.persistence.config.directory_name == "state"
    assert config.globals is config.globals_
    assert config.globals.dead_letter.config.directory_name == "deadletter"

    aws = config.inputs.aws
    assert aws.credentials.access_key.get_secret_value() == "AKIA" + SECRET
    assert aws.credentials.access_secret.get_secret_value() == SECRET
    assert list(aws.enabled_services()) == [
        "non-cloudwatch-logs", "audit-events-all", "cisco-umbrella", "service-events-all",
        "sqs-cloudwatch-consumer", "guardduty", "metrics-all", "cloudwatch-logs",
    ]
    services = aws.services
    assert all(isinstance(s, ServiceConfig) for s in services.values())
    ncl = services["non-cloudwatch-logs"]
    assert (ncl.name, ncl.sqs_queue_name, ncl.readers) == ("non-cloudwatch-logs", "aws-logs", 2)
    assert ncl.types == ["vpc_flow_logs", "cloudfront_logs"]
    assert ncl.auto_event_type is None and ncl.start_time is None  # not applicable: None
    assert services["cisco-umbrella"].readers == 1
    assert services["audit-events-all"].request_period_in_seconds == 60
    assert services["guardduty"].sqs_queue_name is None
    assert services["guardduty"].request_period_in_seconds == 60
    assert services["metrics-all"].period_seconds == 300
    assert services["cloudwatch-logs"].log_group_prefixes == ["/aws/lambda/"]
    assert aws.regions_for("guardduty") == ["us-east-1"]


def test_defaults_of_a_minimal_config(confdir: Path) -> None:
    config = load_config(write(confdir, BASE), {})

    assert config.globals_.debug is False
    assert config.globals_.persistence.type == "filesystem"
    assert config.globals_.dead_letter.type == "filesystem"
    aws = config.inputs.aws
    assert aws.enabled and aws.credentials is None and aws.endpoint_url is None
    assert aws.regions == ["us-east-1"]
    assert config.outputs["devo_1"].config.type == "SSL"


def test_service_regions_disabled_services_and_summary(confdir: Path) -> None:
    data = changed({
        "inputs.aws.regions": ["eu-west-1"],
        "inputs.aws.services.guardduty": {"regions": ["us-east-1", "us-gov-west-1"]},
        "inputs.aws.services.metrics-all": {"enabled": False},
    })
    config = load_config(write(confdir, data), {})

    aws = config.inputs.aws
    assert list(aws.enabled_services()) == ["cisco-umbrella", "guardduty"]
    assert aws.regions_for("cisco-umbrella") == ["eu-west-1"]
    assert aws.regions_for("guardduty") == ["us-east-1", "us-gov-west-1"]
    assert summary(config) == "config OK: 2 services, 3 regions"


def test_s3_persistence_sqs_dead_letter_and_tcp_output(confdir: Path) -> None:
    data = changed({
        "globals.persistence": {"type": "s3", "config": {"bucket": "b", "prefix": "p/"}},
        "globals.dead_letter": {"type": "sqs", "config": {"queue_url": "https://q/1/dl"}},
        "outputs.devo_1.config": {"address": "127.0.0.1", "port": 1514, "type": "TCP"},
    })
    config = load_config(write(confdir, data), {})

    persistence, dead_letter = config.globals_.persistence, config.globals_.dead_letter
    assert isinstance(persistence, S3Persistence)
    assert (persistence.config.bucket, persistence.config.prefix) == ("b", "p/")
    assert isinstance(dead_letter, SqsDeadLetter)
    assert dead_letter.config.queue_url == "https://q/1/dl"
    assert config.outputs["devo_1"].config.cert is None


def test_audit_apis_alone_needs_no_queue_and_start_time_is_utc(confdir: Path) -> None:
    data = changed({
        "inputs.aws.services.audit-events-all": {
            "types": ["audit_apis"], "start_time": "2024-05-01T10:00:00"},
    })
    service = load_config(write(confdir, data), {}).inputs.aws.services["audit-events-all"]

    assert isinstance(service, AuditEventsAll)
    assert service.sqs_queue_name is None and service.types == ["audit_apis"]
    assert service.start_time == datetime(2024, 5, 1, 10, tzinfo=UTC)


def test_env_substitution(confdir: Path) -> None:
    data = changed({
        "inputs.aws.endpoint_url": "https://${HOST}:4566",
        "outputs.devo_1.config.port": "${PORT}",
        "inputs.aws.services.cisco-umbrella.sqs_queue_name": "q-$${LITERAL}",
        "inputs.aws.credentials": {"access_key": "${KEY}", "access_secret": "${SECRET}"},
    })
    env = {"HOST": "localhost", "PORT": "6514", "KEY": "AKIA1", "SECRET": SECRET}
    config = load_config(write(confdir, data), env)

    assert config.inputs.aws.endpoint_url == "https://localhost:4566"
    assert config.outputs["devo_1"].config.port == 6514  # a string from the env, coerced
    assert config.inputs.aws.services["cisco-umbrella"].sqs_queue_name == "q-${LITERAL}"
    assert config.inputs.aws.credentials.access_secret.get_secret_value() == SECRET


def test_env_defaults_to_os_environ(confdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLLECTOR_TEST_ID", "4242")
    config = load_config(write(confdir, changed({"inputs.aws.id": "${COLLECTOR_TEST_ID}"})))
    assert config.inputs.aws.id == "4242"


def test_parse_config_and_pickling(confdir: Path) -> None:
    config = parse_config(changed({}), confdir, {})

    assert isinstance(config, Config)
    assert pickle.loads(pickle.dumps(config)) == config  # Beam ships it to workers
    err = ConfigError([Problem("CFG-005", "inputs", "required key is missing")])
    assert pickle.loads(pickle.dumps(err)).problems == err.problems


# ---------------------------------------------------------------------------- one problem each

SVC = "inputs.aws.services"

CASES = {
    "unknown top-level key": ({"globalz": {}}, "CFG-003", "globalz"),
    "unknown nested key": ({"outputs.devo_1.config.portt": 1}, "CFG-003",
                           "outputs.devo_1.config.portt"),
    "misplaced service key": ({f"{SVC}.guardduty.readers": 2}, "CFG-003",
                              f"{SVC}.guardduty.readers"),
    "misplaced sqs key": ({f"{SVC}.cisco-umbrella.start_time": "2024-01-01T00:00:00Z"},
                          "CFG-003", f"{SVC}.cisco-umbrella.start_time"),
    "key of the other store type": ({"globals.persistence": {"type": "filesystem", "config": {
        "directory_name": "s", "bucket": "b"}}}, "CFG-003", "globals.persistence.config.bucket"),
    "wrong type": ({f"{SVC}.cisco-umbrella.readers": "two"}, "CFG-004",
                   f"{SVC}.cisco-umbrella.readers"),
    "out of range": ({"outputs.devo_1.config.port": 70000}, "CFG-004",
                     "outputs.devo_1.config.port"),
    "readers below 1": ({f"{SVC}.cisco-umbrella.readers": 0}, "CFG-004",
                        f"{SVC}.cisco-umbrella.readers"),
    "bad region": ({"inputs.aws.regions": ["us-east1"]}, "CFG-004", "inputs.aws.regions.0"),
    "unknown store type": ({"globals.persistence": {"type": "nfs"}}, "CFG-004",
                           "globals.persistence.type"),
    "service not a mapping": ({f"{SVC}.guardduty": 5}, "CFG-004", f"{SVC}.guardduty"),
    "missing key": ({"inputs.aws.id": DELETE}, "CFG-005", "inputs.aws.id"),
    "missing cert for SSL": ({"outputs.devo_1.config.key": DELETE}, "CFG-005",
                             "outputs.devo_1.config.key"),
    "access key without secret": ({"inputs.aws.credentials": {"access_key": "AKIA1"}},
                                  "CFG-005", "inputs.aws.credentials.access_secret"),
    "unknown service name": ({f"{SVC}.guard-duty": {}}, "CFG-006", f"{SVC}.guard-duty"),
    "missing queue": ({f"{SVC}.cisco-umbrella": {}}, "CFG-007", f"{SVC}.cisco-umbrella"),
    "both queues": ({f"{SVC}.cisco-umbrella.sqs_queue_url": "https://sqs/1/q"}, "CFG-007",
                    f"{SVC}.cisco-umbrella"),
    "audits_s3 without queue": ({f"{SVC}.audit-events-all": {}}, "CFG-007",
                                f"{SVC}.audit-events-all"),
    "bad role ARN": ({"inputs.aws.credentials": {"base_assume_role": "arn:aws:iam::12:role/x"}},
                     "CFG-008", "inputs.aws.credentials.base_assume_role"),
    "external id without role": (
        {"inputs.aws.credentials": {"assume_role_external_id": "abc123"}}, "CFG-009",
        "inputs.aws.credentials.assume_role_external_id"),
    "unknown type": ({f"{SVC}.non-cloudwatch-logs": {"sqs_queue_name": "q", "types": ["waf"]}},
                     "CFG-011", f"{SVC}.non-cloudwatch-logs.types"),
    "no enabled service": ({f"{SVC}.cisco-umbrella.enabled": False,
                            f"{SVC}.guardduty.enabled": False}, "CFG-012", SVC),
    "no services at all": ({SVC: DELETE}, "CFG-012", SVC),
    "no output": ({"outputs": DELETE}, "CFG-012", "outputs"),
}


@pytest.mark.parametrize(("changes", "code", "path"), CASES.values(), ids=CASES.keys())
def test_problem(confdir: Path, changes: dict, code: str, path: str) -> None:
    assert codes(problems(confdir, changed(changes))) == [(code, path)]


def test_unknown_key_lists_the_allowed_keys(confdir: Path) -> None:
    [top] = problems(confdir, changed({"globalz": 1}))
    assert top.message == "unknown key; allowed keys: globals, outputs, inputs"
    [svc] = problems(confdir, changed({f"{SVC}.guardduty.readers": 2}))
    assert "allowed keys: enabled, regions, flatten, start_time, request_period_in_seconds" in (
        svc.message
    )


def test_unknown_service_and_type_list_the_valid_ones(confdir: Path) -> None:
    [service] = problems(confdir, changed({f"{SVC}.guard-duty": {}}))
    assert "valid services: non-cloudwatch-logs, audit-events-all," in service.message
    [kind] = problems(confdir, changed({f"{SVC}.audit-events-all": {"types": ["x"]}}))
    assert kind.message == "unknown type x; valid types: audits_s3, audit_apis"


def test_non_cloudwatch_logs_collects_every_type_of_what_aws_writes_to_s3(
        confdir: Path) -> None:
    from awscollector.pipelines.collector import plan_services, run_registry

    every = ["vpc_flow_logs", "cloudfront_logs", "elb_logs", "s3_access_logs", "waf_logs",
             "network_firewall_logs", "route53_resolver_logs", "config_logs",
             "firehose_cloudwatch_logs"]
    config = load_config(write(confdir, changed(
        {f"{SVC}.non-cloudwatch-logs": {"sqs_queue_name": "log-archive"}})), {})
    assert config.inputs.aws.services["non-cloudwatch-logs"].types == every  # the default
    [plan] = [p for p in plan_services(config, run_registry(config), warn=False)
              if p.name == "non-cloudwatch-logs"]
    formats = run_registry(config).of_types(every)
    assert {f.type for f in formats} == set(every)  # each type has a format to run
    assert [f.name for f in formats] == [
        "vpc_flow_logs_parquet", "vpc_flow_logs", "cloudfront_logs", "alb_access_logs",
        "nlb_access_logs", "classic_elb_access_logs", "s3_access_logs", "config_logs",
        "waf_logs", "network_firewall_alert", "network_firewall_flow",
        "route53_resolver_logs", "firehose_cloudwatch_logs"]  # in the order they are tried
    assert plan.queues[0].queue == "log-archive"
    picked = load_config(write(confdir, changed({f"{SVC}.non-cloudwatch-logs": {
        "sqs_queue_name": "q", "types": ["elb_logs", "config_logs", "waf_logs"]}})), {})
    assert picked.inputs.aws.services["non-cloudwatch-logs"].types == [
        "elb_logs", "config_logs", "waf_logs"]


def test_unreadable_cert(confdir: Path) -> None:
    (confdir / "certs" / "domain.crt").unlink()
    [problem] = problems(confdir, changed({}))
    assert str(problem) == (
        "CFG-010 outputs.devo_1.config.cert: cannot read certs/domain.crt: "
        "No such file or directory"
    )


def test_unset_env_var_is_reported_once(confdir: Path) -> None:
    data = changed({"outputs.devo_1.config.port": "${DEVO_PORT}",
                    "inputs.aws.endpoint_url": "http://${HOST}:4566"})
    found = problems(confdir, data, {"HOST": "h"})
    # Not also CFG-004 for the literal "${DEVO_PORT}" that could not become an int.
    assert codes(found) == [("CFG-002", "outputs.devo_1.config.port")]
    assert found[0].message == "environment variable DEVO_PORT is not set"


def test_yaml_syntax_error(confdir: Path) -> None:
    path = write(confdir, "inputs:\n  aws: [1, 2\noutputs: {}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    [problem] = caught.value.problems
    assert (problem.code, problem.path) == ("CFG-001", str(path))
    assert "line 3" in problem.message


@pytest.mark.parametrize(
    ("text", "message"),
    [("a: 1\na: 2\n", "duplicate key 'a'"), ("", "empty"), ("- 1\n", "mapping")],
    ids=["duplicate key", "empty file", "not a mapping"],
)
def test_other_unusable_files(confdir: Path, text: str, message: str) -> None:
    [problem] = problems(confdir, text)
    assert problem.code == "CFG-001" and message in problem.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yaml", {})
    assert str(caught.value) == f"CFG-001 {tmp_path / 'nope.yaml'}: cannot read: " + (
        "No such file or directory"
    )


def test_all_problems_reported_together_sorted_by_path(confdir: Path) -> None:
    (confdir / "certs" / "chain.crt").unlink()
    data = changed({
        "globals.debugg": True,
        "outputs.devo_1.config.port": "https",
        "inputs.aws.regions": ["mars-1"],
        "inputs.aws.credentials": {"assume_role_external_id": "abc", "access_key": "${KEY}"},
        f"{SVC}.cisco-umbrella": {"readers": "many"},  # two problems in one service
        f"{SVC}.guardduty.foo": 1,
        f"{SVC}.nope": {},
    })
    with pytest.raises(ConfigError) as caught:
        load_config(write(confdir, data), {})

    found = codes(caught.value.problems)
    assert found == [
        ("CFG-003", "globals.debugg"),
        ("CFG-002", "inputs.aws.credentials.access_key"),
        ("CFG-005", "inputs.aws.credentials.access_secret"),
        ("CFG-009", "inputs.aws.credentials.assume_role_external_id"),
        ("CFG-004", "inputs.aws.regions.0"),
        ("CFG-007", f"{SVC}.cisco-umbrella"),
        ("CFG-004", f"{SVC}.cisco-umbrella.readers"),
        ("CFG-003", f"{SVC}.guardduty.foo"),
        ("CFG-006", f"{SVC}.nope"),
        ("CFG-010", "outputs.devo_1.config.chain"),
        ("CFG-004", "outputs.devo_1.config.port"),
    ]
    assert found == sorted(found, key=lambda p: p[1])
    lines = str(caught.value).splitlines()
    assert len(lines) == len(found)
    assert lines[0] == (
        "CFG-003 globals.debugg: unknown key; allowed keys: debug, stats_interval_seconds, "
        "persistence, dead_letter"
    )


# ---------------------------------------------------------------------------- secrets


def test_secrets_never_shown(confdir: Path) -> None:
    data = changed({"inputs.aws.credentials": {
        "access_key": "AKIA" + SECRET, "access_secret": SECRET,
        "base_assume_role": ROLE, "assume_role_external_id": "ext-" + SECRET,
    }})
    config = load_config(write(confdir, data), {})

    assert config.inputs.aws.credentials.access_secret.get_secret_value() == SECRET
    masked = config.masked_dict()
    assert masked["inputs"]["aws"]["credentials"] == {
        "access_key": "***", "access_secret": "***", "base_assume_role": ROLE,
        "target_assume_role": None, "assume_role_external_id": "***",
    }
    assert "globals" in masked and "__service__" not in str(masked)
    for text in (repr(config), str(config), str(masked), str(config.model_dump())):
        assert SECRET not in text


@pytest.mark.parametrize(
    "credentials",
    [
        {"access_key": [SECRET], "access_secret": {"v": SECRET}},  # wrong types
        {"access_key": SECRET, "access_secret": SECRET, "assume_role_external_id": SECRET},
        {"access_key": SECRET},  # the pair is incomplete
        {"access_key": SECRET, "access_secret": SECRET, "base_assume_role": ROLE,
         "assume_role_external_id": SECRET + " with spaces!"},  # bad external id
        {"access_key": SECRET, "access_secret": SECRET, "acces_key": SECRET},  # typo
    ],
    ids=["wrong type", "external id without role", "half a pair", "bad external id", "typo"],
)
def test_secrets_never_in_problems(confdir: Path, credentials: dict) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(confdir, changed({"inputs.aws.credentials": credentials})), {})

    err = caught.value
    assert err.problems
    assert all(p.path.startswith("inputs.aws.credentials") for p in err.problems)
    assert SECRET not in str(err) and SECRET not in repr(err)
    assert SECRET not in "".join(p.message for p in err.problems)
    assert err.__context__ is None and err.__cause__ is None  # no pydantic error behind it


def test_external_id_too_short(confdir: Path) -> None:
    data = changed({"inputs.aws.credentials": {"target_assume_role": ROLE,
                                               "assume_role_external_id": "x"}})
    assert codes(problems(confdir, data)) == [
        ("CFG-004", "inputs.aws.credentials.assume_role_external_id")
    ]


# ---------------------------------------------------------------------------- devo_http output

HTTP_OUTPUT = {"type": "devo_http", "config": {
    "endpoint": "https://http-us.devo.io/", "domain": "mydomain", "token": "${DEVO_HTTP_TOKEN}",
    "host": "aws-collector"}}


def test_devo_http_output_next_to_a_syslog_one(confdir: Path) -> None:
    data = changed({"outputs.devo_http_1": HTTP_OUTPUT})
    data["outputs"]["devo_http_1"]["config"]["chain"] = "certs/chain.crt"
    config = load_config(write(confdir, data), {"DEVO_HTTP_TOKEN": SECRET})

    assert [o.type for o in config.outputs.values()] == ["devo_platform", "devo_http"]
    http = config.outputs["devo_http_1"].config
    assert (http.endpoint, http.domain, http.host) == (
        "https://http-us.devo.io", "mydomain", "aws-collector")
    assert http.token.get_secret_value() == SECRET
    assert http.chain == str(confdir / "certs" / "chain.crt")
    assert config.masked_dict()["outputs"]["devo_http_1"]["config"]["token"] == "***"
    for text in (repr(config), str(config), str(config.masked_dict()),
                 str(config.model_dump())):
        assert SECRET not in text
    assert pickle.loads(pickle.dumps(config)) == config


@pytest.mark.parametrize("key, value, code", [
    ("endpoint", "http://http-us.devo.io", "CFG-004"),  # http only to loopback
    ("endpoint", "ftp://http-us.devo.io", "CFG-004"),
    ("endpoint", f"https://http-us.devo.io/stream/d/token!{SECRET}/h/t", "CFG-004"),
    ("endpoint", "https://http-us.devo.io:port", "CFG-004"),
    ("endpoint", DELETE, "CFG-005"),
    ("token", "with " + SECRET, "CFG-004"),
    ("token", "", "CFG-004"),
    ("token", DELETE, "CFG-005"),
    ("domain", DELETE, "CFG-005"),
    ("chain", "certs/missing.crt", "CFG-010"),
    ("port", 443, "CFG-003"),  # a syslog key
], ids=lambda v: v if isinstance(v, str) and len(v) < 30 else None)
def test_devo_http_output_problems_never_show_the_token(confdir: Path, key, value,
                                                        code) -> None:
    data = changed({"outputs": {"h": copy.deepcopy(HTTP_OUTPUT)}})
    data["outputs"]["h"]["config"]["token"] = SECRET
    if value is DELETE:
        del data["outputs"]["h"]["config"][key]
    else:
        data["outputs"]["h"]["config"][key] = value
    with pytest.raises(ConfigError) as caught:
        load_config(write(confdir, data), {})
    assert codes(caught.value.problems) == [(code, f"outputs.h.config.{key}")]
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)


def test_http_endpoint_on_loopback_and_output_type_inferred_when_missing(
        confdir: Path) -> None:
    data = changed({"outputs": {"h": copy.deepcopy(HTTP_OUTPUT)}})
    data["outputs"]["h"]["config"]["endpoint"] = "http://127.0.0.1:8080"
    config = load_config(write(confdir, data), {"DEVO_HTTP_TOKEN": "t"})
    assert config.outputs["h"].config.endpoint == "http://127.0.0.1:8080"

    del data["outputs"]["h"]["type"]
    assert codes(problems(confdir, data, {"DEVO_HTTP_TOKEN": "t"})) == [
        ("CFG-005", "outputs.h.type")]
    data["outputs"]["h"]["type"] = "kafka"
    found = problems(confdir, data, {"DEVO_HTTP_TOKEN": "t"})
    assert codes(found) == [("CFG-004", "outputs.h.type")]
    assert "'devo_platform', 'devo_http'" in found[0].message
