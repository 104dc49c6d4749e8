"""Realistic sample logs that AWS writes to S3 as lines of JSON: AWS WAF, AWS Network
Firewall (alert, flow and TLS logs) and Route 53 VPC Resolver query logs, with the keys
AWS gives them. Deterministic for a seed; used by the demo, the tests and benchmarks::

    s3.put_object(Bucket="logs", Key=waf_key("us-east-1"), Body=waf_object(waf_records(500)))
    s3.put_object(Bucket="logs", Key=firewall_key("alert"),
                  Body=firewall_object(firewall_records("alert", 200)))
    s3.put_object(Bucket="logs", Key=resolver_key(), Body=resolver_object(
        resolver_records(1000)))

``waf_records(n, version=...)`` writes the fields WAF logged in each period
(``WAF_VERSIONS``: the launch fields, then labels and inserted headers, CAPTCHA and
challenge responses, JA3, then JA4, scheme, host and fragment), all ``formatVersion`` 1.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random

from awscollector.embedded.seed import ACCOUNT, json_lines_object

START = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "curl/8.5.0",
    "python-requests/2.32.3",
)
_COUNTRIES = ("US", "DE", "ES", "BR", "IN", "JP", "GB", "FR", "NL", "SG")


def _hash(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:8]


def _uuid(rnd: random.Random) -> str:
    h = f"{rnd.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _prefix(prefix: str, org: str | None, account: str) -> str:
    return f"{prefix}AWSLogs/{org + '/' if org else ''}{account}/"


# -- AWS WAF

# The fields WAF logs, by the period they appeared in (all formatVersion 1).
WAF_VERSIONS = ("2019", "2021", "2022", "2023", "2025")
_WAF_ACL_ID = "a1b2c3d4-5e6f-4a0b-9c8d-7e6f5a4b3c2d"
_WAF_PATHS = (("/", ""), ("/api/v1/cart", "id=8812"), ("/login", ""), ("/search", "q=shoes"),
              ("/static/app.js", "v=3"), ("/wp-admin/install.php", ""),
              ("/api/v1/items", "filter=1%27%20OR%20%271%27=%271"))


def waf_records(n: int, seed: int = 1, region: str = "us-east-1", acl: str = "shop-web-acl",
                version: str = WAF_VERSIONS[-1], account: str = ACCOUNT,
                start: dt.datetime = START) -> list[dict]:
    """n WAF log records of web ACL ``acl`` (``region`` "cloudfront" for a CloudFront
    one), with the fields of ``version`` (one of ``WAF_VERSIONS``): most allowed by
    the default action, some blocked by a managed rule group (with excluded rules),
    a rate-based rule or a SQL injection rule, some CAPTCHA and challenge actions."""
    if version not in WAF_VERSIONS:
        raise ValueError(f"unknown WAF log version {version!r}: one of {WAF_VERSIONS}")
    era = WAF_VERSIONS.index(version)
    rnd = random.Random(seed)
    cloudfront = region == "cloudfront"
    scope = "global" if cloudfront else "regional"
    arn_region = "us-east-1" if cloudfront else region
    acl_arn = f"arn:aws:wafv2:{arn_region}:{account}:{scope}/webacl/{acl}/{_WAF_ACL_ID}"
    source = ("CF", "E1A2B3C4D5E6F7") if cloudfront else (
        "ALB", f"{account}-app/web-prod/50dc6c495c0c9188")
    out = []
    for i in range(n):
        when = start + dt.timedelta(milliseconds=211 * i)
        path, args = rnd.choice(_WAF_PATHS)
        method = "POST" if path in ("/login", "/api/v1/cart") else "GET"
        agent = rnd.choice(_AGENTS)
        host = "shop.example.com"
        headers = [{"name": "Host", "value": host}, {"name": "User-Agent", "value": agent},
                   {"name": "Accept", "value": "*/*"}]
        if rnd.random() < 0.3:
            headers.append({"name": "Cookie", "value": "session=REDACTED"})
        outcome = rnd.choices(("allow", "managed", "rate", "sqli", "captcha", "challenge"),
                              (70, 10, 6, 6, 5, 3))[0]
        if era < 2 and outcome in ("captcha", "challenge"):
            outcome = "allow"  # no CAPTCHA action before 2021's end
        record: dict = {
            "timestamp": int(when.timestamp() * 1000), "formatVersion": 1,
            "webaclId": acl_arn, "terminatingRuleId": "Default_Action",
            "terminatingRuleType": "REGULAR", "action": "ALLOW",
            "terminatingRuleMatchDetails": [], "httpSourceName": source[0],
            "httpSourceId": source[1], "ruleGroupList": [], "rateBasedRuleList": [],
            "nonTerminatingMatchingRules": [],
        }
        groups = [{"ruleGroupId": "AWS#AWSManagedRulesCommonRuleSet", "terminatingRule": None,
                   "nonTerminatingMatchingRules": [], "excludedRules": None}]
        labels = []
        if era >= 1 and rnd.random() < 0.3:  # excluded rules: counted, not terminating
            groups[0]["excludedRules"] = [
                {"exclusionType": "EXCLUDED_AS_COUNT", "ruleId": "SizeRestrictions_BODY"},
                {"exclusionType": "EXCLUDED_AS_COUNT", "ruleId": "NoUserAgent_HEADER"}]
        if outcome == "managed":
            rule = "GenericLFI_QUERYARGUMENTS" if args else "RestrictedExtensions_URIPATH"
            groups[0]["terminatingRule"] = {"ruleId": rule, "action": "BLOCK",
                                            "ruleMatchDetails": None}
            record.update(terminatingRuleId="AWS-AWSManagedRulesCommonRuleSet",
                          terminatingRuleType="MANAGED_RULE_GROUP", action="BLOCK")
            labels.append(f"awswaf:managed:aws:core-rule-set:{rule.split('_')[0]}")
        elif outcome == "rate":
            record.update(terminatingRuleId="RateLimit-IP", terminatingRuleType="RATE_BASED",
                          action="BLOCK")
            record["rateBasedRuleList"] = [{
                "rateBasedRuleId": f"{acl_arn}/ratebasedrule/RateLimit-IP",
                "rateBasedRuleName": "RateLimit-IP", "limitKey": "IP",
                "maxRateAllowed": 2000}]
            if era >= 3:
                record["rateBasedRuleList"][0].update(evaluationWindowSec="300",
                                                      customValues=[])
        elif outcome == "sqli":
            record.update(terminatingRuleId="Block-SQLi", action="BLOCK")
            detail = {"conditionType": "SQL_INJECTION", "location": "QUERY_STRING",
                      "matchedData": ["1'", "OR", "'1'='1"]}
            if era >= 1:
                detail["sensitivityLevel"] = "HIGH"
            record["terminatingRuleMatchDetails"] = [detail]
        elif outcome in ("captcha", "challenge"):
            rule = "Captcha-Login" if outcome == "captcha" else "Challenge-Bots"
            record.update(terminatingRuleId=rule, action=outcome.upper())
            labels.append(f"awswaf:{account}:webacl:{acl}:{outcome}")
        if rnd.random() < 0.15:  # a rule in count mode matched too
            record["nonTerminatingMatchingRules"] = [{
                "ruleId": "Count-Bots", "action": "COUNT", "ruleMatchDetails": []}]
            if era >= 1:
                labels.append("awswaf:managed:aws:bot-control:bot:category:http_library")
        record["ruleGroupList"] = groups
        if era >= 1:
            record["requestHeadersInserted"] = None
            record["responseCodeSent"] = 403 if record["action"] == "BLOCK" and \
                rnd.random() < 0.2 else None
        request = {"clientIp": f"198.51.100.{rnd.randrange(1, 255)}",
                   "country": rnd.choice(_COUNTRIES), "headers": headers, "uri": path,
                   "args": args, "httpVersion": rnd.choice(("HTTP/1.1", "HTTP/2.0")),
                   "httpMethod": method, "requestId": _uuid(rnd)}
        if era >= 4:
            request.update(fragment="", scheme="https", host=host)
        record["httpRequest"] = request
        if era >= 1 and labels:
            record["labels"] = [{"name": name} for name in labels]
        if era >= 2:
            solved = int(when.timestamp()) - rnd.randrange(30, 600)
            if outcome == "captcha":
                record["captchaResponse"] = (
                    {"responseCode": 405, "failureReason": "TOKEN_MISSING"}
                    if rnd.random() < 0.5 else {"responseCode": 0, "solveTimestamp": solved})
            if outcome == "challenge":
                record["challengeResponse"] = {"responseCode": 202,
                                               "failureReason": "TOKEN_MISSING"}
        if method == "POST" and era >= 3:
            size = rnd.randrange(80, 20000)
            record.update(requestBodySize=size, requestBodySizeInspectedByWAF=min(size, 16384))
        if era >= 3:
            record["ja3Fingerprint"] = f"{rnd.getrandbits(128):032x}"
        if era >= 4:
            record["ja4Fingerprint"] = (f"t13d{rnd.randrange(10, 20)}{rnd.randrange(10, 20)}h2_"
                                        f"{rnd.getrandbits(48):012x}_{rnd.getrandbits(48):012x}")
        out.append(record)
    return out


def waf_object(records: list[dict]) -> bytes:
    """A WAF log file: one compact JSON record a line, gzip'd."""
    return json_lines_object(records)


