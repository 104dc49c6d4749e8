"""``aws-collector setup``: create on AWS what the configured services need and lack.

    from awscollector.provision import run_setup
    result = run_setup(config, dry_run=True)   # prints `would create ...` / `present ...`
    result.problems                            # coded errors; exit 1 when any

Queue by queue (needs.py), in this order, because each step needs the one
before: the dead-letter queue and the queue (queues.py), the queue policy that
lets the senders in, then the EventBridge rules and their targets (rules.py) or
the buckets' notifications (notifications.py: S3 checks the policy when one is
written). Nothing existing is deleted or changed: a policy or a bucket's
notification configuration only gets our part added. Each item prints one line,
``created``, ``present`` or (``dry_run``) ``would create``; ``note`` lines say what
the user must do or what setup left as it found it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from awscollector.errors import CollectorError
from awscollector.io.access import AwsAccess
from awscollector.provision.core import Setup
from awscollector.provision.needs import QueueNeed, queue_needs
from awscollector.provision.notifications import EVENT, ensure_notification
from awscollector.provision.queues import ensure_policy, ensure_queue
from awscollector.provision.rules import ensure_rules, rule_arn

EVENTS_PRINCIPAL = "events.amazonaws.com"
S3_PRINCIPAL = "s3.amazonaws.com"


@dataclass
class SetupResult:
    lines: list[str] = field(default_factory=list)
    problems: list[CollectorError] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.problems else 0


def run_setup(config, dry_run: bool = False, out: Callable[[str], None] | None = None,
              err: Callable[[str], None] | None = None) -> SetupResult:
    """Sets up every enabled service of `config` (prints as it goes). A problem with
    one queue or bucket is reported and the rest is set up; bad credentials stop it
    (CollectorError AWS-001/AWS-002)."""
    setup = Setup(AwsAccess(config.inputs.aws), dry_run, out, err)
    needs, nothing = queue_needs(config)
    for name in nothing:
        setup.note(f"{name}: reads AWS APIs, nothing to set up", "all regions")
    if needs:
        identity = setup.identity(needs[0].region)
        for need in needs:
            try:
                _set_up(setup, need, identity)
            except CollectorError as e:
                setup.problem(e)
    return SetupResult(setup.lines, setup.problems)


def _set_up(setup: Setup, need: QueueNeed, identity) -> None:
    queue = ensure_queue(setup, need, identity)
    senders = {EVENTS_PRINCIPAL: [rule_arn(need, r, identity) for r in need.rules],
               S3_PRINCIPAL: [f"arn:{identity.partition}:s3:::{b}" for b in need.buckets]}
    ensure_policy(setup, need, queue, identity, senders)
    if need.rules:
        ensure_rules(setup, need, queue)
    for bucket in need.buckets:
        ensure_notification(setup, need, queue, bucket)
    for label in need.unlisted_s3:
        setup.note(f"{label} has no s3_buckets: configure its log bucket's event notification "
                   f"({EVENT}) to sqs queue {need.name} yourself, or list the bucket in "
                   "s3_buckets", need.region)
