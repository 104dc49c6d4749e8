"""Realistic sample data for the embedded AWS: VPC Flow Logs announced by S3 notifications.

Used by ``aws-collector demo``, the tests and the benchmarks. Everything is made
through the AWS APIs (boto3 over HTTP), as AWS itself would leave it.

Usage::

    with EmbeddedAws() as aws:
        url = create_s3_sqs(aws.client("s3"), aws.client("sqs"), "logs-bucket", "logs")
        put_vpc_object(aws.client("s3"), "logs-bucket", "123456789012", "us-east-1", 0,
                       vpc_flow_lines(1000))
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
import uuid

from awscollector.transforms.vpcflow import DEFAULT_FIELDS, INTEGER_FIELDS, TGW_FIELDS

ACCOUNT = "123456789012"

# A custom format with fields of versions 3 to 5 (as a user might configure it).
CUSTOM_FIELDS = ("version", "vpc-id", "subnet-id", "instance-id", "interface-id", "account-id",
                 "type", "srcaddr", "dstaddr", "srcport", "dstport", "pkt-srcaddr",
                 "pkt-dstaddr", "protocol", "bytes", "packets", "start", "end", "action",
                 "tcp-flags", "log-status", "region", "az-id", "flow-direction")


def vpc_flow_lines(n: int, fields: tuple[str, ...] = DEFAULT_FIELDS, seed: int = 1,
                   start: int = 1_795_000_000, region: str = "us-east-1") -> list[str]:
    """n records in the given format; about 1 in 50 is a NODATA or SKIPDATA record."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        t0 = start + i // 100
        status = "OK"
        if i % 50 == 49:
            status = "NODATA" if i % 100 == 99 else "SKIPDATA"
        values = {
            "version": "5" if fields != DEFAULT_FIELDS else "2",
            "account-id": ACCOUNT,
            "interface-id": f"eni-{rnd.getrandbits(64):016x}"[:21],
            "srcaddr": f"10.0.{rnd.randrange(256)}.{rnd.randrange(1, 255)}",
            "dstaddr": f"172.31.{rnd.randrange(256)}.{rnd.randrange(1, 255)}",
            "srcport": str(rnd.choice((443, 80, 22, 53, rnd.randrange(1024, 65535)))),
            "dstport": str(rnd.randrange(1024, 65535)),
            "protocol": rnd.choice(("6", "17", "1")),
            "packets": str(rnd.randrange(1, 500)),
            "bytes": str(rnd.randrange(40, 500_000)),
            "start": str(t0), "end": str(t0 + 60),
            "action": rnd.choice(("ACCEPT", "ACCEPT", "ACCEPT", "REJECT")),
            "log-status": status,
            "vpc-id": "vpc-0f1e2d3c4b5a69788", "subnet-id": "subnet-0a9b8c7d6e5f40312",
            "instance-id": f"i-{rnd.getrandbits(60):015x}"[:19], "type": "IPv4",
            "tcp-flags": rnd.choice(("2", "18", "19", "3")),
            "region": region, "az-id": "use1-az1",
            "flow-direction": rnd.choice(("ingress", "egress")),
        }
        values["pkt-srcaddr"], values["pkt-dstaddr"] = values["srcaddr"], values["dstaddr"]
        if status != "OK":
            keep = {"version", "account-id", "interface-id", "start", "end", "log-status",
                    "vpc-id", "subnet-id", "instance-id", "region", "az-id"}
            values = {k: (v if k in keep else "-") for k, v in values.items()}
        out.append(" ".join(values.get(f, "-") for f in fields))
    return out


def vpc_object(lines: list[str], fields: tuple[str, ...] = DEFAULT_FIELDS,
               compresslevel: int = 6) -> bytes:
    """A VPC Flow Logs file as AWS writes it: header line, records, gzip."""
    text = " ".join(fields) + "\n" + "\n".join(lines) + "\n"
    return gzip.compress(text.encode(), compresslevel=compresslevel)


def vpc_key(region: str, n: int, account: str = ACCOUNT, prefix: str = "",
            when: dt.datetime | None = None) -> str:
    when = when or dt.datetime(2026, 11, 27, 12, 5, tzinfo=dt.UTC)
    stamp = when.strftime("%Y%m%dT%H%MZ")
    return (f"{prefix}AWSLogs/{account}/vpcflowlogs/{region}/{when:%Y/%m/%d}/"
            f"{account}_vpcflowlogs_{region}_fl-0abc{n:04d}_{stamp}_{n:08x}.log.gz")


def create_s3_sqs(s3, sqs, bucket: str, queue: str, region: str = "us-east-1") -> str:
    """A bucket whose ObjectCreated events go to a queue; returns the queue URL.

    Like AWS, the bucket first sends an ``s3:TestEvent`` to the queue.
    """
    url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "sqs:SendMessage", "Resource": arn}]}
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    kwargs = {}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(Bucket=bucket, **kwargs)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    return url


def put_vpc_object(s3, bucket: str, region: str, n: int, lines: list[str],
                   fields: tuple[str, ...] = DEFAULT_FIELDS) -> str:
    """Writes one VPC Flow Logs object (its notification follows); returns its key."""
    key = vpc_key(region, n)
    s3.put_object(Bucket=bucket, Key=key, Body=vpc_object(lines, fields))
    return key


# -- VPC Flow Logs in Parquet, and Transit Gateway flow logs (non-cloudwatch-logs)

# Integer fields AWS writes as Parquet INT_64; the other integer fields are INT_32.
_PARQUET_INT64 = frozenset({"packets", "bytes", "start", "end", "packets-lost-no-route",
                            "packets-lost-blackhole", "packets-lost-mtu-exceeded",
                            "packets-lost-ttl-expired"})


