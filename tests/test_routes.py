"""Services that share one queue: routes, classification among their types, grouping."""

from __future__ import annotations

import json

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from awscollector.errors import CollectorError
from awscollector.io.deadletter import DEAD_LETTER
from awscollector.io.delivery import EventBatch
from awscollector.io.routes import Route, Routes
from awscollector.io.s3 import FormatBatch, ObjectTask
from awscollector.io.sqs import SqsMessage, SqsQueue
from awscollector.pipelines.context import ServicePlan
from awscollector.pipelines.s3_services import share_queues, shared_readers
from awscollector.pipelines.s3_sqs import ExtractObjects, ParseBatches
from awscollector.transforms.formats import SKIP, SNIFF, Format, Parsed, RecordBatch, Registry
from awscollector.transforms.notifications import ObjectRef
from awscollector.transforms.registry import default_registry


def _echo(batch, options):
    parsed = Parsed()
    for line in batch.records:
        parsed.add(options.get("table", "t.default"), line)
    return parsed


VPC = Format("vpc", "vpc", "t.vpc", _echo, keys=(r"/vpcflowlogs/",),
             sniff=lambda head: head.startswith(b"version "))
TRAIL = Format("trail", "trail", "t.trail", _echo, keys=(r"/CloudTrail/",))
APP = Format("app", "app", "t.app", _echo, select=lambda key: None if key.startswith("app/")
             else "its key matches no include pattern")
REGISTRY = Registry([VPC, TRAIL, APP], uncollected={"AWS Config": r"/Config/"})
ROUTES = Routes([Route("svc-a", ("vpc",), {"table": "t.a"}),
                 Route("svc-b", ("trail",), {"table": "t.b"}),
                 Route("svc-c", ("app",))])


def test_a_type_belongs_to_one_route():
    assert ROUTES.types == ("vpc", "trail", "app")
    with pytest.raises(ValueError, match="'vpc' is collected by both 'x' and 'y'"):
        Routes([Route("x", ("vpc",)), Route("y", ("vpc", "trail"))])


def test_claim_labels_the_message_with_its_service():
    message = SqsMessage("svc-a", "eu-west-1", "https://q", "m-1", "{}")
    assert ROUTES.claim(message, "trail").service == "svc-b"
    assert ROUTES.claim(message, "trail").region == "eu-west-1"
    assert ROUTES.claim(message, "vpc") is message
    assert Routes.of(["vpc"]).claim(message, "vpc") is message  # one service: its label stays


@pytest.mark.parametrize("key, kind", [
    ("AWSLogs/1/vpcflowlogs/x.log.gz", "vpc"),
    ("AWSLogs/1/CloudTrail/x.json.gz", "trail"),
    ("app/2026/x.jsonl", "app"),
    ("app/AWSLogs/1/CloudTrail/x.json.gz", "trail"),  # key patterns come before filters
    ("AWSLogs/1/Config/x.json.gz", SKIP),  # known, collected by no format
    ("misc/notes.txt", SNIFF),  # a shared format can still sniff it
])
def test_classify_among_the_types_of_every_service_on_a_queue(key, kind):
    assert REGISTRY.classify(key, ROUTES.types).kind == kind


def test_a_filter_alone_still_decides_for_its_source():
    assert REGISTRY.classify("app/AWSLogs/1/CloudTrail/x.json.gz", ["app"]).kind == "app"
    skipped = REGISTRY.classify("misc/notes.txt", ["app"])
    assert (skipped.kind, skipped.reason) == (SKIP, "its key matches no include pattern")
    config = REGISTRY.classify("AWSLogs/1/Config/x.json.gz", ["vpc"])
    assert (config.kind, config.reason) == (SKIP, "AWS Config: not collected by this version")


def test_the_builtin_registry_skips_other_log_archive_objects():
    registry = default_registry()
    for key in ("AWSLogs/123456789012/Config/us-east-1/2026/11/27/ConfigHistory/x.json.gz",
                "AWSLogs/o-a1b2c3d4e5/123456789012/Config/ConfigWritabilityCheckFile",
                "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/11/27/123456789012_"
                "elasticloadbalancing_us-east-1_app.web.50dc6c495c0c9188_20261127T1200Z_"
                "10.0.0.10_0a1b2c3d.log.gz"):
        assert registry.classify(key, ["vpc_flow_logs"]).kind == SKIP, key


