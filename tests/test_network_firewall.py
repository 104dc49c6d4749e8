"""AWS Network Firewall logs in S3 (type network_firewall_logs): alert and flow formats by
the key, TLS logs skipped, records routed by their event type, broken lines, and objects
collected from the embedded S3 with flatten on and off."""

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
from awscollector.transforms.network_firewall import ALERT, ALERT_TABLE, FLOW, FLOW_TABLE
from tests.json_lines_helpers import compact, lines_object, message, run_collection

REGISTRY = Registry((cloudtrail.FORMAT, *elb.FORMATS, waf.FORMAT, *network_firewall.FORMATS,
                     route53_resolver.FORMAT))
TYPES = ["network_firewall_logs"]
ORG = "o-a1b2c3d4e5"

# Lines as the firewall writes them.
ALERT_HTTP = (
    b'{"firewall_name":"egress-fw","availability_zone":"eu-west-1b","event_timestamp":'
    b'"1733139123","event":{"timestamp":"2024-12-02T11:32:03.412938+0000","flow_id":'
    b'1158213327771204,"event_type":"alert","src_ip":"10.20.1.17","src_port":49822,'
    b'"dest_ip":"192.0.2.80","dest_port":80,"proto":"TCP","alert":{"action":"blocked",'
    b'"signature_id":5,"rev":0,"signature":"aws:drop_established action","category":"",'
    b'"severity":3},"http":{"hostname":"192.0.2.80","url":"/index.html","http_user_agent":'
    b'"Wget/1.21.4","http_method":"GET","protocol":"HTTP/1.1","length":0},"app_proto":'
    b'"http","verdict":{"action":"drop"}}}')
ALERT_TLS = (
    b'{"firewall_name":"egress-fw","availability_zone":"eu-west-1a","event_timestamp":'
    b'"1733139187","event":{"app_proto":"tls","src_ip":"10.20.2.40","src_port":51544,'
    b'"event_type":"alert","alert":{"severity":1,"signature_id":1000021,"rev":2,'
    b'"signature":"Block SNI not on the allow list","action":"blocked","category":""},'
    b'"flow_id":836592178830117,"dest_ip":"198.51.100.7","proto":"TCP","tls":{"sni":'
    b'"paste.example.net","version":"TLS 1.3","ja3":{},"ja3s":{}},"dest_port":443,'
    b'"timestamp":"2024-12-02T11:33:07.002114+0000"}}')
NETFLOW = (
    b'{"firewall_name":"egress-fw","availability_zone":"eu-west-1b","event_timestamp":'
    b'"1733139300","event":{"tcp":{"tcp_flags":"13","syn":true,"fin":true,"ack":true},'
    b'"app_proto":"tls","src_ip":"10.20.1.17","src_port":50110,"netflow":{"pkts":14,'
    b'"bytes":5236,"start":"2024-12-02T11:34:01.118204+0000","end":'
    b'"2024-12-02T11:34:59.931007+0000","age":58,"min_ttl":63,"max_ttl":64},"event_type":'
    b'"netflow","flow_id":411278113904275,"dest_ip":"203.0.113.44","proto":"TCP",'
    b'"dest_port":443,"timestamp":"2024-12-02T11:35:00.000391+0000"}}')
NETFLOW_UDP = (
    b'{"firewall_name":"egress-fw","availability_zone":"eu-west-1a","event_timestamp":'
    b'"1733139305","event":{"timestamp":"2024-12-02T11:35:05.100000+0000","flow_id":'
    b'1002003004005,"event_type":"netflow","src_ip":"10.20.2.8","src_port":33012,'
    b'"dest_ip":"10.20.0.2","dest_port":53,"proto":"UDP","netflow":{"pkts":1,"bytes":74,'
    b'"start":"2024-12-02T11:34:05.100000+0000","end":"2024-12-02T11:34:05.100000+0000",'
    b'"age":0,"min_ttl":64,"max_ttl":64}}}')
# An HTTP event in an alert file: no table of its own, it stays with the key's.
HTTP_EVENT = (
    b'{"firewall_name":"egress-fw","availability_zone":"eu-west-1b","event_timestamp":'
    b'"1733139124","event":{"timestamp":"2024-12-02T11:32:04.000000+0000","flow_id":'
    b'1158213327771204,"event_type":"http","src_ip":"10.20.1.17","src_port":49822,'
    b'"dest_ip":"192.0.2.80","dest_port":80,"proto":"TCP","http":{"hostname":"192.0.2.80",'
    b'"url":"/index.html","http_method":"GET","protocol":"HTTP/1.1","length":0}}}')