def tgw_flow_lines(n: int, fields: tuple[str, ...] = TGW_FIELDS, seed: int = 1,
                   start: int = 1_795_000_000, region: str = "us-east-1") -> list[str]:
    """n Transit Gateway flow records between two spoke VPCs; about 1 in 20 lost some
    packets (no route, blackhole, MTU, TTL: the far side then is "-"), 1 in 50 NODATA."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        t0 = start + i // 100
        src, dst = rnd.sample(("vpc-04f1a2b3c4d5e6f70", "vpc-0aa1bb2cc3dd4ee5f",
                               "vpc-0c3d4e5f6a7b8c9d0"), 2)
        lost = {"packets-lost-no-route": "0", "packets-lost-blackhole": "0",
                "packets-lost-mtu-exceeded": "0", "packets-lost-ttl-expired": "0"}
        packets = rnd.randrange(1, 500)
        values = {
            "version": "6", "resource-type": "TransitGateway", "account-id": ACCOUNT,
            "tgw-id": "tgw-0a1b2c3d4e5f60718",
            "tgw-attachment-id": f"tgw-attach-{rnd.getrandbits(68):017x}",
            "tgw-src-vpc-account-id": ACCOUNT, "tgw-dst-vpc-account-id": "210987654321",
            "tgw-src-vpc-id": src, "tgw-dst-vpc-id": dst,
            "tgw-src-subnet-id": f"subnet-{rnd.getrandbits(68):017x}",
            "tgw-dst-subnet-id": f"subnet-{rnd.getrandbits(68):017x}",
            "tgw-src-eni": f"eni-{rnd.getrandbits(68):017x}",
            "tgw-dst-eni": f"eni-{rnd.getrandbits(68):017x}",
            "tgw-src-az-id": "use1-az4", "tgw-dst-az-id": "use1-az6",
            "tgw-pair-attachment-id": f"tgw-attach-{rnd.getrandbits(68):017x}",
            "srcaddr": f"10.20.{rnd.randrange(256)}.{rnd.randrange(1, 255)}",
            "dstaddr": f"10.40.{rnd.randrange(256)}.{rnd.randrange(1, 255)}",
            "srcport": str(rnd.randrange(1024, 65535)),
            "dstport": str(rnd.choice((443, 5432, 22, 53, 8080))),
            "protocol": rnd.choice(("6", "6", "17")), "packets": str(packets),
            "bytes": str(packets * rnd.randrange(40, 1500)),
            "start": str(t0), "end": str(t0 + 60), "log-status": "OK", "type": "IPv4",
            **lost,
            "tcp-flags": rnd.choice(("2", "18", "19", "3", "27")), "region": region,
            "flow-direction": rnd.choice(("ingress", "egress")),
            "pkt-src-aws-service": "-", "pkt-dst-aws-service": rnd.choice(("-", "-", "S3")),
        }
        if i % 20 == 7:
            values[rnd.choice(tuple(lost))] = str(packets)
            for side in ("vpc-account-id", "vpc-id", "subnet-id", "eni", "az-id"):
                values[f"tgw-dst-{side}"] = "-"
            values["tgw-pair-attachment-id"] = "-"
        if i % 50 == 49:
            keep = {"version", "resource-type", "account-id", "tgw-id", "tgw-attachment-id",
                    "start", "end", "log-status", "region"}
            values = {k: (v if k in keep else "-") for k, v in values.items()}
            values["log-status"] = "NODATA"
        out.append(" ".join(values.get(f, "-") for f in fields))
    return out


def put_tgw_object(s3, bucket: str, region: str, n: int, lines: list[str],
                   fields: tuple[str, ...] = TGW_FIELDS) -> str:
    """Writes one Transit Gateway flow log file, under the keys VPC Flow Logs use (AWS
    writes both to ``vpcflowlogs/``); returns its key."""
    key = vpc_key(region, n).replace("_fl-0abc", "_fl-0tgw")
    s3.put_object(Bucket=bucket, Key=key, Body=vpc_object(lines, fields))
    return key


def vpc_parquet_table(lines: list[str], fields: tuple[str, ...] = CUSTOM_FIELDS):
    """Text records as AWS's Parquet has them: a column per field, named with
    underscores (``account_id``), integer fields INT_32 or INT_64, "-" as null."""
    import pyarrow as pa

    columns: list[list] = [[] for _ in fields]
    is_int = [f in INTEGER_FIELDS for f in fields]
    for line in lines:
        for column, integer, value in zip(columns, is_int, line.split(" "), strict=True):
            column.append(None if value == "-" else int(value) if integer else value)
    types = [pa.int64() if f in _PARQUET_INT64 else pa.int32() if f in INTEGER_FIELDS
             else pa.string() for f in fields]
    return pa.table([pa.array(c, t) for c, t in zip(columns, types, strict=True)],
                    names=[f.replace("-", "_") for f in fields])


def vpc_parquet_object(lines: list[str], fields: tuple[str, ...] = CUSTOM_FIELDS,
                       row_group_rows: int = 100_000) -> bytes:
    """A VPC Flow Logs file in Parquet as AWS writes it (GZIP inside, no outer gzip)."""
    import io

    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(vpc_parquet_table(lines, fields), out, compression="gzip",
                   row_group_size=row_group_rows)
    return out.getvalue()


def vpc_parquet_key(region: str, n: int, account: str = ACCOUNT, prefix: str = "",
                    when: dt.datetime | None = None, hive: bool = False) -> str:
    """AWS's key of a Parquet flow log file; ``hive``: with Hive-compatible prefixes."""
    when = when or dt.datetime(2026, 11, 27, 12, 5, tzinfo=dt.UTC)
    name = (f"{account}_vpcflowlogs_{region}_fl-0abc{n:04d}_{when:%Y%m%dT%H%MZ}_"
            f"{n:08x}.log.parquet")
    if hive:
        return (f"{prefix}AWSLogs/aws-account-id={account}/aws-service=vpcflowlogs/"
                f"aws-region={region}/year={when:%Y}/month={when:%m}/day={when:%d}/{name}")
    return f"{prefix}AWSLogs/{account}/vpcflowlogs/{region}/{when:%Y/%m/%d}/{name}"


def put_vpc_parquet_object(s3, bucket: str, region: str, n: int, lines: list[str],
                           fields: tuple[str, ...] = CUSTOM_FIELDS, hive: bool = False) -> str:
    """Writes one Parquet flow log file (its notification follows); returns its key."""
    key = vpc_parquet_key(region, n, hive=hive)
    s3.put_object(Bucket=bucket, Key=key, Body=vpc_parquet_object(lines, fields))
    return key


# -- CloudTrail (audit-events-all, type audits_s3)

_CT_IDENTITIES = (
    ("AssumedRole", "OpsAdmin"), ("AssumedRole", "app-role"), ("IAMUser", "alice"),
    ("IAMUser", "build-bot"), ("AWSService", "lambda.amazonaws.com"), ("Root", ""),
)
_CT_AGENTS = (
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0-1014-aws exe/x86_64.amzn.2 prompt/off",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.11.8",
    "[aws-sdk-java/2.25.11 Linux/6.1.79 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10]",
    "console.amazonaws.com", "AWS Internal",
)


def _ct_identity(rnd: random.Random, account: str) -> dict:
    kind, name = rnd.choice(_CT_IDENTITIES)
    if kind == "AWSService":
        return {"type": kind, "invokedBy": name}
    key = f"{'ASIA' if kind == 'AssumedRole' else 'AKIA'}{rnd.getrandbits(64):016X}"
    if kind == "Root":
        return {"type": kind, "principalId": account, "arn": f"arn:aws:iam::{account}:root",
                "accountId": account, "accessKeyId": key}
    if kind == "IAMUser":
        return {"type": kind, "principalId": f"AIDA{rnd.getrandbits(64):016X}",
                "arn": f"arn:aws:iam::{account}:user/{name}", "accountId": account,
                "accessKeyId": key, "userName": name}
    role_id = f"AROA{rnd.getrandbits(64):016X}"
    session = f"session-{rnd.getrandbits(24):06x}"
    return {"type": kind, "principalId": f"{role_id}:{session}",
            "arn": f"arn:aws:sts::{account}:assumed-role/{name}/{session}",
            "accountId": account, "accessKeyId": key,
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": role_id,
                                  "arn": f"arn:aws:iam::{account}:role/{name}",
                                  "accountId": account, "userName": name},
                "webIdFederationData": {},
                "attributes": {"creationDate": "2026-11-27T06:00:00Z",
                               "mfaAuthenticated": rnd.choice(("true", "false"))}}}


