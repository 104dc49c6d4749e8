"""Elastic Load Balancing access logs (ALB, NLB, Classic): keys, sniff, every field list
AWS shipped, quoted fields, malformed lines, and the batch-wide fast check against the
per-line expression."""

from __future__ import annotations

import doctest
import random

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from awscollector.embedded.seed_lb import (
    alb_key,
    alb_lines,
    alb_object,
    classic_key,
    classic_lines,
    classic_object,
    nlb_key,
    nlb_lines,
    nlb_object,
    s3_access_key,
)
from awscollector.io.deadletter import DEAD_LETTER
from awscollector.io.delivery import EventBatch
from awscollector.io.s3 import FormatBatch, ObjectTask
from awscollector.io.sqs import SqsMessage
from awscollector.pipelines.s3_sqs import ParseBatches
from awscollector.transforms import cloudfront, elb, quoted_fields, s3_access, vpcflow
from awscollector.transforms.decompress import decompressed_chunks
from awscollector.transforms.elb import (
    ALB,
    ALB_FIELDS,
    ALB_TABLE,
    CLASSIC,
    CLASSIC_TABLE,
    NLB,
    NLB_FIELDS,
    NLB_TABLE,
)
from awscollector.transforms.formats import SKIP, SNIFF, RecordBatch, Registry
from awscollector.transforms.framing import frame_lines
from awscollector.transforms.notifications import ObjectRef

TYPES = ("elb_logs",)


def registry() -> Registry:
    return Registry((vpcflow.FORMAT, cloudfront.FORMAT, *elb.FORMATS, s3_access.FORMAT))


def batch(lines: list[bytes], key: str = "k") -> RecordBatch:
    return RecordBatch(f"s3://logs/{key}", key, 0, lines)


def test_doctests():
    assert doctest.testmod(elb).failed == 0
    assert doctest.testmod(quoted_fields).failed == 0


# --- keys ------------------------------------------------------------------------------

ALB_KEY = ("AWSLogs/123456789012/elasticloadbalancing/us-east-2/2026/11/27/123456789012_"
           "elasticloadbalancing_us-east-2_app.my-loadbalancer.1234567890abcdef_20261127T2340Z_"
           "172.160.1.192_20sg8hgm.log.gz")
NLB_KEY = ("AWSLogs/123456789012/elasticloadbalancing/us-east-2/2026/11/27/123456789012_"
           "elasticloadbalancing_us-east-2_net.my-nlb.1234567890abcdef_20261127T2340Z_"
           "20sg8hgm.log.gz")
CLASSIC_KEY = ("AWSLogs/123456789012/elasticloadbalancing/us-west-2/2014/02/15/123456789012_"
               "elasticloadbalancing_us-west-2_my-loadbalancer_20140215T2340Z_172.160.1.192_"
               "20sg8hgm.log")


@pytest.mark.parametrize("key,name", [
    (ALB_KEY, "alb_access_logs"),
    ("my-prefix/prod/" + ALB_KEY, "alb_access_logs"),
    (ALB_KEY.replace("AWSLogs/", "AWSLogs/o-a1b2c3d4e5/"), "alb_access_logs"),
    (alb_key("eu-west-1", 7), "alb_access_logs"),
    (alb_key("eu-west-1", 7, prefix="lb/", org="o-exampleorgid"), "alb_access_logs"),
    (NLB_KEY, "nlb_access_logs"),
    (NLB_KEY.replace("_20sg8hgm", "_10.0.1.7_20sg8hgm"), "nlb_access_logs"),  # with a node ip
    ("p/" + nlb_key("us-east-1", 3, org="o-exampleorgid"), "nlb_access_logs"),
    (CLASSIC_KEY, "classic_elb_access_logs"),
    ("elb/" + CLASSIC_KEY, "classic_elb_access_logs"),
    (classic_key("ap-southeast-2", 9, org="o-exampleorgid"), "classic_elb_access_logs"),
])
def test_keys_as_aws_names_them(key, name):
    assert registry().classify(key, TYPES).kind == name