def batch(lines: list[bytes], kind: str = "alert") -> RecordBatch:
    key = firewall_key(kind)
    return RecordBatch(f"s3://fw-logs/{key}", key, 0, lines)


def test_module_examples():
    assert doctest.testmod(network_firewall).failed == 0


# --- keys -----------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "kind"), [
    (firewall_key("alert"), "network_firewall_alert"),
    (firewall_key("flow"), "network_firewall_flow"),
    (firewall_key("alert", "eu-west-1", firewall="egress_fw-2", n=3), "network_firewall_alert"),
    (firewall_key("flow", prefix="nfw/prod/"), "network_firewall_flow"),
    (firewall_key("alert", org=ORG), "network_firewall_alert"),
    (firewall_key("flow", prefix="archive/", org=ORG, account="210987654321"),
     "network_firewall_flow"),
    ("AWSLogs/111122223333/network-firewall/flow/us-east-1/inspection/2021/11/08/18/"
     "111122223333_network-firewall_flow_us-east-1_inspection_202111081820_ab12cd34.log.gz",
     "network_firewall_flow"),
])
def test_alert_and_flow_keys(key, kind):
    assert REGISTRY.classify(key, TYPES) == Classified(kind)
    got = REGISTRY.classify(key, ["waf_logs", "route53_resolver_logs"])
    assert got.kind == SKIP and "network_firewall_logs" in got.reason


@pytest.mark.parametrize("key", [firewall_key("tls"), firewall_key("tls", org=ORG,
                                                                   prefix="x/")])
def test_tls_logs_are_skipped_on_purpose(key):
    got = REGISTRY.classify(key, TYPES)
    assert got.kind == SKIP and "TLS log" in got.reason
    assert network_firewall.skip_tls(firewall_key("alert")) is None


@pytest.mark.parametrize("key", [waf_key(), waf_key("cloudfront"), resolver_key()])
def test_other_logs_are_not_firewall_logs(key):
    assert not ALERT.matches_key(key) and not FLOW.matches_key(key)
    assert REGISTRY.classify(key, TYPES).kind == SKIP  # another known format's


@pytest.mark.parametrize("key", [
    # a log type this version does not know, no hour folder, a Firehose object
    firewall_key("flow").replace("/flow/", "/dns/").replace("_flow_", "_dns_"),
    "AWSLogs/123456789012/network-firewall/alert/us-east-1/fw/2026/11/27/"
    "123456789012_network-firewall_alert_us-east-1_fw_20261127T1200Z_a1b2c3d4.log.gz",
    "nfw/2026/11/27/12/nfw-alerts-stream-1-2026-11-27-12-05-31-0f1e2d3c-4b5a-6978.gz",
])
def test_keys_not_in_the_layout_are_not_taken(key):
    assert not ALERT.matches_key(key) and not FLOW.matches_key(key)
    with pytest.raises(CollectorError) as err:
        Registry(network_firewall.FORMATS).classify(key, TYPES)
    assert err.value.code == "SRC-006"


# --- the parser -----------------------------------------------------------------------


def test_alerts_and_flows_go_to_their_tables_as_written():
    alerts = ALERT.parse(batch([ALERT_HTTP, ALERT_TLS]), {})
    assert alerts.events == {ALERT_TABLE: [ALERT_HTTP, ALERT_TLS]} and alerts.rejected == []
    flows = FLOW.parse(batch([NETFLOW, NETFLOW_UDP], "flow"), {})
    assert flows.events == {FLOW_TABLE: [NETFLOW, NETFLOW_UDP]} and flows.rejected == []


@pytest.mark.parametrize(("kind", "fmt", "table"), [("alert", ALERT, ALERT_TABLE),
                                                    ("flow", FLOW, FLOW_TABLE)])
def test_generated_logs(kind, fmt, table):
    records = firewall_records(kind, 500, seed=3)
    lines = [compact(r) for r in records]
    parsed = fmt.parse(batch(lines, kind), {})
    assert parsed.events == {table: lines} and parsed.rejected == []


