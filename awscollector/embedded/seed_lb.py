"""Realistic sample data: Elastic Load Balancing access logs (Application, Network and
Classic load balancers) and S3 server access logs, with the keys AWS gives them.

Used by the demo, the tests and the benchmarks; deterministic for a seed::

    key = alb_key("us-east-1", 0)
    s3.put_object(Bucket="logs", Key=key, Body=alb_object(alb_lines(1000)))
    s3.put_object(Bucket="logs", Key=s3_access_key(0), Body=s3_access_object(
        s3_access_lines(1000)))

``alb_lines(n, fields=...)`` writes any of the field lists AWS shipped (17 fields at
launch up to 33 today); ``nlb_lines`` version 1.0 (18) or 2.0 (22); ``classic_lines``
12 or 15 fields; ``s3_access_lines`` 17 to 26.
"""

from __future__ import annotations

import datetime as dt
import gzip
import random

from awscollector.embedded.seed import ACCOUNT
from awscollector.transforms.elb import ALB_FIELDS, CLASSIC_FIELDS, NLB_FIELDS
from awscollector.transforms.s3_access import FIELDS as S3_FIELDS

START = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
# A canonical user id as S3 writes it (64 hex digits).
OWNER = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"

_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "curl/8.5.0",
    "ELB-HealthChecker/2.0",
)
# A user agent with quotes, escaped as the load balancers and S3 write them: in 1 line
# of 50 (they are rare).
_QUOTING_AGENT = 'python-requests/2.32.3 (probe \\"nightly\\")'


def _agent(rnd: random.Random, i: int) -> str:
    return _QUOTING_AGENT if i % 50 == 7 else rnd.choice(_AGENTS)
_PATHS = ("/", "/api/v1/orders?limit=50", "/api/v1/orders/8812", "/static/app.js",
          "/img/caf%C3%A9.png", "/login", "/health")
_METHODS = ("GET", "GET", "GET", "POST", "PUT", "DELETE")
_CIPHERS = (("ECDHE-RSA-AES128-GCM-SHA256", "TLSv1.2"), ("TLS_AES_128_GCM_SHA256", "TLSv1.3"))


def _ip(rnd: random.Random, first: str = "203.0.113") -> str:
    return f"{first}.{rnd.randrange(1, 255)}"


def _iso(when: dt.datetime, micro: bool = True) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%S")


def _q(value: str) -> str:
    return f'"{value}"'


# -- Application Load Balancer


def alb_lines(n: int, seed: int = 1, fields: int = len(ALB_FIELDS), region: str = "us-east-1",
              account: str = ACCOUNT, start: dt.datetime = START) -> list[str]:
    """n access log lines of an Application LB with the first ``fields`` fields of
    ``ALB_FIELDS`` (17, 18, 20, 25, 27, 29, 30, 33: the lists AWS shipped), a few of
    them redirects, fixed responses and WAF blocks."""
    rnd = random.Random(seed)
    lb = "app/web-prod/50dc6c495c0c9188"
    tg = f"arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/web-targets/73e2d6bc24d8a067"
    cert = f"arn:aws:acm:{region}:{account}:certificate/2a108f19-aded-46b0-8493-c63eb1ef4a99"
    out = []
    for i in range(n):
        when = start + dt.timedelta(milliseconds=137 * i)
        kind = rnd.choice(("https", "https", "h2", "http", "wss", "grpcs"))
        scheme = "http" if kind == "http" else "https"
        target = f"10.0.{rnd.randrange(4)}.{rnd.randrange(10, 250)}:{8080}"
        outcome = rnd.random()
        actions, redirect, error, status, tstatus = "forward", "-", "-", "200", "200"
        if outcome < 0.05:  # a WAF block: no target
            actions, status, tstatus, target, error = "waf", "403", "-", "-", "-"
        elif outcome < 0.08:  # HTTP to HTTPS
            actions, status, tstatus, target = "redirect", "301", "-", "-"
            redirect = f"https://www.example.com:443{_PATHS[i % len(_PATHS)]}"
        elif outcome < 0.10:
            status, tstatus, error = "502", "-", "TargetConnectionErrorReset"
        cipher, proto = rnd.choice(_CIPHERS) if scheme == "https" else ("-", "-")
        port = 443 if scheme == "https" else 80
        request = (f"{rnd.choice(_METHODS)} {scheme}://www.example.com:{port}"
                   f"{_PATHS[i % len(_PATHS)]} {'HTTP/2.0' if kind == 'h2' else 'HTTP/1.1'}")
        created = when - dt.timedelta(milliseconds=rnd.randrange(1, 900))
        values = [
            kind, _iso(when), lb, f"{_ip(rnd)}:{rnd.randrange(1024, 65535)}", target,
            "0.000", f"{rnd.random():.3f}" if tstatus != "-" else "-1", "0.000", status,
            tstatus, str(rnd.randrange(100, 4000)), str(rnd.randrange(200, 90000)),
            _q(request), _q(_agent(rnd, i)), cipher, proto,
            tg if target != "-" else "-",
            _q(f"Root=1-{int(when.timestamp()):08x}-{rnd.getrandbits(96):024x}"),
            _q("www.example.com" if scheme == "https" else "-"),
            _q(cert if scheme == "https" else "-"),
            str(rnd.choice((0, 1, 10, 20))), _iso(created), _q(actions), _q(redirect),
            _q(error), _q(target), _q(tstatus), _q("-"), _q("-"),
            f"TID_{rnd.getrandbits(128):032x}",
            _q("-"), _q("-"), _q("-"),
        ]
        if outcome > 0.97:  # a request the desync mitigation found ambiguous
            values[27:29] = [_q("Ambiguous"), _q("UndefinedContentLengthSemantics")]
        out.append(" ".join(values[:fields]))
    return out