def waf_key(region: str = "us-east-1", acl: str = "shop-web-acl", n: int = 0,
            account: str = ACCOUNT, prefix: str = "", org: str | None = None,
            when: dt.datetime = START) -> str:
    """``[prefix]AWSLogs/[org/]<account>/WAFLogs/<region>/<acl>/YYYY/MM/DD/HH/mm/...``
    (``region`` "cloudfront" for a CloudFront web ACL)."""
    return (f"{_prefix(prefix, org, account)}WAFLogs/{region}/{acl}/{when:%Y/%m/%d/%H/%M}/"
            f"{account}_waflogs_{region}_{acl}_{when:%Y%m%dT%H%MZ}_"
            f"{_hash('waf', region, acl, n)}.log.gz")


# -- AWS Network Firewall

FIREWALL_KINDS = ("alert", "flow", "tls")
# (signature id, signature, category, severity, action), by the flow's application
_SIGNATURES = {
    "tls": ((4, "aws:alert_established action", "", 3, "allowed"),
            (1000011, "Block TLS to unapproved domains", "", 1, "blocked")),
    "http": ((2100498, "GPL ATTACK_RESPONSE id check returned root",
              "Potentially Bad Traffic", 2, "blocked"),
             (1000003, "Deny all other TCP traffic", "", 3, "blocked")),
    "dns": ((2027865, "ET INFO Observed DNS Query to .cloud TLD",
             "Potentially Bad Traffic", 2, "allowed"),),
    "ssh": ((1000003, "Deny all other TCP traffic", "", 3, "blocked"),),
}
_SNIS = ("sqs.us-east-1.amazonaws.com", "api.github.com", "updates.example.net")