def _ct_call(rnd: random.Random, account: str, region: str) -> tuple:
    """(eventSource, eventName, readOnly, requestParameters, responseElements, resources)."""
    n = rnd.randrange(7)
    if n == 0:
        instance = f"i-{rnd.getrandbits(60):015x}"
        return ("ec2.amazonaws.com", "RunInstances", False,
                {"instancesSet": {"items": [{"imageId": "ami-0abcdef1234567890", "minCount": 1,
                                             "maxCount": 1}]},
                 "instanceType": rnd.choice(("t3.micro", "m6i.large", "c7g.xlarge")),
                 "blockDeviceMapping": {}, "monitoring": {"enabled": False},
                 "disableApiTermination": False, "clientToken": None},
                {"requestId": str(uuid.UUID(int=rnd.getrandbits(128))),
                 "reservationId": f"r-{rnd.getrandbits(60):015x}", "ownerId": account,
                 "instancesSet": {"items": [{"instanceId": instance,
                                             "instanceState": {"code": 0, "name": "pending"},
                                             "privateIpAddress": f"10.0.{rnd.randrange(256)}."
                                                                 f"{rnd.randrange(1, 255)}"}]}},
                [{"accountId": account, "type": "AWS::EC2::Instance",
                  "ARN": f"arn:aws:ec2:{region}:{account}:instance/{instance}"}])
    if n == 1:
        return ("ec2.amazonaws.com", "DescribeInstances", True,
                {"instancesSet": {}, "filterSet": {"items": [
                    {"name": "instance-state-name", "valueSet": {"items": [
                        {"value": "running"}]}}]}}, None, None)
    if n == 2:
        bucket = f"app-data-{account}"
        key = f"uploads/2026/11/{rnd.getrandbits(32):08x}.json"
        return ("s3.amazonaws.com", rnd.choice(("GetObject", "PutObject")), None,
                {"bucketName": bucket, "Host": f"{bucket}.s3.{region}.amazonaws.com",
                 "key": key}, None,
                [{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
                 {"accountId": account, "type": "AWS::S3::Bucket",
                  "ARN": f"arn:aws:s3:::{bucket}"}])
    if n == 3:
        role = rnd.choice(("deploy-role", "reader-role", "thumbnailer-role"))
        return ("sts.amazonaws.com", "AssumeRole", True,
                {"roleArn": f"arn:aws:iam::{account}:role/{role}",
                 "roleSessionName": f"{role}-{rnd.getrandbits(16):04x}", "durationSeconds": 3600},
                {"credentials": {"accessKeyId": f"ASIA{rnd.getrandbits(64):016X}",
                                 "sessionToken": f"IQoJb3JpZ2luX2Vj{rnd.getrandbits(128):032x}",
                                 "expiration": "Nov 27, 2026, 1:00:00 PM"},
                 "assumedRoleUser": {"assumedRoleId": f"AROA{rnd.getrandbits(64):016X}:{role}",
                                     "arn": f"arn:aws:sts::{account}:assumed-role/{role}/x"}},
                [{"accountId": account, "type": "AWS::IAM::Role",
                  "ARN": f"arn:aws:iam::{account}:role/{role}"}])
    if n == 4:
        user = f"user-{rnd.getrandbits(16):04x}"
        return ("iam.amazonaws.com", "CreateUser", False,
                {"userName": user, "tags": [{"key": "team", "value": "platform"}]},
                {"user": {"path": "/", "userName": user,
                          "userId": f"AIDA{rnd.getrandbits(64):016X}",
                          "arn": f"arn:aws:iam::{account}:user/{user}",
                          "createDate": "Nov 27, 2026, 12:00:00 PM"}}, None)
    if n == 5:
        key_id = str(uuid.UUID(int=rnd.getrandbits(128)))
        return ("kms.amazonaws.com", "Decrypt", True,
                {"encryptionContext": {"aws:lambda:FunctionArn":
                                       f"arn:aws:lambda:{region}:{account}:function:api"},
                 "encryptionAlgorithm": "SYMMETRIC_DEFAULT"}, None,
                [{"accountId": account, "type": "AWS::KMS::Key",
                  "ARN": f"arn:aws:kms:{region}:{account}:key/{key_id}"}])
    return ("signin.amazonaws.com", "ConsoleLogin", False, None,
            {"ConsoleLogin": rnd.choice(("Success", "Success", "Failure"))}, None)


def cloudtrail_records(n: int, seed: int = 1, region: str = "us-east-1",
                       account: str = ACCOUNT,
                       start: dt.datetime | None = None) -> list[dict]:
    """n CloudTrail events as AWS logs them: several services, nested userIdentity,
    requestParameters, responseElements and resources lists; about 1 in 20 failed."""
    rnd = random.Random(seed)
    start = start or dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
    out = []
    for i in range(n):
        source, name, read_only, request, response, resources = _ct_call(rnd, account, region)
        record = {
            "eventVersion": "1.09", "userIdentity": _ct_identity(rnd, account),
            "eventTime": (start + dt.timedelta(seconds=i // 10)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": source, "eventName": name, "awsRegion": region,
            "sourceIPAddress": f"198.51.100.{rnd.randrange(1, 255)}",
            "userAgent": rnd.choice(_CT_AGENTS),
        }
        if i % 20 == 19:
            record["errorCode"] = "AccessDenied"
            record["errorMessage"] = (f"User is not authorized to perform: "
                                      f"{source.split('.')[0]}:{name}")
            response = None
        record["requestParameters"] = request
        record["responseElements"] = response
        record["requestID"] = str(uuid.UUID(int=rnd.getrandbits(128)))
        record["eventID"] = str(uuid.UUID(int=rnd.getrandbits(128)))
        record["readOnly"] = bool(read_only) if read_only is not None else name == "GetObject"
        if resources:
            record["resources"] = resources
        record["eventType"] = "AwsConsoleSignIn" if name == "ConsoleLogin" else "AwsApiCall"
        record["managementEvent"] = source != "s3.amazonaws.com"
        record["recipientAccountId"] = account
        record["eventCategory"] = "Management" if record["managementEvent"] else "Data"
        if source != "signin.amazonaws.com":
            record["tlsDetails"] = {"tlsVersion": "TLSv1.3",
                                    "cipherSuite": "TLS_AES_128_GCM_SHA256",
                                    "clientProvidedHostHeader": f"{source.split('.')[0]}."
                                                                f"{region}.amazonaws.com"}
        out.append(record)
    return out


def cloudtrail_insight_records(n: int, seed: int = 1, region: str = "us-east-1",
                               account: str = ACCOUNT) -> list[dict]:
    """n CloudTrail Insights events (Start and End pairs): no eventSource of their own,
    the service is in insightDetails."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        source, name = rnd.choice((("ec2.amazonaws.com", "RunInstances"),
                                   ("iam.amazonaws.com", "GetRole")))
        out.append({
            "eventVersion": "1.08", "eventTime": f"2026-11-27T12:{i % 60:02d}:00Z",
            "awsRegion": region, "eventID": str(uuid.UUID(int=rnd.getrandbits(128))),
            "eventType": "AwsCloudTrailInsight", "recipientAccountId": account,
            "sharedEventID": str(uuid.UUID(int=rnd.getrandbits(128))),
            "insightDetails": {
                "state": "Start" if i % 2 == 0 else "End", "eventSource": source,
                "eventName": name, "insightType": "ApiCallRateInsight",
                "insightContext": {"statistics": {
                    "baseline": {"average": 0.0024}, "insight": {"average": 2.5},
                    "insightDuration": 1, "baselineDuration": 11636}}},
            "eventCategory": "Insight"})
    return out


def cloudtrail_object(records: list, compresslevel: int = 6) -> bytes:
    """A CloudTrail log file as AWS writes it: ``{"Records":[...]}`` on one line, gzip."""
    text = json.dumps({"Records": records}, separators=(",", ":"), ensure_ascii=False)
    return gzip.compress(text.encode(), compresslevel=compresslevel)


def cloudtrail_key(region: str, n: int, account: str = ACCOUNT, prefix: str = "",
                   when: dt.datetime | None = None, org: str | None = None,
                   kind: str = "CloudTrail") -> str:
    """AWS's key of a log file (kind "CloudTrail") or an Insights file
    ("CloudTrail-Insight"); ``org`` (``o-...``) for an organization trail."""
    when = when or dt.datetime(2026, 11, 27, 12, 5, tzinfo=dt.UTC)
    org_part = f"{org}/" if org else ""
    return (f"{prefix}AWSLogs/{org_part}{account}/{kind}/{region}/{when:%Y/%m/%d}/"
            f"{account}_{kind}_{region}_{when:%Y%m%dT%H%MZ}_Ct{n:014X}.json.gz")


def cloudtrail_digest_key(region: str, account: str = ACCOUNT, prefix: str = "",
                          when: dt.datetime | None = None, org: str | None = None,
                          trail: str = "management-events") -> str:
    """AWS's key of a digest file (hashes of an hour's log files, no events)."""
    when = when or dt.datetime(2026, 11, 27, 13, 0, tzinfo=dt.UTC)
    org_part = f"{org}/" if org else ""
    return (f"{prefix}AWSLogs/{org_part}{account}/CloudTrail-Digest/{region}/{when:%Y/%m/%d}/"
            f"{account}_CloudTrail-Digest_{region}_{trail}_{region}_{when:%Y%m%dT%H%M%SZ}"
            f".json.gz")


def cloudtrail_digest_object(bucket: str, keys: list[str], account: str = ACCOUNT) -> bytes:
    """A digest file naming ``keys``, gzip (its hashes and signature are made up)."""
    digest = {
        "awsAccountId": account, "digestStartTime": "2026-11-27T12:00:00Z",
        "digestEndTime": "2026-11-27T13:00:00Z", "digestS3Bucket": bucket,
        "digestPublicKeyFingerprint": "0123456789abcdef0123456789abcdef",
        "digestSignatureAlgorithm": "SHA256withRSA",
        "logFiles": [{"s3Bucket": bucket, "s3Object": key, "hashValue": "0" * 64,
                      "hashAlgorithm": "SHA-256"} for key in keys]}
    return gzip.compress(json.dumps(digest, separators=(",", ":")).encode())


def put_cloudtrail_object(s3, bucket: str, region: str, n: int, records: list) -> str:
    """Writes one CloudTrail log file (its notification follows); returns its key."""
    key = cloudtrail_key(region, n)
    s3.put_object(Bucket=bucket, Key=key, Body=cloudtrail_object(records))
    return key


# -- CloudFront standard logs (non-cloudwatch-logs, type cloudfront_logs)

# The fields of a standard log since 2019; before, the first 24 of them.
CLOUDFRONT_FIELDS = (
    "date", "time", "x-edge-location", "sc-bytes", "c-ip", "cs-method", "cs(Host)",
    "cs-uri-stem", "sc-status", "cs(Referer)", "cs(User-Agent)", "cs-uri-query", "cs(Cookie)",
    "x-edge-result-type", "x-edge-request-id", "x-host-header", "cs-protocol", "cs-bytes",
    "time-taken", "x-forwarded-for", "ssl-protocol", "ssl-cipher",
    "x-edge-response-result-type", "cs-protocol-version", "fle-status",
    "fle-encrypted-fields", "c-port", "time-to-first-byte", "x-edge-detailed-result-type",
    "sc-content-type", "sc-content-len", "sc-range-start", "sc-range-end",
)  # fmt: skip
CLOUDFRONT_FIELDS_2018 = CLOUDFRONT_FIELDS[:24]

_CF_AGENTS = (  # URL-encoded, as CloudFront writes them
    "Mozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36%20(KHTML,"
    "%20like%20Gecko)%20Chrome/131.0.0.0%20Safari/537.36",
    "Mozilla/5.0%20(iPhone;%20CPU%20iPhone%20OS%2018_1%20like%20Mac%20OS%20X)%20"
    "AppleWebKit/605.1.15%20(KHTML,%20like%20Gecko)%20Version/18.1%20Mobile/15E148%20"
    "Safari/604.1",
    "curl/8.5.0", "Amazon%20CloudFront",
)


def cloudfront_lines(n: int, fields: tuple[str, ...] = CLOUDFRONT_FIELDS, seed: int = 1,
                     when: dt.datetime | None = None,
                     host: str = "d2x9k4example7.cloudfront.net") -> list[str]:
    """n records of a standard log with these fields, tab-separated, "-" where empty."""
    rnd = random.Random(seed)
    when = when or dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
    out = []
    for i in range(n):
        t = when + dt.timedelta(seconds=i * 3600 // max(n, 1))
        status = rnd.choice(("200", "200", "200", "304", "206", "404", "403"))
        result = {"200": "Hit", "304": "RefreshHit", "206": "Miss"}.get(status, "Error")
        size = rnd.randrange(300, 900_000)
        path = rnd.choice(("/index.html", "/assets/app.3f9c1b.js", "/img/hero%20banner.jpg",
                           "/api/v1/items", "/video/intro.mp4"))
        values = {
            "date": f"{t:%Y-%m-%d}", "time": f"{t:%H:%M:%S}",
            "x-edge-location": rnd.choice(("IAD89-C1", "FRA56-P4", "NRT57-C2", "GRU3-C1")),
            "sc-bytes": str(size + 400),
            "c-ip": rnd.choice((f"203.0.113.{rnd.randrange(1, 255)}",
                                f"2001:db8::{rnd.getrandbits(16):x}")),
            "cs-method": rnd.choice(("GET", "GET", "GET", "HEAD", "POST")),
            "cs(Host)": host, "cs-uri-stem": path, "sc-status": status,
            "cs(Referer)": rnd.choice(("-", "https://www.example.com/")),
            "cs(User-Agent)": rnd.choice(_CF_AGENTS),
            "cs-uri-query": rnd.choice(("-", "q=caf%C3%A9%20au%20lait&page=2",
                                        "utm_source=news%2520letter")),
            "cs(Cookie)": rnd.choice(("-", "session=ab12cd34;%20theme=dark")),
            "x-edge-result-type": result,
            "x-edge-request-id": f"{rnd.getrandbits(300):x}"[:54] + "==",
            "x-host-header": "www.example.com", "cs-protocol": "https",
            "cs-bytes": str(rnd.randrange(100, 2000)),
            "time-taken": f"{rnd.random():.3f}",
            "x-forwarded-for": "-", "ssl-protocol": "TLSv1.3",
            "ssl-cipher": "TLS_AES_128_GCM_SHA256", "x-edge-response-result-type": result,
            "cs-protocol-version": rnd.choice(("HTTP/2.0", "HTTP/1.1")),
            "fle-status": "-", "fle-encrypted-fields": "-",
            "c-port": str(rnd.randrange(1024, 65535)),
            "time-to-first-byte": f"{rnd.random() / 2:.3f}",
            "x-edge-detailed-result-type": result,
            "sc-content-type": rnd.choice(("text/html", "application/javascript",
                                           "image/jpeg", "video/mp4")),
            "sc-content-len": str(size),
            "sc-range-start": "0" if status == "206" else "-",
            "sc-range-end": str(size - 1) if status == "206" else "-",
        }
        out.append("\t".join(values.get(f, "-") for f in fields))
    return out


def cloudfront_object(lines: list[str], fields: tuple[str, ...] = CLOUDFRONT_FIELDS) -> bytes:
    """A standard log file as CloudFront writes it: two header lines, records, gzip."""
    text = "#Version: 1.0\n#Fields: " + " ".join(fields) + "\n" + "\n".join(lines) + "\n"
    return gzip.compress(text.encode())


def cloudfront_key(n: int, distribution: str = "EMLARXS9EXAMPLE", prefix: str = "cloudfront/",
                   when: dt.datetime | None = None) -> str:
    """AWS's key: ``<distribution ID>.YYYY-MM-DD-HH.<unique ID>.gz``, upper-case unique ID."""
    when = when or dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
    unique = "".join(random.Random(f"cf{n}").choices("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                                                      k=11))
    return f"{prefix}{distribution}.{when:%Y-%m-%d-%H}.{unique}.gz"


def put_cloudfront_object(s3, bucket: str, n: int, lines: list[str],
                          fields: tuple[str, ...] = CLOUDFRONT_FIELDS, **key) -> str:
    """Writes one standard log file (its notification follows); returns its key."""
    name = cloudfront_key(n, **key)
    s3.put_object(Bucket=bucket, Key=name, Body=cloudfront_object(lines, fields))
    return name


# -- Cisco Umbrella (cisco-umbrella): one CSV per kind of log, Cisco's S3 layout

UMBRELLA_FOLDERS = {"dns": "dnslogs", "ip": "iplogs", "proxy": "proxylogs",
                    "firewall": "cloudfirewalllogs", "intrusion": "intrusionlogs",
                    "dlp": "dlplogs", "audit": "auditlogs"}
# Columns of the newest version of each kind (older versions: fewer, at the end).
UMBRELLA_COLUMNS = {"dns": 16, "ip": 7, "proxy": 49, "firewall": 36, "intrusion": 17,
                    "dlp": 25, "audit": 9}
_UM_USERS = ("Doe, Jane (jane.doe@example.com)", "Roe, Richard (rroe@example.com)",
             "LAPTOP-7Q2XK9", "Branch Office \"North\"")
_UM_CATEGORIES = ("Software/Technology,Business Services", "Search Engines",
                  "Malware,Phishing", "Infrastructure and Content Delivery Networks")


def _umbrella_values(kind: str, rnd: random.Random, t: dt.datetime, i: int) -> list[str]:
    ts = f"{t:%Y-%m-%d %H:%M:%S}"
    user = rnd.choice(_UM_USERS)
    src, dst = f"10.1.{rnd.randrange(256)}.{rnd.randrange(1, 255)}", f"198.51.100.{i % 250}"
    cats = rnd.choice(_UM_CATEGORIES)
    action = "Blocked" if cats.startswith("Malware") else "Allowed"
    if kind == "dns":
        return [ts, user, f"{user},HQ Site,HQ Network", src, "192.0.2.10", action,
                rnd.choice(("1 (A)", "28 (AAAA)", "65 (HTTPS)")), "NOERROR",
                f"host{i}.example.com.", cats, "AD Users", "AD Users,Sites,Networks",
                cats if action == "Blocked" else "", "410227", "US", "2204063"]
    if kind == "ip":
        return [ts, user, src, str(rnd.randrange(1024, 65535)), dst, "443", cats]
    if kind == "proxy":
        agent = rnd.choice(('Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36',
                            'python-requests/2.32.3', 'Updater "stable", build 7'))
        values = [ts, user, src, "192.0.2.10", dst, "text/html", action.upper(),
                  f"https://host{i}.example.com/a,b?q=1", "", agent, "200", "512", "2048",
                  "1900", f"{rnd.getrandbits(256):064x}", cats, "", "", "", "", "",
                  "AD Users", "", f"{user},HQ Network", "AD Users,Networks", "GET", "", "",
                  "index.html", "1001", "2002", "", "", "", "", "PROXY", "SWG", "", "", "",
                  "swg-proxy.example", "ATL1", "true", f"host{i}.example.com", "false",
                  "false", "", "", "2204063"]
        return values
    if kind == "firewall":
        return [ts, "[211039844]", "HQ Tunnel", "CDFW Tunnel Device", "OUTBOUND", "6", "84",
                src, str(rnd.randrange(1024, 65535)), dst, "443", "ams1.edc", "12",
                action.upper().replace("ED", ""), "example.com,example.net", "44,66",
                "1718391597", "1718391598", "3", "3", "1108", "755", "39-42", "US", "",
                "", "", "", "", "[]", "", "", "", "2204063", dst, "TRUE"]
    if kind == "intrusion":
        return [ts, "HQ Tunnel", "Network Tunnels", "1", str(40000 + i % 100),
                "SERVER-WEBAPP attempt, \"quoted\" payload", "1323", "HIGH",
                "Attempted User Privilege Gain", "cve-2021-44228", "TCP", str(i), src,
                "33010", dst, "443", rnd.choice(("Would Block", "Blocked"))]
    if kind == "dlp":
        return [ts, "Real Time", f"{rnd.getrandbits(128):032x}", "CRITICAL", user, "",
                f"report {i}, Q3.xlsx", "Dropbox", "https://www.dropbox.com/upload",
                "BLOCK", "PII rule", "Financial", "Credit Card Number", "application/xlsx",
                "48213", f"{rnd.getrandbits(256):064x}", "Confidential", "Cloud Storage",
                "Outbound", "", "", "https", dst, "443", "2204063"]
    before = f"name: Policy {i}\nblockPage: default\nsafeSearch: {rnd.choice(('on', 'off'))}"
    return [str(9_000_000 + i), ts, "jane.doe@example.com", "Doe, Jane", "policies",
            rnd.choice(("update", "create")), "192.0.2.44", before,
            before.replace("default", "custom, \"strict\"")]


def umbrella_lines(kind: str, n: int, columns: int | None = None, seed: int = 1,
                   when: dt.datetime | None = None) -> list[str]:
    """n records of a kind of Umbrella log, of ``columns`` columns (a version's count;
    the newest by default), every field quoted as Cisco writes them. Audit records
    hold newlines in their before/after fields."""
    rnd = random.Random(seed)
    when = when or dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
    columns = columns or UMBRELLA_COLUMNS[kind]
    out = []
    for i in range(n):
        values = _umbrella_values(kind, rnd, when + dt.timedelta(seconds=i % 600), i)
        if kind == "dlp" and columns < 17:
            values.pop(1)  # "event type" came in the second column
        out.append(",".join('"' + v.replace('"', '""') + '"' for v in values[:columns]))
    return out


def umbrella_object(lines: list[str], header_row: str | None = None) -> bytes:
    """A log file as Cisco exports it: CSV records (optionally a header row), gzip."""
    text = (header_row + "\n" if header_row else "") + "\n".join(lines) + "\n"
    return gzip.compress(text.encode())


def umbrella_key(kind: str, n: int, prefix: str = "umbrella/",
                 when: dt.datetime | None = None) -> str:
    """Cisco's key: ``<prefix><folder>/YYYY-MM-DD/YYYY-MM-DD-HH-MM-xxxx.csv.gz``."""
    t = (when or dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)) + dt.timedelta(minutes=10 * n)
    suffix = f"{n * 7919 % 65536:04x}"
    return f"{prefix}{UMBRELLA_FOLDERS[kind]}/{t:%Y-%m-%d}/{t:%Y-%m-%d-%H-%M}-{suffix}.csv.gz"


def put_umbrella_object(s3, bucket: str, kind: str, n: int, lines: list[str],
                        header_row: str | None = None, **key) -> str:
    """Writes one Umbrella log file (its notification follows); returns its key."""
    name = umbrella_key(kind, n, **key)
    s3.put_object(Bucket=bucket, Key=name, Body=umbrella_object(lines, header_row))
    return name


# -- Your own logs (custom-s3): JSON lines of an application

APP_KINDS = ("login", "request", "logout")


def app_events(n: int, seed: int = 1, kinds: tuple[str, ...] = APP_KINDS) -> list[dict]:
    """n events of an application, one JSON document each; ``kind`` takes the values of
    ``kinds`` in turn (a source's ``table: my.app.{record.kind}`` makes a table of each)."""
    rnd = random.Random(seed)
    start = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
    return [{"ts": f"{start + dt.timedelta(seconds=i):%Y-%m-%dT%H:%M:%S}.000Z",
             "level": rnd.choice(("INFO", "INFO", "WARN", "ERROR")),
             "kind": kinds[i % len(kinds)], "id": f"{seed}-{i}",
             "user": {"id": 1000 + rnd.randrange(50), "name": f"user {rnd.randrange(50)}"},
             "message": f"event {i} of batch {seed}"} for i in range(n)]


def json_lines_object(records: list[dict]) -> bytes:
    """Records as JSON lines, one compact document a line, gzip."""
    return gzip.compress(b"".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False)
                                  .encode() + b"\n" for r in records))


def put_json_lines_object(s3, bucket: str, key: str, records: list[dict]) -> str:
    """Writes one JSON lines object (its notification follows); returns its key."""
    s3.put_object(Bucket=bucket, Key=key, Body=json_lines_object(records))
    return key


# -- EventBridge events (service-events-all, sqs-cloudwatch-consumer)


def create_event_queue(events, sqs, queue: str, service: str) -> str:
    """A queue fed by the EventBridge rules of ``service`` (io/eventrules.py RULES, named
    ``<queue>-<suffix>``) on the default event bus, with the queue policy that lets
    EventBridge send to it; returns the queue URL."""
    from awscollector.io.eventrules import RULES

    url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    rules = [f"{queue}-{rule.suffix}" for rule in RULES[service]]
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage", "Resource": arn}]}
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    for name, rule in zip(rules, RULES[service], strict=True):
        events.put_rule(Name=name, EventPattern=json.dumps(rule.pattern), State="ENABLED")
        events.put_targets(Rule=name, Targets=[{"Id": "sqs", "Arn": arn}])
    return url


def put_events(events, batch: list[dict]) -> list[str]:
    """Sends EventBridge events (dicts of AWS's event shape) with PutEvents, 10 a call,
    as the services that own their sources would; returns their new ids.

    AWS refuses ``aws.*`` sources from PutEvents (only AWS services send them); the
    embedded AWS accepts them, which is how the demo and the tests play the services.
    """
    ids = []
    for i in range(0, len(batch), 10):
        entries = [{"Source": e["source"], "DetailType": e["detail-type"],
                    "Detail": json.dumps(e["detail"]), "Resources": e.get("resources", [])}
                   for e in batch[i:i + 10]]
        result = events.put_events(Entries=entries)
        if result.get("FailedEntryCount"):
            raise RuntimeError(f"PutEvents refused entries: {result['Entries']}")
        ids += [entry["EventId"] for entry in result["Entries"]]
    return ids


def _event(source: str, detail_type: str, detail: dict, region: str, time: dt.datetime,
           resources: list[str], rnd: random.Random, account: str = ACCOUNT) -> dict:
    return {"version": "0", "id": str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
            "detail-type": detail_type, "source": source, "account": account,
            "time": f"{time:%Y-%m-%dT%H:%M:%SZ}", "region": region, "resources": resources,
            "detail": detail}


def ec2_state_change_events(n: int, seed: int = 1, region: str = "us-east-1",
                            account: str = ACCOUNT) -> list[dict]:
    """n ``EC2 Instance State-change Notification`` events, instances going through
    pending, running, stopping, stopped, shutting-down, terminated."""
    rnd = random.Random(seed)
    start = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
    states = ("pending", "running", "stopping", "stopped", "shutting-down", "terminated")
    out = []
    for i in range(n):
        instance = f"i-{seed:04x}{i:04x}{rnd.getrandbits(36):09x}"
        out.append(_event(
            "aws.ec2", "EC2 Instance State-change Notification",
            {"instance-id": instance, "state": states[i % len(states)]}, region,
            start + dt.timedelta(seconds=7 * i),
            [f"arn:aws:ec2:{region}:{account}:instance/{instance}"], rnd, account))
    return out


_SH_CONTROLS = (  # (control, title, resource type, severity)
    ("EC2.2", "VPC default security groups should not allow inbound or outbound traffic",
     "AwsEc2SecurityGroup", "HIGH"),
    ("S3.8", "S3 general purpose buckets should block public access", "AwsS3Bucket", "HIGH"),
    ("IAM.6", "Hardware MFA should be enabled for the root user", "AwsAccount", "CRITICAL"),
    ("CloudTrail.2", "CloudTrail should have encryption at-rest enabled", "AwsCloudTrailTrail",
     "MEDIUM"),
    ("EC2.19", "Security groups should not allow unrestricted access to ports with high risk",
     "AwsEc2SecurityGroup", "CRITICAL"),
    ("Lambda.2", "Lambda functions should use supported runtimes", "AwsLambdaFunction",
     "MEDIUM"),
)
_SEVERITY = {"INFORMATIONAL": 0, "LOW": 1, "MEDIUM": 40, "HIGH": 70, "CRITICAL": 90}


def _resource_arn(kind: str, region: str, account: str, rnd: random.Random) -> str:
    if kind == "AwsEc2SecurityGroup":
        return f"arn:aws:ec2:{region}:{account}:security-group/sg-{rnd.getrandbits(68):017x}"
    if kind == "AwsS3Bucket":
        return f"arn:aws:s3:::example-data-{rnd.getrandbits(24):06x}"
    if kind == "AwsCloudTrailTrail":
        return f"arn:aws:cloudtrail:{region}:{account}:trail/management-events"
    if kind == "AwsLambdaFunction":
        return f"arn:aws:lambda:{region}:{account}:function:etl-{rnd.getrandbits(16):04x}"
    return f"AWS::::Account:{account}"


def asff_findings(n: int, seed: int = 1, region: str = "us-east-1",
                  account: str = ACCOUNT) -> list[dict]:
    """n Security Hub control findings in the AWS Security Finding Format, as Security
    Hub sends them (about 2 KB each)."""
    rnd = random.Random(seed)
    start = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)
    out = []
    for i in range(n):
        control, title, kind, label = _SH_CONTROLS[(seed + i) % len(_SH_CONTROLS)]
        finding_id = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
        resource = _resource_arn(kind, region, account, rnd)
        first = start - dt.timedelta(days=rnd.randrange(1, 30))
        seen = start + dt.timedelta(minutes=i)
        ts = f"{seen:%Y-%m-%dT%H:%M:%S}.{rnd.randrange(1000):03d}Z"
        out.append({
            "SchemaVersion": "2018-10-08",
            "Id": f"arn:aws:securityhub:{region}:{account}:security-control/{control}/"
                  f"finding/{finding_id}",
            "ProductArn": f"arn:aws:securityhub:{region}::product/aws/securityhub",
            "ProductName": "Security Hub", "CompanyName": "AWS", "Region": region,
            "GeneratorId": f"security-control/{control}", "AwsAccountId": account,
            "Types": ["Software and Configuration Checks/Industry and Regulatory Standards"],
            "FirstObservedAt": f"{first:%Y-%m-%dT%H:%M:%S}.000Z", "LastObservedAt": ts,
            "CreatedAt": f"{first:%Y-%m-%dT%H:%M:%S}.000Z", "UpdatedAt": ts,
            "Severity": {"Label": label, "Normalized": _SEVERITY[label], "Original": label},
            "Title": title,
            "Description": f"This control checks whether: {title[0].lower() + title[1:]}.",
            "Remediation": {"Recommendation": {
                "Text": "For information on how to correct this issue, consult the AWS "
                        "Security Hub controls documentation.",
                "Url": f"https://docs.aws.amazon.com/console/securityhub/{control}/"
                       f"remediation"}},
            "ProductFields": {
                "RelatedAWSResources:0/name": f"securityhub-{control.lower()}-"
                                              f"{rnd.getrandbits(32):08x}",
                "RelatedAWSResources:0/type": "AWS::Config::ConfigRule",
                "aws/securityhub/ProductName": "Security Hub",
                "aws/securityhub/CompanyName": "AWS",
                "Resources:0/Id": resource,
                "aws/securityhub/FindingId": f"arn:aws:securityhub:{region}::product/aws/"
                                             f"securityhub/{finding_id}"},
            "Resources": [{"Type": kind, "Id": resource, "Partition": "aws", "Region": region}],
            "Compliance": {"Status": "FAILED", "SecurityControlId": control,
                           "AssociatedStandards": [{
                               "StandardsId": "standards/aws-foundational-security-best-"
                                              "practices/v/1.0.0"}]},
            "WorkflowState": "NEW", "Workflow": {"Status": "NEW"}, "RecordState": "ACTIVE",
            "FindingProviderFields": {
                "Severity": {"Label": label, "Original": label},
                "Types": ["Software and Configuration Checks/Industry and Regulatory "
                          "Standards"]},
            "ProcessedAt": ts,
        })
    return out


