"""S3: each configured bucket's event notification (``s3:ObjectCreated:*``) to the queue.

PutBucketNotificationConfiguration replaces a bucket's whole configuration, so
setup reads it first and writes it back with one queue configuration added, every
other one (Lambda, SNS, other queues, the EventBridge flag) kept as it was. It adds
nothing if a configuration already sends ObjectCreated events to this queue.

Call it after the queue policy exists: S3 checks that it may send to the queue
(and sends an ``s3:TestEvent``) when the configuration is written.

Setup does not create the user's log buckets: a missing one is AWS-010, one in
another region than its queue AWS-011 (S3 notifies only queues of its region),
one that already sends ObjectCreated events elsewhere AWS-012 (S3 refuses two
destinations for overlapping events). Each is reported, and the rest is set up.
"""

from __future__ import annotations

from typing import Any

from awscollector.errors import CollectorError
from awscollector.provision.core import Setup
from awscollector.provision.needs import QueueNeed
from awscollector.provision.queues import Queue

EVENT = "s3:ObjectCreated:*"
CREATED_PREFIX = "s3:ObjectCreated:"
NO_BUCKET = frozenset({"NoSuchBucket", "404", "NotFound"})
# The configuration lists of PutBucketNotificationConfiguration, and their ARN field.
DESTINATIONS = (("QueueConfigurations", "QueueArn"), ("TopicConfigurations", "TopicArn"),
                ("LambdaFunctionConfigurations", "LambdaFunctionArn"))


def bucket_region(location: str | None) -> str:
    """GetBucketLocation's answer as a region (us-east-1 answers nothing, old EU 'EU')."""
    if not location:
        return "us-east-1"
    return "eu-west-1" if location == "EU" else location


def _created_events(config: dict) -> list[tuple[str, str]]:
    """(kind, destination ARN) of each configuration that takes ObjectCreated events."""
    found = []
    for field, arn_key in DESTINATIONS:
        for c in config.get(field) or []:
            if any(str(e).startswith(CREATED_PREFIX) for e in c.get("Events", [])):
                found.append((field, str(c.get(arn_key, ""))))
    return found


def with_queue(config: dict, queue_arn: str, config_id: str) -> dict | None:
    """`config` (as GetBucketNotificationConfiguration answered it) with our queue
    configuration added; None if a configuration already sends ObjectCreated to it.
    Raises ValueError naming the destination when another one takes ObjectCreated
    (ours has no filter, so it would overlap it)."""
    config = {k: v for k, v in config.items() if k != "ResponseMetadata"}
    created = _created_events(config)
    if any(arn == queue_arn for field, arn in created if field == "QueueConfigurations"):
        return None
    if created:
        raise ValueError(created[0][1])
    queues = list(config.get("QueueConfigurations") or [])
    queues.append({"Id": config_id, "QueueArn": queue_arn, "Events": [EVENT]})
    return {**config, "QueueConfigurations": queues}


def ensure_notification(setup: Setup, need: QueueNeed, queue: Queue, bucket: str) -> None:
    """The notification of one bucket; its problems are reported, not raised."""
    try:
        _ensure(setup, need, queue, bucket)
    except CollectorError as e:
        setup.problem(e)


def _ensure(setup: Setup, need: QueueNeed, queue: Queue, bucket: str) -> None:
    s3 = setup.client("s3", need.region)
    location = Setup.call(f"s3 GetBucketLocation {bucket}", s3.get_bucket_location,
                          missing=NO_BUCKET, Bucket=bucket)
    if location is None:
        raise CollectorError("AWS-010", f"s3 bucket {bucket} (s3_buckets of "
                             f"{', '.join(need.services)}) does not exist: setup does not "
                             "create log buckets; create it or correct s3_buckets")
    region = bucket_region(location.get("LocationConstraint"))
    if region != need.region:
        raise CollectorError("AWS-011", f"s3 bucket {bucket} is in {region}, its queue "
                             f"{need.name} in {need.region}: S3 notifies only a queue of the "
                             "bucket's region; give the service that region")
    current: dict[str, Any] = Setup.call(
        f"s3 GetBucketNotificationConfiguration {bucket}",
        s3.get_bucket_notification_configuration, Bucket=bucket)
    what = f"s3 bucket notification {bucket} -> sqs queue {need.name}"
    try:
        merged = with_queue(current, queue.arn, f"aws-collector-{need.name}")
    except ValueError as e:
        raise CollectorError("AWS-012", f"s3 bucket {bucket} already sends ObjectCreated "
                             f"events to {e}: S3 refuses a second destination for them; "
                             "setup changes no existing notification. Send them on from "
                             "there (an SNS topic can fan out to the queue)") from None
    if merged is None:
        setup.present(what, need.region)
        return
    setup.create(what, need.region, lambda: Setup.call(
        f"s3 PutBucketNotificationConfiguration {bucket}",
        s3.put_bucket_notification_configuration, Bucket=bucket,
        NotificationConfiguration=merged))
