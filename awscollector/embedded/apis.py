"""An emulator of the AWS API calls moto's server lacks, in front of it.

moto answers CloudTrail ``LookupEvents`` with HTTP 500 and has no GuardDuty
``ListFindings``/``GetFindings`` (404). ``ApiEmulator`` is a loopback HTTP server
that answers those three itself, in their real wire protocols (CloudTrail: JSON
1.1 with ``X-Amz-Target``; GuardDuty: REST-JSON), and forwards every other request
unchanged (the Host header included, so SigV4 signatures still verify; bodies
streamed) to moto. boto3 runs unchanged: point its ``endpoint_url`` at the
emulator. ``EmbeddedAws(apis=True)`` starts one in front of its moto server.

    with EmbeddedAws(apis=True) as aws:
        aws.apis.add_trail_events(cloudtrail_records(600), region="us-east-1")
        ct = aws.client("cloudtrail")
        page = ct.lookup_events(MaxResults=50)    # the 50 newest events, and a NextToken
        detector = aws.client("guardduty").create_detector(Enable=True)["DetectorId"]
        aws.apis.add_findings(detector, findings, region="us-east-1")
        aws.apis.requests("LookupEvents")         # every call: time, account, region, throttled

What AWS does that the emulator does too:

- LookupEvents: events newest first, at most 50 a page (``MaxResults`` 1..50),
  ``StartTime``/``EndTime`` inclusive at both ends, one lookup attribute (EventId,
  EventName, ReadOnly, Username, ResourceType, ResourceName, EventSource,
  AccessKeyId), ``EventCategory=insight`` for Insights events (and only then).
  ``NextToken`` is opaque, the same for the same query at the same place, and
  refused (InvalidNextTokenException) with other parameters, another account or
  region. 2 calls per second per account and region (configurable); above that
  ThrottlingException. An event is listed only once the emulator's clock passed
  its visible time: CloudTrail shows events up to about 15 minutes late.
  The rate is a token bucket (2 a second, bursts of 2), as AWS meters its APIs.
- ListFindings/GetFindings: findings per account, region and detector; criteria
  on any field (``updatedAt``/``createdAt`` compared in epoch ms; ``eq``/``neq``/
  ``equals``/``notEquals``/``matches``, ``gt``/``gte``/``lt``/``lte`` and the long
  names), ``sortCriteria``, ``maxResults`` 1..50, opaque ``nextToken``; GetFindings
  takes at most 50 ids and returns each finding as stored. A detector is known once
  it was created through the emulator (moto keeps it; ListDetectors is moto's) or
  seeded; another is BadRequestException, as AWS answers a detector that is not
  the caller's.

The account of a request is ``default_account`` unless its access key id is mapped
(``map_access_key``, or the keys of an STS AssumeRole answered through the
emulator); its region is the one in its SigV4 credential scope. Errors have
AWS's wire shape, so botocore parses, classifies and retries them as AWS's.

The server, its connections and the forwarding are the shared HTTP front's
(awscollector/embedded/front.py); this module adds the emulated calls.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import fnmatch
import hashlib
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from awscollector.embedded.front import UPSTREAM_TIMEOUT, FrontHandler, HttpFront

DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"
MAX_BODY = 4 << 20  # an emulated call's request body, read whole
MAX_REQUESTS_KEPT = 100_000
PAGE = 50  # LookupEvents', ListFindings' and GetFindings' most per call

CT_TARGET = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."
CT_ATTRIBUTES = ("EventId", "EventName", "ReadOnly", "Username", "ResourceType",
                 "ResourceName", "EventSource", "AccessKeyId")
# AWS's documented limit: LookupEvents, 2 calls per second per account and region.
DEFAULT_LIMITS: dict[str, tuple[float, int]] = {"LookupEvents": (2.0, 2)}

_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")
_GD_FINDINGS = re.compile(r"^/detector/([^/?]+)/findings(/get)?/?$")
_GD_DETECTOR = re.compile(r"^/detector/([^/?]+)/?$")
_STS_KEY = re.compile(rb"<AccessKeyId>\s*([A-Z0-9]+)\s*</AccessKeyId>")
_STS_ARN = re.compile(rb"<Arn>\s*arn:[\w-]+:sts::(\d{12}):assumed-role/")


class ApiError(Exception):
    """An AWS error answer: status, code and message (sent in the service's shape)."""

    def __init__(self, status: int, code: str, message: str, kind: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.kind = kind  # GuardDuty's body ``__type`` (its header has the code)


@dataclass(frozen=True)
class ApiRequest:
    """One call of an emulated operation, as the emulator saw it."""

    operation: str
    time: float  # wall clock (epoch seconds) at arrival
    account: str
    region: str
    throttled: bool = False
    status: int = 200
    error: str | None = None  # the error code answered, if any


@dataclass(order=True)
class _TrailEvent:
    time: float  # epoch seconds of eventTime
    seq: int
    visible_at: float = field(compare=False)
    record: dict = field(compare=False)
    summary: dict = field(compare=False)
    insight: bool = field(compare=False)


class _Limit:
    """A token bucket per key: ``burst`` calls at once, then ``rate`` a second. With the
    defaults (2/s, burst 2) a caller paced at 2 calls a second is never throttled, and
    in any T seconds at most 2 + 2T calls are accepted. A throttled call costs nothing."""

    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst at least 1")
        self.rate = rate
        self.burst = burst
        self.buckets: dict[tuple, tuple[float, float]] = {}  # key -> (tokens, at)

    def allow(self, key: tuple, now: float) -> bool:
        tokens, at = self.buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - at) * self.rate)
        allowed = tokens >= 1.0
        self.buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        return allowed


