"""AWS error codes as AWS sent them, our codes from one table, one-line messages.

Over real HTTP: moto's server enforcing IAM (a wrong secret is refused as AWS
refuses it), and the fault proxy for the shapes moto does not send.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from awscollector.aws import ClientFactory
from awscollector.awserrors import (
    CREDENTIAL_ERROR_CODES,
    MAX_AWS_MESSAGE,
    aws_error,
    collector_code,
    register_error_reader,
)
from awscollector.embedded.aws import EmbeddedAws, free_port
from awscollector.errors import MAX_MESSAGE, CollectorError
from tests.faults import FaultProxy, FaultRule

REGION = "us-east-1"
SECRET = "WrongSecret123XYZ"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def one_attempt(service: str, endpoint_url: str, read_body: bool = True):
    """A client that does not retry (a refused call fails at once), with or without
    the collector's error-body reader."""
    client = boto3.client(service, region_name=REGION, endpoint_url=endpoint_url,
                          aws_access_key_id="testing", aws_secret_access_key="testing",
                          config=Config(retries={"total_max_attempts": 1}))
    return register_error_reader(client) if read_body else client


# -- the table ------------------------------------------------------------------------


@pytest.mark.parametrize("code", [
    "InvalidSignatureException", "SignatureDoesNotMatch", "IncompleteSignature",
    "InvalidClientTokenId", "UnrecognizedClientException", "ExpiredToken",
    "ExpiredTokenException", "InvalidAccessKeyId", "AuthFailure", "MissingAuthenticationToken",
])
def test_credential_codes_are_aws_001(code):
    assert code in CREDENTIAL_ERROR_CODES
    error = aws_error(ClientError({"Error": {"Code": code, "Message": "m"}}, "Op"), "sqs Op")
    assert error.code == "AWS-001"


@pytest.mark.parametrize("code, ours", [
    ("AccessDenied", "AWS-003"), ("403", "AWS-003"), ("SlowDown", "AWS-004"),
    ("QueueDoesNotExist", "AWS-005"), ("NoSuchKey", "AWS-007"), ("InternalError", "AWS-008"),
    ("502", "AWS-008"), ("SomethingNew", "AWS-008"),
])
def test_other_codes(code, ours):
    assert collector_code(code) == ours


def test_collector_errors_are_one_line_and_capped():
    error = CollectorError("AWS-008", "GetObject failed:\r\n  <html>\n\t<body>x  y</body>")
    assert error.message == "GetObject failed: <html> <body>x  y</body>"  # "x  y": a key's
    assert str(error) == "AWS-008 " + error.message
    long = CollectorError("AWS-008", "z" * 10 * MAX_MESSAGE)
    assert len(long.message) == MAX_MESSAGE and long.message.endswith("...")


# -- a wrong secret, refused by moto as AWS refuses it --------------------------------


@pytest.fixture(scope="module")
def enforcing() -> Iterator[tuple[EmbeddedAws, str, str, str, str]]:
    """moto checking every request after its first 5: a user, its key, a queue, a bucket
    and an object. Yields (aws, key id, its secret, queue url, bucket)."""
    with EmbeddedAws(in_process=False, env={"INITIAL_NO_AUTH_ACTION_COUNT": "5"}) as aws:
        iam = aws.client("iam")
        iam.create_user(UserName="collector")
        key = iam.create_access_key(UserName="collector")["AccessKey"]
        url = aws.client("sqs").create_queue(QueueName="logs")["QueueUrl"]
        aws.client("s3").create_bucket(Bucket="flow-logs")
        aws.client("s3").put_object(Bucket="flow-logs", Key="a.log", Body=b"x\n")
        yield aws, key["AccessKeyId"], key["SecretAccessKey"], url, "flow-logs"


def _calls(factory: ClientFactory, url: str, bucket: str):
    sqs, s3 = factory.client("sqs", REGION), factory.client("s3", REGION)
    return {
        "sqs GetQueueUrl": lambda: sqs.get_queue_url(QueueName="logs"),
        "sqs ReceiveMessage": lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0),
        "s3 GetObject": lambda: s3.get_object(Bucket=bucket, Key="a.log"),
    }


