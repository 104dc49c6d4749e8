"""Realistic sample objects of AWS Config and of CloudWatch Logs delivered by Firehose.

Each kind has a generator of records (deterministic: ``random.Random(seed)``), a
function that writes them as AWS does (bytes, gzip'd as AWS gzips them), and one
that gives AWS's key for them. Used by the tests and the demo::

    items = config_items(500)
    s3.put_object(Bucket=b, Key=config_snapshot_key("us-east-1"),
                  Body=config_snapshot_object(items))
    payloads = [subscription_payload("/app/web", "i-0abc", log_events(100, seed=s))
                for s in range(3)]
    s3.put_object(Bucket=b, Key=firehose_key("logs-to-s3"), Body=firehose_object(payloads))
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import random
import uuid

from awscollector.embedded.seed import ACCOUNT

_WHEN = dt.datetime(2026, 11, 27, 12, 5, 31, tzinfo=dt.UTC)


# -- AWS Config

_RESOURCE_TYPES = ("AWS::EC2::Instance", "AWS::EC2::SecurityGroup", "AWS::S3::Bucket",
                   "AWS::IAM::Role", "AWS::EC2::NetworkInterface")


def _ci_time(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _configuration(kind: str, rid: str, rnd: random.Random, region: str) -> tuple[dict, str]:
    """(configuration, resource name) of one resource, in the shape Config records it."""
    if kind == "AWS::EC2::Instance":
        return {"instanceId": rid, "imageId": f"ami-{rnd.getrandbits(64):017x}"[:21],
                "instanceType": rnd.choice(("t3.micro", "m5.large", "c6i.xlarge")),
                "privateIpAddress": f"10.0.{rnd.randrange(256)}.{rnd.randrange(1, 255)}",
                "state": {"code": 16, "name": "running"},
                "placement": {"availabilityZone": f"{region}a", "tenancy": "default"},
                "securityGroups": [{"groupName": "web", "groupId": "sg-0a1b2c3d4e5f60718"}],
                "monitoring": {"state": "disabled"}}, None
    if kind == "AWS::EC2::SecurityGroup":
        port = rnd.choice((22, 80, 443, 5432))
        return {"groupId": rid, "groupName": f"sg-app-{port}", "description": "app tier",
                "ipPermissions": [{"fromPort": port, "toPort": port, "ipProtocol": "tcp",
                                   "ipv4Ranges": [{"cidrIp": "10.0.0.0/16"}]}],
                "vpcId": "vpc-0f1e2d3c4b5a69788"}, f"sg-app-{port}"
    if kind == "AWS::S3::Bucket":
        return {"name": rid, "owner": {"displayName": None, "id": f"{rnd.getrandbits(128):032x}"},
                "creationDate": "2025-03-04T10:11:12.000Z"}, rid
    if kind == "AWS::IAM::Role":
        return {"roleName": rid, "path": "/service-role/",
                "assumeRolePolicyDocument": "%7B%22Version%22%3A%222012-10-17%22%7D",
                "attachedManagedPolicies": [{"policyName": "ReadOnlyAccess",
                                             "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}]
                }, rid
    return {"networkInterfaceId": rid, "status": "in-use", "interfaceType": "interface",
            "privateIpAddress": f"10.0.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"}, None


def config_items(n: int, seed: int = 1, region: str = "us-east-1", account: str = ACCOUNT,
                 resource_type: str | None = None, when: dt.datetime = _WHEN) -> list[dict]:
    """n configuration items (version 1.3), of one resource type or a mix."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        kind = resource_type or _RESOURCE_TYPES[i % len(_RESOURCE_TYPES)]
        suffix = f"{rnd.getrandbits(68):017x}"
        rid = {"AWS::EC2::Instance": f"i-{suffix}", "AWS::EC2::SecurityGroup": f"sg-{suffix}",
               "AWS::S3::Bucket": f"app-data-{suffix[:8]}", "AWS::IAM::Role": f"app-role-{i}",
               }.get(kind, f"eni-{suffix}")
        configuration, name = _configuration(kind, rid, rnd, region)
        service = kind.split("::")[1].lower()
        arn_region = "" if service in ("s3", "iam") else region
        arn_account = "" if service == "s3" else account
        path = rid if service == "s3" else f"{kind.split('::')[2].lower()}/{rid}"
        captured = when - dt.timedelta(seconds=rnd.randrange(6 * 3600))
        out.append({
            "relatedEvents": [], "relationships": [],
            "configuration": configuration,
            "supplementaryConfiguration": {},
            "tags": {"env": rnd.choice(("prod", "staging")), "team": "platform"},
            "configurationItemVersion": "1.3",
            "configurationItemCaptureTime": _ci_time(captured),
            "configurationStateId": 1_790_000_000_000 + i,
            "awsAccountId": account,
            "configurationItemStatus": rnd.choice(("OK", "OK", "ResourceDiscovered")),
            "resourceType": kind,
            "resourceId": rid,
            "resourceName": name,
            "ARN": f"arn:aws:{service}:{arn_region}:{arn_account}:{path}",
            "awsRegion": region,
            "availabilityZone": f"{region}a" if service == "ec2" else "Not Applicable",
            "configurationStateMd5Hash": "",
            "resourceCreationTime": "2025-03-04T10:11:12.000Z",
        })
    return out


def config_history_object(items: list) -> bytes:
    """A ConfigHistory file as Config writes it: one JSON document, gzip."""
    text = json.dumps({"fileVersion": "1.0", "configurationItems": items},
                      separators=(",", ":"), ensure_ascii=False)
    return gzip.compress(text.encode())