def _epoch_seconds(value: Any, name: str) -> float | None:
    """A request timestamp (botocore sends epoch seconds; ISO 8601 is accepted too)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ApiError(400, "ValidationException", f"{name} is not a timestamp")
    seconds = _number_or_time(value, iso_scale=1.0)
    if seconds is None:
        raise ApiError(400, "SerializationException", f"{name} is not a timestamp")
    return seconds


def _number_or_time(value: Any, iso_scale: float) -> float | None:
    """A number (or numeric string) as it is, an ISO 8601 time in epoch seconds times
    ``iso_scale``; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            return _iso_seconds(value) * iso_scale
        except ValueError:
            return None
    return None


def _iso_seconds(value: str) -> float:
    at = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.timestamp()


def _number(seconds: float) -> int | float:
    return int(seconds) if seconds == int(seconds) else seconds


def _encode_token(query: str, cursor: list) -> str:
    raw = json.dumps({"q": query, "c": cursor}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: Any, query: str, code: str, status: int = 400,
                  kind: str | None = None) -> list:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        cursor = data["c"]
        ok = data["q"] == query and isinstance(cursor, list)
    except (TypeError, ValueError, KeyError, AttributeError):
        ok = False
    if not ok:
        raise ApiError(status, code, "Invalid NextToken: the token is not valid for this "
                       "request (a token is valid only with the parameters it came with).",
                       kind)
    return cursor


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()
                          ).hexdigest()[:24]


# -- CloudTrail: the event summary LookupEvents builds from a record


def _username(identity: dict) -> str | None:
    if identity.get("userName"):
        return identity["userName"]
    kind = identity.get("type")
    if kind == "Root":
        return "root"
    arn = identity.get("arn")
    if kind == "AssumedRole" and isinstance(arn, str):
        return arn.rsplit("/", 1)[-1]  # the role session's name
    issuer = (identity.get("sessionContext") or {}).get("sessionIssuer") or {}
    return issuer.get("userName") or identity.get("invokedBy") or identity.get("principalId")


def _resources(record: dict) -> list[dict]:
    out = []
    for res in record.get("resources") or []:
        if not isinstance(res, dict):
            continue
        name = res.get("ARN") or res.get("arn")
        if isinstance(name, str) and name.startswith("arn:"):
            name = name.split(":", 5)[-1]  # arn:partition:service:region:account:<this>
        item = {"ResourceType": res.get("type"), "ResourceName": name}
        out.append({k: v for k, v in item.items() if v is not None})
    return out