def securityhub_findings_event(findings: list[dict], region: str = "us-east-1",
                               seed: int = 1, account: str = ACCOUNT,
                               detail_type: str = "Security Hub Findings - Imported") -> dict:
    """A ``Security Hub Findings - Imported`` event of ``findings`` (up to 100); its
    ``resources`` are the findings' ids, as Security Hub fills them."""
    rnd = random.Random(seed)
    detail: dict = {"findings": findings}
    if detail_type == "Security Hub Findings - Custom Action":
        detail = {"actionName": "SendToDevo", "actionDescription": "Send findings to Devo",
                  **detail}
    return _event("aws.securityhub", detail_type, detail, region,
                  dt.datetime(2026, 11, 27, 12, 5, tzinfo=dt.UTC),
                  [f["Id"] for f in findings if isinstance(f, dict) and "Id" in f], rnd,
                  account)


def securityhub_insight_event(region: str = "us-east-1", seed: int = 1,
                              account: str = ACCOUNT) -> dict:
    """A ``Security Hub Insight Results`` event (a custom action on an insight)."""
    rnd = random.Random(seed)
    return _event(
        "aws.securityhub", "Security Hub Insight Results", {
            "actionName": "SendToDevo", "actionDescription": "Send insight results to Devo",
            "insightArn": f"arn:aws:securityhub:::insight/securityhub/default/"
                          f"{rnd.randrange(1, 30)}",
            "insightName": "AWS resources with the most findings",
            "resultType": "ResourceId", "number of results": "3",
            "insightResults": [
                {f"arn:aws:ec2:{region}:{account}:security-group/sg-0123456789abcdef0": 7},
                {f"arn:aws:s3:::example-data-{rnd.getrandbits(24):06x}": 4},
                {f"AWS::::Account:{account}": 2}]},
        region, dt.datetime(2026, 11, 27, 12, 6, tzinfo=dt.UTC),
        [f"arn:aws:securityhub:{region}:{account}:action/custom/SendToDevo"], rnd, account)