def alb_object(lines: list[str]) -> bytes:
    """An Application LB log file as AWS writes it: lines, gzip."""
    return gzip.compress(("\n".join(lines) + "\n").encode())


def alb_key(region: str, n: int, account: str = ACCOUNT, prefix: str = "",
            org: str | None = None, when: dt.datetime | None = None,
            connection_log: bool = False) -> str:
    """``[prefix]AWSLogs/[org/]<account>/elasticloadbalancing/...app....log.gz``; with
    ``connection_log``, the key of an ALB connection log instead."""
    return _elb_key(region, n, account, prefix, org, when, "app.web-prod.50dc6c495c0c9188",
                    ".log.gz", ip=True, head="conn_log_" if connection_log else "")


def _elb_key(region: str, n: int, account: str, prefix: str, org: str | None,
             when: dt.datetime | None, lb: str, ext: str, ip: bool, head: str = "") -> str:
    when = when or START
    node = f"_10.0.{n % 4}.{10 + n % 200}" if ip else ""
    return (f"{prefix}AWSLogs/{org + '/' if org else ''}{account}/elasticloadbalancing/"
            f"{region}/{when:%Y/%m/%d}/{head}{account}_elasticloadbalancing_{region}_{lb}_"
            f"{when:%Y%m%dT%H%MZ}{node}_{n:08x}{ext}")


# -- Network Load Balancer (TLS listeners)


def nlb_lines(n: int, seed: int = 1, version: str = "2.0", region: str = "us-east-1",
              account: str = ACCOUNT, start: dt.datetime = START) -> list[str]:
    """n TLS connection records of a Network LB; version "1.0" has the first 18 fields,
    "2.0" all 22 (ALPN and the connection's creation time)."""
    rnd = random.Random(seed)
    cert = f"arn:aws:acm:{region}:{account}:certificate/2a108f19-aded-46b0-8493-c63eb1ef4a99"
    out = []
    for i in range(n):
        when = start + dt.timedelta(milliseconds=211 * i)
        failed = i % 40 == 39  # a handshake the client aborted
        cipher, proto = rnd.choice((("ECDHE-RSA-AES128-GCM-SHA256", "tlsv12"),
                                    ("TLS_AES_128_GCM_SHA256", "tlsv13")))
        values = [
            "tls", version, _iso(when, micro=False), "net/api-nlb/c6e77e28c25b2234",
            f"{rnd.getrandbits(64):016x}", f"{_ip(rnd, '198.51.100')}:{rnd.randrange(1024, 65535)}",
            f"10.0.1.{rnd.randrange(10, 250)}:443", "-" if failed else str(rnd.randrange(5, 60000)),
            "-" if failed else str(rnd.randrange(1, 40)), str(rnd.randrange(0, 5000)),
            str(rnd.randrange(0, 90000)), "0a" if failed else "-", cert,
            "-" if failed else f"{rnd.getrandbits(64):016X}",
            "-" if failed else cipher, "-" if failed else proto,
            "-" if failed else "x25519", "api.example.com",
            "h2", "h2", '"h2","http/1.1"', _iso(when - dt.timedelta(seconds=3), micro=False),
        ]
        out.append(" ".join(values[:18] if version == "1.0" else values[:len(NLB_FIELDS)]))
    return out


def nlb_object(lines: list[str]) -> bytes:
    return gzip.compress(("\n".join(lines) + "\n").encode())


def nlb_key(region: str, n: int, account: str = ACCOUNT, prefix: str = "",
            org: str | None = None, when: dt.datetime | None = None) -> str:
    return _elb_key(region, n, account, prefix, org, when, "net.api-nlb.c6e77e28c25b2234",
                    ".log.gz", ip=False)


# -- Classic Load Balancer


