"""EventBridge event formats and the steps of ReadEventsFromSqs, without AWS.

Parsers on samples of AWS's documented event shapes (tests/samples/events/),
decoding of message bodies (direct, SNS-wrapped, bad), the registry's choice of
format, and each DoFn under TestPipeline.
"""

from __future__ import annotations

import json
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from awscollector.config import parse_config
from awscollector.errors import CollectorError
from awscollector.io.deadletter import DEAD_LETTER
from awscollector.io.delivery import EventBatch
from awscollector.io.routes import Route, Routes
from awscollector.io.sqs import SqsMessage
from awscollector.pipelines.collector import SERVICES, availability, plan_services
from awscollector.pipelines.event_services import EVENT_SERVICES
from awscollector.pipelines.s3_services import share_queues
from awscollector.pipelines.s3_sqs import ParseBatches
from awscollector.pipelines.sqs_events import DecodeEvents, EventTask
from awscollector.transforms import eventbridge, guardduty_events, securityhub
from awscollector.transforms.eventbridge import decode_event, table_of
from awscollector.transforms.formats import EVENTS, Format, Parsed, RecordBatch
from awscollector.transforms.registry import default_registry

SAMPLES = Path(__file__).parent / "samples" / "events"
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/events"
ALL_TYPES = (eventbridge.TYPE, securityhub.TYPE, guardduty_events.TYPE)


def sample(name: str) -> dict:
    return json.loads((SAMPLES / f"{name}.json").read_text())


def compact(doc) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def batch(*events) -> RecordBatch:
    return RecordBatch("test", "", 0, list(events))


def message(body, mid: str = "m-1", service: str = "sqs-cloudwatch-consumer") -> SqsMessage:
    text = body if isinstance(body, str) else json.dumps(body)
    return SqsMessage(service, "us-east-1", QUEUE, mid, text)


def sns_wrapped(event: dict) -> dict:
    return {"Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:events",
            "Message": json.dumps(event), "Timestamp": "2026-11-27T12:00:01.000Z",
            "SignatureVersion": "1", "Signature": "EXAMPLE", "SigningCertURL": "https://x",
            "UnsubscribeURL": "https://x"}


# ---------------------------------------------------------------- parsers on samples


def test_ec2_state_change_is_one_message_whole():
    event = sample("ec2_instance_state_change")
    parsed = eventbridge.parse(batch(event), {})
    assert parsed.events == {"cloud.aws.cloudwatch.events": [compact(event)]}
    assert parsed.rejected == []
    auto = eventbridge.parse(batch(event), {"auto_event_type": True})
    assert auto.events == {"cloud.aws.cloudwatch.ec2": [compact(event)]}


@pytest.mark.parametrize("source,table", [
    ("aws.ec2", "cloud.aws.cloudwatch.ec2"),
    ("aws.securityhub", "cloud.aws.cloudwatch.securityhub"),
    ("aws.Health", "cloud.aws.cloudwatch.health"),
    ("aws.partner/example.com/123/app", "cloud.aws.cloudwatch.events"),
    ("com.example.orders", "cloud.aws.cloudwatch.events"),
    ("aws.", "cloud.aws.cloudwatch.events"),
    ("aws.a b", "cloud.aws.cloudwatch.events"),
])
def test_auto_event_type_tables(source, table):
    assert table_of(source) == table


def test_securityhub_imported_gives_one_message_per_finding():
    event = sample("securityhub_findings_imported")
    findings = event["detail"]["findings"]
    assert len(findings) == 3 and all(f["SchemaVersion"] == "2018-10-08" for f in findings)
    parsed = securityhub.FINDINGS.parse(batch(event), {})
    assert parsed.events == {securityhub.TABLE: [compact(f) for f in findings]}
    assert parsed.rejected == []


