"""guardduty: GuardDuty findings from ListFindings/GetFindings to Devo.

Pure tests of the parser and of the puller's pieces; then the puller against the
embedded AWS's GuardDuty (ListDetectors from moto, ListFindings/GetFindings from
the embedded emulator) through boto3 over HTTP; and the collector end to end,
to the embedded relay over TLS.
"""

from __future__ import annotations

import datetime as dt
import doctest
import importlib.util
import json
import pickle
import time

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from awscollector.config import parse_config
from awscollector.config.problems import ConfigError
from awscollector.embedded.aws import EmbeddedAws
from awscollector.embedded.config import embedded_config
from awscollector.embedded.seed import guardduty_finding_events
from awscollector.iampolicy import iam_policy
from awscollector.io.api import ApiRecords, ParseApiRecords
from awscollector.io.checkpoints import CheckpointKey, FileCheckpoints
from awscollector.io.deadletter import DEAD_LETTER
from awscollector.io.pullers import PULLERS, ApiStream
from awscollector.io.pullers.guardduty import PULLER, updated_ms
from awscollector.pipelines.api_services import API_SERVICES, api_puller
from awscollector.pipelines.collector import run_collector
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


# -- against the embedded GuardDuty, through boto3


REGION = "eu-north-1"  # the module's own AWS: ListDetectors sees only its detectors


# The GuardDuty emulator (ListFindings/GetFindings; moto has neither) is being added to
# the embedded AWS; these tests run once it is there.
needs_emulator = pytest.mark.skipif(
    importlib.util.find_spec("awscollector.embedded.apis") is None,
    reason="the embedded AWS has no GuardDuty findings emulator yet")


@pytest.fixture(scope="module")
def aws():
    embedded = EmbeddedAws(apis=True).start()
    try:
        yield embedded
    finally:
        embedded.stop()


def iso(ms: int) -> str:
    at = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return f"{at:%Y-%m-%dT%H:%M:%S}.{at.microsecond // 1000:03d}Z"


def findings_at(times: list[int], seed: int, detector: str, region: str = REGION
                ) -> list[dict]:
    """Findings of ``detector`` updated at ``times`` (epoch ms), each with its own id."""
    out = []
    for n, (finding, at) in enumerate(zip(sample_findings(len(times), seed=seed), times,
                                          strict=True)):
        out.append(dict(finding, id=f"{seed:04x}{n:028x}", updatedAt=iso(at), region=region))
    return out


def new_detector(aws, region: str = REGION) -> str:
    return aws.client("guardduty", region).create_detector(Enable=True)["DetectorId"]


def read_window(client, detector: str, start: int, end: int, region: str = REGION
                ) -> list[list[dict]]:
    """Every page of a window, as ReadFromApi reads them: token after token."""
    stream = stream_of(detector, region)
    pages, token = [], None
    while True:
        page = PULLER.fetch(client, stream, start, end, token)
        pages.append(page.records)
        token = page.token
        if token is None:
            return pages
        assert len(pages) < 100, "the pages do not end"


def test_every_detector_of_the_region_is_a_stream(embedded_aws):
    aws = embedded_aws  # ListDetectors is moto's; no test creates detectors in this region
    region = "eu-south-1"
    detectors = sorted(new_detector(aws, region) for _ in range(3))
    other = new_detector(aws, "eu-west-3")  # another region's
    client = aws.client("guardduty", region)
    assert PULLER.streams(client, None) == detectors
    assert other not in detectors


@needs_emulator
def test_more_than_a_page_is_read_page_by_page_each_finding_once(aws):
    client = aws.client("guardduty", REGION)
    detector = new_detector(aws)
    start = 1_795_777_200_000  # 2026-11-27T11:00Z
    times = [start + (i * 7919) % HOUR for i in range(180)]  # out of order, one hour
    findings = findings_at(times, 1, detector)
    aws.apis.add_findings(detector, findings, region=REGION, account=ACCOUNT)
    pages = read_window(client, detector, start, start + HOUR)
    assert [len(p) for p in pages] == [50, 50, 50, 30]
    got = [f for p in pages for f in p]
    assert sorted(f["id"] for f in got) == sorted(f["id"] for f in findings)
    assert [updated_ms(f) for f in got] == sorted(times)  # oldest first
    assert {f["id"]: f for f in got} == {f["id"]: f for f in findings}  # whole, as stored


