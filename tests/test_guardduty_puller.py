"""guardduty: GuardDuty findings from ListFindings/GetFindings to Devo.

Pure tests of the parser and of the puller's pieces; then the puller against the
embedded AWS's GuardDuty (ListDetectors from moto, ListFindings/GetFindings from
the embedded emulator) through boto3 over HTTP; and the collector end to end,
to the embedded relay over TLS.
"""

from __future__ import annotations

import doctest
import json
import pickle

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from awscollector.config import parse_config
from awscollector.config.problems import ConfigError
from awscollector.embedded.config import embedded_config
from awscollector.embedded.seed import guardduty_finding_events
from awscollector.iampolicy import iam_policy
from awscollector.io.api import ApiRecords, ParseApiRecords
from awscollector.io.deadletter import DEAD_LETTER
from awscollector.io.pullers import PULLERS, ApiStream
from awscollector.io.pullers.guardduty import PULLER, updated_ms
from awscollector.pipelines.api_services import API_SERVICES, api_puller
from awscollector.transforms import guardduty_events, guardduty_findings
from tests.vpc_helpers import ENV

TABLE = "cloud.aws.guardduty.findings"
ACCOUNT = "123456789012"
HOUR = 3_600_000


def sample_findings(n: int, seed: int = 7) -> list[dict]:
    """n findings as GetFindings returns them (the detail of GuardDuty's events)."""
    return [e["detail"] for e in guardduty_finding_events(n, seed=seed)]


def compact(finding) -> bytes:
    return json.dumps(finding, separators=(",", ":"), ensure_ascii=False).encode()


def stream_of(detector: str, region: str = "us-east-1", **options) -> ApiStream:
    return ApiStream("guardduty", PULLER.name, ACCOUNT, region, detector, 0, 0, 60.0,
                     {"flatten": False, **options})


# -- pure: the parser


def test_doctest():
    assert doctest.testmod(guardduty_findings).failed == 0


def test_each_finding_is_one_event_its_compact_json_as_from_eventbridge():
    findings = sample_findings(3)
    parsed = guardduty_findings.parse(findings)
    assert parsed.rejected == []
    assert parsed.events == {TABLE: [compact(f) for f in findings]}
    # The same message as the finding that arrives in an EventBridge event.
    events = guardduty_finding_events(3, seed=7)
    via_events = guardduty_events.parse(
        guardduty_events.RecordBatch("q", "", 0, events), {}).events
    assert via_events == parsed.events


def test_findings_without_an_id_are_rejected_and_the_others_delivered():
    good = sample_findings(2)
    no_id = {k: v for k, v in good[0].items() if k != "id"}
    empty_id = dict(good[1], id="")
    parsed = guardduty_findings.parse([no_id, good[0], empty_id, "text", good[1]])
    assert parsed.events == {TABLE: [compact(good[0]), compact(good[1])]}
    assert [r.code for r in parsed.rejected] == ["SRC-014"] * 3
    assert [r.record for r in parsed.rejected] == [no_id, empty_id, "text"]
    assert parsed.rejected[0].reason == "finding 0 of 5: no 'id' (a GuardDuty finding's identifier)"
    assert "a JSON str" in parsed.rejected[2].reason


def test_non_ascii_is_utf8_and_a_lone_surrogate_stays_escaped():
    finding = {"id": "f", "title": "Sondeo en el puerto 22 de «web» ✓"}
    (message,) = guardduty_findings.parse([finding]).events[TABLE]
    assert json.loads(message) == finding
    assert "«web» ✓".encode() in message
    odd = dict(finding, odd="\ud800")  # no UTF-8 for it: the message is escaped JSON
    (message,) = guardduty_findings.parse([odd]).events[TABLE]
    assert json.loads(message) == odd


def test_updated_ms_reads_guardduty_times():
    assert updated_ms({"updatedAt": "2026-11-27T11:00:00.123Z"}) == 1_795_777_200_123
    assert updated_ms({"updatedAt": "2026-11-27T11:00:00Z"}) == 1_795_777_200_000
    assert updated_ms({"updatedAt": "2026-11-27T11:00:00.123"}) == 1_795_777_200_123
    assert updated_ms({"updatedAt": "2026-11-27T12:00:00.123+01:00"}) == 1_795_777_200_123
    assert updated_ms({"updatedAt": "yesterday"}) is None
    assert updated_ms({"updatedAt": 5}) is None
    assert updated_ms({}) is None
    assert updated_ms("x") is None


# -- pure: the declaration