def test_malformed_findings_are_rejected_and_the_others_kept():
    event = sample("securityhub_findings_imported")
    good = event["detail"]["findings"]
    no_id = {k: v for k, v in good[0].items() if k != "Id"}
    event["detail"]["findings"] = [good[0], "a string", no_id, good[1], None, {"Id": ""},
                                   good[2]]
    parsed = securityhub.FINDINGS.parse(batch(event), {})
    assert parsed.events == {securityhub.TABLE: [compact(f) for f in good]}
    assert [(r.code, r.record) for r in parsed.rejected] == [
        ("SRC-014", "a string"), ("SRC-014", no_id), ("SRC-014", None), ("SRC-014", {"Id": ""})]
    assert "finding 1 of 7" in parsed.rejected[0].reason
    assert "not an ASFF finding object" in parsed.rejected[0].reason
    assert "no 'Id'" in parsed.rejected[1].reason


def test_findings_that_are_not_a_list_reject_the_event():
    event = sample("securityhub_findings_imported")
    event["detail"]["findings"] = {"Id": "x"}
    parsed = securityhub.FINDINGS.parse(batch(event), {})
    assert parsed.events == {}
    assert [(r.code, r.record) for r in parsed.rejected] == [("SRC-014", event)]


def test_insight_results_are_sent_whole():
    event = sample("securityhub_insight_results")
    parsed = securityhub.INSIGHT_RESULTS.parse(batch(event), {})
    assert parsed.events == {securityhub.TABLE: [compact(event)]}


def test_guardduty_finding_is_its_detail():
    event = sample("guardduty_finding")
    parsed = guardduty_events.FORMAT.parse(batch(event), {})
    assert parsed.events == {"cloud.aws.guardduty.findings": [compact(event["detail"])]}
    del event["detail"]["id"]
    bad = guardduty_events.FORMAT.parse(batch(event), {})
    assert bad.events == {} and [r.code for r in bad.rejected] == ["SRC-014"]


def test_unicode_is_kept_and_a_lone_surrogate_escaped():
    event = {"source": "aws.ssm", "detail-type": "x", "detail": {"name": "café ☕"}}
    broken = {"source": "aws.ssm", "detail-type": "x", "detail": {"s": "\ud800"}}
    messages = eventbridge.parse(batch(event, broken), {}).events["cloud.aws.cloudwatch.events"]
    assert [json.loads(m) for m in messages] == [event, broken]
    assert "café ☕".encode() in messages[0]  # ensure_ascii=False
    assert messages[1] == b'{"source":"aws.ssm","detail-type":"x","detail":{"s":"\\ud800"}}'


# ---------------------------------------------------------------- decoding a message


def test_decode_direct_and_sns_wrapped():
    event = sample("ec2_instance_state_change")
    assert decode_event(json.dumps(event)) == event
    assert decode_event(json.dumps(sns_wrapped(event))) == event


@pytest.mark.parametrize("body,code,text", [
    ("not json", "SRC-011", "the message body is not JSON"),
    ("", "SRC-011", "it is empty"),
    ('{"Type":"Notification","Message":"{oops"}', "SRC-011", "SNS notification's Message"),
    ("[1, 2]", "SRC-012", "a JSON list"),
    ('{"source":"aws.ec2","detail-type":"x"}', "SRC-012", "no 'detail'"),
    ('{"Records":[{"eventSource":"aws:s3"}]}', "SRC-012", "no 'source', 'detail-type'"),
    ('{"source":"aws.ec2","detail-type":"x","detail":"y"}', "SRC-012", "not an object"),
    ('{"source":7,"detail-type":"x","detail":{}}', "SRC-012", "'source'"),
    ('{"Type":"Notification","Message":{"a":1}}', "SRC-012", "Message is not a string"),
    ('{"Type":"Notification","Message":"{\\"a\\":1}"}', "SRC-012", "(SNS-wrapped)"),
])
def test_decode_refuses_what_is_not_an_event(body, code, text):
    with pytest.raises(CollectorError) as err:
        decode_event(body)
    assert err.value.code == code
    assert text in err.value.message


# ---------------------------------------------------------------- the registry


