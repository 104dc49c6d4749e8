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
    TGW_FIELDS,
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


# --- default format: integer fields ----------------------------------------------------


def test_default_lines_with_a_non_integer_in_an_integer_field_are_bad():
    header, lines = sample("vpcflow_default_v2.log")
    fields = lines[0].split(b" ")
    broken = []
    for at in (0, 5, 6, 7, 8, 9, 10, 11):  # version, srcport ... end
        for value in (b"x", b"-1", b"4-4", b"", b"1.5", b"\xff"):
            broken.append(b" ".join(fields[:at] + [value] + fields[at + 1:]))
    nodata = next(line for line in lines if line.endswith(b"NODATA"))
    messages, bad = to_messages(parse_header(header), [lines[0], *broken, nodata, header])
    assert messages == [lines[0], nodata]  # "-" is fine; the repeated header is skipped
    assert bad == broken


def test_default_lines_keep_any_text_in_the_text_fields():
    header, lines = sample("vpcflow_default_v2.log")
    odd = b"2 - eni-x 10.0.0.1 fe80::1 1 2 6 3 4 5 6 WHATEVER OK\r"
    messages, bad = to_messages(parse_header(header), [odd, lines[0]])
    assert (messages, bad) == ([odd, lines[0]], [])


# --- every field of versions 3 to 8 ------------------------------------------------------


def test_custom_format_with_every_field_of_versions_3_to_8():
    header, lines = sample("vpcflow_custom_v8_all.log")
    fmt = parse_header(header)
    assert fmt.fields == ALL_FIELDS[:ALL_FIELDS.index("reject-reason") + 1]
    messages, bad = to_messages(fmt, lines)
    assert bad == []
    records = [json.loads(m) for m in messages]
    assert [list(r) for r in records] == [list(fmt.fields)] * len(lines)
    first = records[0]
    assert first["version"] == 8 and first["tcp-flags"] == 19 and first["traffic-path"] == 8
    assert first["ecs-cluster-arn"] == "arn:aws:ecs:us-east-1:111122223333:cluster/payments"
    assert first["ecs-task-id"] == "0f1e2d3c4b5a49788a7b6c5d4e3f2a1b"
    assert first["ecs-second-container-id"] is None and first["reject-reason"] is None
    assert records[2]["action"] == "REJECT" and records[2]["reject-reason"] == "BPA"
    assert records[3]["pkt-srcaddr"] == "10.20.1.15" != records[3]["srcaddr"]
    assert records[3]["sublocation-type"] == "outpost"
    assert records[4]["type"] == "IPv6" and records[4]["pkt-dst-aws-service"] == "ROUTE53_RESOLVER"
    assert [r["log-status"] for r in records[5:7]] == ["NODATA", "SKIPDATA"]
    assert records[7]["type"] == "EFA" and records[7]["srcport"] == 0


# --- Transit Gateway flow logs ----------------------------------------------------------------


def test_transit_gateway_default_format_is_json_with_integer_drop_counters():
    header, lines = sample("tgwflow_default_v6.log")
    fmt = parse_header(header)
    assert fmt.fields == TGW_FIELDS and not fmt.is_default
    messages, bad = to_messages(fmt, lines)
    assert bad == []
    records = [json.loads(m) for m in messages]
    assert [list(r) for r in records] == [list(TGW_FIELDS)] * len(lines)
    first = records[0]
    assert first["resource-type"] == "TransitGateway" and first["tgw-id"] == "tgw-0a1b2c3d4e5f60718"
    assert first["tgw-src-vpc-account-id"] == "111122223333"  # ids stay strings
    assert first["tgw-pair-attachment-id"] == "tgw-attach-0fedcba9876543210"
    assert first["packets"] == 42 and first["tcp-flags"] == 27
    lost = ("packets-lost-no-route", "packets-lost-blackhole", "packets-lost-mtu-exceeded",
            "packets-lost-ttl-expired")
    assert [[r[f] for f in lost] for r in records[:7]] == [
        [0, 0, 0, 0], [0, 0, 0, 0], [5, 0, 0, 0], [0, 3, 0, 0], [0, 0, 7, 0], [0, 0, 0, 2],
        [None] * 4]
    assert records[2]["tgw-dst-vpc-id"] is None and records[2]["tgw-pair-attachment-id"] is None
    assert records[4]["type"] == "IPv6" and records[6]["log-status"] == "NODATA"


def test_transit_gateway_custom_format_and_a_bad_counter():
    header, lines = sample("tgwflow_custom.log")
    fmt = parse_header(header)
    broken = lines[3].replace(b" 0 3 0 0", b" 0 three 0 0")
    messages, bad = to_messages(fmt, lines + [broken])
    assert bad == [broken]
    assert len(messages) == len(lines)
    assert json.loads(messages[3])["packets-lost-blackhole"] == 3


def test_transit_gateway_fields_are_documented_integers():
    assert {"packets-lost-no-route", "packets-lost-blackhole", "packets-lost-mtu-exceeded",
            "packets-lost-ttl-expired"} <= INTEGER_FIELDS
    assert set(TGW_FIELDS) <= set(ALL_FIELDS) and len(TGW_FIELDS) == 36
