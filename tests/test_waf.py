"""AWS WAF logs in S3 (type waf_logs): keys, the parser on every field list WAF logged,
broken lines, and objects collected from the embedded S3 with flatten on and off."""

from __future__ import annotations

import doctest
import json

import pytest

from awscollector.embedded.seed_jsonlogs import (
    WAF_VERSIONS,
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
from awscollector.transforms import (
    cloudtrail,
    elb,
    json_lines,
    network_firewall,
    route53_resolver,
    waf,
)
from awscollector.transforms.formats import SKIP, Classified, RecordBatch, Registry
from awscollector.transforms.waf import TABLE, parse
from tests.json_lines_helpers import compact, lines_object, message, run_collection

REGISTRY = Registry((cloudtrail.FORMAT, *elb.FORMATS, waf.FORMAT, *network_firewall.FORMATS,
                     route53_resolver.FORMAT))
TYPES = ["waf_logs"]
ORG = "o-a1b2c3d4e5"

# Lines as WAF writes them (compact JSON, one record a line), over the years.
LAUNCH = (  # 2019: no labels, no inserted headers; a regular rule blocked it
    b'{"timestamp":1576280412771,"formatVersion":1,"webaclId":"arn:aws:wafv2:eu-west-1:'
    b'123456789012:regional/webacl/api-acl/0f9e8d7c-6b5a-4c3d-9e2f-1a0b9c8d7e6f",'
    b'"terminatingRuleId":"Block-XSS","terminatingRuleType":"REGULAR","action":"BLOCK",'
    b'"terminatingRuleMatchDetails":[{"conditionType":"XSS","location":"BODY",'
    b'"matchedData":["<script",">"]}],"httpSourceName":"APIGW","httpSourceId":'
    b'"123456789012:abc123defg:prod","ruleGroupList":[],"rateBasedRuleList":[],'
    b'"nonTerminatingMatchingRules":[],"httpRequest":{"clientIp":"192.0.2.44","country":"FR",'
    b'"headers":[{"name":"Host","value":"abc123defg.execute-api.eu-west-1.amazonaws.com"},'
    b'{"name":"Content-Type","value":"application/json"}],"uri":"/prod/comments","args":"",'
    b'"httpVersion":"HTTP/1.1","httpMethod":"POST","requestId":"Q2xpZW50UmVxdWVzdElk"}}')
GROUPS = (  # a managed group with excluded rules counted, a nested match, labels
    b'{"timestamp":1700000123456,"formatVersion":1,"webaclId":"arn:aws:wafv2:us-east-1:'
    b'123456789012:regional/webacl/shop/5933d6d9-9dde-4d82-b7aa-9ca28e0b9e21",'
    b'"terminatingRuleId":"AWS-AWSManagedRulesSQLiRuleSet","terminatingRuleType":'
    b'"MANAGED_RULE_GROUP","action":"BLOCK","terminatingRuleMatchDetails":[],'
    b'"httpSourceName":"ALB","httpSourceId":"123456789012-app/shop/50dc6c495c0c9188",'
    b'"ruleGroupList":[{"ruleGroupId":"AWS#AWSManagedRulesCommonRuleSet","terminatingRule":'
    b'null,"nonTerminatingMatchingRules":[{"ruleId":"SizeRestrictions_BODY","action":'
    b'"COUNT","ruleMatchDetails":[]}],"excludedRules":[{"exclusionType":"EXCLUDED_AS_COUNT",'
    b'"ruleId":"SizeRestrictions_BODY"},{"exclusionType":"EXCLUDED_AS_COUNT","ruleId":'
    b'"NoUserAgent_HEADER"}],"customerConfig":null},{"ruleGroupId":'
    b'"AWS#AWSManagedRulesSQLiRuleSet","terminatingRule":{"ruleId":"SQLi_QUERYARGUMENTS",'
    b'"action":"BLOCK","ruleMatchDetails":[{"conditionType":"SQL_INJECTION",'
    b'"sensitivityLevel":"LOW","location":"QUERY_STRING","matchedData":["1","UNION",'
    b'"SELECT"]}]},"nonTerminatingMatchingRules":[],"excludedRules":null,"customerConfig":'
    b'null}],"rateBasedRuleList":[],"nonTerminatingMatchingRules":[],'
    b'"requestHeadersInserted":null,"responseCodeSent":null,"httpRequest":{"clientIp":'
    b'"203.0.113.9","country":"NL","headers":[{"name":"Host","value":"shop.example.com"}],'
    b'"uri":"/items","args":"id=1%20UNION%20SELECT%201","httpVersion":"HTTP/2.0",'
    b'"httpMethod":"GET","requestId":"1-6553f1a3-1b2c3d4e5f6a7b8c9d0e1f2a"},"labels":'
    b'[{"name":"awswaf:managed:aws:sql-database:SQLi_QueryArguments"},{"name":'
    b'"awswaf:managed:aws:core-rule-set:SizeRestrictions_Body"}]}')
CAPTCHA = (  # a CAPTCHA action, the token missing; a challenge response too
    b'{"timestamp":1712345678901,"formatVersion":1,"webaclId":"arn:aws:wafv2:us-east-1:'
    b'123456789012:regional/webacl/shop/5933d6d9-9dde-4d82-b7aa-9ca28e0b9e21",'
    b'"terminatingRuleId":"Captcha-Login","terminatingRuleType":"REGULAR","action":"CAPTCHA",'
    b'"terminatingRuleMatchDetails":[],"httpSourceName":"ALB","httpSourceId":'
    b'"123456789012-app/shop/50dc6c495c0c9188","ruleGroupList":[],"rateBasedRuleList":[],'
    b'"nonTerminatingMatchingRules":[],"requestHeadersInserted":null,"responseCodeSent":'
    b'null,"httpRequest":{"clientIp":"198.51.100.23","country":"US","headers":[{"name":'
    b'"Host","value":"shop.example.com"}],"uri":"/login","args":"","httpVersion":"HTTP/1.1",'
    b'"httpMethod":"POST","requestId":"1-66100e4e-0a1b2c3d4e5f6a7b8c9d0e1f"},"labels":[{'
    b'"name":"awswaf:123456789012:webacl:shop:captcha"}],"captchaResponse":{"responseCode":'
    b'405,"failureReason":"TOKEN_MISSING"},"challengeResponse":{"responseCode":0,'
    b'"solveTimestamp":1712345600},"requestBodySize":412,"requestBodySizeInspectedByWAF":'
    b'412,"ja3Fingerprint":"0c5d8a9bb9fd4b6e1f2a3b4c5d6e7f80"}')
CLOUDFRONT = (  # a CloudFront web ACL, newest fields, a URI that is not ASCII
    '{"timestamp":1764240000000,"formatVersion":1,"webaclId":"arn:aws:wafv2:us-east-1:'
    '123456789012:global/webacl/site/7d0e1f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a",'
    '"terminatingRuleId":"Default_Action","terminatingRuleType":"REGULAR","action":"ALLOW",'
    '"terminatingRuleMatchDetails":[],"httpSourceName":"CF","httpSourceId":"E1A2B3C4D5E6F7",'
    '"ruleGroupList":[],"rateBasedRuleList":[{"rateBasedRuleId":"arn:aws:wafv2:us-east-1:'
    '123456789012:global/webacl/site/7d0e1f2a/ratebasedrule/Burst","rateBasedRuleName":'
    '"Burst","limitKey":"IP","maxRateAllowed":500,"evaluationWindowSec":"60"}],'
    '"nonTerminatingMatchingRules":[],"requestHeadersInserted":null,"responseCodeSent":null,'
    '"httpRequest":{"clientIp":"2001:db8::7","country":"ES","headers":[{"name":"host",'
    '"value":"www.example.es"}],"uri":"/café/menú","args":"","httpVersion":"HTTP/2.0",'
    '"httpMethod":"GET","requestId":"Zm9vYmFy_9f8e7d6c","fragment":"","scheme":"https",'
    '"host":"www.example.es"},"ja3Fingerprint":"e7d705a3286e19ea42f587b344ee6865",'
    '"ja4Fingerprint":"t13d1516h2_8daaf6152771_02713d6af862"}').encode()
REAL = [LAUNCH, GROUPS, CAPTCHA, CLOUDFRONT]


def batch(lines: list[bytes]) -> RecordBatch:
    key = waf_key()
    return RecordBatch(f"s3://aws-waf-logs-b/{key}", key, 0, lines)


def test_module_examples():
    assert doctest.testmod(waf).failed == 0
    assert doctest.testmod(json_lines).failed == 0


# --- keys -----------------------------------------------------------------------------


@pytest.mark.parametrize("key", [
    waf_key("us-east-1"),
    waf_key("eu-central-1", acl="api_acl-2", n=7),
    waf_key("cloudfront", acl="site"),
    waf_key("us-east-1", prefix="waf/prod/"),
    waf_key("ap-southeast-2", org=ORG),
    waf_key("cloudfront", prefix="archive/", org=ORG, account="210987654321"),
    # by hand, as AWS documents it
    "AWSLogs/111122223333/WAFLogs/us-east-1/TestWebACL/2021/10/28/19/50/"
    "111122223333_waflogs_us-east-1_TestWebACL_20211028T1950Z_e0ca43b5.log.gz",
])
def test_waf_keys_are_waf_logs(key):
    assert REGISTRY.classify(key, TYPES) == Classified("waf_logs")
    # ... and a service of the other JSON-lines types leaves them alone
    got = REGISTRY.classify(key, ["network_firewall_logs", "route53_resolver_logs"])
    assert got.kind == SKIP and "waf_logs" in got.reason


@pytest.mark.parametrize("key", [
    firewall_key("alert"), firewall_key("flow"), firewall_key("tls"), resolver_key(),
    "AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/27/"
    "123456789012_CloudTrail_us-east-1_20261127T1200Z_abc.json.gz",
])
def test_other_logs_are_not_waf_logs(key):
    assert not waf.FORMAT.matches_key(key)
    assert REGISTRY.classify(key, TYPES).kind == SKIP  # another known format's


@pytest.mark.parametrize("key", [
    # WAF logs delivered by a Firehose stream: the stream's layout, not this format
    "waf/2026/11/27/12/aws-waf-logs-stream-1-2026-11-27-12-05-31-0f1e2d3c-4b5a-6978.gz",
    # near misses: no minute folder, another extension, no account file name
    "AWSLogs/123456789012/WAFLogs/us-east-1/shop/2026/11/27/12/"
    "123456789012_waflogs_us-east-1_shop_20261127T1200Z_a1b2c3d4.log.gz",
    "AWSLogs/123456789012/WAFLogs/us-east-1/shop/2026/11/27/12/00/"
    "123456789012_waflogs_us-east-1_shop_20261127T1200Z_a1b2c3d4.json.gz",
    "AWSLogs/123456789012/WAFLogs/us-east-1/shop/2026/11/27/12/00/waflogs.log.gz",
])
def test_keys_not_in_wafs_layout_are_not_taken(key):
    assert not waf.FORMAT.matches_key(key)
    with pytest.raises(CollectorError) as err:  # nothing to sniff them with: unknown
        Registry((waf.FORMAT,)).classify(key, TYPES)
    assert err.value.code == "SRC-006"


# --- the parser -----------------------------------------------------------------------


def test_real_lines_are_their_own_messages():
    parsed = parse(batch(REAL), {})
    assert parsed.events == {TABLE: REAL}
    assert parsed.rejected == [] and parsed.skipped == {}
    # what WAF wrote, whole: the nested excluded rules, labels and CAPTCHA response
    groups = json.loads(parsed.events[TABLE][1])["ruleGroupList"]
    assert [r["ruleId"] for r in groups[0]["excludedRules"]] == [
        "SizeRestrictions_BODY", "NoUserAgent_HEADER"]
    assert json.loads(parsed.events[TABLE][2])["captchaResponse"]["responseCode"] == 405


@pytest.mark.parametrize("version", WAF_VERSIONS)
@pytest.mark.parametrize("region", ["eu-west-1", "cloudfront"])
def test_every_field_list_wafs_wrote(version, region):
    records = waf_records(300, seed=4, region=region, version=version)
    assert {r["formatVersion"] for r in records} == {1}
    lines = [compact(r) for r in records]
    parsed = parse(batch(lines), {})
    assert parsed.events == {TABLE: lines} and parsed.rejected == []
    actions = {r["action"] for r in records}
    assert {"ALLOW", "BLOCK"} <= actions
    if version >= "2022":
        assert {"CAPTCHA", "CHALLENGE"} <= actions
        assert any("captchaResponse" in r for r in records)
    if version >= "2021":
        assert any("labels" in r for r in records)
        assert any(g["excludedRules"] for r in records for g in r["ruleGroupList"])


def test_a_line_that_is_not_compact_is_sent_compact():
    record = json.loads(GROUPS)
    spaced = json.dumps(record, indent=None).encode()  # ", " and ": " between fields
    crlf = GROUPS + b"\r"
    parsed = parse(batch([spaced, crlf]), {})
    assert parsed.events == {TABLE: [compact(record), compact(record)]}


def test_escapes_are_kept_and_lone_surrogates_stay_escaped():
    escaped = LAUNCH.replace(b'"uri":"/prod/comments"', b'"uri":"/caf\\u00e9"')
    surrogate = json.loads(LAUNCH)
    surrogate["httpRequest"]["uri"] = "/\ud800"
    loose = json.dumps(surrogate).encode()  # not compact: encoded again, in ASCII
    parsed = parse(batch([escaped, loose]), {})
    first, second = parsed.events[TABLE]
    assert first == escaped
    assert b" " not in second and json.loads(second) == surrogate
    assert b"\\ud800" in second


def test_broken_lines_are_rejected_with_their_code_and_the_rest_flows():
    truncated = CAPTCHA[:300]
    lines = [LAUNCH, b"this is not json", truncated, GROUPS, b"[1, 2]", b'"a string"',
             b"null", b'{"timestamp":1,"webaclId":"x","action":"ALLOW"}',
             b'{"webaclId":"\xff"}', CLOUDFRONT]
    parsed = parse(batch(lines), {})
    assert parsed.events == {TABLE: [LAUNCH, GROUPS, CLOUDFRONT]}
    assert [(r.code, r.record) for r in parsed.rejected] == [
        ("SRC-007", b"this is not json"), ("SRC-007", truncated),
        ("SRC-008", b"[1, 2]"), ("SRC-008", b'"a string"'), ("SRC-008", b"null"),
        ("SRC-020", b'{"timestamp":1,"webaclId":"x","action":"ALLOW"}'),
        ("SRC-007", b'{"webaclId":"\xff"}')]
    assert "'httpRequest'" in parsed.rejected[5].reason
    assert "WAF log" in parsed.rejected[5].reason


def test_a_batch_of_only_broken_lines_sends_nothing():
    parsed = parse(batch([b"{", b"{}"]), {})
    assert parsed.events == {} and len(parsed.rejected) == 2


# --- collected from S3 ----------------------------------------------------------------


@pytest.mark.parametrize("flatten", [False, True])
def test_waf_objects_from_s3_to_events(embedded_aws, flatten):
    regional = waf_records(400, seed=1, region="us-east-1")  # several batches
    edge = waf_records(50, seed=2, region="cloudfront", version="2019")
    broken = [b"{not json", b"[]", b'{"action":"BLOCK"}']
    keys = {
        "regional": waf_key("us-east-1"),
        "edge": waf_key("cloudfront", acl="site", prefix="cdn/", org=ORG),
        "mixed": waf_key("us-east-1", n=2),
        "firewall": firewall_key("alert"),  # another type: skipped
        "dns": resolver_key(),  # another type: skipped
    }
    objects = {
        keys["regional"]: waf_object(regional),
        keys["edge"]: waf_object(edge),
        keys["mixed"]: lines_object([LAUNCH, *broken, CAPTCHA]),
        keys["firewall"]: firewall_object(firewall_records("alert", 5)),
        keys["dns"]: resolver_object(resolver_records(5)),
    }
    real = [json.loads(LAUNCH), json.loads(CAPTCHA)]
    events = [(TABLE, message(r, flatten)) for r in regional + edge + real]
    dead = [("SRC-007", keys["mixed"], ("{not json",)), ("SRC-008", keys["mixed"], ("[]",)),
            ("SRC-020", keys["mixed"], ('{"action":"BLOCK"}',))]
    run_collection(embedded_aws, f"aws-waf-logs-test-{int(flatten)}", objects, REGISTRY,
                   TYPES, flatten, events, dead, skipped=2)
    if flatten:  # nested objects flattened, lists kept
        flat = json.loads(message(real[1], True))
        assert flat["captchaResponse.responseCode"] == 405 and "httpRequest" not in flat
        assert isinstance(flat["httpRequest.headers"], list)