def _instance_resource(rnd: random.Random, region: str, instance: str, kind: str,
                       i: int) -> dict:
    """A GuardDuty finding's ``resource`` for an EC2 instance (camelCase, as sent)."""
    return {"resourceType": "Instance", "instanceDetails": {
        "instanceId": instance, "instanceType": kind,
        "launchTime": "2026-11-20T09:14:02.000Z", "platform": None,
        "imageId": "ami-0abcdef1234567890", "availabilityZone": f"{region}a",
        "instanceState": "running",
        "networkInterfaces": [{
            "networkInterfaceId": f"eni-{rnd.getrandbits(68):017x}",
            "privateIpAddress": f"10.0.{rnd.randrange(256)}.{rnd.randrange(1, 255)}",
            "publicIp": f"203.0.113.{rnd.randrange(1, 255)}",
            "subnetId": "subnet-0a1b2c3d4e5f67890", "vpcId": "vpc-0a1b2c3d4e5f67890",
            "securityGroups": [{"groupName": "web", "groupId": "sg-0123456789abcdef0"}]}],
        "tags": [{"key": "Name", "value": f"web-{i}"}]}}


def guardduty_finding_events(n: int, seed: int = 1, region: str = "us-east-1",
                             account: str = ACCOUNT) -> list[dict]:
    """n ``GuardDuty Finding`` events: an EC2 instance probed on an unprotected port,
    as GuardDuty describes it (its detail is the finding, as GetFindings returns it)."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        finding_id = f"{rnd.getrandbits(128):032x}"
        detector = f"{rnd.getrandbits(128):032x}"
        instance = f"i-{rnd.getrandbits(68):017x}"
        at = dt.datetime(2026, 11, 27, 11, 0, tzinfo=dt.UTC) + dt.timedelta(minutes=3 * i)
        ts = f"{at:%Y-%m-%dT%H:%M:%S}.{rnd.randrange(1000):03d}Z"
        port = rnd.choice((22, 3389, 5432, 9200))
        remote = f"198.51.100.{rnd.randrange(1, 255)}"
        detail = {
            "schemaVersion": "2.0", "accountId": account, "region": region,
            "partition": "aws", "id": finding_id,
            "arn": f"arn:aws:guardduty:{region}:{account}:detector/{detector}/finding/"
                   f"{finding_id}",
            "type": "Recon:EC2/PortProbeUnprotectedPort",
            "resource": _instance_resource(rnd, region, instance, "t3.micro", i),
            "service": {
                "serviceName": "guardduty", "detectorId": detector,
                "action": {"actionType": "PORT_PROBE", "portProbeAction": {
                    "blocked": False, "portProbeDetails": [{
                        "localPortDetails": {"port": port, "portName": "SSH" if port == 22
                                             else "Unknown"},
                        "remoteIpDetails": {"ipAddressV4": remote,
                                            "organization": {"asn": "64496",
                                                             "asnOrg": "EXAMPLE-NET",
                                                             "isp": "Example ISP",
                                                             "org": "Example ISP"},
                                            "country": {"countryName": "Example"},
                                            "city": {"cityName": ""},
                                            "geoLocation": {"lat": 0.0, "lon": 0.0}}}]}},
                "resourceRole": "TARGET", "additionalInfo": {"threatListName": "ProofPoint"},
                "eventFirstSeen": ts, "eventLastSeen": ts, "archived": False,
                "count": rnd.randrange(1, 20)},
            "severity": 2, "createdAt": ts, "updatedAt": ts,
            "title": f"Unprotected port on EC2 instance {instance} is being probed.",
            "description": f"EC2 instance has an unprotected port which is being probed by a "
                           f"known malicious host ({remote}).",
        }
        out.append(_event("aws.guardduty", "GuardDuty Finding", detail, region, at, [], rnd,
                          account))
    return out


# -- the API pullers' sources: CloudTrail LookupEvents and GuardDuty findings, seeded
# into the embedded AWS's emulator (awscollector/embedded/apis.py)


def _epoch(value: dt.datetime | float) -> float:
    return value.timestamp() if isinstance(value, dt.datetime) else float(value)


def lookup_events_records(n: int, seed: int = 1, region: str = "us-east-1",
                          account: str = ACCOUNT, start: dt.datetime | float | None = None,
                          end: dt.datetime | float | None = None) -> list[dict]:
    """n CloudTrail management events (what LookupEvents lists: no S3 data events) with
    whole-second event times spread over ``[start, end)`` (datetimes or epoch seconds;
    by default the hour before now), oldest first, each with its own eventID."""
    end_s = _epoch(end) if end is not None else dt.datetime.now(dt.UTC).timestamp()
    start_s = _epoch(start) if start is not None else end_s - 3600
    if end_s <= start_s:
        raise ValueError("end must be after start")
    rnd = random.Random(seed)
    records: list[dict] = []
    batch = 0
    while len(records) < n:
        batch += 1
        made = cloudtrail_records(2 * (n - len(records)) + 10, seed=seed * 1_000_003 + batch,
                                  region=region, account=account)
        records += [r for r in made if r.get("managementEvent")][:n - len(records)]
    times = sorted(int(rnd.uniform(start_s, end_s)) for _ in range(n))
    for i, (record, at) in enumerate(zip(records, times, strict=True)):
        record["eventTime"] = f"{dt.datetime.fromtimestamp(at, dt.UTC):%Y-%m-%dT%H:%M:%SZ}"
        record["eventID"] = str(uuid.UUID(int=(rnd.getrandbits(96) << 32) | i))  # unique
    return records


_GD_KINDS = (  # (type, severity, resource kind, action)
    ("Recon:EC2/PortProbeUnprotectedPort", 2, "Instance", "PORT_PROBE"),
    ("UnauthorizedAccess:EC2/SSHBruteForce", 2, "Instance", "NETWORK_CONNECTION"),
    ("CryptoCurrency:EC2/BitcoinTool.B!DNS", 8, "Instance", "DNS_REQUEST"),
    ("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS", 8, "AccessKey",
     "AWS_API_CALL"),
    ("Discovery:S3/MaliciousIPCaller", 5, "S3Bucket", "AWS_API_CALL"),
    ("Policy:IAMUser/RootCredentialUsage", 2, "AccessKey", "AWS_API_CALL"),
)


def _gd_time(seconds: float) -> str:
    at = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return f"{at:%Y-%m-%dT%H:%M:%S}.{at.microsecond // 1000:03d}Z"


def _gd_remote(rnd: random.Random) -> dict:
    return {"ipAddressV4": f"198.51.100.{rnd.randrange(1, 255)}",
            "organization": {"asn": "64496", "asnOrg": "EXAMPLE-NET", "isp": "Example ISP",
                             "org": "Example ISP"},
            "country": {"countryName": "Example"}, "city": {"cityName": ""},
            "geoLocation": {"lat": 0.0, "lon": 0.0}}


def _gd_resource(kind: str, rnd: random.Random, region: str, account: str, i: int) -> dict:
    if kind == "Instance":
        instance = f"i-{rnd.getrandbits(68):017x}"
        return _instance_resource(rnd, region, instance,
                                  rnd.choice(("t3.micro", "m6i.large")), i)
    user = rnd.choice(("alice", "build-bot", "Root"))
    access = {"accessKeyId": f"{'ASIA' if user != 'Root' else 'AKIA'}{rnd.getrandbits(64):016X}",
              "principalId": f"AIDA{rnd.getrandbits(64):016X}", "userName": user,
              "userType": "Root" if user == "Root" else "IAMUser"}
    if kind == "AccessKey":
        return {"resourceType": "AccessKey", "accessKeyDetails": access}
    bucket = f"app-data-{account}"
    return {"resourceType": "S3Bucket", "accessKeyDetails": access, "s3BucketDetails": [{
        "arn": f"arn:aws:s3:::{bucket}", "name": bucket, "type": "Destination",
        "createdAt": "2026-01-12T08:00:00.000Z",
        "owner": {"id": f"{rnd.getrandbits(256):064x}"},
        "publicAccess": {"effectivePermission": "NOT_PUBLIC"}}]}


def _gd_action(action: str, rnd: random.Random, kind: str) -> dict:
    if action == "PORT_PROBE":
        port = rnd.choice((22, 3389, 5432, 9200))
        return {"actionType": action, "portProbeAction": {"blocked": False, "portProbeDetails": [{
            "localPortDetails": {"port": port, "portName": "SSH" if port == 22 else "Unknown"},
            "remoteIpDetails": _gd_remote(rnd)}]}}
    if action == "NETWORK_CONNECTION":
        return {"actionType": action, "networkConnectionAction": {
            "connectionDirection": "INBOUND", "blocked": False, "protocol": "TCP",
            "localPortDetails": {"port": 22, "portName": "SSH"},
            "remotePortDetails": {"port": rnd.randrange(32768, 61000), "portName": "Unknown"},
            "remoteIpDetails": _gd_remote(rnd)}}
    if action == "DNS_REQUEST":
        return {"actionType": action, "dnsRequestAction": {
            "domain": rnd.choice(("pool.example-miner.test", "xmr.example-pool.test")),
            "protocol": "UDP", "blocked": False}}
    api, source = (("GetObject", "s3.amazonaws.com") if kind == "S3Bucket"
                   else rnd.choice((("ListBuckets", "s3.amazonaws.com"),
                                    ("DescribeInstances", "ec2.amazonaws.com"))))
    return {"actionType": action, "awsApiCallAction": {
        "api": api, "serviceName": source, "callerType": "Remote IP",
        "remoteIpDetails": _gd_remote(rnd), "affectedResources": {}}}


def guardduty_findings(n: int, seed: int = 1, region: str = "us-east-1",
                       account: str = ACCOUNT, detector_id: str | None = None,
                       start: dt.datetime | float | None = None,
                       end: dt.datetime | float | None = None) -> list[dict]:
    """n GuardDuty findings as GetFindings returns them (several types: port probes, SSH
    brute force, crypto-mining DNS, credential exfiltration, S3 discovery, root usage),
    of ``detector_id``, each updated at a time in ``[start, end)`` (datetimes or epoch
    seconds; by default the hour before now) with millisecond ``updatedAt``, oldest
    first; ``createdAt`` and ``eventFirstSeen`` up to a day earlier."""
    end_s = _epoch(end) if end is not None else dt.datetime.now(dt.UTC).timestamp()
    start_s = _epoch(start) if start is not None else end_s - 3600
    if end_s <= start_s:
        raise ValueError("end must be after start")
    rnd = random.Random(seed)
    detector = detector_id or f"{rnd.getrandbits(128):032x}"
    updated = sorted(int(rnd.uniform(start_s, end_s) * 1000) / 1000 for _ in range(n))
    out = []
    for i, at in enumerate(updated):
        kind, severity, resource_kind, action = _GD_KINDS[rnd.randrange(len(_GD_KINDS))]
        finding_id = f"{rnd.getrandbits(128):032x}"
        created = at - rnd.uniform(0, 86_400)
        resource = _gd_resource(resource_kind, rnd, region, account, i)
        target = (resource.get("instanceDetails", {}).get("instanceId")
                  or resource["accessKeyDetails"]["userName"])
        out.append({
            "schemaVersion": "2.0", "accountId": account, "region": region,
            "partition": "aws", "id": finding_id,
            "arn": f"arn:aws:guardduty:{region}:{account}:detector/{detector}/finding/"
                   f"{finding_id}",
            "type": kind, "resource": resource,
            "service": {
                "serviceName": "guardduty", "detectorId": detector,
                "action": _gd_action(action, rnd, resource_kind),
                "resourceRole": "TARGET",
                "additionalInfo": {"value": "{}", "type": "default"},
                "eventFirstSeen": _gd_time(created), "eventLastSeen": _gd_time(at),
                "archived": False, "count": rnd.randrange(1, 40)},
            "severity": severity, "createdAt": _gd_time(created), "updatedAt": _gd_time(at),
            "title": f"{kind.split(':', 1)[1].split('/', 1)[1]} activity involving {target}.",
            "description": f"GuardDuty observed {kind} activity involving {target} in "
                           f"{region}.",
        })
    return out