def _summary(record: dict, seconds: float) -> dict:
    identity = record.get("userIdentity") or {}
    read_only = record.get("readOnly")
    if isinstance(read_only, bool):
        read_only = "true" if read_only else "false"
    elif read_only is not None:
        read_only = str(read_only).lower()
    insight = record.get("insightDetails") or {}
    summary = {
        "EventId": record.get("eventID"),
        "EventName": record.get("eventName") or insight.get("eventName"),
        "ReadOnly": read_only,
        "AccessKeyId": identity.get("accessKeyId"),
        "EventTime": _number(seconds),
        "EventSource": record.get("eventSource") or insight.get("eventSource"),
        "Username": _username(identity) if identity else None,
        "Resources": _resources(record),
        "CloudTrailEvent": json.dumps(record, separators=(",", ":")),
    }
    return {k: v for k, v in summary.items() if v is not None}


def _attribute_matches(summary: dict, key: str, value: str) -> bool:
    if key in ("ResourceType", "ResourceName"):
        return any(r.get(key) == value for r in summary["Resources"])
    return summary.get(key) == value


# -- GuardDuty: criteria over a finding's fields


def _values(finding: Any, path: str) -> list:
    """The values at a dotted path; lists on the way are searched element by element."""
    found = [finding]
    for part in path.split("."):
        nxt = []
        for node in found:
            items = node if isinstance(node, list) else [node]
            for item in items:
                if isinstance(item, dict) and part in item:
                    nxt.append(item[part])
        found = nxt
    flat: list = []
    for value in found:
        flat.extend(value if isinstance(value, list) else [value])
    return [v for v in flat if v is not None]


def _as_number(value: Any) -> float | None:
    """Numbers as they are; ISO timestamps in epoch ms (GuardDuty compares times in ms)."""
    return _number_or_time(value, iso_scale=1000.0)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    return str(value)


def _equal(value: Any, wanted: Any) -> bool:
    if _as_text(value) == _as_text(wanted):
        return True
    a, b = _as_number(value), _as_number(wanted)
    return a is not None and b is not None and a == b and not isinstance(value, str | bool)


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "gt": lambda a, b: a > b, "greaterThan": lambda a, b: a > b,
    "gte": lambda a, b: a >= b, "greaterThanOrEqual": lambda a, b: a >= b,
    "lt": lambda a, b: a < b, "lessThan": lambda a, b: a < b,
    "lte": lambda a, b: a <= b, "lessThanOrEqual": lambda a, b: a <= b,
}
_LISTS = ("eq", "equals", "neq", "notEquals", "matches", "notMatches")


def _check_criterion(criterion: Any) -> dict:
    if criterion is None:
        return {}
    if not isinstance(criterion, dict):
        raise _bad_request("findingCriteria.criterion must be an object")
    for name, condition in criterion.items():
        if not isinstance(condition, dict) or not condition:
            raise _bad_request(f"the condition of {name} must be a non-empty object")
        for op, operand in condition.items():
            if op in _COMPARE:
                if isinstance(operand, bool) or not isinstance(operand, int | float):
                    raise _bad_request(f"{name}.{op} must be a number")
            elif op in _LISTS:
                if not isinstance(operand, list) or not all(isinstance(v, str) for v in operand):
                    raise _bad_request(f"{name}.{op} must be a list of strings")
            else:
                raise _bad_request(f"unknown condition {op} on {name}")
    return criterion


def _satisfies(finding: dict, criterion: dict) -> bool:
    for name, condition in criterion.items():
        values = _values(finding, name)
        for op, operand in condition.items():
            if op in _COMPARE:
                numbers = [n for n in map(_as_number, values) if n is not None]
                if not any(_COMPARE[op](n, float(operand)) for n in numbers):
                    return False
            elif op in ("eq", "equals"):
                if not any(_equal(v, w) for v in values for w in operand):
                    return False
            elif op in ("neq", "notEquals"):
                if any(_equal(v, w) for v in values for w in operand):
                    return False
            elif op == "matches":
                if not any(fnmatch.fnmatchcase(_as_text(v), w) for v in values for w in operand):
                    return False
            elif any(fnmatch.fnmatchcase(_as_text(v), w) for v in values for w in operand):
                return False  # notMatches
    return True