def test_an_event_type_that_contradicts_the_key_goes_to_its_own_table():
    parsed = ALERT.parse(batch([ALERT_HTTP, NETFLOW, HTTP_EVENT, ALERT_TLS]), {})
    assert parsed.events == {ALERT_TABLE: [ALERT_HTTP, HTTP_EVENT, ALERT_TLS],
                             FLOW_TABLE: [NETFLOW]}
    parsed = FLOW.parse(batch([NETFLOW, ALERT_TLS, NETFLOW_UDP], "flow"), {})
    assert parsed.events == {FLOW_TABLE: [NETFLOW, NETFLOW_UDP], ALERT_TABLE: [ALERT_TLS]}


def test_an_event_without_a_usable_event_type_stays_with_the_key():
    odd = [b'{"firewall_name":"f","event":{}}', b'{"firewall_name":"f","event":[1]}',
           b'{"firewall_name":"f","event":{"event_type":["alert"]}}']
    parsed = FLOW.parse(batch(odd, "flow"), {})
    assert parsed.events == {FLOW_TABLE: odd} and parsed.rejected == []


def test_a_line_that_is_not_compact_is_sent_compact():
    record = json.loads(ALERT_HTTP)
    parsed = ALERT.parse(batch([json.dumps(record).encode()]), {})
    assert parsed.events == {ALERT_TABLE: [compact(record)]}


def test_broken_lines_are_rejected_with_their_code_and_the_rest_flows():
    truncated = NETFLOW[:-40]
    lines = [NETFLOW, b"", b"garbage", truncated, b"42", b'{"event":{"event_type":"netflow"}}',
             b'{"firewall_name":"egress-fw"}', NETFLOW_UDP]
    parsed = FLOW.parse(batch(lines, "flow"), {})
    assert parsed.events == {FLOW_TABLE: [NETFLOW, NETFLOW_UDP]}
    assert [(r.code, r.record) for r in parsed.rejected] == [
        ("SRC-007", b""), ("SRC-007", b"garbage"), ("SRC-007", truncated), ("SRC-008", b"42"),
        ("SRC-020", b'{"event":{"event_type":"netflow"}}'),
        ("SRC-020", b'{"firewall_name":"egress-fw"}')]
    assert "'firewall_name'" in parsed.rejected[4].reason
    assert "'event'" in parsed.rejected[5].reason


# --- collected from S3 ----------------------------------------------------------------


@pytest.mark.parametrize("flatten", [False, True])
def test_firewall_objects_from_s3_to_events(embedded_aws, flatten):
    alerts = firewall_records("alert", 300, seed=1)
    flows = firewall_records("flow", 600, seed=2, firewall="egress-fw", region="eu-west-1")
    keys = {
        "alert": firewall_key("alert"),
        "flow": firewall_key("flow", "eu-west-1", firewall="egress-fw", org=ORG, prefix="n/"),
        "tls": firewall_key("tls"),  # skipped on purpose
        "mixed": firewall_key("alert", n=2),
        "waf": waf_key(),  # another type: skipped
        "dns": resolver_key(),  # another type: skipped
    }
    objects = {
        keys["alert"]: firewall_object(alerts),
        keys["flow"]: firewall_object(flows),
        keys["tls"]: firewall_object(firewall_records("tls", 20)),
        keys["mixed"]: lines_object([ALERT_HTTP, b'{"firewall_name":', NETFLOW, b"true"]),
        keys["waf"]: waf_object(waf_records(5)),
        keys["dns"]: resolver_object(resolver_records(5)),
    }
    events = ([(ALERT_TABLE, message(r, flatten)) for r in alerts]
              + [(FLOW_TABLE, message(r, flatten)) for r in flows]
              + [(ALERT_TABLE, message(json.loads(ALERT_HTTP), flatten)),
                 (FLOW_TABLE, message(json.loads(NETFLOW), flatten))])
    dead = [("SRC-007", keys["mixed"], ('{"firewall_name":',)),
            ("SRC-008", keys["mixed"], ("true",))]
    run_collection(embedded_aws, f"nfw-logs-{int(flatten)}", objects, REGISTRY, TYPES,
                   flatten, events, dead, skipped=3)
    if flatten:
        flat = json.loads(message(json.loads(NETFLOW), True))
        assert flat["event.netflow.pkts"] == 14 and flat["event.event_type"] == "netflow"