def classic_lines(n: int, seed: int = 1, fields: int = len(CLASSIC_FIELDS),
                  start: dt.datetime = START) -> list[str]:
    """n access log lines of a Classic LB: 12 fields (the first list) or 15; some are
    TCP listener lines (a request of dashes, no status codes)."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        when = start + dt.timedelta(milliseconds=173 * i)
        client = f"{_ip(rnd)}:{rnd.randrange(1024, 65535)}"
        backend = f"10.0.{rnd.randrange(4)}.{rnd.randrange(10, 250)}:80"
        if i % 25 == 24:  # a TCP listener: no HTTP
            values = [_iso(when), "legacy-web", client, backend, "0.000043", "0.001337",
                      "0.000057", "-", "-", "57", "502", '"- - - "', '"-"', "-", "-"]
        else:
            https = rnd.random() < 0.7
            cipher, proto = ("ECDHE-RSA-AES128-GCM-SHA256", "TLSv1.2") if https else ("-", "-")
            url = (f"{'https' if https else 'http'}://www.example.com:{443 if https else 80}"
                   f"{_PATHS[i % len(_PATHS)]}")
            values = [_iso(when), "legacy-web", client, backend, f"{rnd.random() / 1000:.6f}",
                      f"{rnd.random() / 10:.6f}", f"{rnd.random() / 1000:.6f}", "200", "200",
                      "0", str(rnd.randrange(200, 60000)),
                      _q(f"{rnd.choice(_METHODS)} {url} HTTP/1.1"), _q(_agent(rnd, i)),
                      cipher, proto]
        out.append(" ".join(values[:fields]))
    return out


def classic_object(lines: list[str]) -> bytes:
    """A Classic LB log file as AWS writes it: plain text, not compressed."""
    return ("\n".join(lines) + "\n").encode()


def classic_key(region: str, n: int, account: str = ACCOUNT, prefix: str = "",
                org: str | None = None, when: dt.datetime | None = None) -> str:
    return _elb_key(region, n, account, prefix, org, when, "legacy-web", ".log", ip=True)


# -- S3 server access logs


_S3_OPERATIONS = (
    ("REST.GET.OBJECT", "GET", 200), ("REST.PUT.OBJECT", "PUT", 200),
    ("REST.HEAD.OBJECT", "HEAD", 200), ("REST.GET.BUCKET", "GET", 200),
    ("REST.GET.OBJECT", "GET", 404), ("REST.GET.OBJECT", "GET", 403),
    ("REST.DELETE.OBJECT", "DELETE", 204),
)
_S3_KEYS = ("reports/2026/q3.pdf", "img/caf%C3%A9%20menu.jpg", "data/part-00000.parquet",
            "index.html")


def s3_access_lines(n: int, seed: int = 1, fields: int = len(S3_FIELDS),
                    bucket: str = "amzn-s3-demo-bucket1", region: str = "us-east-1",
                    account: str = ACCOUNT, start: dt.datetime = START) -> list[str]:
    """n server access records of a bucket with the first ``fields`` fields of S3's list
    (17 to 26); errors carry their code, a listing has no key (``-``)."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        when = start + dt.timedelta(milliseconds=389 * i)
        op, method, status = _S3_OPERATIONS[rnd.randrange(len(_S3_OPERATIONS))]
        key = "-" if op == "REST.GET.BUCKET" else rnd.choice(_S3_KEYS)
        uri = (f"/{bucket}?list-type=2&prefix=reports%2F" if key == "-" else f"/{bucket}/{key}")
        error = {404: "NoSuchKey", 403: "AccessDenied"}.get(status, "-")
        size = rnd.randrange(100, 5_000_000)
        sent = "-" if method in ("PUT", "DELETE", "HEAD") or error != "-" else str(size)
        requester = (f"arn:aws:iam::{account}:user/analyst" if rnd.random() < 0.7
                     else f"arn:aws:sts::{account}:assumed-role/etl/i-0abc")
        values = [
            OWNER, bucket, when.strftime("[%d/%b/%Y:%H:%M:%S +0000]"), _ip(rnd, "192.0.2"),
            requester, f"{rnd.getrandbits(64):016X}", op, key,
            _q(f"{method} {uri} HTTP/1.1"), str(status), error, sent,
            str(size) if key != "-" else "-", str(rnd.randrange(1, 400)),
            str(rnd.randrange(1, 50)), _q("-"), _q(_agent(rnd, i)),
            "-", f"{rnd.getrandbits(240):060x}", "SigV4", "TLS_AES_128_GCM_SHA256",
            "AuthHeader", f"{bucket}.s3.{region}.amazonaws.com", "TLSv1.3", "-",
            "Yes" if i % 30 == 0 else "-",
        ]
        out.append(" ".join(values[:fields]))
    return out


def s3_access_object(lines: list[str]) -> bytes:
    """An S3 server access log object as S3 writes it: plain text, not compressed."""
    return ("\n".join(lines) + "\n").encode()


def s3_access_key(n: int, prefix: str = "s3-access/", partitioned: bool = False,
                  account: str = ACCOUNT, region: str = "us-east-1",
                  bucket: str = "amzn-s3-demo-bucket1", when: dt.datetime | None = None) -> str:
    """``<prefix>YYYY-mm-DD-HH-MM-SS-<16 hex>``, or with ``partitioned`` the date-based
    form ``<prefix><account>/<region>/<bucket>/YYYY/MM/DD/<name>``."""
    when = (when or START) + dt.timedelta(seconds=n)
    name = f"{when:%Y-%m-%d-%H-%M-%S}-{random.Random(n).getrandbits(64):016X}"
    if partitioned:
        return f"{prefix}{account}/{region}/{bucket}/{when:%Y/%m/%d}/{name}"
    return prefix + name