def _eve_time(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f+0000")


def firewall_records(kind: str, n: int, seed: int = 1, firewall: str = "inspection-fw",
                     region: str = "us-east-1", start: dt.datetime = START) -> list[dict]:
    """n records of a Network Firewall log of ``kind`` (alert, flow or tls): alerts
    with HTTP or TLS details, netflow records with TCP flags, TLS inspection events."""
    if kind not in FIREWALL_KINDS:
        raise ValueError(f"unknown Network Firewall log type {kind!r}: one of {FIREWALL_KINDS}")
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        when = start + dt.timedelta(milliseconds=347 * i)
        dest_port = rnd.choice((443, 443, 80, 53, 22))
        proto = "UDP" if dest_port == 53 else "TCP"
        event: dict = {
            "timestamp": _eve_time(when), "flow_id": rnd.getrandbits(50),
            "event_type": {"alert": "alert", "flow": "netflow", "tls": "tls"}[kind],
            "src_ip": f"10.0.{rnd.randrange(4)}.{rnd.randrange(10, 250)}",
            "src_port": rnd.randrange(1024, 65535),
            "dest_ip": f"203.0.113.{rnd.randrange(1, 255)}", "dest_port": dest_port,
            "proto": proto,
        }
        app = {443: "tls", 80: "http", 53: "dns", 22: "ssh"}[dest_port]
        if kind == "alert":
            sid, signature, category, severity, action = rnd.choice(_SIGNATURES[app])
            event["app_proto"] = app
            event["alert"] = {"action": action, "signature_id": sid, "rev": 1,
                              "signature": signature, "category": category,
                              "severity": severity}
            if app == "http":
                event["http"] = {"hostname": event["dest_ip"], "url": "/",
                                 "http_user_agent": rnd.choice(_AGENTS), "http_method": "GET",
                                 "protocol": "HTTP/1.1", "length": 0}
            elif app == "tls":
                event["tls"] = {"sni": rnd.choice(_SNIS), "version": "TLS 1.3", "ja3": {},
                                "ja3s": {}}
            if action == "blocked" and rnd.random() < 0.5:
                event["verdict"] = {"action": "drop"}
        elif kind == "flow":
            packets = rnd.randrange(1, 400)
            age = rnd.randrange(0, 120)
            begin = when - dt.timedelta(seconds=age)
            event["netflow"] = {"pkts": packets, "bytes": packets * rnd.randrange(40, 1500),
                                "start": _eve_time(begin), "end": _eve_time(when),
                                "age": age, "min_ttl": 63, "max_ttl": 64}
            if proto == "TCP":
                event["tcp"] = {"tcp_flags": "1b", "syn": True, "fin": True, "psh": True,
                                "ack": True}
                if rnd.random() < 0.6:
                    event["app_proto"] = app
        else:
            event["tls"] = {"sni": rnd.choice(_SNIS), "version": "TLS 1.2",
                            "subject": "CN=updates.example.net",
                            "issuerdn": "C=US, O=Example, CN=Example CA"}
            event["tls_inspection"] = {"revocation_status": "good"}
        out.append({"firewall_name": firewall, "availability_zone": f"{region}a",
                    "event_timestamp": str(int(when.timestamp())), "event": event})
    return out


def firewall_object(records: list[dict]) -> bytes:
    """A Network Firewall log file: one compact JSON record a line, gzip'd."""
    return json_lines_object(records)


def firewall_key(kind: str = "alert", region: str = "us-east-1", firewall: str = "inspection-fw",
                 n: int = 0, account: str = ACCOUNT, prefix: str = "", org: str | None = None,
                 when: dt.datetime = START) -> str:
    """``[prefix]AWSLogs/[org/]<account>/network-firewall/<kind>/<region>/<firewall>/
    YYYY/MM/DD/HH/...``."""
    return (f"{_prefix(prefix, org, account)}network-firewall/{kind}/{region}/{firewall}/"
            f"{when:%Y/%m/%d/%H}/{account}_network-firewall_{kind}_{region}_{firewall}_"
            f"{when:%Y%m%dT%H%MZ}_{_hash('nfw', kind, region, firewall, n)}.log.gz")


# -- Route 53 VPC Resolver query logs

VPC = "vpc-0a1b2c3d4e5f60718"
_QUERIES = (("api.example.com.", "A", ["198.51.100.20"]),
            ("s3.us-east-1.amazonaws.com.", "A", ["52.217.1.10", "52.217.1.11"]),
            ("www.example.org.", "AAAA", ["2001:db8::1"]),
            ("does-not-exist.example.com.", "A", None),
            ("20.100.51.198.in-addr.arpa.", "PTR", ["ip-198-51-100-20.ec2.internal."]),
            ("_ldap._tcp.corp.example.com.", "SRV", ["0 100 389 dc1.corp.example.com."]),
            ("malware.bad-domain.example.", "A", []))


def resolver_records(n: int, seed: int = 1, vpc: str = VPC, region: str = "us-east-1",
                     account: str = ACCOUNT, start: dt.datetime = START) -> list[dict]:
    """n Resolver query log records: answered queries (with CNAME chains), NXDOMAIN
    without answers, queries from instances and through inbound Resolver endpoints, and
    queries a DNS Firewall rule blocked."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        when = start + dt.timedelta(milliseconds=97 * i)
        name, qtype, data = rnd.choice(_QUERIES)
        record: dict = {
            "version": "1.100000", "account_id": account, "region": region, "vpc_id": vpc,
            "query_timestamp": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "query_name": name,
            "query_type": qtype, "query_class": "IN",
            "rcode": "NXDOMAIN" if data is None else "NOERROR", "answers": [],
            "srcaddr": f"10.0.{rnd.randrange(4)}.{rnd.randrange(10, 250)}",
            "srcport": str(rnd.randrange(1024, 65535)),
            "transport": "TCP" if qtype == "SRV" else "UDP",
        }
        if data and qtype == "A" and rnd.random() < 0.3:  # reached through a CNAME
            record["answers"].append({"Rdata": f"edge.{name}", "Type": "CNAME", "Class": "IN"})
        for value in data or ():
            record["answers"].append({"Rdata": value, "Type": qtype, "Class": "IN"})
        if rnd.random() < 0.15:
            record["srcids"] = {"resolver_endpoint": "rslvr-in-0a1b2c3d4e5f60718",
                                "resolver_network_interface": "rni-0a1b2c3d4e5f60718"}
        else:
            record["srcids"] = {"instance": f"i-0{rnd.getrandbits(64):016x}"}
        if data == []:  # DNS Firewall blocked it
            record.update(firewall_rule_action="BLOCK",
                          firewall_rule_group_id="rslvr-frg-0a1b2c3d4e5f6071",
                          firewall_domain_list_id="rslvr-fdl-0a1b2c3d4e5f6071")
        out.append(record)
    return out


def resolver_object(records: list[dict]) -> bytes:
    """A Resolver query log file: one compact JSON record a line, gzip'd."""
    return json_lines_object(records)


def resolver_key(vpc: str = VPC, n: int = 0, account: str = ACCOUNT, prefix: str = "",
                 org: str | None = None, when: dt.datetime = START) -> str:
    """``[prefix]AWSLogs/[org/]<account>/vpcdnsquerylogs/<vpc>/YYYY/MM/DD/...``."""
    return (f"{_prefix(prefix, org, account)}vpcdnsquerylogs/{vpc}/{when:%Y/%m/%d}/"
            f"{account}_vpcdnsquerylogs_{vpc}_{when:%Y%m%dT%H%MZ}_"
            f"{_hash('r53', vpc, n)}.log.gz")
