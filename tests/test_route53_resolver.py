"""Route 53 VPC Resolver query logs in S3 (type route53_resolver_logs): keys, queries with
answers and without, broken lines, and objects collected from the embedded S3 with
flatten on and off."""

from __future__ import annotations

import doctest
import json

import pytest

from awscollector.embedded.seed_jsonlogs import (
    firewall_key,
    firewall_object,
    firewall_records,
    resolver_key,
    resolver_object,
    resolver_records,
    waf_key,
    waf_object,
    waf_records,
)
from awscollector.errors import CollectorError
from awscollector.transforms import cloudtrail, elb, network_firewall, route53_resolver, waf
from awscollector.transforms.formats import SKIP, Classified, RecordBatch, Registry
from awscollector.transforms.route53_resolver import TABLE, parse
from tests.json_lines_helpers import compact, lines_object, message, run_collection

REGISTRY = Registry((cloudtrail.FORMAT, *elb.FORMATS, waf.FORMAT, *network_firewall.FORMATS,
                     route53_resolver.FORMAT))
TYPES = ["route53_resolver_logs"]
ORG = "o-a1b2c3d4e5"

# Lines as Resolver writes them.
ANSWERED = (  # a CNAME chain, from an instance
    b'{"version":"1.100000","account_id":"123456789012","region":"eu-west-1","vpc_id":'
    b'"vpc-0f1e2d3c4b5a69788","query_timestamp":"2025-03-14T09:26:53Z","query_name":'
    b'"downloads.example.com.","query_type":"A","query_class":"IN","rcode":"NOERROR",'
    b'"answers":[{"Rdata":"d1a2b3c4.cloudfront.net.","Type":"CNAME","Class":"IN"},'
    b'{"Rdata":"198.51.100.31","Type":"A","Class":"IN"},{"Rdata":"198.51.100.32","Type":'
    b'"A","Class":"IN"}],"srcaddr":"10.1.4.22","srcport":"41877","transport":"UDP",'
    b'"srcids":{"instance":"i-0a9b8c7d6e5f40312"}}')
NXDOMAIN = (  # no answer, no source ids
    b'{"version":"1.100000","account_id":"123456789012","region":"eu-west-1","vpc_id":'
    b'"vpc-0f1e2d3c4b5a69788","query_timestamp":"2025-03-14T09:26:54Z","query_name":'
    b'"wpad.eu-west-1.compute.internal.","query_type":"A","query_class":"IN","rcode":'
    b'"NXDOMAIN","answers":[],"srcaddr":"10.1.4.22","srcport":"53544","transport":"UDP",'
    b'"srcids":{}}')
ENDPOINT = (  # through an inbound Resolver endpoint, over TCP, IPv6 answers
    b'{"version":"1.100000","account_id":"123456789012","region":"eu-west-1","vpc_id":'
    b'"vpc-0f1e2d3c4b5a69788","query_timestamp":"2025-03-14T09:27:01Z","query_name":'
    b'"ipv6.example.org.","query_type":"AAAA","query_class":"IN","rcode":"NOERROR",'
    b'"answers":[{"Rdata":"2001:db8:10::5","Type":"AAAA","Class":"IN"}],"srcaddr":'
    b'"192.168.10.4","srcport":"60112","transport":"TCP","srcids":{"resolver_endpoint":'
    b'"rslvr-in-1a2b3c4d5e6f7a8b9","resolver_network_interface":"rni-1a2b3c4d5e6f7a8b9"}}')
BLOCKED = (  # a DNS Firewall rule blocked it (fields in another order, as Resolver does)
    b'{"srcaddr":"10.1.7.9","vpc_id":"vpc-0f1e2d3c4b5a69788","answers":[],'
    b'"firewall_rule_group_id":"rslvr-frg-0a1b2c3d4e5f6a7b","firewall_rule_action":"BLOCK",'
    b'"query_name":"c2.bad.example.","firewall_domain_list_id":"rslvr-fdl-0a1b2c3d4e5f6a7b",'
    b'"query_class":"IN","srcids":{"instance":"i-0d15cd0d3e1f2a3b4"},"rcode":"NOERROR",'
    b'"query_type":"A","transport":"UDP","version":"1.100000","account_id":"123456789012",'
    b'"srcport":"56067","query_timestamp":"2025-03-14T09:27:02Z","region":"eu-west-1"}')
REAL = [ANSWERED, NXDOMAIN, ENDPOINT, BLOCKED]


def batch(lines: list[bytes]) -> RecordBatch:
    key = resolver_key()
    return RecordBatch(f"s3://dns-logs/{key}", key, 0, lines)


def test_module_examples():
    assert doctest.testmod(route53_resolver).failed == 0


# --- keys -----------------------------------------------------------------------------


@pytest.mark.parametrize("key", [
    resolver_key(),
    resolver_key("vpc-01e31a7c", n=9),
    resolver_key(prefix="dns/prod/"),
    resolver_key(org=ORG),
    resolver_key(prefix="archive/", org=ORG, account="210987654321"),
    "AWSLogs/111122223333/vpcdnsquerylogs/vpc-0a1b2c3d/2021/02/04/"
    "111122223333_vpcdnsquerylogs_vpc-0a1b2c3d_20210204T1750Z_7a2b3c4d.log.gz",
])
def test_resolver_keys(key):
    assert REGISTRY.classify(key, TYPES) == Classified("route53_resolver_logs")
    got = REGISTRY.classify(key, ["waf_logs", "network_firewall_logs"])
    assert got.kind == SKIP and "route53_resolver_logs" in got.reason


