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

from awscollector.transforms.vpcflow import DEFAULT_FIELDS

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