def test_a_wrong_secret_is_aws_001_on_every_call(enforcing):
    aws, key_id, _, url, bucket = enforcing
    factory = ClientFactory(endpoint_url=aws.endpoint_url, access_key=key_id,
                            access_secret=SECRET)
    for what, call in _calls(factory, url, bucket).items():
        with pytest.raises(ClientError) as raised:
            call()
        assert raised.value.response["Error"]["Code"] == "SignatureDoesNotMatch", what
        error = aws_error(raised.value, what)
        assert error.code == "AWS-001", error
        assert error.message.startswith(f"{what} failed: SignatureDoesNotMatch: The request "
                                        "signature we calculated does not match")
        assert "\n" not in error.message and "<" not in error.message
        assert SECRET not in str(error) and key_id not in str(error)


def test_an_unknown_key_is_aws_001_on_every_call(enforcing):
    aws, _, _, url, bucket = enforcing
    factory = ClientFactory(endpoint_url=aws.endpoint_url, access_key="TESTKEYIDNOTREAL00042",
                            access_secret=SECRET)
    for what, call in _calls(factory, url, bucket).items():
        with pytest.raises(ClientError) as raised:
            call()
        assert raised.value.response["Error"]["Code"] in (
            "InvalidClientTokenId", "InvalidAccessKeyId"), what
        assert aws_error(raised.value, what).code == "AWS-001"


def test_the_right_secret_still_works(enforcing):
    aws, key_id, secret, url, bucket = enforcing
    factory = ClientFactory(endpoint_url=aws.endpoint_url, access_key=key_id,
                            access_secret=secret)
    for what, call in _calls(factory, url, bucket).items():
        with pytest.raises(ClientError) as raised:  # the user has no policy: denied
            call()
        assert raised.value.response["Error"]["Code"] == "AccessDenied", what
        assert aws_error(raised.value, what).code == "AWS-003"


def test_without_the_reader_the_raw_answer_still_makes_one_line(enforcing):
    """botocore alone reads moto's XML answer to a JSON request as code "403" and the
    whole XML document as the message: our error is one line all the same."""
    aws, key_id, _, url, _ = enforcing
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=aws.endpoint_url,
                       aws_access_key_id=key_id, aws_secret_access_key=SECRET,
                       config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(ClientError) as raised:
        sqs.receive_message(QueueUrl=url)
    error = aws_error(raised.value, "sqs ReceiveMessage")
    assert "\n" not in error.message and SECRET not in error.message


# -- shapes from the fault proxy ------------------------------------------------------


@pytest.fixture
def proxy(embedded_aws) -> Iterator[FaultProxy]:
    with FaultProxy(embedded_aws.endpoint_url) as p:
        yield p


@pytest.mark.parametrize("protocol, status, code, ours", [
    ("query", 400, "ThrottlingException", "AWS-004"),  # XML to a JSON-protocol request
    ("query", 400, "RequestThrottled", "AWS-004"),
    ("query", 403, "SignatureDoesNotMatch", "AWS-001"),
    ("query", 400, "AWS.SimpleQueueService.NonExistentQueue", "AWS-005"),
    ("json", 400, "InvalidSignatureException", "AWS-001"),  # as SQS itself answers
    ("json", 400, "UnrecognizedClientException", "AWS-001"),
])
def test_sqs_error_code_comes_from_the_body(embedded_aws, proxy, protocol, status, code, ours):
    proxy.add(FaultRule(match_target="GetQueueUrl", protocol=protocol, status=status,
                        code=code, message="first line\n   second line"))
    with pytest.raises(ClientError) as raised:
        one_attempt("sqs", proxy.endpoint_url).get_queue_url(QueueName="anything")
    assert raised.value.response["Error"]["Code"] == code
    error = aws_error(raised.value, "sqs GetQueueUrl anything")
    assert error.code == ours
    assert error.message == f"sqs GetQueueUrl anything failed: {code}: first line second line"