def test_registry_picks_the_most_specific_format():
    registry = default_registry()
    cases = {"ec2_instance_state_change": "service_events",
             "securityhub_findings_imported": "securityhub_findings",
             "securityhub_insight_results": "securityhub_insight_results",
             "guardduty_finding": "guardduty_finding_events"}
    for name, fmt in cases.items():
        assert registry.classify_event(sample(name), ALL_TYPES).name == fmt, name
    custom_action = sample("securityhub_findings_imported")
    custom_action["detail-type"] = "Security Hub Findings - Custom Action"
    assert registry.classify_event(custom_action, ALL_TYPES).name == "securityhub_findings"
    consumer = (securityhub.TYPE, guardduty_events.TYPE)
    assert registry.classify_event(sample("ec2_instance_state_change"), consumer) is None
    # S3 objects never classify as events, nor events as objects.
    assert registry.classify_event(sample("guardduty_finding"), ("vpc_flow_logs",)) is None


def test_an_events_format_needs_a_recognizer():
    def parse(b, o):
        return Parsed()

    with pytest.raises(ValueError, match="recognize"):
        Format(name="x", type="x", table="t", parse=parse, framing=EVENTS)
    with pytest.raises(ValueError, match="recognize"):
        Format(name="x", type="x", table="t", parse=parse, recognize=lambda e: True)


# ---------------------------------------------------------------- DoFns


def test_decode_events_dofn():
    registry = default_registry()
    findings = sample("securityhub_findings_imported")
    guardduty = sample("guardduty_finding")
    bodies = [message(findings, "m-1"), message(sns_wrapped(guardduty), "m-2"),
              message("nope", "m-3"), message({"a": 1}, "m-4"),
              message(sample("ec2_instance_state_change"), "m-5")]
    with TestPipeline() as p:
        out = (p | beam.Create(bodies)
               | beam.ParDo(DecodeEvents(registry, (securityhub.TYPE, guardduty_events.TYPE)))
               .with_outputs(DEAD_LETTER, main="batches"))
        assert_that(out.batches | beam.Map(lambda b: (b.task.message.message_id, b.format,
                                                      b.batch.records[0]["id"])),
                    equal_to([("m-1", "securityhub_findings", findings["id"]),
                              ("m-2", "guardduty_finding_events", guardduty["id"])]),
                    label="batches")
        assert_that(out[DEAD_LETTER] | beam.Map(lambda d: (d.source["message_id"], d.code,
                                                           d.source["queue_url"])),
                    equal_to([("m-3", "SRC-011", QUEUE), ("m-4", "SRC-012", QUEUE),
                              ("m-5", "SRC-013", QUEUE)]), label="dead letters")


def test_decode_events_routes_each_event_to_its_service():
    routes = Routes([Route("service-events-all", (eventbridge.TYPE,)),
                     Route("sqs-cloudwatch-consumer", (securityhub.TYPE, guardduty_events.TYPE))])
    bodies = [message(sample(n), n, service="service-events-all")
              for n in ("ec2_instance_state_change", "securityhub_insight_results",
                        "guardduty_finding")]
    with TestPipeline() as p:
        out = (p | beam.Create(bodies)
               | beam.ParDo(DecodeEvents(default_registry(), routes))
               .with_outputs(DEAD_LETTER, main="batches"))
        assert_that(out.batches | beam.Map(lambda b: (b.task.message.message_id,
                                                      b.task.message.service)),
                    equal_to([("ec2_instance_state_change", "service-events-all"),
                              ("securityhub_insight_results", "sqs-cloudwatch-consumer"),
                              ("guardduty_finding", "sqs-cloudwatch-consumer")]))


def test_parse_batches_of_events_dead_letters_the_bad_findings():
    registry = default_registry()
    event = sample("securityhub_findings_imported")
    good = event["detail"]["findings"]
    event["detail"]["findings"] = [good[0], 42, good[1], {"Title": "no id"}, good[2]]
    task = EventTask(message(event, "m-9"), event["id"], event["source"], event["detail-type"],
                     "securityhub_findings")
    from awscollector.io.s3 import FormatBatch
    item = FormatBatch(task, "securityhub_findings", batch(event))
    with TestPipeline() as p:
        out = (p | beam.Create([item])
               | beam.ParDo(ParseBatches(registry, {"flatten": True}))
               .with_outputs(DEAD_LETTER, main="events"))
        assert_that(out.events | beam.Map(lambda b: (b.table, len(b.messages), b.service,
                                                     b"Severity.Label" in b.messages[0])),
                    equal_to([(securityhub.TABLE, 3, "sqs-cloudwatch-consumer", True)]),
                    label="events")
        assert_that(out[DEAD_LETTER] | beam.Map(lambda d: (
            d.code, d.source["message_id"], d.source["rejected"], d.source["records"],
            d.source["event_id"], QUEUE in d.error)),
            equal_to([("SRC-014", "m-9", 2, [42, {"Title": "no id"}], event["id"], True)]),
            label="dead letters")