def test_each_key_matches_one_load_balancer_format_only():
    for key in (ALB_KEY, NLB_KEY, CLASSIC_KEY, alb_key("us-east-1", 1),
                nlb_key("us-east-1", 1), classic_key("us-east-1", 1)):
        matching = [f.name for f in (*elb.FORMATS, s3_access.FORMAT) if f.matches_key(key)]
        assert len(matching) == 1, (key, matching)
    assert not CLASSIC.matches_key(ALB_KEY) and not ALB.matches_key(CLASSIC_KEY)
    assert not CLASSIC.matches_key(ALB_KEY[:-3])  # app.<...>.log: still not a Classic name
    assert not ALB.matches_key(CLASSIC_KEY + ".gz")  # no app. in the name


@pytest.mark.parametrize("key", [
    ALB_KEY.replace("_app.", "_gwy."),  # no such kind of load balancer log
    ALB_KEY.replace("AWSLogs/123456789012/", "AWSLogs/12345/"),  # not an account id
    ALB_KEY + ".tmp",
    CLASSIC_KEY.replace("my-loadbalancer", "my_load_balancer"),  # no "_" in ELB names
    "AWSLogs/123456789012/elasticloadbalancing/us-east-2/2026/11/27/notes.txt",
])
def test_other_keys_are_not_load_balancer_logs(key):
    assert not any(f.matches_key(key) for f in elb.FORMATS)
    assert registry().classify(key, TYPES).kind == SNIFF  # the formats can sniff


@pytest.mark.parametrize("connection_log", [
    # as the files are named, and as AWS's docs spell the prefix
    alb_key("us-east-1", 2, connection_log=True),
    ALB_KEY.replace("/123456789012_elastic", "/conn_log.123456789012_elastic"),
])
def test_alb_connection_logs_are_skipped_with_their_reason(connection_log):
    found = registry().classify(connection_log, TYPES)
    assert found.kind == SKIP and "ALB connection log" in found.reason


def test_a_service_without_elb_logs_skips_their_objects():
    found = registry().classify(ALB_KEY, ("vpc_flow_logs",))
    assert found.kind == SKIP and "elb_logs" in found.reason


def test_load_balancer_keys_are_not_s3_access_logs_and_back():
    for key in (ALB_KEY, NLB_KEY, CLASSIC_KEY):
        assert not s3_access.FORMAT.matches_key(key)
    for key in (s3_access_key(1), s3_access_key(1, partitioned=True)):
        assert not any(f.matches_key(key) for f in elb.FORMATS)


# --- Application Load Balancer ----------------------------------------------------------

# Lines as AWS documents them, one per field list it shipped (17 fields at launch in
# 2016, trace_id, TLS SNI, rules and redirects, target lists, desync classification,
# the connection trace id, rule transforms).
ALB_17 = (b'http 2016-08-10T22:08:42.945958Z app/my-loadbalancer/50dc6c495c0c9188 '
          b'192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 '
          b'"GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - '
          b'arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/'
          b'73e2d6bc24d8a067')
ALB_18 = ALB_17 + b' "Root=1-58337262-36d228ad5d99923122bbe354"'
ALB_20 = (b'https 2017-11-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 '
          b'192.168.131.39:2817 10.0.0.1:80 0.086 0.048 0.037 200 200 0 57 '
          b'"GET https://www.example.com:443/ HTTP/1.1" "curl/7.46.0" '
          b'ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 '
          b'arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/'
          b'73e2d6bc24d8a067 "Root=1-58337281-1d84f3d73c47ec4e58577259" '
          b'"www.example.com" "arn:aws:acm:us-east-2:123456789012:certificate/'
          b'12345678-1234-1234-1234-123456789012"')
ALB_25 = (ALB_20.replace(b"https 2017-11-02", b"h2 2018-07-02")
          + b' 1 2018-07-02T22:22:48.364000Z "redirect" '
            b'"https://example.com:80/?q=a%20b" "-"')
ALB_27 = ALB_25 + b' "10.0.0.1:80" "200"'
ALB_29 = ALB_27 + b' "Ambiguous" "UndefinedContentLengthSemantics"'
ALB_30 = ALB_29 + b' TID_1234abcd5678ef90'
ALB_33 = ALB_30 + b' "internal.example.com" "/v2/items?q=a%20b" "TransformSucceeded"'
ALB_LINES = {17: ALB_17, 18: ALB_18, 20: ALB_20, 25: ALB_25, 27: ALB_27, 29: ALB_29,
             30: ALB_30, 33: ALB_33}