def _sort_key(finding: dict, attribute: str | None, seq: int) -> list:
    """A total order: the attribute's value (numbers and times as numbers), then the id."""
    if attribute is None:
        return [0, seq, finding.get("id", "")]
    values = _values(finding, attribute)
    if not values:
        return [0, 0, finding.get("id", "")]
    number = _as_number(values[0])
    if number is not None:
        return [1, number, finding.get("id", "")]
    return [2, _as_text(values[0]), finding.get("id", "")]


def _bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequestException", message, "InvalidInputException")


def _check_sort(sort: Any) -> tuple[str | None, bool]:
    if sort is None:
        return None, False
    if not isinstance(sort, dict):
        raise _bad_request("sortCriteria must be an object")
    attribute = sort.get("attributeName")
    order = sort.get("orderBy", "ASC")
    if attribute is not None and not isinstance(attribute, str):
        raise _bad_request("sortCriteria.attributeName must be a string")
    if order not in ("ASC", "DESC"):
        raise _bad_request("sortCriteria.orderBy must be ASC or DESC")
    return attribute, order == "DESC"


class ApiEmulator(HttpFront):
    """CloudTrail LookupEvents and GuardDuty ListFindings/GetFindings on a free loopback
    port; every other request forwarded to ``upstream`` (moto's server)."""

    def __init__(self, upstream: str, *, default_account: str = DEFAULT_ACCOUNT,
                 clock: Callable[[], float] = time.time,
                 upstream_timeout: float = UPSTREAM_TIMEOUT) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
            raise ValueError(f"upstream must be an http://host:port URL, not {upstream!r}")
        super().__init__(upstream, scheme="http", host=parts.hostname, port=parts.port or 80,
                         upstream_timeout=upstream_timeout, handler=_Handler,
                         thread_name="aws-apis")
        self.default_account = default_account
        self.clock = clock
        self._lock = threading.Lock()
        self._accounts: dict[str, str] = {}
        self._learned: dict[str, str] = {}  # from STS AssumeRole answers
        self._limits: dict[str, _Limit] = {op: _Limit(r, b) for op, (r, b)
                                           in DEFAULT_LIMITS.items()}
        self._denied: set[str] = set()
        self._requests: deque[ApiRequest] = deque(maxlen=MAX_REQUESTS_KEPT)
        self._seq = 0
        self._trail: dict[tuple[str, str], list[_TrailEvent]] = {}
        self._detectors: set[tuple[str, str, str]] = set()
        self._findings: dict[tuple[str, str, str], dict[str, tuple[int, dict]]] = {}

    # -- settings -----------------------------------------------------------------------

    def map_access_key(self, key_id: str, account: str) -> None:
        """Calls signed with ``key_id`` are ``account``'s."""
        if not re.fullmatch(r"\d{12}", account):
            raise ValueError("an account id is 12 digits")
        with self._lock:
            self._accounts[key_id] = account

    def account_of(self, key_id: str | None) -> str:
        with self._lock:
            return self._account_locked(key_id)

    def _account_locked(self, key_id: str | None) -> str:
        if key_id is None:
            return self.default_account
        return self._accounts.get(key_id) or self._learned.get(key_id) or self.default_account

    def set_rate_limit(self, operation: str, rate: float | None, burst: int | None = None
                       ) -> None:
        """Calls of ``operation`` per account and region: a token bucket of ``burst``
        (default: ``rate`` rounded up) refilled at ``rate`` a second; None: no limit."""
        with self._lock:
            if rate is None:
                self._limits.pop(operation, None)
            else:
                self._limits[operation] = _Limit(rate, burst or max(1, int(-(-rate // 1))))

    def deny(self, operation: str) -> None:
        """Answer ``operation`` with AccessDeniedException, as AWS does without the grant."""
        with self._lock:
            self._denied.add(operation)

    def allow(self, operation: str) -> None:
        with self._lock:
            self._denied.discard(operation)

    def requests(self, operation: str | None = None) -> list[ApiRequest]:
        """Every call of the emulated operations (or of one), throttled ones included."""
        with self._lock:
            return [r for r in self._requests if operation is None or r.operation == operation]

    # -- CloudTrail seeding -------------------------------------------------------------

    def add_trail_events(self, records: Iterable[dict], region: str = DEFAULT_REGION,
                         account: str | None = None, visible_after_seconds: float = 0,
                         visible_at: float | None = None) -> int:
        """CloudTrail records (dicts as in CloudTrail's S3 files) that LookupEvents lists
        in ``account`` and ``region`` from ``visible_at`` (epoch seconds), by default
        ``visible_after_seconds`` from now. Returns how many were added."""
        if visible_at is None:
            visible_at = self.clock() + visible_after_seconds
        account = account or self.default_account
        events = []
        for record in records:
            if not isinstance(record, dict) or not isinstance(record.get("eventTime"), str):
                raise ValueError("a CloudTrail record is a dict with an eventTime")
            if not record.get("eventID"):
                raise ValueError("a CloudTrail record needs an eventID")
            seconds = _iso_seconds(record["eventTime"])
            record = copy.deepcopy(record)
            events.append((seconds, record))
        with self._lock:
            store = self._trail.setdefault((account, region), [])
            for seconds, record in events:
                self._seq += 1
                store.append(_TrailEvent(seconds, self._seq, visible_at, record,
                                         _summary(record, seconds),
                                         record.get("eventType") == "AwsCloudTrailInsight"))
            store.sort(reverse=True)  # newest first, as LookupEvents lists them
        return len(events)

    # -- GuardDuty seeding --------------------------------------------------------------

    def add_detector(self, detector_id: str, region: str = DEFAULT_REGION,
                     account: str | None = None) -> None:
        """Make ``detector_id`` known (one created through the emulator is already)."""
        with self._lock:
            self._detectors.add((account or self.default_account, region, detector_id))

    def add_findings(self, detector_id: str, findings: Iterable[dict],
                     region: str = DEFAULT_REGION, account: str | None = None) -> int:
        """Findings (as GetFindings returns them: ``id`` and ``updatedAt`` at least) of a
        detector; one with the id of a stored one replaces it. Returns how many."""
        key = (account or self.default_account, region, detector_id)
        checked = [self._checked_finding(f) for f in findings]
        with self._lock:
            self._detectors.add(key)
            store = self._findings.setdefault(key, {})
            for finding in checked:
                self._seq += 1
                store[finding["id"]] = (self._seq, finding)
        return len(checked)

    def update_finding(self, detector_id: str, finding: dict | str,
                       region: str = DEFAULT_REGION, account: str | None = None,
                       **fields: Any) -> dict:
        """GuardDuty updating a finding in place: ``finding`` is the new state (a dict) or
        the id of a stored one; ``fields`` are set on it. ``updatedAt`` moves to now
        unless the new state gives a different one. Returns the new state."""
        key = (account or self.default_account, region, detector_id)
        finding_id = finding if isinstance(finding, str) else finding.get("id")
        with self._lock:
            stored = self._findings.get(key, {}).get(finding_id)
        if stored is None:
            raise KeyError(f"no finding {finding_id!r} in detector {detector_id} "
                           f"({key[0]}, {region})")
        old = stored[1]
        new = copy.deepcopy(old if isinstance(finding, str) else finding)
        new.update(copy.deepcopy(fields))
        if new.get("updatedAt") == old.get("updatedAt"):
            now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
            new["updatedAt"] = f"{now:%Y-%m-%dT%H:%M:%S}.{now.microsecond // 1000:03d}Z"
        new = self._checked_finding(new)
        with self._lock:
            self._seq += 1
            self._findings[key][finding_id] = (self._seq, new)
        return copy.deepcopy(new)

    def findings(self, detector_id: str, region: str = DEFAULT_REGION,
                 account: str | None = None) -> list[dict]:
        """The stored findings of a detector (copies), in the order they were stored."""
        key = (account or self.default_account, region, detector_id)
        with self._lock:
            return [copy.deepcopy(f) for _, f in sorted(self._findings.get(key, {}).values(),
                                                        key=lambda p: p[0])]

    @staticmethod
    def _checked_finding(finding: Any) -> dict:
        if not isinstance(finding, dict) or not isinstance(finding.get("id"), str):
            raise ValueError("a finding is a dict with a string id")
        try:
            _iso_seconds(finding["updatedAt"])
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ValueError(f"finding {finding['id']} needs an ISO 8601 updatedAt") from None
        return copy.deepcopy(finding)

    # -- a call -------------------------------------------------------------------------

    def _admit(self, operation: str, account: str, region: str) -> ApiRequest:
        """Record the call; raise the error AWS would answer before doing any work."""
        now = self.clock()
        with self._lock:
            limit = self._limits.get(operation)
            throttled = limit is not None and not limit.allow((account, region), now)
            denied = operation in self._denied
            error = None
            if denied:
                error = "AccessDeniedException"
            elif throttled:
                error = "ThrottlingException"
            request = ApiRequest(operation, now, account, region, throttled,
                                 400 if error else 200, error)
            self._requests.append(request)
        if denied:
            service = "cloudtrail" if operation == "LookupEvents" else "guardduty"
            raise ApiError(400 if service == "cloudtrail" else 403, "AccessDeniedException",
                           f"User: arn:aws:iam::{account}:user/caller is not authorized to "
                           f"perform: {service}:{operation} because no identity-based policy "
                           f"allows the {service}:{operation} action", "AccessDeniedException")
        if throttled:
            raise ApiError(400, "ThrottlingException", "Rate exceeded", "ThrottlingException")
        return request

    def _failed(self, request: ApiRequest, error: ApiError) -> None:
        """Mark a call admitted by _admit as answered with ``error`` (found invalid)."""
        with self._lock:
            for i in range(len(self._requests) - 1, -1, -1):
                if self._requests[i] is request:
                    self._requests[i] = ApiRequest(request.operation, request.time,
                                                   request.account, request.region,
                                                   request.throttled, error.status, error.code)
                    return

    def lookup_events(self, account: str, region: str, params: dict) -> dict:
        """LookupEvents for ``account`` and ``region`` (the decoded JSON request)."""
        attributes = params.get("LookupAttributes") or []
        if not isinstance(attributes, list):
            raise ApiError(400, "InvalidLookupAttributesException",
                           "LookupAttributes must be a list")
        if len(attributes) > 1:
            raise ApiError(400, "InvalidLookupAttributesException",
                           "You cannot specify more than one lookup attribute.")
        wanted = None
        for attribute in attributes:
            key = attribute.get("AttributeKey") if isinstance(attribute, dict) else None
            value = attribute.get("AttributeValue") if isinstance(attribute, dict) else None
            if key not in CT_ATTRIBUTES:
                raise ApiError(400, "InvalidLookupAttributesException",
                               f"Unsupported lookup attribute key: {key}")
            if not isinstance(value, str) or not value:
                raise ApiError(400, "InvalidLookupAttributesException",
                               f"The lookup attribute {key} needs a value.")
            wanted = (key, value)
        max_results = params.get("MaxResults", PAGE)
        if isinstance(max_results, bool) or not isinstance(max_results, int) \
                or not 1 <= max_results <= PAGE:
            raise ApiError(400, "InvalidMaxResultsException",
                           f"MaxResults must be between 1 and {PAGE}.")
        start = _epoch_seconds(params.get("StartTime"), "StartTime")
        end = _epoch_seconds(params.get("EndTime"), "EndTime")
        if start is not None and end is not None and start > end:
            raise ApiError(400, "InvalidTimeRangeException",
                           "Start time must be before or equal to end time.")
        category = params.get("EventCategory")
        if category not in (None, "insight"):
            raise ApiError(400, "InvalidEventCategoryException",
                           f"Unsupported event category: {category}")
        query = _digest("LookupEvents", account, region, start, end, wanted, category)
        cursor = None
        token = params.get("NextToken")
        if token is not None:
            cursor = _decode_token(token, query, "InvalidNextTokenException")
            if len(cursor) != 2:
                raise ApiError(400, "InvalidNextTokenException", "Invalid NextToken.")
        now = self.clock()
        page: list[_TrailEvent] = []
        more = False
        with self._lock:
            store = list(self._trail.get((account, region), []))
        for event in store:  # newest first
            if cursor is not None and [event.time, event.seq] >= cursor:
                continue
            if event.visible_at > now or event.insight != (category == "insight"):
                continue
            if (start is not None and event.time < start) or (end is not None
                                                              and event.time > end):
                continue
            if wanted and not _attribute_matches(event.summary, *wanted):
                continue
            if len(page) == max_results:
                more = True
                break
            page.append(event)
        answer: dict[str, Any] = {"Events": [e.summary for e in page]}
        if more:
            answer["NextToken"] = _encode_token(query, [page[-1].time, page[-1].seq])
        return answer

    def _detector(self, account: str, region: str, detector_id: str) -> tuple[str, str, str]:
        key = (account, region, detector_id)
        with self._lock:
            known = key in self._detectors
        if not known:
            raise _bad_request("The request is rejected because the input detectorId is not "
                               "owned by the current account.")
        return key

    def list_findings(self, account: str, region: str, detector_id: str, params: dict
                      ) -> dict:
        key = self._detector(account, region, detector_id)
        criteria = params.get("findingCriteria") or {}
        if not isinstance(criteria, dict):
            raise _bad_request("findingCriteria must be an object")
        criterion = _check_criterion(criteria.get("criterion"))
        attribute, descending = _check_sort(params.get("sortCriteria"))
        max_results = params.get("maxResults", PAGE)
        if isinstance(max_results, bool) or not isinstance(max_results, int) \
                or not 1 <= max_results <= PAGE:
            raise _bad_request(f"maxResults must be between 1 and {PAGE}.")
        query = _digest("ListFindings", key, criterion, attribute, descending)
        cursor = None
        if params.get("nextToken"):
            cursor = _decode_token(params["nextToken"], query, "BadRequestException",
                                   kind="InvalidInputException")
        with self._lock:
            stored = list(self._findings.get(key, {}).values())
        keyed = sorted(((_sort_key(f, attribute, seq), f) for seq, f in stored
                        if _satisfies(f, criterion)), key=lambda p: p[0], reverse=descending)
        if cursor is not None:
            try:
                keyed = [p for p in keyed if (p[0] < cursor if descending else p[0] > cursor)]
            except TypeError:
                raise _bad_request("The nextToken is not valid.") from None
        page = keyed[:max_results]
        answer: dict[str, Any] = {"findingIds": [f["id"] for _, f in page]}
        if len(keyed) > max_results:
            answer["nextToken"] = _encode_token(query, page[-1][0])
        return answer

    def get_findings(self, account: str, region: str, detector_id: str, params: dict) -> dict:
        key = self._detector(account, region, detector_id)
        ids = params.get("findingIds")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise _bad_request("findingIds must be a list of strings")
        if len(ids) > PAGE:
            raise _bad_request(f"The request is rejected because findingIds has more than "
                               f"{PAGE} items.")
        attribute, descending = _check_sort(params.get("sortCriteria"))
        with self._lock:
            store = self._findings.get(key, {})
            found = [store[i] for i in dict.fromkeys(ids) if i in store]
        if attribute is not None:
            found.sort(key=lambda p: _sort_key(p[1], attribute, p[0]), reverse=descending)
        return {"findings": [f for _, f in found]}

    # -- what the emulator learns from forwarded answers --------------------------------

    def _observe(self, service: str | None, method: str, path: str, account: str,
                 region: str, status: int, body: bytes) -> None:
        if status != 200:
            return
        if service == "sts":
            keys, arns = _STS_KEY.findall(body), _STS_ARN.findall(body)
            if len(keys) == 1 and len(arns) == 1:
                with self._lock:
                    self._learned[keys[0].decode()] = arns[0].decode()
        elif service == "guardduty" and method == "POST" and path.rstrip("/") == "/detector":
            try:
                detector = json.loads(body).get("detectorId")
            except (ValueError, AttributeError):
                return
            if isinstance(detector, str):
                self.add_detector(detector, region, account)
        elif service == "guardduty" and method == "DELETE":
            match = _GD_DETECTOR.match(path)
            if match:
                key = (account, region, unquote(match.group(1)))
                with self._lock:
                    self._detectors.discard(key)
                    self._findings.pop(key, None)


class _Handler(FrontHandler):
    server_version = "EmbeddedAwsApis"
    bad_gateway_text = "embedded AWS front: moto failed"

    @property
    def emulator(self) -> ApiEmulator:
        return self.server.front  # type: ignore[return-value]

    def _handle(self) -> None:
        try:
            self._route()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _route(self) -> None:
        emulator = self.emulator
        scope = _SCOPE.search(self.headers.get("Authorization", ""))
        key_id, region, service = scope.groups() if scope else (None, DEFAULT_REGION, None)
        account = emulator.account_of(key_id)
        path = urlsplit(self.path).path
        target = self.headers.get("X-Amz-Target", "")
        if self.command == "POST" and target == CT_TARGET + "LookupEvents":
            self._emulate("LookupEvents", account, region,
                          lambda p: emulator.lookup_events(account, region, p))
            return
        match = _GD_FINDINGS.match(path) if service in (None, "guardduty") else None
        if self.command == "POST" and match:
            detector = unquote(match.group(1))
            if match.group(2):
                self._emulate("GetFindings", account, region,
                              lambda p: emulator.get_findings(account, region, detector, p),
                              rest=True)
            else:
                self._emulate("ListFindings", account, region,
                              lambda p: emulator.list_findings(account, region, detector, p),
                              rest=True)
            return
        observe = service == "sts" or (service == "guardduty" and (
            (self.command == "POST" and path.rstrip("/") == "/detector")
            or (self.command == "DELETE" and _GD_DETECTOR.match(path) is not None)))
        self._forward_unread(observe=(lambda status, body: emulator._observe(
            service, self.command, path, account, region, status, body)) if observe else None)

    # -- emulated ---------------------------------------------------------------------

    def _emulate(self, operation: str, account: str, region: str,
                 call: Callable[[dict], dict], rest: bool = False) -> None:
        emulator = self.emulator
        body = self._read_body()
        try:
            request = emulator._admit(operation, account, region)
            try:
                try:
                    params = json.loads(body or b"{}")
                except ValueError:
                    params = None
                if not isinstance(params, dict):
                    raise (_bad_request("the request body is not a JSON object") if rest else
                           ApiError(400, "SerializationException", "Malformed request body"))
                answer = call(params)
            except ApiError as e:
                emulator._failed(request, e)
                raise
        except ApiError as e:
            self._send_error(e, rest)
            return
        self._send_json(200, answer, rest)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return b"".join(self._read_chunked())
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            raise ConnectionResetError("request body too large")
        return self.rfile.read(length) if length > 0 else b""

    def _send_json(self, status: int, answer: dict, rest: bool,
                   extra: tuple[tuple[str, str], ...] = ()) -> None:
        body = json.dumps(answer, separators=(",", ":")).encode()
        self.send_response_only(status)
        self.send_header("Content-Type", "application/json" if rest
                         else "application/x-amz-json-1.1")
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for name, value in extra:
            self.send_header(name, value)
        self.send_header("Date", self.date_time_string())
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _send_error(self, error: ApiError, rest: bool) -> None:
        if rest:
            # REST-JSON (GuardDuty): the code in x-amzn-ErrorType, which botocore prefers;
            # the body's __type is the finer reason, as GuardDuty sends it.
            self._send_json(error.status, {"message": error.message,
                                           "__type": error.kind or error.code}, True,
                            (("x-amzn-ErrorType", error.code),))
        else:
            self._send_json(error.status, {"__type": error.code, "message": error.message},
                            False)

    # -- forwarded --------------------------------------------------------------------

    def _forward_unread(self, observe: Callable[[int, bytes], None] | None) -> None:
        """Forward this request, its body still unread, to moto."""
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        length = self.headers.get("Content-Length")
        self._forward(None, None if chunked or length is None else int(length or 0), chunked,
                      observe=observe)