@pytest.mark.parametrize("key", [waf_key(), firewall_key("alert"), firewall_key("flow"),
                                 firewall_key("tls")])
def test_other_logs_are_not_resolver_logs(key):
    assert not route53_resolver.FORMAT.matches_key(key)
    assert REGISTRY.classify(key, TYPES).kind == SKIP  # another known format's


@pytest.mark.parametrize("key", [
    "AWSLogs/123456789012/vpcdnsquerylogs/vpc-0a1b2c3d/2021/02/"
    "123456789012_vpcdnsquerylogs_vpc-0a1b2c3d_20210204T1750Z_7a2b3c4d.log.gz",
    "AWSLogs/123456789012/vpcdnsquerylogs/vpc-0a1b2c3d/2021/02/04/querylog.log.gz",
    "dns/2021/02/04/17/resolver-stream-1-2021-02-04-17-50-00-0f1e2d3c.gz",
])
def test_keys_not_in_the_layout_are_not_taken(key):
    assert not route53_resolver.FORMAT.matches_key(key)
    with pytest.raises(CollectorError) as err:
        Registry((route53_resolver.FORMAT,)).classify(key, TYPES)
    assert err.value.code == "SRC-006"


# --- the parser -----------------------------------------------------------------------


def test_queries_with_answers_and_without_are_their_own_messages():
    parsed = parse(batch(REAL), {})
    assert parsed.events == {TABLE: REAL} and parsed.rejected == []
    answers = [json.loads(m)["answers"] for m in parsed.events[TABLE]]
    assert [len(a) for a in answers] == [3, 0, 1, 0]


def test_generated_logs():
    records = resolver_records(2000, seed=5)
    assert any(r["answers"] for r in records) and any(not r["answers"] for r in records)
    assert any("firewall_rule_action" in r for r in records)
    assert any("resolver_endpoint" in r["srcids"] for r in records)
    lines = [compact(r) for r in records]
    parsed = parse(batch(lines), {})
    assert parsed.events == {TABLE: lines} and parsed.rejected == []


def test_a_line_that_is_not_compact_is_sent_compact():
    record = json.loads(ANSWERED)
    parsed = parse(batch([b"  " + json.dumps(record, indent=None).encode()]), {})
    assert parsed.events == {TABLE: [compact(record)]}


def test_broken_lines_are_rejected_with_their_code_and_the_rest_flows():
    truncated = ENDPOINT[:len(ENDPOINT) // 2]
    no_name = b'{"version":"1.100000","query_timestamp":"2025-03-14T09:27:02Z"}'
    lines = [ANSWERED, b"<html>", truncated, b"{}", b"[{}]", no_name, b"\xff\xfe{}",
             NXDOMAIN]
    parsed = parse(batch(lines), {})
    assert parsed.events == {TABLE: [ANSWERED, NXDOMAIN]}
    assert [(r.code, r.record) for r in parsed.rejected] == [
        ("SRC-007", b"<html>"), ("SRC-007", truncated), ("SRC-020", b"{}"),
        ("SRC-008", b"[{}]"), ("SRC-020", no_name), ("SRC-007", b"\xff\xfe{}")]
    assert "'query_name'" in parsed.rejected[4].reason


# --- collected from S3 ----------------------------------------------------------------


@pytest.mark.parametrize("flatten", [False, True])
def test_resolver_objects_from_s3_to_events(embedded_aws, flatten):
    first = resolver_records(1500, seed=1)  # several batches
    second = resolver_records(40, seed=2, vpc="vpc-01e31a7c", region="eu-west-1")
    keys = {
        "first": resolver_key(),
        "second": resolver_key("vpc-01e31a7c", prefix="dns/", org=ORG),
        "mixed": resolver_key(n=2),
        "waf": waf_key(),  # another type: skipped
        "firewall": firewall_key("flow"),  # another type: skipped
    }
    objects = {
        keys["first"]: resolver_object(first),
        keys["second"]: resolver_object(second),
        keys["mixed"]: lines_object([BLOCKED, b'{"rcode":"NOERROR"}', b"NOERROR", ENDPOINT]),
        keys["waf"]: waf_object(waf_records(5)),
        keys["firewall"]: firewall_object(firewall_records("flow", 5)),
    }
    real = [json.loads(BLOCKED), json.loads(ENDPOINT)]
    events = [(TABLE, message(r, flatten)) for r in first + second + real]
    dead = [("SRC-020", keys["mixed"], ('{"rcode":"NOERROR"}',)),
            ("SRC-007", keys["mixed"], ("NOERROR",))]
    run_collection(embedded_aws, f"dns-logs-{int(flatten)}", objects, REGISTRY, TYPES,
                   flatten, events, dead, skipped=2)
    if flatten:
        flat = json.loads(message(real[1], True))
        assert flat["srcids.resolver_endpoint"] == "rslvr-in-1a2b3c4d5e6f7a8b9"
        assert flat["answers"] == [{"Rdata": "2001:db8:10::5", "Type": "AAAA", "Class": "IN"}]
