"""The least-privilege IAM policy of a config: what `aws-collector run` calls on AWS.

    config = load_config("collector.yaml")
    found = iam_policy(config)                       # for the identity of the keys
    print(json.dumps(found.document, indent=2))
    for note in found.notes: print(note, file=sys.stderr)

The actions are the ones the collector's code paths call, each under the name AWS
authorizes it by, on the resources the config names:

- every SQS queue a service reads (io/sqs.py): ``ReceiveMessage``, ``DeleteMessageBatch``
  and ``ChangeMessageVisibilityBatch``, which AWS authorizes as ``sqs:ReceiveMessage``,
  ``sqs:DeleteMessage`` and ``sqs:ChangeMessageVisibility``; ``sqs:GetQueueUrl`` for a
  queue given by name; ``sqs:GetQueueAttributes`` (the depth ``--until-idle`` watches
  on Flink, pipelines/idle.py);
- every object an S3 service reads (io/s3.py): ``s3:GetObject`` (ranged reads too) in
  the buckets of its ``s3_buckets``, or in any bucket when it has none;
- an SQS dead-letter queue (io/deadletter.py): ``SendMessageBatch``, authorized as
  ``sqs:SendMessage``;
- assumed roles (aws.py): each identity of the chain keys -> ``base_assume_role`` ->
  ``target_assume_role`` needs ``sts:AssumeRole`` on the next role only, and the last
  one, the identity every AWS call of the run is made as, needs all of the above.

Services this version does not run (API pullers) call nothing, so they add nothing:
a RUN-009 note says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from awscollector.errors import CollectorError
from awscollector.io.deadletter import DeadLetterTarget

VERSION = "2012-10-17"
# The identities of the chain, in the order the collector goes through them.
KEYS, BASE_ROLE, TARGET_ROLE = "keys", "base-role", "target-role"
IDENTITIES = (KEYS, BASE_ROLE, TARGET_ROLE)

# What a reader calls on its queue, by the names AWS authorizes them as: the batch
# calls DeleteMessageBatch and ChangeMessageVisibilityBatch need the single actions.
READ_QUEUE_ACTIONS = ("sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:ReceiveMessage")
QUEUE_BY_NAME_ACTION = "sqs:GetQueueUrl"
QUEUE_DEPTH_ACTION = "sqs:GetQueueAttributes"
GET_OBJECT_ACTION = "s3:GetObject"
DEAD_LETTER_ACTION = "sqs:SendMessage"  # SendMessageBatch is authorized as SendMessage
ASSUME_ROLE_ACTION = "sts:AssumeRole"

_ACCOUNT = re.compile(r"\d{12}")
_REGION_IN_HOST = re.compile(r"(?:^|\.)([a-z]{2}(?:-[a-z]+)+-\d+)\.")


@dataclass
class IamPolicy:
    """A policy document, and notes for the operator on what it leaves out and why."""

    document: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def identity_chain(config) -> list[str]:
    """The identities the collector goes through: the keys, then each assumed role."""
    creds = config.inputs.aws.credentials
    chain = [KEYS]
    if creds is not None and creds.base_assume_role:
        chain.append(BASE_ROLE)
    if creds is not None and creds.target_assume_role:
        chain.append(TARGET_ROLE)
    return chain


def iam_policy(config, identity: str = KEYS) -> IamPolicy:
    """The policy ``identity`` needs for ``aws-collector run`` of ``config``.

    Raises CollectorError CFG-012 when no enabled service runs in this version
    (as ``run`` would), CFG-017/CFG-018 for services that cannot share their queue,
    and ValueError for an identity the config does not go through.
    """
    from awscollector.pipelines.api_services import api_puller
    from awscollector.pipelines.collector import availability, config_globals, plan_services
    from awscollector.pipelines.s3_services import S3_SERVICES, share_queues

    chain = identity_chain(config)
    if identity not in chain:
        raise ValueError(f"the config has no {identity.replace('-', '_assume_')}"
                         if identity != KEYS else f"unknown identity {identity}")
    creds = config.inputs.aws.credentials
    roles = {BASE_ROLE: getattr(creds, "base_assume_role", None),
             TARGET_ROLE: getattr(creds, "target_assume_role", None)}
    notes = _skipped(config, availability)
    plans = plan_services(config, warn=False)
    if not plans:
        skipped = ", ".join(config.inputs.aws.enabled_services()) or "none enabled"
        raise CollectorError("CFG-012", f"no enabled service runs in this version (not run: "
                                        f"{skipped}): `run` has nothing to do")
    share_queues(plans)  # what `run` refuses, this refuses too

    position = chain.index(identity)
    if position < len(chain) - 1:  # this identity only assumes the next role
        nxt, last = chain[position + 1], chain[-1]
        then = "" if nxt == last else f", which assumes {roles[last]}"
        notes.append(
            f"note: this policy is for the {_who(identity, roles)}: it only assumes "
            f"{roles[nxt]}{then}. The collector calls AWS as {roles[last]}: print that role's "
            f"policy with --identity {last}. Each role's trust policy must let the identity "
            f"before it assume it (with the external id, if one is set)")
        return IamPolicy(_document([_statement(
            "AssumeBaseRole" if nxt == BASE_ROLE else "AssumeTargetRole",
            [ASSUME_ROLE_ACTION], [roles[nxt]])]), notes)

    account = _account(config, roles.get(identity))
    if account == "*":
        notes.append("note: the config does not say the queues' AWS account (no assumed role, "
                     "no 12-digit inputs.aws.id): queue ARNs name any account ('*')")
    queues: set[str] = set()
    by_name: set[str] = set()
    buckets: set[str] = set()
    any_bucket: list[str] = []
    api_actions: set[str] = set()
    for plan in plans:
        if plan.api:
            api_actions.update(api_puller(plan.name).actions)
            continue
        for queue in plan.queues:
            arn = queue_arn(queue.queue, queue.region, account)
            queues.add(arn)
            if not queue.is_url:
                by_name.add(arn)
        if plan.name in S3_SERVICES:
            named = getattr(plan.config, "s3_buckets", None)
            if named:
                partition = _partition(plan.regions[0])
                buckets.update(f"arn:{partition}:s3:::{b}/*" for b in named)
            elif plan.label not in any_bucket:
                any_bucket.append(plan.label)

    statements = [
        _statement("ReadAndDeleteQueueMessages", READ_QUEUE_ACTIONS, queues),
        _statement("FindQueuesByName", [QUEUE_BY_NAME_ACTION], by_name),
        _statement("ReadQueueDepthForUntilIdleOnFlink", [QUEUE_DEPTH_ACTION], queues),
    ]
    if any_bucket:
        notes.append(f"note: s3:GetObject is allowed on every bucket ('arn:aws:s3:::*/*'): "
                     f"{', '.join(any_bucket)} {'has' if len(any_bucket) == 1 else 'have'} "
                     f"no s3_buckets; list them there to narrow it")
        partitions = {_partition(r) for p in plans for r in p.regions}
        statements.append(_statement("GetObjectsOfAnyBucketNoS3BucketsConfigured",
                                     [GET_OBJECT_ACTION],
                                     [f"arn:{p}:s3:::*/*" for p in partitions]))
    else:
        statements.append(_statement("GetObjectsOfS3Buckets", [GET_OBJECT_ACTION], buckets))
    if api_actions:
        # These APIs take no resource narrower than the account (FilterLogEvents could
        # name log groups, but the groups of a prefix or pattern are found at run time).
        statements.append(_statement("PollApis", sorted(api_actions), ["*"]))
        persistence = config_globals(config).persistence
        if persistence.type == "s3":
            c = persistence.config
            prefix = c.prefix if not c.prefix or c.prefix.endswith("/") else c.prefix + "/"
            partition = _partition((config.inputs.aws.regions or ["us-east-1"])[0])
            statements.append(_statement("KeepCheckpoints", ["s3:GetObject", "s3:PutObject"],
                                         [f"arn:{partition}:s3:::{c.bucket}/{prefix}*"]))
    archives = sorted(_archive_arn(o.config.path, plans) for o in config.outputs.values()
                      if o.type == "archive" and o.config.path.startswith("s3://"))
    if archives:
        statements.append(_statement("WriteArchiveFiles", ["s3:PutObject"], archives))
    dead_letter = config_globals(config).dead_letter
    if dead_letter.type == "sqs":
        aws = config.inputs.aws
        target = DeadLetterTarget.from_config(dead_letter, (aws.regions or ["us-east-1"])[0])
        statements.append(_statement("SendDeadLetters", [DEAD_LETTER_ACTION],
                                     [queue_arn(target.queue_url, target.region, account)]))
    return IamPolicy(_document([s for s in statements if s is not None]), notes)


def _archive_arn(path: str, plans) -> str:
    """The objects an archive output writes: ``arn:aws:s3:::<bucket>/<prefix>/*``."""
    bucket, _, prefix = path[5:].partition("/")
    partition = _partition(plans[0].regions[0]) if plans and plans[0].regions else "aws"
    return f"arn:{partition}:s3:::{bucket}/{prefix + '/' if prefix else ''}*"


def queue_arn(queue: str, region: str, account: str) -> str:
    """The ARN of a queue given by name (in ``region`` of ``account``), or by URL
    (``https://sqs.<region>.amazonaws.com/<account>/<name>``: its own region and
    account; a URL of another endpoint keeps ``region``)."""
    if not queue.startswith(("http://", "https://")):
        return f"arn:{_partition(region)}:sqs:{region}:{account}:{queue}"
    url = urlparse(queue)
    parts = [p for p in url.path.split("/") if p]
    found = _REGION_IN_HOST.search(url.hostname or "")
    if found:
        region = found.group(1)
    elif (url.hostname or "") == "queue.amazonaws.com":  # the oldest URLs: us-east-1
        region = "us-east-1"
    owner = parts[-2] if len(parts) >= 2 and _ACCOUNT.fullmatch(parts[-2]) else account
    return f"arn:{_partition(region)}:sqs:{region}:{owner}:{parts[-1] if parts else '*'}"


def _skipped(config, availability) -> list[str]:
    notes = []
    aws = config.inputs.aws
    for name, service in (aws.enabled_services() if aws.enabled else {}).items():
        runs, skipped_types = availability(name, service)
        if not runs:
            types = f" (types {', '.join(skipped_types)})" if skipped_types else ""
            notes.append(f"RUN-009 inputs.aws.services.{name}: not run by this version{types}; "
                         f"the policy has no permission for it")
        elif skipped_types:
            notes.append(f"RUN-009 inputs.aws.services.{name}.types: "
                         f"{', '.join(skipped_types)} not run by this version; the policy has "
                         f"no permission for {'it' if len(skipped_types) == 1 else 'them'}")
    return notes


def _account(config, role_arn: str | None) -> str:
    # A queue named without its URL is in the account of the identity that asks
    # GetQueueUrl for it: the role's, when the collector calls AWS as one.
    if role_arn:
        return role_arn.split(":")[4]
    given = str(config.inputs.aws.id)
    return given if _ACCOUNT.fullmatch(given) else "*"


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _who(identity: str, roles: dict[str, str | None]) -> str:
    if identity == KEYS:
        return "identity of inputs.aws.credentials (or of the default credential chain)"
    return f"role {roles[identity]}"


def _statement(sid: str, actions, resources) -> dict[str, Any] | None:
    if not resources:
        return None
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(set(actions)),
            "Resource": sorted(set(resources))}


def _document(statements: list[dict[str, Any] | None]) -> dict[str, Any]:
    return {"Version": VERSION, "Statement": [s for s in statements if s is not None]}
