"""AWS errors -> our AWS-0xx codes, in one table, and the AWS error code read right.

    try:
        client.receive_message(QueueUrl=url)
    except (ClientError, BotoCoreError) as e:
        raise aws_error(e, f"sqs ReceiveMessage on {url}") from e

Every client the ClientFactory makes runs ``read_error_body`` before botocore
parses a response: when an error's body is not in the shape of the client's
protocol (XML answering a JSON-protocol request, as a signature check in front
of the service may send it, or an HTML page from a proxy), botocore reports
only the HTTP status as the code ("403") and the raw body as the message. The
handler takes ``<Code>``/``<Message>`` (or ``__type``/``message``) from the
body instead, so that the code is AWS's own, its retries classify throttling
right, and the collector's code names the real cause.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError
from botocore.retries.standard import ThrottledRetryableChecker

from awscollector.errors import CollectorError, one_line

# The credentials themselves are wrong, expired or missing (not "not allowed").
CREDENTIAL_ERROR_CODES = frozenset({
    "AuthFailure",  # EC2
    "ExpiredToken",
    "ExpiredTokenException",
    "IncompleteSignature",
    "IncompleteSignatureException",
    "InvalidAccessKeyId",  # S3
    "InvalidClientTokenId",  # STS, IAM and other query APIs
    "InvalidSecurity",  # SQS (query era)
    "InvalidSignatureException",  # JSON APIs: SQS, KMS, Kinesis, ...
    "InvalidToken",  # S3: a malformed session token
    "MissingAuthenticationToken",
    "MissingAuthenticationTokenException",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
})
ACCESS_DENIED_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "AllAccessDisabled", "Forbidden",
    "403",  # a 403 whose body said nothing more
})
NO_QUEUE_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NotFound", "404"})
# botocore's own list of throttling codes (it retries them as such), and KMS's.
THROTTLING_CODES = frozenset(ThrottledRetryableChecker._THROTTLED_ERROR_CODES) | {"KmsThrottled"}



def _table(*classes: tuple[frozenset[str], str]) -> dict[str, str]:
    table: dict[str, str] = {}
    for codes, ours in classes:
        for code in codes:
            if code in table:
                raise ValueError(f"AWS error code {code} is in two classes")
            table[code] = ours
    return table


# AWS error code -> ours; anything else is AWS-008.
_OURS = _table((CREDENTIAL_ERROR_CODES, "AWS-001"), (ACCESS_DENIED_CODES, "AWS-003"),
               (THROTTLING_CODES, "AWS-004"), (NO_QUEUE_CODES, "AWS-005"),
               (NOT_FOUND_CODES, "AWS-007"))

MAX_AWS_MESSAGE = 500  # characters of AWS's message kept in ours


def collector_code(aws_code: str) -> str:
    """Our code for an AWS error code; AWS-008 for anything not in the table."""
    return _OURS.get(aws_code, "AWS-008")


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "Unknown")


def error_text(exc: ClientError) -> str:
    """`Code: message` of an AWS error, on one line, the message cut to MAX_AWS_MESSAGE."""
    err = exc.response.get("Error", {})
    message = _short(str(err.get("Message") or ""))
    return f"{err.get('Code', 'Unknown')}: {message}".rstrip(": ")


def aws_error(e: Exception, what: str) -> CollectorError:
    """A CollectorError with the AWS family code that fits a boto3 error."""
    if isinstance(e, NoCredentialsError | PartialCredentialsError):
        return CollectorError("AWS-001", f"{what} failed: {e}")
    if not isinstance(e, ClientError):
        return CollectorError("AWS-006", f"{what} failed: {e}")
    return CollectorError(collector_code(error_code(e)), f"{what} failed: {error_text(e)}")


def _short(text: str) -> str:
    return one_line(" ".join(text.split()), MAX_AWS_MESSAGE)


# -- reading the code from the body ---------------------------------------------------

_JSON_PROTOCOLS = frozenset({"json", "rest-json"})
_XML_PROTOCOLS = frozenset({"query", "rest-xml", "ec2"})
_XML_CODE = re.compile(rb"<(?:\w+:)?Code>\s*([^<]{1,256}?)\s*</(?:\w+:)?Code>")
_XML_MESSAGE = re.compile(rb"<(?:\w+:)?Message>([^<]*)</(?:\w+:)?Message>")
_XML_TYPE = re.compile(rb"<(?:\w+:)?Type>\s*(Sender|Receiver)\s*</(?:\w+:)?Type>")
_HTML_TITLE = re.compile(rb"<title[^>]*>([^<]{0,512})</title>", re.IGNORECASE)
_HTML_START = re.compile(rb"\s*(<!doctype html|<html)", re.IGNORECASE)
_MAX_BODY = 64 * 1024  # of a larger error body only the start is looked at


def read_error_body(response_dict: dict, operation_model: Any,
                    customized_response_dict: dict, **_: Any) -> None:
    """botocore ``before-parse`` handler: the error code and message from a body that
    is not in the shape of the client's protocol (botocore would report the status)."""
    status = response_dict.get("status_code") or 0
    body = response_dict.get("body")
    if status < 300 or not isinstance(body, bytes) or not body.strip():
        return
    body = body[:_MAX_BODY].strip()
    protocol = getattr(operation_model.service_model, "resolved_protocol", None) \
        or operation_model.metadata.get("protocol")
    if protocol not in _JSON_PROTOCOLS and protocol not in _XML_PROTOCOLS:
        return
    if _HTML_START.match(body):
        error = _from_html(body, status)
    elif protocol in _JSON_PROTOCOLS:
        if body.startswith(b"{"):
            return  # JSON: botocore reads it
        error = (body.startswith(b"<") and _from_xml(body)) or _from_text(body, status)
    else:
        if body.startswith(b"<"):
            return  # XML: botocore reads it
        error = (body.startswith(b"{") and _from_json(body)) or _from_text(body, status)
    customized_response_dict["Error"] = error
    # botocore still parses the body: give it an empty one of its protocol's shape, so
    # that it neither fails on the foreign one (the XML parsers raise) nor copies it
    # into the response as a modeled field.
    response_dict["body"] = b"{}" if protocol in _JSON_PROTOCOLS else b"<ErrorResponse/>"