def test_the_puller_and_service_are_declared():
    assert PULLERS["guardduty_findings"] is PULLER
    assert API_SERVICES["guardduty"].table == TABLE
    assert api_puller("guardduty") is PULLER
    assert (PULLER.window_ms, PULLER.align_ms, PULLER.piece_ms, PULLER.rate, PULLER.lag_s) == (
        3_600_000, 1, 86_400_000, None, 300)
    assert PULLER.aws_service == "guardduty"
    assert set(PULLER.actions) == {"guardduty:ListDetectors", "guardduty:ListFindings",
                                   "guardduty:GetFindings"}
    assert pickle.loads(pickle.dumps(PULLER)).name == PULLER.name


def test_configured_detectors_are_the_streams_without_listing(tmp_path, pki):
    raw = embedded_config("http://127.0.0.1:1", 1, pki, tmp_path, "-", services={
        "guardduty": {"detector_ids": ["d2", "d1", "d2"], "lag_seconds": 0}})
    config = parse_config(raw, tmp_path, environ=ENV).inputs.aws.services["guardduty"]
    assert config.detector_ids == ["d2", "d1", "d2"]
    assert config.lag_seconds == 0
    # No client call: a client that cannot be used proves it.
    assert PULLER.streams(None, config) == ["d2", "d1"]


def test_config_defaults_and_refuses_an_empty_detector_id(tmp_path, pki):
    raw = embedded_config("http://127.0.0.1:1", 1, pki, tmp_path, "-",
                          services={"guardduty": None})
    config = parse_config(raw, tmp_path, environ=ENV).inputs.aws.services["guardduty"]
    assert config.detector_ids == [] and config.lag_seconds is None
    assert config.request_period_in_seconds == 60
    raw = embedded_config("http://127.0.0.1:1", 1, pki, tmp_path, "-",
                          services={"guardduty": {"detector_ids": [""]}})
    with pytest.raises(ConfigError, match="detector_ids"):
        parse_config(raw, tmp_path, environ=ENV)


def test_iam_policy_lets_the_service_list_detectors_and_read_findings(tmp_path, pki):
    raw = embedded_config("http://127.0.0.1:1", 1, pki, tmp_path, "-",
                          services={"guardduty": None})
    document = iam_policy(parse_config(raw, tmp_path, environ=ENV)).document
    (poll,) = [s for s in document["Statement"] if s["Sid"] == "PollApis"]
    assert poll["Action"] == ["guardduty:GetFindings", "guardduty:ListDetectors",
                              "guardduty:ListFindings"]


# -- pure: the parse DoFn


def test_parse_dofn_sends_findings_to_their_table_and_rejects_to_the_dead_letter():
    stream = stream_of("det-1")
    good = sample_findings(3)
    bad = {"type": "Recon:EC2/Portscan"}
    items = [ApiRecords(stream.key, good[:2], (0, HOUR)),
             ApiRecords(stream.key, [bad, good[2]], (HOUR, 2 * HOUR))]
    with BeamTestPipeline() as p:
        out = (p | beam.Create(items)
               | beam.ParDo(ParseApiRecords({stream.key: stream}))
               .with_outputs(DEAD_LETTER, main="events"))
        assert_that(out.events | beam.Map(lambda b: (b.table, b.service, b.region,
                                                     tuple(b.messages))),
                    equal_to([(TABLE, "guardduty", "us-east-1", tuple(map(compact, good[:2]))),
                              (TABLE, "guardduty", "us-east-1", (compact(good[2]),))]),
                    label="events")
        assert_that(out[DEAD_LETTER] | beam.Map(lambda d: (
            d.code, d.source["api"], d.source["stream"], d.source["window"],
            d.source["records"])),
            equal_to([("SRC-014", "guardduty:ListFindings", "det-1", [HOUR, 2 * HOUR], [bad])]),
            label="dead letters")


def test_parse_dofn_flattens_when_asked():
    stream = stream_of("det-1", flatten=True)
    finding = {"id": "f1", "service": {"count": 3, "archived": False}}
    with BeamTestPipeline() as p:
        out = (p | beam.Create([ApiRecords(stream.key, [finding], (0, HOUR))])
               | beam.ParDo(ParseApiRecords({stream.key: stream}))
               .with_outputs(DEAD_LETTER, main="events"))
        assert_that(out.events | beam.FlatMap(lambda b: [json.loads(m) for m in b.messages]),
                    equal_to([{"id": "f1", "service.count": 3, "service.archived": False}]))