@pytest.mark.parametrize("fields", sorted(ALB_LINES))
def test_every_alb_field_list_is_an_event_unchanged(fields):
    line = ALB_LINES[fields]
    assert quoted_fields.count_fields(line) == fields
    parsed = ALB.parse(batch([line]), {})
    assert parsed.events == {ALB_TABLE: [line]} and parsed.rejected == []


def test_fields_aws_appends_later_are_accepted():
    line = ALB_33 + b' "a field of 2027" 42 "and another one"'
    assert quoted_fields.count_fields(line) == len(ALB_FIELDS) + 3
    assert ALB.parse(batch([line]), {}).events == {ALB_TABLE: [line]}


@pytest.mark.parametrize("kind", [b"http", b"https", b"h2", b"grpcs", b"ws", b"wss"])
def test_every_request_type(kind):
    line = kind + ALB_30[ALB_30.index(b" "):]
    assert ALB.parse(batch([line]), {}).events == {ALB_TABLE: [line]}


def test_quoted_fields_with_spaces_and_escaped_quotes():
    agent = b'"Mozilla/5.0 (X11; Linux x86_64) \\"quoted\\" name \\\\ end\\\\"'
    line = ALB_30.replace(b'"curl/7.46.0"', agent)
    request = b'"GET https://www.example.com:443/a%20b?q=\\"x y\\" HTTP/1.1"'
    line2 = ALB_30.replace(b'"GET https://www.example.com:443/ HTTP/1.1"', request)
    parsed = ALB.parse(batch([line, line2]), {})
    assert parsed.events == {ALB_TABLE: [line, line2]} and parsed.rejected == []
    assert quoted_fields.count_fields(line) == quoted_fields.count_fields(line2) == 30


def test_generated_lines_of_every_field_list_are_events():
    for fields in (17, 18, 20, 25, 27, 29, 30, 33):
        lines = [line.encode() for line in alb_lines(300, seed=fields, fields=fields)]
        assert {quoted_fields.count_fields(line) for line in lines} == {fields}
        parsed = ALB.parse(batch(lines), {})
        assert parsed.rejected == [] and parsed.events == {ALB_TABLE: lines}


@pytest.mark.parametrize("line,reason", [
    (ALB_30.replace(b'"curl/7.46.0"', b'"curl/7.46.0'), "a double quote is left open"),
    (ALB_30[:ALB_30.index(b' "GET')], "12 fields, fewer than the 17"),
    (ALB_17.rsplit(b" ", 1)[0], "16 fields, fewer than the 17"),
    (b"gopher" + ALB_30[2:], "first field 'gopher' is not one of http, https, h2"),
    (b"HTTP" + ALB_30[2:], "first field 'HTTP' is not one of"),
    (ALB_30.replace(b"2018-07-02T22:23:00.186641Z", b"02/Jul/2018:22:23:00", 1),
     "field 2 is not an ISO 8601 time"),
    (ALB_30.replace(b" 200 200 ", b" 200  200 "), "not separated by single spaces"),
    (b"", "first field '' is not one of"),
])
def test_malformed_alb_lines_are_rejected_with_a_reason(line, reason):
    good = [ALB_18, ALB_33]
    parsed = ALB.parse(batch([ALB_18, line, ALB_33]), {})
    assert parsed.events == {ALB_TABLE: good}
    (rejected,) = parsed.rejected
    assert rejected.code == "SRC-004" and rejected.record == line
    assert rejected.reason.startswith("not a line of an Application LB access log: ")
    assert reason in rejected.reason


def test_a_line_of_another_load_balancer_is_not_an_alb_line():
    parsed = ALB.parse(batch([NLB_20, CLASSIC_15]), {})
    assert parsed.events == {} and len(parsed.rejected) == 2


# --- Network Load Balancer --------------------------------------------------------------

NLB_18 = (b'tls 1.0 2018-12-20T02:59:40 net/my-network-loadbalancer/c6e77e28c25b2234 '
          b'g3d4b5e8bb8464cd 72.21.218.154:51341 172.100.100.185:443 5 2 98 246 - '
          b'arn:aws:acm:us-east-2:671290407336:certificate/2a108f19-aded-46b0-8493-'
          b'c63eb1ef4a99 - ECDHE-RSA-AES128-SHA tlsv12 - '
          b'my-network-loadbalancer-c6e77e28c25b2234.elb.us-east-2.amazonaws.com')