def _event(*keys: str) -> str:
    return json.dumps({"Records": [
        {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "awsRegion": "us-east-1",
         "s3": {"bucket": {"name": "bkt"}, "object": {"key": k, "size": 1}}} for k in keys]})


def test_extract_objects_gives_each_object_to_its_service():
    body = _event("AWSLogs/1/vpcflowlogs/1.gz", "AWSLogs/1/CloudTrail/2.gz", "app/3.jsonl",
                  "AWSLogs/1/Config/4.gz", "misc/5.txt")
    message = SqsMessage("svc-a", "us-east-1", "https://q", "m-1", body)
    with TestPipeline() as p:
        out = (p | beam.Create([message])
               | beam.ParDo(ExtractObjects(REGISTRY, ROUTES)).with_outputs(DEAD_LETTER,
                                                                          main="tasks"))
        assert_that(out.tasks | beam.Map(lambda t: (t.ref.key, t.kind, t.message.service)),
                    equal_to([("AWSLogs/1/vpcflowlogs/1.gz", "vpc", "svc-a"),
                              ("AWSLogs/1/CloudTrail/2.gz", "trail", "svc-b"),
                              ("app/3.jsonl", "app", "svc-c"),
                              ("misc/5.txt", SNIFF, "svc-a")]), label="tasks")
        assert_that(out[DEAD_LETTER], equal_to([]), label="no dead letters")


def test_parse_batches_uses_the_options_of_each_type_s_service():
    def item(service: str, fmt: str) -> FormatBatch:
        message = SqsMessage(service, "us-east-1", "https://q", "m-1", "{}")
        task = ObjectTask(message, ObjectRef("bkt", f"k/{fmt}"), fmt)
        return FormatBatch(task, fmt, RecordBatch(f"s3://bkt/k/{fmt}", f"k/{fmt}", 0, [b"x"]))

    with TestPipeline() as p:
        out = (p | beam.Create([item("svc-a", "vpc"), item("svc-b", "trail"),
                                item("svc-c", "app")])
               | beam.ParDo(ParseBatches(REGISTRY, routes=ROUTES)).with_outputs(
                   DEAD_LETTER, main="events"))
        assert_that(out.events, equal_to([
            EventBatch("t.a", [b"x"], "svc-a", "us-east-1"),
            EventBatch("t.b", [b"x"], "svc-b", "us-east-1"),
            EventBatch("t.default", [b"x"], "svc-c", "us-east-1")]))


def _plan(name: str, queue: str, regions=("us-east-1",), readers: int = 1) -> ServicePlan:
    queues = [SqsQueue(name, r, queue, i) for r in regions for i in range(readers)]
    return ServicePlan(name, None, list(regions), queues)


def test_plans_on_one_queue_read_it_together():
    a = _plan("a", "archive", readers=2)
    b = _plan("b", "https://sqs.us-east-1.amazonaws.com/123456789012/archive")  # same queue
    c = _plan("c", "umbrella")
    groups = share_queues([a, b, c])
    assert [[p.name for p in g] for g in groups] == [["a", "b"], ["c"]]
    readers = shared_readers(groups[0])
    assert [(q.service, q.queue, q.reader) for q in readers] == [
        ("a", "archive", 0), ("a", "archive", 1)]


def test_a_plan_joining_two_groups_merges_them():
    a, b = _plan("a", "q1"), _plan("b", "q2")
    both = _plan("c", "q1")
    both.queues += _plan("c", "q2").queues
    with pytest.raises(CollectorError) as e:  # c reads q1 and q2, a and b one of them
        share_queues([a, b, both])
    assert e.value.code == "CFG-017"
    same = [_plan("a", "q1"), _plan("b", "q1"), _plan("c", "q1")]
    assert [[p.name for p in g] for g in share_queues(same)] == [["a", "b", "c"]]


def test_plans_on_one_queue_in_other_regions_are_refused():
    with pytest.raises(CollectorError) as e:
        share_queues([_plan("a", "q", ("us-east-1", "eu-west-1")), _plan("b", "q")])
    assert e.value.code == "CFG-017"
    assert "a and b read one SQS queue, but not in the same regions" in e.value.message
