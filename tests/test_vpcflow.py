"""VPC Flow Logs text format: headers, default lines, custom JSON, bad lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from awscollector.errors import CollectorError
from awscollector.transforms.vpcflow import (
    ALL_FIELDS,
    DEFAULT_FIELDS,
    INTEGER_FIELDS,
    VpcFlowFormat,
    parse_header,
    to_messages,
)

SAMPLES = Path(__file__).parent / "samples"


def sample(name: str) -> tuple[bytes, list[bytes]]:
    header, *lines = (SAMPLES / name).read_bytes().splitlines()
    return header, lines


# --- headers -------------------------------------------------------------------------


def test_default_header():
    header, _ = sample("vpcflow_default_v2.log")
    fmt = parse_header(header, "s3://b/k")
    assert fmt == VpcFlowFormat(DEFAULT_FIELDS, True)
    assert len(DEFAULT_FIELDS) == 14


def test_custom_header_keeps_file_order():
    header, _ = sample("vpcflow_custom_v5.log")
    fmt = parse_header(header + b"\r\n")
    assert not fmt.is_default
    assert fmt.fields[:4] == ("version", "vpc-id", "subnet-id", "instance-id")
    assert fmt.fields[-1] == "traffic-path" and len(fmt.fields) == 29


def test_default_fields_in_another_order_are_custom():
    fmt = parse_header(b" ".join(f.encode() for f in reversed(DEFAULT_FIELDS)))
    assert not fmt.is_default


def test_every_documented_field_is_known():
    for field in (
        "tcp-flags", "pkt-srcaddr", "sublocation-id", "pkt-dst-aws-service", "traffic-path",
        "ecs-cluster-arn", "ecs-second-container-id", "ecs-task-id", "reject-reason",
    ):  # fmt: skip
        assert field in ALL_FIELDS
    assert len(ALL_FIELDS) == len(set(ALL_FIELDS))
    assert parse_header(" ".join(ALL_FIELDS).encode()).fields == ALL_FIELDS
    assert INTEGER_FIELDS <= set(ALL_FIELDS)


def test_unknown_field_is_src_003():
    with pytest.raises(CollectorError) as err:
        parse_header(b"version srcaddr xyz dstaddr", "s3://logs/a.log.gz")
    assert err.value.code == "SRC-003"
    assert err.value.message == (
        "s3://logs/a.log.gz: not a VPC Flow Logs header: unknown field 'xyz'"
    )


def test_a_record_line_is_not_a_header():
    _, lines = sample("vpcflow_default_v2.log")
    with pytest.raises(CollectorError, match="SRC-003 .*unknown field '2'"):
        parse_header(lines[0], "k")


@pytest.mark.parametrize("line", [b"", b"   \r", b"version version", b"\xff\xfe"])
def test_empty_duplicate_or_binary_header_is_src_003(line):
    with pytest.raises(CollectorError, match="SRC-003"):
        parse_header(line)


# --- default format --------------------------------------------------------------------


def test_default_lines_are_kept_unchanged():
    header, lines = sample("vpcflow_default_v2.log")
    messages, bad = to_messages(parse_header(header), lines)
    assert messages == lines
    assert bad == []
    statuses = {m.rsplit(b" ", 1)[1] for m in messages}
    assert statuses == {b"OK", b"NODATA", b"SKIPDATA"}
    assert any(b" REJECT " in m for m in messages)


def test_default_bad_lines_are_returned_not_raised():
    header, lines = sample("vpcflow_default_v2.log")
    broken = [lines[0], b"2 111122223333 eni-1 cut short", lines[1] + b" extra", b"junk"]
    messages, bad = to_messages(parse_header(header), broken)
    assert messages == [lines[0]]
    assert bad == broken[1:]


def test_repeated_header_is_skipped():
    header, lines = sample("vpcflow_default_v2.log")
    messages, bad = to_messages(parse_header(header), [lines[0], header, lines[1]])
    assert (messages, bad) == ([lines[0], lines[1]], [])
    header, lines = sample("vpcflow_custom_v5.log")
    messages, bad = to_messages(parse_header(header), [header, lines[0]])
    assert len(messages) == 1 and bad == []


def test_empty_input():
    assert to_messages(parse_header(b"version srcport"), []) == ([], [])


# --- custom format -----------------------------------------------------------------------


def test_custom_lines_become_json_with_types_and_nulls():
    header, lines = sample("vpcflow_custom_v5.log")
    fmt = parse_header(header)
    messages, bad = to_messages(fmt, lines)
    assert bad == []
    assert len(messages) == len(lines)
    records = [json.loads(m) for m in messages]
    for message, record in zip(messages, records, strict=True):
        assert list(record) == list(fmt.fields)  # AWS names, header order
        assert message == json.dumps(record, separators=(",", ":")).encode()  # compact
    first = records[0]
    assert first["version"] == 5 and first["srcport"] == 40112 and first["bytes"] == 73421
    assert first["tcp-flags"] == 19 and first["traffic-path"] == 8
    assert first["account-id"] == "111122223333"  # an id, not a number
    assert first["srcaddr"] == "10.20.1.15" and first["action"] == "ACCEPT"
    assert first["pkt-dst-aws-service"] == "S3" and first["pkt-src-aws-service"] is None
    assert first["sublocation-type"] is None
    assert records[1]["traffic-path"] is None  # ingress: "-"
    assert records[3]["instance-id"] is None and records[3]["sublocation-type"] == "outpost"
    assert records[4]["srcaddr"] == "2001:db8:1234:1a00::15"
    nodata = records[5]
    assert nodata["log-status"] == "NODATA" and nodata["start"] == 1715680260
    assert nodata["srcaddr"] is None and nodata["packets"] is None and nodata["action"] is None


def test_custom_bad_lines():
    fmt = parse_header(b"version srcport action")
    lines = [b"5 443 ACCEPT", b"5 443", b"5 https ACCEPT", b"5 -1 ACCEPT", b"5 443 ACCEPT x"]
    messages, bad = to_messages(fmt, lines)
    assert messages == [b'{"version":5,"srcport":443,"action":"ACCEPT"}']
    assert sorted(bad) == sorted(lines[1:])


def test_custom_values_that_need_json_escaping():
    fmt = parse_header(b"version ecs-service-name srcport")
    lines = [
        b'5 say"hi"\\ 1',
        "5 caf\u00e9 2".encode(),
        b"5 tab\there 3",
        b"5 \xff\xfe 4",
        b"5 plain 5",
    ]
    messages, bad = to_messages(fmt, lines)
    assert [json.loads(m) for m in messages] == [
        {"version": 5, "ecs-service-name": 'say"hi"\\', "srcport": 1},
        {"version": 5, "ecs-service-name": "caf\u00e9", "srcport": 2},
        {"version": 5, "ecs-service-name": "tab\there", "srcport": 3},
        {"version": 5, "ecs-service-name": "plain", "srcport": 5},
    ]
    assert bad == [b"5 \xff\xfe 4"]  # not UTF-8: dead-lettered, not mangled


def test_leading_zeros_are_normalised_and_zero_kept():
    fmt = parse_header(b"srcport tcp-flags dstport account-id")
    messages, bad = to_messages(fmt, [b"0 0 0 012345678901", b"007 0 10 012345678901"])
    assert bad == []
    assert [json.loads(m) for m in messages] == [
        {"srcport": 0, "tcp-flags": 0, "dstport": 0, "account-id": "012345678901"},
        {"srcport": 7, "tcp-flags": 0, "dstport": 10, "account-id": "012345678901"},
    ]
    assert all(json.loads(m) for m in messages)


def test_single_integer_field_and_no_integer_field():
    messages, bad = to_messages(parse_header(b"srcport"), [b"443", b"-", b"x"])
    assert (messages, bad) == ([b'{"srcport":443}', b'{"srcport":null}'], [b"x"])
    messages, bad = to_messages(parse_header(b"vpc-id action"), [b"vpc-1 -", b"- ACCEPT"])
    assert messages == [b'{"vpc-id":"vpc-1","action":null}', b'{"vpc-id":null,"action":"ACCEPT"}']


def test_empty_values_from_double_spaces():
    fmt = parse_header(b"version vpc-id srcport")
    messages, bad = to_messages(fmt, [b"5  443", b"5 vpc-1 ", b"5 vpc-1 443"])
    assert messages == [
        b'{"version":5,"vpc-id":"","srcport":443}',
        b'{"version":5,"vpc-id":"vpc-1","srcport":443}',
    ]
    assert bad == [b"5 vpc-1 "]  # empty integer


def test_many_dash_patterns_in_one_batch():
    fmt = parse_header(b"version srcport dstport action")
    lines = [b"5 1 2 ACCEPT", b"5 - 2 ACCEPT", b"5 1 - -", b"- - - -", b"5 1 2 ACCEPT"] * 3
    messages, bad = to_messages(fmt, lines)
    assert bad == []
    assert [json.loads(m) for m in messages][:4] == [
        {"version": 5, "srcport": 1, "dstport": 2, "action": "ACCEPT"},
        {"version": 5, "srcport": None, "dstport": 2, "action": "ACCEPT"},
        {"version": 5, "srcport": 1, "dstport": None, "action": None},
        {"version": None, "srcport": None, "dstport": None, "action": None},
    ]