NLB_20 = (NLB_18.replace(b"tls 1.0 ", b"tls 2.0 ")
          + b' h2 h2 "h2","http/1.1" 2020-04-01T08:51:42')  # 22 fields


def test_both_nlb_versions_are_events_unchanged():
    assert quoted_fields.count_fields(NLB_18) == 18
    assert quoted_fields.count_fields(NLB_20) == len(NLB_FIELDS) == 22
    more = NLB_20 + b" future-field"
    parsed = NLB.parse(batch([NLB_18, NLB_20, more]), {})
    assert parsed.events == {NLB_TABLE: [NLB_18, NLB_20, more]} and parsed.rejected == []
    for version in ("1.0", "2.0"):
        lines = [line.encode() for line in nlb_lines(200, version=version)]
        assert NLB.parse(batch(lines), {}).events == {NLB_TABLE: lines}


@pytest.mark.parametrize("line,reason", [
    (NLB_20.replace(b'"h2","http/1.1"', b'"h2","http/1.1'), "a double quote is left open"),
    (NLB_18.rsplit(b" ", 1)[0], "17 fields, fewer than the 18"),
    (b"tcp" + NLB_20[3:], "first field 'tcp' is not one of tls"),
    (NLB_20.replace(b"2018-12-20T02:59:40", b"yesterday"), "field 3 is not an ISO 8601 time"),
])
def test_malformed_nlb_lines_are_rejected_with_a_reason(line, reason):
    parsed = NLB.parse(batch([line, NLB_20]), {})
    assert parsed.events == {NLB_TABLE: [NLB_20]}
    assert [(r.code, r.record) for r in parsed.rejected] == [("SRC-004", line)]
    assert reason in parsed.rejected[0].reason


# --- Classic Load Balancer --------------------------------------------------------------

CLASSIC_12 = (b'2014-02-15T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 '
              b'10.0.0.1:80 0.000073 0.001048 0.000057 200 200 0 29 '
              b'"GET http://www.example.com:80/ HTTP/1.1"')
CLASSIC_15 = (b'2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 '
              b'10.0.0.1:80 0.000086 0.001048 0.001337 200 200 0 57 '
              b'"GET https://www.example.com:443/ HTTP/1.1" "curl/7.38.0" '
              b'DHE-RSA-AES128-SHA TLSv1.2')
CLASSIC_TCP = (b'2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 '
               b'10.0.0.1:80 0.001069 0.000028 0.000041 - - 82 305 "- - - " "-" - -')


def test_classic_field_lists_and_tcp_lines_are_events_unchanged():
    assert quoted_fields.count_fields(CLASSIC_12) == 12
    assert quoted_fields.count_fields(CLASSIC_15) == 15
    parsed = CLASSIC.parse(batch([CLASSIC_12, CLASSIC_15, CLASSIC_TCP]), {})
    assert parsed.events == {CLASSIC_TABLE: [CLASSIC_12, CLASSIC_15, CLASSIC_TCP]}
    for fields in (12, 15):
        lines = [line.encode() for line in classic_lines(200, fields=fields)]
        assert CLASSIC.parse(batch(lines), {}).events == {CLASSIC_TABLE: lines}


@pytest.mark.parametrize("line,reason", [
    (CLASSIC_15.replace(b'"curl/7.38.0"', b'curl/7.38.0"'), "a double quote is left open"),
    (CLASSIC_12[:CLASSIC_12.index(b' "GET')], "11 fields, fewer than the 12"),  # no request
    (b"my-loadbalancer " + CLASSIC_12, "field 1 is not an ISO 8601 time"),
    (ALB_30, "field 1 is not an ISO 8601 time: 'h2'"),  # an ALB line
])
def test_malformed_classic_lines_are_rejected_with_a_reason(line, reason):
    parsed = CLASSIC.parse(batch([CLASSIC_12, line]), {})
    assert parsed.events == {CLASSIC_TABLE: [CLASSIC_12]}
    assert [(r.code, r.record) for r in parsed.rejected] == [("SRC-004", line)]
    assert reason in parsed.rejected[0].reason
    assert parsed.rejected[0].reason.startswith("not a line of a Classic LB access log: ")


# --- sniffing ---------------------------------------------------------------------------


