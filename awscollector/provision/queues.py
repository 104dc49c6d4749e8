"""SQS: the queue, its dead-letter queue and redrive policy, and the queue policy.

A queue setup creates gets ``<queue>-dlq`` as its dead-letter queue, with
``maxReceiveCount`` = the collector's own count + ``REDRIVE_MARGIN``. Why above it:
a message received more often than its services' ``max_receive_count`` is for the
collector to dead-letter (with what it knows: queue, message, the error); SQS moves
a message to the dead-letter queue instead of handing it out once it was received
``maxReceiveCount`` times. Were SQS's count not higher, the message would leave the
queue before the collector ever saw the receive on which it records it. The margin
covers receives that do not reach that decision: a run that fails while writing a
dead letter, a crash, a reader released on shutdown. The SQS dead-letter queue is
then the last resort, keeping (14 days) what the collector could not record.

The collector's count is the highest ``max_receive_count`` (default 5) of the
services on the queue.

The queue policy lets ``events.amazonaws.com`` (EventBridge rules) or
``s3.amazonaws.com`` (bucket notifications) send, each scoped with ``aws:SourceArn``
to the rules' or buckets' ARNs. An existing policy is kept: setup adds a statement
for the senders no statement allows yet, and changes none.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from awscollector.awserrors import NO_QUEUE_CODES
from awscollector.errors import CollectorError
from awscollector.provision.core import Identity, Setup
from awscollector.provision.needs import DEFAULT_MAX_RECEIVE_COUNT, QueueNeed

REDRIVE_MARGIN = 5
DLQ_SUFFIX = "-dlq"
DLQ_RETENTION_SECONDS = 14 * 24 * 3600  # SQS's maximum: time to look at what failed
POLICY_VERSION = "2012-10-17"
SEND = "sqs:SendMessage"


def redrive_max_receive_count(collector_count: int) -> int:
    """SQS's maxReceiveCount for a queue whose services dead-letter after
    `collector_count` receives: above it, so the collector records first."""
    return (collector_count or DEFAULT_MAX_RECEIVE_COUNT) + REDRIVE_MARGIN


@dataclass
class Queue:
    """A queue as setup found or made it; url is None for one a dry run would create."""

    name: str
    arn: str
    url: str | None


def ensure_queue(setup: Setup, need: QueueNeed, identity: Identity) -> Queue:
    """The queue of `need`, created with its dead-letter queue if missing (by name);
    a queue given by URL must exist (AWS-005)."""
    sqs = setup.client("sqs", need.region)
    what = f"sqs queue {need.name}"
    if need.is_url:
        attrs = _attributes(sqs, need.queue, need.region)
        if attrs is None:
            raise CollectorError(
                "AWS-005", f"sqs queue {need.queue} ({need.region}) does not exist: setup "
                "does not create a queue given by sqs_queue_url; create it, or give "
                "sqs_queue_name instead")
        _report_redrive(setup, need, attrs)
        setup.present(what, need.region)
        return Queue(need.name, attrs["QueueArn"], need.queue)
    url = _url(sqs, need.name, need.region)
    if url is not None:
        attrs = _attributes(sqs, url, need.region) or {}
        _report_redrive(setup, need, attrs)  # its lines first, as when both are created
        setup.present(what, need.region)
        return Queue(need.name, attrs.get("QueueArn") or identity.arn("sqs", need.region,
                                                                     need.name), url)
    dlq = _ensure_dlq(setup, sqs, need, identity)
    redrive = {"deadLetterTargetArn": dlq.arn,
               "maxReceiveCount": redrive_max_receive_count(need.max_receive_count)}
    url = setup.create(what, need.region, lambda: Setup.call(
        f"sqs CreateQueue {need.name} in {need.region}", sqs.create_queue,
        QueueName=need.name, Attributes={"RedrivePolicy": json.dumps(redrive)})["QueueUrl"])
    arn = identity.arn("sqs", need.region, need.name)
    if url is not None:
        arn = (_attributes(sqs, url, need.region) or {}).get("QueueArn", arn)
    return Queue(need.name, arn, url)


def _ensure_dlq(setup: Setup, sqs: Any, need: QueueNeed, identity: Identity) -> Queue:
    name = need.name + DLQ_SUFFIX
    what = f"sqs dead-letter queue {name}"
    url = _url(sqs, name, need.region)
    if url is not None:
        setup.present(what, need.region)
    else:
        url = setup.create(what, need.region, lambda: Setup.call(
            f"sqs CreateQueue {name} in {need.region}", sqs.create_queue, QueueName=name,
            Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)})["QueueUrl"])
    arn = identity.arn("sqs", need.region, name)
    if url is not None:
        arn = (_attributes(sqs, url, need.region) or {}).get("QueueArn", arn)
    return Queue(name, arn, url)


def _report_redrive(setup: Setup, need: QueueNeed, attrs: dict) -> None:
    """An existing queue is not changed: say what its redrive policy means."""
    try:
        redrive = json.loads(attrs.get("RedrivePolicy") or "null")
    except ValueError:
        redrive = None
    if not isinstance(redrive, dict) or not redrive.get("deadLetterTargetArn"):
        setup.note(f"sqs queue {need.name} has no dead-letter queue; setup does not change "
                   "an existing queue", need.region)
        return
    dlq = str(redrive["deadLetterTargetArn"]).rsplit(":", 1)[-1]
    setup.present(f"sqs dead-letter queue {dlq}", need.region)
    count = need.max_receive_count or DEFAULT_MAX_RECEIVE_COUNT
    try:
        theirs = int(redrive.get("maxReceiveCount", 0))
    except (TypeError, ValueError):
        theirs = 0
    if theirs <= count:
        setup.note(f"sqs queue {need.name}: its redrive maxReceiveCount {theirs} is not above "
                   f"the collector's max_receive_count {count}, so SQS may move a message "
                   "before the collector dead-letters it; raise it to at least "
                   f"{redrive_max_receive_count(count)}", need.region)


def _url(sqs: Any, name: str, region: str) -> str | None:
    found = Setup.call(f"sqs GetQueueUrl {name} in {region}", sqs.get_queue_url,
                       missing=NO_QUEUE_CODES, QueueName=name)
    return found["QueueUrl"] if found else None


def _attributes(sqs: Any, url: str, region: str) -> dict | None:
    found = Setup.call(f"sqs GetQueueAttributes {url} in {region}", sqs.get_queue_attributes,
                       missing=NO_QUEUE_CODES, QueueUrl=url,
                       AttributeNames=["QueueArn", "RedrivePolicy", "Policy"])
    return None if found is None else found.get("Attributes", {})


# -- the queue policy -----------------------------------------------------------------

def statement(principal: str, queue_arn: str, sources: list[str],
              account: str | None = None) -> dict:
    """Our statement: `principal` may send to the queue, from `sources` only."""
    digest = hashlib.sha256("\n".join([principal, *sorted(sources)]).encode()).hexdigest()
    kind = "Events" if principal.startswith("events.") else "S3"
    condition: dict[str, Any] = {"ArnEquals": {"aws:SourceArn": sorted(sources)}}
    if account:  # bucket names are global: also pin the account that owns them
        condition["StringEquals"] = {"aws:SourceAccount": account}
    return {"Sid": f"AwsCollector{kind}{digest[:12]}", "Effect": "Allow",
            "Principal": {"Service": principal}, "Action": SEND, "Resource": queue_arn,
            "Condition": condition}


def uncovered(policy: dict | None, principal: str, queue_arn: str, sources: list[str],
              account: str | None = None) -> list[str]:
    """The `sources` no Allow statement of `policy` lets `principal` send from."""
    statements = (policy or {}).get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    return [s for s in sources
            if not any(_allows(st, principal, queue_arn, s, account) for st in statements
                       if isinstance(st, dict))]


def _list(value: Any) -> list:
    return value if isinstance(value, list) else [] if value is None else [value]


def _allows(st: dict, principal: str, queue_arn: str, source: str,
            account: str | None) -> bool:
    if st.get("Effect") != "Allow" or "NotPrincipal" in st or "NotAction" in st \
            or "NotResource" in st:
        return False
    who = st.get("Principal")
    anyone = who == "*" or (isinstance(who, dict) and "*" in _list(who.get("AWS")))
    services = _list(who.get("Service")) if isinstance(who, dict) else []
    if not anyone and principal not in services:
        return False
    if not any(a in ("*", "sqs:*", SEND) or fnmatch.fnmatchcase(SEND, a)
               for a in _list(st.get("Action"))):
        return False
    resources = _list(st.get("Resource")) or ["*"]
    if not any(fnmatch.fnmatchcase(queue_arn, r) for r in resources):
        return False
    for operator, keys in (st.get("Condition") or {}).items():
        if not isinstance(keys, dict):
            return False
        for key, values in keys.items():
            values = [str(v) for v in _list(values)]
            if key.lower() == "aws:sourcearn":
                like = operator in ("ArnLike", "StringLike")
                if operator not in ("ArnEquals", "ArnLike", "StringEquals", "StringLike"):
                    return False
                if not any(fnmatch.fnmatchcase(source, v) if like else source == v
                           for v in values):
                    return False
            elif key.lower() == "aws:sourceaccount" and operator == "StringEquals":
                if account not in values:
                    return False
            else:
                return False  # a condition we cannot judge: add ours, to be sure
    return True


def ensure_policy(setup: Setup, need: QueueNeed, queue: Queue, identity: Identity,
                  senders: dict[str, list[str]]) -> None:
    """Lets each principal of `senders` (principal -> source ARNs) send to the queue."""
    sqs = setup.client("sqs", need.region)
    policy: dict | None = None
    if queue.url is not None:
        raw = (_attributes(sqs, queue.url, need.region) or {}).get("Policy")
        if raw:
            try:
                policy = json.loads(raw)
            except ValueError:
                raise CollectorError("AWS-008", f"sqs GetQueueAttributes {queue.url} in "
                                     f"{need.region}: its Policy is not JSON") from None
    for principal, sources in senders.items():
        if not sources:
            continue
        what = f"sqs queue policy of {need.name} for {principal}"
        account = identity.account if principal.startswith("s3.") else None
        missing = uncovered(policy, principal, queue.arn, sources, account)
        if not missing:
            setup.present(what, need.region)
            continue
        merged = dict(policy or {"Version": POLICY_VERSION})
        merged["Statement"] = [*_list((policy or {}).get("Statement")),
                               statement(principal, queue.arn, missing, account)]

        def put(merged=merged) -> None:
            Setup.call(f"sqs SetQueueAttributes Policy {queue.url} in {need.region}",
                       sqs.set_queue_attributes, QueueUrl=queue.url,
                       Attributes={"Policy": json.dumps(merged)})

        setup.create(what, need.region, put)
        policy = merged
