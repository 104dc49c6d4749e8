"""What the tests of a format's S3 steps share: the collector's access to the
embedded AWS, and the S3 notification announcing objects as SQS hands it over."""

from __future__ import annotations

import json
from types import SimpleNamespace

from awscollector.io.access import AwsAccess
from awscollector.io.sqs import SqsMessage


def embedded_access(embedded_aws) -> AwsAccess:
    """An ``AwsAccess`` to the embedded AWS, as a config's keys would give."""
    return AwsAccess(SimpleNamespace(endpoint_url=embedded_aws.endpoint_url,
                                     credentials=SimpleNamespace(access_key="testing",
                                                                 access_secret="testing")))


def notification(bucket: str, keys: list[str]) -> SqsMessage:
    """One SQS message of an S3 notification of ``keys`` created in ``bucket``."""
    body = json.dumps({"Records": [
        {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "awsRegion": "us-east-1",
         "s3": {"bucket": {"name": bucket}, "object": {"key": k, "size": 1}}} for k in keys]})
    return SqsMessage("non-cloudwatch-logs", "us-east-1", "https://q", "m-1", body)