@needs_emulator
def test_a_window_has_its_start_and_not_its_end(aws):
    client = aws.client("guardduty", REGION)
    detector = new_detector(aws)
    start = 1_795_780_800_000  # 2026-11-27T12:00Z
    times = [start - 1, start, start + 1, start + HOUR - 1, start + HOUR, start + 2 * HOUR - 1]
    findings = findings_at(times, 2, detector)
    aws.apis.add_findings(detector, findings, region=REGION, account=ACCOUNT)
    ids = [f["id"] for f in findings]

    def window(a, b):
        return [f["id"] for p in read_window(client, detector, a, b) for f in p]

    assert window(start, start + HOUR) == ids[1:4]
    assert window(start + HOUR, start + 2 * HOUR) == ids[4:6]
    assert window(start - HOUR, start) == ids[:1]
    # Windows side by side: each finding in one of them.
    both = window(start - HOUR, start) + window(start, start + HOUR) + window(
        start + HOUR, start + 2 * HOUR)
    assert both == ids


@needs_emulator
def test_an_updated_finding_is_sent_again_in_its_later_window(aws):
    client = aws.client("guardduty", REGION)
    detector = new_detector(aws)
    start = 1_795_791_600_000  # 2026-11-27T15:00Z
    first, other = findings_at([start + 60_000, start + 120_000], 3, detector)
    aws.apis.add_findings(detector, [first, other], region=REGION, account=ACCOUNT)
    (before,) = read_window(client, detector, start, start + HOUR)
    assert [f["id"] for f in before] == [first["id"], other["id"]]
    # The activity goes on: GuardDuty counts it in the same finding, updated later.
    later = start + HOUR + 600_000
    updated = dict(first, updatedAt=iso(later),
                   service=dict(first["service"], count=first["service"]["count"] + 5))
    aws.apis.update_finding(detector, updated, region=REGION, account=ACCOUNT)
    (again,) = read_window(client, detector, start + HOUR, start + 2 * HOUR)
    assert again == [updated]
    # GuardDuty keeps the newest state only: the first window now has the other one.
    (now,) = read_window(client, detector, start, start + HOUR)
    assert [f["id"] for f in now] == [other["id"]]


# -- end to end: the collector, the embedded GuardDuty, the relay


@needs_emulator
def test_collector_sends_each_finding_once_then_only_what_was_updated(aws, relay, pki,
                                                                      tmp_path):
    region = "ap-southeast-2"
    detectors = [new_detector(aws, region) for _ in range(3)]
    now = int(time.time() * 1000)
    expected = []
    for n, detector in enumerate(detectors):
        # Three hours of findings, the last a minute old: windows of all three hours.
        times = [now - 3 * HOUR + i * 97_000 for i in range(110)]
        findings = findings_at(times, 10 + n, detector, region)
        aws.apis.add_findings(detector, findings, region=region, account=ACCOUNT)
        expected += findings
    service = {"start_time": iso(now - 4 * HOUR), "lag_seconds": 0}
    raw = embedded_config(aws.endpoint_url, relay.port, pki, tmp_path, "-", regions=(region,),
                          services={"guardduty": service})

    result = run_collector(parse_config(raw, tmp_path, environ=ENV), [], idle_seconds=1)

    lines = relay.events(TABLE)
    assert sorted(lines) == sorted(compact(f).decode() for f in expected)
    assert {(r[0], r[2]): r[3] for r in result.rows}[("guardduty", TABLE)] == len(expected)
    store = FileCheckpoints(tmp_path / "state")
    for detector in detectors:
        saved = store.load(CheckpointKey("guardduty", ACCOUNT, region, detector))
        assert saved is not None and saved["open"] == []

    # A second run: only the finding updated since, in its new state.
    relay.reset()
    time.sleep(0.05)
    updated = dict(expected[5], updatedAt=iso(int(time.time() * 1000)),
                   service=dict(expected[5]["service"], archived=True))
    aws.apis.update_finding(detectors[0], updated, region=region, account=ACCOUNT)
    time.sleep(0.05)
    run_collector(parse_config(raw, tmp_path, environ=ENV), [], idle_seconds=1)
    assert relay.events(TABLE) == [compact(updated).decode()]
