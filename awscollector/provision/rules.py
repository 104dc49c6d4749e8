"""EventBridge: the rules of an event service (io/eventrules.py), each with its queue
as a target, on the account's default event bus.

A rule is named ``<queue name>-<suffix>``. An existing rule is kept as it is: if
its pattern differs from the collector's, setup says so and changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from awscollector.awserrors import collector_code
from awscollector.errors import CollectorError
from awscollector.io.eventrules import EventRule
from awscollector.provision.core import Identity, Setup
from awscollector.provision.needs import QueueNeed
from awscollector.provision.queues import Queue

TARGET_ID = "aws-collector"
NOT_FOUND = frozenset({"ResourceNotFoundException"})


def rule_arn(need: QueueNeed, rule: EventRule, identity: Identity) -> str:
    return identity.arn("events", need.region, f"rule/{need.rule_name(rule)}")


def ensure_rules(setup: Setup, need: QueueNeed, queue: Queue) -> None:
    events = setup.client("events", need.region)
    for rule in need.rules:
        name = need.rule_name(rule)
        found = Setup.call(f"events DescribeRule {name} in {need.region}", events.describe_rule,
                           missing=NOT_FOUND, Name=name)
        what = f"eventbridge rule {name}"
        if found is not None:
            setup.present(what, need.region)
            _report_differences(setup, need, name, rule, found)
        else:
            setup.create(what, need.region, lambda name=name, rule=rule: Setup.call(
                f"events PutRule {name} in {need.region}", events.put_rule, Name=name,
                EventPattern=json.dumps(rule.pattern), State="ENABLED",
                Description=f"aws-collector: events for the SQS queue {need.name}"))
        _ensure_target(setup, events, need, name, queue, rule_exists=found is not None)


def _report_differences(setup: Setup, need: QueueNeed, name: str, rule: EventRule,
                        found: dict) -> None:
    try:
        pattern = json.loads(found.get("EventPattern") or "null")
    except ValueError:
        pattern = None
    if pattern != rule.pattern:
        setup.note(f"eventbridge rule {name}: its pattern differs from the collector's "
                   f"{json.dumps(rule.pattern)}; setup does not change an existing rule",
                   need.region)
    if found.get("State") not in (None, "ENABLED"):
        setup.note(f"eventbridge rule {name} is {found['State']}; setup does not enable it",
                   need.region)


def _targets(events: Any, need: QueueNeed, name: str) -> list[dict]:
    targets: list[dict] = []
    token = None
    while True:
        kwargs: dict[str, Any] = {"Rule": name, **({"NextToken": token} if token else {})}
        page = Setup.call(f"events ListTargetsByRule {name} in {need.region}",
                          events.list_targets_by_rule, **kwargs)
        targets.extend(page.get("Targets", []))
        token = page.get("NextToken")
        if not token:
            return targets


def _ensure_target(setup: Setup, events: Any, need: QueueNeed, name: str, queue: Queue,
                   rule_exists: bool) -> None:
    what = f"eventbridge target {need.name} of rule {name}"
    targets = _targets(events, need, name) if rule_exists else []
    if any(t.get("Arn") == queue.arn for t in targets):
        setup.present(what, need.region)
        return
    ids = {t.get("Id") for t in targets}
    target_id = next(i for i in (TARGET_ID, *(f"{TARGET_ID}-{n}" for n in range(1, 1000)))
                     if i not in ids)

    def put() -> None:
        result = Setup.call(f"events PutTargets {name} in {need.region}", events.put_targets,
                            Rule=name, Targets=[{"Id": target_id, "Arn": queue.arn}])
        failed = result.get("FailedEntries") or []
        if failed:
            code = collector_code(str(failed[0].get("ErrorCode", "")))
            raise CollectorError(code, f"events PutTargets {name} in {need.region} failed: "
                                       f"{failed[0].get('ErrorCode')}: "
                                       f"{failed[0].get('ErrorMessage', '')}")

    setup.create(what, need.region, put)