def test_sniff_tells_the_three_apart():
    reg = registry()
    assert reg.sniff(ALB_33 + b"\n" + ALB_18, TYPES) is ALB
    assert reg.sniff(NLB_20 + b"\n", TYPES) is NLB
    assert reg.sniff(CLASSIC_15 + b"\n", TYPES) is CLASSIC
    assert reg.sniff(b"version account-id interface-id\n", TYPES) is None
    assert reg.sniff(b"#Version: 1.0\n#Fields: date time\n", TYPES) is None


# --- the fast check of a batch against the per-line expression ---------------------------


def _mutations(line: bytes, rnd: random.Random) -> bytes:
    """A line with one to three random edits of the characters that matter."""
    for _ in range(rnd.randrange(1, 4)):
        at = rnd.randrange(len(line) + 1)
        edit = rnd.choice((b'"', b" ", b"  ", b"\\", b'\\"', b"", b"x", b" -"))
        cut = rnd.choice((0, 0, 1, 2))
        line = line[:at] + edit + line[at + cut:]
    return line


@pytest.mark.parametrize("layout,source", [
    (elb.ALB_LAYOUT, [ALB_17, ALB_20, ALB_29, ALB_33]),
    (elb.NLB_LAYOUT, [NLB_18, NLB_20]),
    (elb.CLASSIC_LAYOUT, [CLASSIC_12, CLASSIC_15, CLASSIC_TCP]),
])
def test_the_fast_check_keeps_exactly_what_the_expression_keeps(layout, source):
    """Batches of good lines with a few damaged ones: the batch-wide check (or its
    fallback) must return what matching every line alone returns."""
    rnd = random.Random(7)
    shape = layout.shape
    fast_batches = 0
    for _ in range(1500):
        lines = [rnd.choice(source) for _ in range(rnd.randrange(1, 12))]
        for i in range(len(lines)):
            if rnd.random() < 0.15:
                lines[i] = _mutations(lines[i], rnd)
        expected = [line for line in lines if shape.line.fullmatch(line)]
        assert shape.good(lines) == expected, lines
        plain = [line for line in lines if b"\\" not in line]
        fast_batches += bool(plain) and shape._all_plain(plain)
    assert fast_batches > 300  # the fast path was really taken, not only the fallback


# --- objects as AWS writes them, and the generic parse step ------------------------------


@pytest.mark.parametrize("obj,fmt,lines,table", [
    (alb_object, ALB, alb_lines(2000), ALB_TABLE),
    (nlb_object, NLB, nlb_lines(2000), NLB_TABLE),
    (classic_object, CLASSIC, classic_lines(2000), CLASSIC_TABLE),
])
def test_objects_frame_and_parse_whole(obj, fmt, lines, table):
    data = obj(lines)
    assert (data[:2] == b"\x1f\x8b") == (fmt is not CLASSIC)  # Classic files are plain text
    events = []
    for i, (_, records) in enumerate(frame_lines(decompressed_chunks([data], "k"),
                                                 batch_bytes=64 << 10)):
        parsed = fmt.parse(RecordBatch("s3://b/k", "k", i, records), {})
        assert parsed.rejected == []
        events += parsed.events[table]
    assert events == [line.encode() for line in lines]


def test_parse_batches_sends_lines_and_dead_letters_bad_ones():
    key = alb_key("us-east-1", 4)
    records = [ALB_30, b'https 2018-07-02T22:23:00.186641Z "broken', ALB_33]
    message = SqsMessage("non-cloudwatch-logs", "us-east-1", "https://q", "m-1", "{}")
    task = ObjectTask(message, ObjectRef("logs", key), "alb_access_logs")
    with TestPipeline() as p:
        out = (p | beam.Create([FormatBatch(task, "alb_access_logs",
                                            RecordBatch(f"s3://logs/{key}", key, 0, records))])
               | beam.ParDo(ParseBatches(registry())).with_outputs(DEAD_LETTER, main="events"))
        assert_that(out.events, equal_to([EventBatch(ALB_TABLE, [ALB_30, ALB_33],
                                                     "non-cloudwatch-logs", "us-east-1")]),
                    label="events")
        assert_that(out[DEAD_LETTER] | beam.Map(
            lambda d: (d.code, d.source["key"], d.source["records"])),
            equal_to([("SRC-004", key, ['https 2018-07-02T22:23:00.186641Z "broken'])]),
            label="dead letters")