def _from_xml(body: bytes) -> dict | None:
    # A regex, not an XML parser: the body is untrusted and only these two fields count.
    code = _XML_CODE.search(body)
    if code is None:
        return None
    error = {"Code": _text(code.group(1))}
    message = _XML_MESSAGE.search(body)
    error["Message"] = _text(message.group(1)) if message else ""
    kind = _XML_TYPE.search(body)
    if kind:
        error["Type"] = kind.group(1).decode()
    return error


def _from_json(body: bytes) -> dict | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    code = doc.get("__type") or doc.get("code") or doc.get("Code")
    if not isinstance(code, str) or not code:
        return None
    # As botocore reads it: "prefix#Code" or "Code:http://internal..."
    code = code.split(":", 1)[0].rsplit("#", 1)[-1]
    message = doc.get("message") or doc.get("Message") or ""
    return {"Code": code, "Message": _short(str(message))}


def _from_html(body: bytes, status: int) -> dict:
    title = _HTML_TITLE.search(body)
    return {"Code": str(status), "Message": _text(title.group(1)) if title else ""}


def _from_text(body: bytes, status: int) -> dict:
    return {"Code": str(status), "Message": _short(body[:MAX_AWS_MESSAGE * 2].decode(
        "utf-8", "replace"))}


def _text(raw: bytes) -> str:
    return _short(html.unescape(raw.decode("utf-8", "replace")))


def register_error_reader(client: Any) -> Any:
    """Make `client` read error codes from bodies botocore cannot parse (returns it)."""
    client.meta.events.register("before-parse", read_error_body,
                                unique_id="awscollector-read-error-body")
    return client