def test_event_batch_messages_are_what_the_parser_made():
    registry = default_registry()
    event = sample("ec2_instance_state_change")
    task = EventTask(message(event, "m-1", "service-events-all"), event["id"], "aws.ec2",
                     event["detail-type"], "service_events")
    from awscollector.io.s3 import FormatBatch
    item = FormatBatch(task, "service_events", batch(event))
    with TestPipeline() as p:
        out = (p | beam.Create([item])
               | beam.ParDo(ParseBatches(registry, {"auto_event_type": True}))
               .with_outputs(DEAD_LETTER, main="events"))
        assert_that(out.events, equal_to([EventBatch("cloud.aws.cloudwatch.ec2",
                                                      [compact(event)], "service-events-all",
                                                      "us-east-1")]))


# ---------------------------------------------------------------- wiring


def raw(services: dict) -> dict:
    return {"outputs": {"devo_1": {"type": "devo_platform", "config": {
                "address": "127.0.0.1", "port": 1, "type": "TCP"}}},
            "inputs": {"aws": {"id": "100001", "regions": ["us-east-1", "eu-west-1"],
                               "services": services}}}


def plans_of(services: dict):
    config = parse_config(raw(services), Path("."), environ={})
    return config, plan_services(config, warn=False)


def test_event_services_are_planned_in_every_region(caplog):
    config, plans = plans_of({"service-events-all": {"sqs_queue_name": "ev", "readers": 2},
                              "sqs-cloudwatch-consumer": {"sqs_queue_name": "sec",
                                                          "regions": ["eu-west-1"]}})
    assert set(EVENT_SERVICES) <= set(SERVICES)
    for name, service in config.inputs.aws.enabled_services().items():
        assert availability(name, service) == (True, ())
    by_name = {p.name: p for p in plans}
    assert [(q.region, q.queue, q.reader) for q in by_name["service-events-all"].queues] == [
        ("us-east-1", "ev", 0), ("us-east-1", "ev", 1), ("eu-west-1", "ev", 0),
        ("eu-west-1", "ev", 1)]
    assert by_name["service-events-all"].default_table == "cloud.aws.cloudwatch.events"
    assert by_name["sqs-cloudwatch-consumer"].default_table == securityhub.TABLE
    assert by_name["sqs-cloudwatch-consumer"].regions == ["eu-west-1"]
    caplog.set_level("WARNING")
    plan_services(parse_config(raw({"service-events-all": {"sqs_queue_name": "ev"}}),
                               Path("."), environ={}))
    assert not [r for r in caplog.records if "RUN-002" in r.getMessage()]


def test_two_event_services_share_a_queue():
    _, plans = plans_of({"service-events-all": {"sqs_queue_name": "ev"},
                         "sqs-cloudwatch-consumer": {"sqs_queue_name": "ev"}})
    assert [[p.name for p in g] for g in share_queues(plans)] == [
        ["service-events-all", "sqs-cloudwatch-consumer"]]


def test_an_s3_service_and_an_event_service_cannot_share_a_queue():
    _, plans = plans_of({"non-cloudwatch-logs": {"types": ["vpc_flow_logs"],
                                                 "sqs_queue_name": "shared"},
                         "sqs-cloudwatch-consumer": {
                             "sqs_queue_url": "https://sqs.us-east-1.amazonaws.com/"
                                              "123456789012/shared"}})
    with pytest.raises(CollectorError) as err:
        share_queues(plans)
    assert err.value.code == "CFG-018"
    assert "non-cloudwatch-logs and sqs-cloudwatch-consumer" in err.value.message