def config_snapshot_object(items: list, snapshot_id: str | None = None) -> bytes:
    """A ConfigSnapshot file: its id before the items, one JSON document, gzip."""
    doc = {"fileVersion": "1.0",
           "configSnapshotId": snapshot_id or "a1b2c3d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
           "configurationItems": items}
    return gzip.compress(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode())


def _config_prefix(region: str, account: str, prefix: str, org: str | None,
                   when: dt.datetime) -> str:
    org_part = f"{org}/" if org else ""
    return (f"{prefix}AWSLogs/{org_part}{account}/Config/{region}/"
            f"{when.year}/{when.month}/{when.day}/")  # no leading zeros, as Config writes


def config_history_key(region: str, resource_type: str = "AWS::EC2::Instance",
                       account: str = ACCOUNT, prefix: str = "", org: str | None = None,
                       when: dt.datetime = _WHEN, n: int = 1) -> str:
    """AWS's key of a ConfigHistory file (``org``: ``o-...`` for an organization)."""
    start = when.replace(minute=0, second=0) - dt.timedelta(hours=6)
    return (f"{_config_prefix(region, account, prefix, org, when)}ConfigHistory/"
            f"{account}_Config_{region}_ConfigHistory_{resource_type}_"
            f"{start:%Y%m%dT%H%M%SZ}_{when:%Y%m%dT%H%M%SZ}_{n}.json.gz")


def config_snapshot_key(region: str, account: str = ACCOUNT, prefix: str = "",
                        org: str | None = None, when: dt.datetime = _WHEN,
                        snapshot_id: str | None = None) -> str:
    """AWS's key of a ConfigSnapshot file."""
    snapshot_id = snapshot_id or "a1b2c3d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
    return (f"{_config_prefix(region, account, prefix, org, when)}ConfigSnapshot/"
            f"{account}_Config_{region}_ConfigSnapshot_{when:%Y%m%dT%H%M%SZ}_"
            f"{snapshot_id}.json.gz")


def config_writability_key(account: str = ACCOUNT, prefix: str = "",
                           org: str | None = None) -> str:
    """The object Config writes once, when delivery is set up, to check it may write."""
    org_part = f"{org}/" if org else ""
    return f"{prefix}AWSLogs/{org_part}{account}/Config/ConfigWritabilityCheckFile"


# -- CloudWatch Logs through Firehose

_APP_LINES = (
    '{"level":"info","msg":"request served","path":"/api/orders","status":200,"ms":%d}',
    "START RequestId: %s Version: $LATEST",
    '10.0.1.%d - - [27/Nov/2026:12:05:31 +0000] "GET /health HTTP/1.1" 200 2 "-" "ELB-Health"',
    "ERROR Unable to reach payments backend (attempt %d)",
)


def log_events(n: int, seed: int = 1, start_ms: int = 1_795_000_000_000,
               messages: list[str] | None = None) -> list[dict]:
    """n log events as a subscription gives them: id (56 digits), timestamp, message.
    ``messages`` gives their messages (VPC Flow Logs lines, say); else app logs."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        ts = start_ms + i * 37
        if messages is not None:
            message = messages[i % len(messages)]
        else:
            template = _APP_LINES[i % len(_APP_LINES)]
            arg = str(uuid.UUID(int=rnd.getrandbits(128))) if "%s" in template else \
                rnd.randrange(1, 250)
            message = template % arg
        event_id = f"{ts}{rnd.getrandbits(128):039d}"[:56].ljust(56, "0")
        out.append({"id": event_id, "timestamp": ts, "message": message})
    return out


def subscription_payload(group: str, stream: str, events: list[dict],
                         account: str = ACCOUNT, filters: tuple[str, ...] = ("to-firehose",)
                         ) -> dict:
    """The document CloudWatch Logs sends a subscription for a batch of events."""
    return {"messageType": "DATA_MESSAGE", "owner": account, "logGroup": group,
            "logStream": stream, "subscriptionFilters": list(filters), "logEvents": events}


def control_payload() -> dict:
    """The document CloudWatch Logs sends to check a new destination is reachable."""
    return {"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs",
            "logGroup": "", "logStream": "", "subscriptionFilters": [],
            "logEvents": [{"id": "", "timestamp": 1_795_000_000_000,
                           "message": "CWL CONTROL MESSAGE: Checking health of destination "
                                      "Firehose."}]}


def firehose_object(payloads: list[dict], decompressed: bool = False, newline: bool = False,
                    compressed: bool = False) -> bytes:
    """A Firehose object of subscription payloads: each gzip'd by CloudWatch Logs and
    concatenated as they are (the default); ``decompressed``: as plain JSON documents
    (the stream's record decompression), ``newline`` after each; ``compressed``: the
    stream's own GZIP compression over it all."""
    parts = []
    for p in payloads:
        text = json.dumps(p, separators=(",", ":"), ensure_ascii=False).encode()
        if decompressed:
            parts.append(text + b"\n" if newline else text)
        else:
            parts.append(gzip.compress(text))
    body = b"".join(parts)
    return gzip.compress(body) if compressed else body


def firehose_key(stream: str = "logs-to-s3", prefix: str = "", when: dt.datetime = _WHEN,
                 version: int = 1, n: int = 0, extension: str = "") -> str:
    """Firehose's key: ``<prefix>YYYY/MM/DD/HH/<stream>-<version>-<time>-<uuid>``."""
    digest = hashlib.md5(f"{stream}{when}{n}".encode(), usedforsecurity=False).hexdigest()
    return (f"{prefix}{when:%Y/%m/%d/%H}/{stream}-{version}-{when:%Y-%m-%d-%H-%M-%S}-"
            f"{uuid.UUID(digest)}{extension}")