def test_json_answer_to_a_query_request_is_read_too(embedded_aws, proxy):
    proxy.add(FaultRule(match_target="GetCallerIdentity", protocol="json", status=400,
                        code="ExpiredTokenException", message="The security token expired"))
    with pytest.raises(ClientError) as raised:
        one_attempt("sts", proxy.endpoint_url).get_caller_identity()
    assert raised.value.response["Error"] == {"Code": "ExpiredTokenException",
                                              "Message": "The security token expired"}
    assert aws_error(raised.value, "sts GetCallerIdentity").code == "AWS-001"


def test_xml_throttling_is_retried_as_throttling(embedded_aws, proxy):
    """Read as "400", botocore would not retry it at all; read as ThrottlingException,
    the factory's clients back off and retry it."""
    url = embedded_aws.client("sqs").create_queue(QueueName=unique("q"))["QueueUrl"]
    throttled = proxy.add(FaultRule(match_target="ReceiveMessage", protocol="query", times=2,
                                    status=400, code="ThrottlingException"))
    factory = ClientFactory(endpoint_url=proxy.endpoint_url, access_key="testing",
                            access_secret="testing")
    got = factory.client("sqs", REGION).receive_message(QueueUrl=url, WaitTimeSeconds=0)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert throttled.hits == 2


def test_a_multi_line_html_5xx_page_is_one_line(embedded_aws, proxy):
    proxy.add(FaultRule(match_target="GetQueueUrl", protocol="html", status=502, times=2))
    # botocore alone: the code is the status and the message the whole page.
    with pytest.raises(ClientError) as raw:
        one_attempt("sqs", proxy.endpoint_url, read_body=False).get_queue_url(QueueName="q")
    assert "\n" in raw.value.response["Error"]["Message"]
    assert "\n" not in aws_error(raw.value, "sqs GetQueueUrl q").message
    # With the reader: the page's title.
    with pytest.raises(ClientError) as read:
        one_attempt("sqs", proxy.endpoint_url).get_queue_url(QueueName="q")
    error = aws_error(read.value, "sqs GetQueueUrl q")
    assert error.code == "AWS-008"
    assert error.message == "sqs GetQueueUrl q failed: 502: 502 Bad Gateway"


def test_a_huge_aws_message_is_cut(embedded_aws, proxy):
    proxy.add(FaultRule(match_target="GetQueueUrl", protocol="query", status=403,
                        code="AccessDenied", message="denied because " + "x" * 20_000))
    with pytest.raises(ClientError) as raised:
        one_attempt("sqs", proxy.endpoint_url).get_queue_url(QueueName="q")
    error = aws_error(raised.value, "sqs GetQueueUrl q")
    assert error.code == "AWS-003"
    assert error.message.endswith("...")
    assert len(error.message) <= len("sqs GetQueueUrl q failed: AccessDenied: ") + MAX_AWS_MESSAGE


def test_s3_errors_botocore_reads_are_left_as_they_are(embedded_aws, proxy):
    bucket = unique("bucket")
    embedded_aws.client("s3").create_bucket(Bucket=bucket)
    proxy.add(FaultRule(match_target="GetObject", protocol="s3", status=503, code="SlowDown"))
    with pytest.raises(ClientError) as raised:
        one_attempt("s3", proxy.endpoint_url).get_object(Bucket=bucket, Key="k")
    assert raised.value.response["Error"]["Code"] == "SlowDown"
    with pytest.raises(ClientError) as missing:
        one_attempt("s3", embedded_aws.endpoint_url).get_object(Bucket=bucket, Key="k")
    assert aws_error(missing.value, "s3 GetObject").code == "AWS-007"


def test_a_plain_text_answer_to_an_xml_api_is_an_aws_error_not_a_parse_failure():
    """A proxy in front of a dead AWS endpoint answers 502 in plain text: botocore alone
    fails to parse it (as XML); read by the collector it is the 502 with its text."""
    with FaultProxy(f"http://127.0.0.1:{free_port()}") as dead:
        with pytest.raises(ClientError) as raised:
            one_attempt("sts", dead.endpoint_url).get_caller_identity()
    assert raised.value.response["Error"]["Code"] == "502"
    error = aws_error(raised.value, "sts GetCallerIdentity")
    assert error.code == "AWS-008"
    assert error.message.startswith("sts GetCallerIdentity failed: 502: fault proxy: upstream "
                                    "failed:")
