"""The embedded AWS's emulator of CloudTrail LookupEvents and GuardDuty ListFindings/
GetFindings (awscollector/embedded/apis.py), in front of moto's server.

Every call is a plain boto3 client over HTTP: the emulator must speak the services'
real wire protocols (JSON 1.1 and REST-JSON, their error shapes) for botocore to
serialize the requests, parse the answers and classify the errors as AWS's.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import boto3
import pytest
from botocore.config import Config

from awscollector.embedded.apis import ApiEmulator
from awscollector.embedded.aws import DUMMY_KEY, EmbeddedAws
from awscollector.embedded.seed import (
    cloudtrail_insight_records,
    guardduty_findings,
    lookup_events_records,
)

ACCOUNT = "123456789012"
HOUR = 3600
T0 = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC).timestamp()
NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})


@pytest.fixture(scope="module")
def aws():
    """One embedded AWS with the emulator for the module; LookupEvents' rate limit is
    lifted here (the throttling tests have emulators of their own)."""
    with EmbeddedAws(apis=True) as embedded:
        embedded.apis.set_rate_limit("LookupEvents", None)
        yield embedded


@pytest.fixture
def limited(aws):
    """A fresh emulator with AWS's limits (2 LookupEvents a second per account and
    region), in front of the same moto."""
    with ApiEmulator(aws.moto_endpoint_url) as emulator:
        yield emulator


def client(endpoint: str, service: str, region: str, key: str = DUMMY_KEY,
           config: Config | None = None, **creds):
    return boto3.client(service, region_name=region, endpoint_url=endpoint,
                        aws_access_key_id=key, aws_secret_access_key=DUMMY_KEY,
                        config=config, **creds)


def code_of(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def all_pages(ct, **query) -> list[list[dict]]:
    pages, token = [], None
    while True:
        answer = ct.lookup_events(**query, **({"NextToken": token} if token else {}))
        pages.append(answer["Events"])
        token = answer.get("NextToken")
        if not token:
            return pages
        assert len(pages) < 100, "the pages do not end"


def epoch(event: dict) -> float:
    return event["EventTime"].timestamp()


# -- CloudTrail LookupEvents


def test_530_events_are_paged_newest_first_each_exactly_once(aws):
    region = "eu-west-2"
    records = lookup_events_records(530, seed=1, region=region, start=T0, end=T0 + 5 * HOUR)
    assert aws.apis.add_trail_events(records, region=region) == 530
    ct = aws.client("cloudtrail", region)

    pages = all_pages(ct, StartTime=T0, EndTime=T0 + 6 * HOUR)

    assert [len(p) for p in pages] == [50] * 10 + [30]
    events = [e for p in pages for e in p]
    assert sorted(e["EventId"] for e in events) == sorted(r["eventID"] for r in records)
    times = [epoch(e) for e in events]
    assert times == sorted(times, reverse=True)  # newest first, across pages too
    by_id = {r["eventID"]: r for r in records}
    for event in events[:60]:
        record = by_id[event["EventId"]]
        assert json.loads(event["CloudTrailEvent"]) == record
        assert event["EventName"] == record["eventName"]
        assert event["EventSource"] == record["eventSource"]
        assert event["ReadOnly"] == str(record["readOnly"]).lower()
        assert epoch(event) == dt.datetime.fromisoformat(record["eventTime"]).timestamp()
    # A token is the same for the same query at the same place.
    again = ct.lookup_events(StartTime=T0, EndTime=T0 + 6 * HOUR)
    first = ct.lookup_events(StartTime=T0, EndTime=T0 + 6 * HOUR)
    assert again["NextToken"] == first["NextToken"]
    # The boto3 paginator reads the same events, with smaller pages.
    paged = [e["EventId"] for page in ct.get_paginator("lookup_events").paginate(
        StartTime=T0, EndTime=T0 + 6 * HOUR, PaginationConfig={"PageSize": 37})
        for e in page["Events"]]
    assert paged == [e["EventId"] for e in events]


def test_time_range_is_inclusive_at_both_ends(aws):
    region = "eu-west-3"
    records = lookup_events_records(7, seed=2, region=region, start=T0, end=T0 + 7)
    for i, record in enumerate(records):  # one a second: T0 .. T0+6
        record["eventTime"] = f"{dt.datetime.fromtimestamp(T0 + i, dt.UTC):%Y-%m-%dT%H:%M:%SZ}"
    aws.apis.add_trail_events(records, region=region)
    ct = aws.client("cloudtrail", region)

    def ids(start, end):
        return [e["EventId"] for p in all_pages(ct, StartTime=start, EndTime=end) for e in p]

    newest_first = [r["eventID"] for r in reversed(records)]
    assert ids(T0 + 2, T0 + 4) == newest_first[2:5]  # T0+4, T0+3, T0+2
    assert ids(T0 + 3, T0 + 3) == newest_first[3:4]
    assert ids(T0 - 10, T0 - 1) == []
    assert ids(T0 + 6, T0 + 60) == newest_first[:1]
    # datetimes as the caller's: the same range
    assert ids(dt.datetime.fromtimestamp(T0 + 2, dt.UTC),
               dt.datetime.fromtimestamp(T0 + 4, dt.UTC)) == newest_first[2:5]
    with pytest.raises(ct.exceptions.InvalidTimeRangeException):
        ct.lookup_events(StartTime=T0 + 5, EndTime=T0 + 4)


def test_lookup_attributes_filter_as_aws_does(aws):
    region = "ca-central-1"
    records = lookup_events_records(300, seed=3, region=region, start=T0, end=T0 + HOUR)
    aws.apis.add_trail_events(records, region=region)
    ct = aws.client("cloudtrail", region)

    def lookup(key, value):
        return [e for p in all_pages(ct, LookupAttributes=[
            {"AttributeKey": key, "AttributeValue": value}]) for e in p]

    def ids_where(pred):
        return sorted(r["eventID"] for r in records if pred(r))

    def ids(events):
        return sorted(e["EventId"] for e in events)

    assert ids(lookup("EventName", "RunInstances")) == ids_where(
        lambda r: r["eventName"] == "RunInstances") != []
    assert ids(lookup("EventSource", "iam.amazonaws.com")) == ids_where(
        lambda r: r["eventSource"] == "iam.amazonaws.com") != []
    assert ids(lookup("ReadOnly", "true")) == ids_where(lambda r: r["readOnly"]) != []
    assert ids(lookup("ReadOnly", "false")) == ids_where(lambda r: not r["readOnly"]) != []
    assert ids(lookup("EventId", records[17]["eventID"])) == [records[17]["eventID"]]
    assert ids(lookup("Username", "alice")) == ids_where(
        lambda r: r["userIdentity"].get("userName") == "alice") != []
    role = next(r for r in records if r["userIdentity"]["type"] == "AssumedRole")
    session = role["userIdentity"]["arn"].rsplit("/", 1)[1]
    assert [e["Username"] for e in lookup("Username", session)] == [session]
    key = records[5]["userIdentity"].get("accessKeyId") or records[6]["userIdentity"][
        "accessKeyId"]
    assert ids(lookup("AccessKeyId", key)) == ids_where(
        lambda r: r["userIdentity"].get("accessKeyId") == key) != []
    assert ids(lookup("ResourceType", "AWS::EC2::Instance")) == ids_where(
        lambda r: any(x["type"] == "AWS::EC2::Instance" for x in r.get("resources", []))) != []
    run = next(r for r in records if r["eventName"] == "RunInstances")
    name = run["resources"][0]["ARN"].split(":", 5)[5]  # instance/i-...
    assert ids(lookup("ResourceName", name)) == [run["eventID"]]
    assert lookup("EventName", "NoSuchCall") == []

    with pytest.raises(ct.exceptions.InvalidLookupAttributesException):
        ct.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "a"},
                                           {"AttributeKey": "Username", "AttributeValue": "b"}])
    with pytest.raises(ct.exceptions.InvalidLookupAttributesException):
        ct.lookup_events(LookupAttributes=[{"AttributeKey": "Color", "AttributeValue": "a"}])


def test_insights_events_only_with_their_category(aws):
    region = "ap-south-1"
    plain = lookup_events_records(20, seed=4, region=region, start=T0, end=T0 + HOUR)
    insights = cloudtrail_insight_records(6, seed=4, region=region)
    aws.apis.add_trail_events(plain + insights, region=region)
    ct = aws.client("cloudtrail", region)
    assert sorted(e["EventId"] for p in all_pages(ct) for e in p) == sorted(
        r["eventID"] for r in plain)
    assert sorted(e["EventId"] for p in all_pages(ct, EventCategory="insight") for e in p) == \
        sorted(r["eventID"] for r in insights)


def test_max_results_and_tokens_are_checked(aws):
    region = "sa-east-1"
    aws.apis.add_trail_events(lookup_events_records(30, seed=5, region=region, start=T0,
                                                    end=T0 + HOUR), region=region)
    ct = aws.client("cloudtrail", region)
    assert len(ct.lookup_events(MaxResults=7)["Events"]) == 7
    assert len(ct.lookup_events()["Events"]) == 30  # 50 by default
    with pytest.raises(ct.exceptions.InvalidMaxResultsException):
        ct.lookup_events(MaxResults=51)

    token = ct.lookup_events(MaxResults=10, EndTime=T0 + HOUR)["NextToken"]
    assert len(ct.lookup_events(MaxResults=10, EndTime=T0 + HOUR, NextToken=token)["Events"]) \
        == 10
    for bad in ({"NextToken": "not-a-token"},
                {"NextToken": token},  # without the EndTime it came with
                {"NextToken": token, "EndTime": T0 + HOUR - 1},
                {"NextToken": token, "EndTime": T0 + HOUR, "LookupAttributes": [
                    {"AttributeKey": "ReadOnly", "AttributeValue": "true"}]}):
        with pytest.raises(ct.exceptions.InvalidNextTokenException):
            ct.lookup_events(MaxResults=10, **bad)
    other = aws.client("cloudtrail", "us-west-1")  # another region's events
    with pytest.raises(other.exceptions.InvalidNextTokenException):
        other.lookup_events(MaxResults=10, EndTime=T0 + HOUR, NextToken=token)
    assert [r.error for r in aws.apis.requests("LookupEvents")[-5:]] == [
        "InvalidNextTokenException"] * 5


def test_late_events_are_listed_only_from_their_visible_time(aws):
    region = "eu-central-2"
    ct = aws.client("cloudtrail", region)
    now = time.time()
    early = lookup_events_records(5, seed=6, region=region, start=now - 600, end=now - 300)
    late = lookup_events_records(3, seed=7, region=region, start=now - 120, end=now - 60)
    aws.apis.add_trail_events(early, region=region)
    aws.apis.add_trail_events(late, region=region, visible_after_seconds=1.0)
    later = lookup_events_records(2, seed=8, region=region, start=now - 900, end=now - 800)
    aws.apis.add_trail_events(later, region=region, visible_at=now + 1.5)

    def listed():
        return sorted(e["EventId"] for p in all_pages(ct, StartTime=now - HOUR, EndTime=now)
                      for e in p)

    assert listed() == sorted(r["eventID"] for r in early)
    time.sleep(max(0.0, now + 1.05 - time.time()))
    assert listed() == sorted(r["eventID"] for r in early + late)
    time.sleep(max(0.0, now + 1.55 - time.time()))
    assert listed() == sorted(r["eventID"] for r in early + late + later)


def test_calls_are_per_account_by_access_key(aws):
    region = "eu-north-1"
    aws.apis.map_access_key("test-key-other-account", "210987654321")
    mine = lookup_events_records(4, seed=9, region=region, start=T0, end=T0 + 60)
    theirs = lookup_events_records(3, seed=10, region=region, start=T0, end=T0 + 60,
                                   account="210987654321")
    aws.apis.add_trail_events(mine, region=region)
    aws.apis.add_trail_events(theirs, region=region, account="210987654321")
    ct = aws.client("cloudtrail", region)
    other = client(aws.endpoint_url, "cloudtrail", region, key="test-key-other-account")
    assert {e["EventId"] for e in ct.lookup_events()["Events"]} == {r["eventID"] for r in mine}
    assert {e["EventId"] for e in other.lookup_events()["Events"]} == {
        r["eventID"] for r in theirs}
    assert aws.apis.requests("LookupEvents")[-1].account == "210987654321"
    assert aws.apis.requests("LookupEvents")[-1].region == region


def test_keys_from_assume_role_are_the_roles_account(aws):
    region = "eu-south-2"
    role_account = "333344445555"
    creds = aws.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{role_account}:role/reader", RoleSessionName="collector",
        ExternalId="xx")["Credentials"]
    records = lookup_events_records(3, seed=11, region=region, start=T0, end=T0 + 60,
                                    account=role_account)
    aws.apis.add_trail_events(records, region=region, account=role_account)
    ct = boto3.client("cloudtrail", region_name=region, endpoint_url=aws.endpoint_url,
                      aws_access_key_id=creds["AccessKeyId"],
                      aws_secret_access_key=creds["SecretAccessKey"],
                      aws_session_token=creds["SessionToken"])
    assert {e["EventId"] for e in ct.lookup_events()["Events"]} == {
        r["eventID"] for r in records}
    assert aws.apis.requests("LookupEvents")[-1].account == role_account


def test_denied_calls_get_access_denied(limited):
    ct = client(limited.endpoint_url, "cloudtrail", "us-east-1", config=NO_RETRY)
    limited.deny("LookupEvents")
    with pytest.raises(ct.exceptions.ClientError) as denied:
        ct.lookup_events()
    assert code_of(denied) == "AccessDeniedException"
    assert "cloudtrail:LookupEvents" in str(denied.value)
    limited.allow("LookupEvents")
    assert ct.lookup_events()["Events"] == []


# -- LookupEvents' rate: 2 a second per account and region


def most_accepted_within(calls, seconds: float) -> int:
    """The most calls accepted in any ``seconds`` long stretch starting at a call."""
    times = sorted(r.time for r in calls if not r.throttled)
    return max((sum(1 for t in times if c <= t < c + seconds) for c in times), default=0)


def test_above_two_calls_a_second_is_throttled_per_account_and_region(limited):
    east = client(limited.endpoint_url, "cloudtrail", "us-east-1", config=NO_RETRY)
    west = client(limited.endpoint_url, "cloudtrail", "us-west-2", config=NO_RETRY)
    limited.map_access_key("test-key-second-account", "444455556666")
    other = client(limited.endpoint_url, "cloudtrail", "us-east-1", key="test-key-second-account",
                   config=NO_RETRY)

    def outcome(ct) -> str:
        try:
            ct.lookup_events(MaxResults=5)
            return "ok"
        except ct.exceptions.ClientError as e:
            return e.response["Error"]["Code"]

    start = time.time()
    burst = [outcome(east) for _ in range(5)]
    west_burst = [outcome(west) for _ in range(3)]
    other_burst = [outcome(other) for _ in range(3)]
    assert time.time() - start < 0.9  # all inside one second, or the counts below shift
    assert burst == ["ok", "ok"] + ["ThrottlingException"] * 3
    assert west_burst == ["ok", "ok", "ThrottlingException"]  # its own budget
    assert other_burst == ["ok", "ok", "ThrottlingException"]  # and another account's
    calls = limited.requests("LookupEvents")
    assert [(r.account, r.region, r.throttled) for r in calls] == (
        [(ACCOUNT, "us-east-1", False)] * 2 + [(ACCOUNT, "us-east-1", True)] * 3
        + [(ACCOUNT, "us-west-2", False)] * 2 + [(ACCOUNT, "us-west-2", True)]
        + [("444455556666", "us-east-1", False)] * 2 + [("444455556666", "us-east-1", True)])
    assert all(r.error == "ThrottlingException" for r in calls if r.throttled)
    time.sleep(max(0.0, calls[1].time + 1.01 - time.time()))
    assert outcome(east) == "ok"  # a second after the first two


def test_a_caller_going_flat_out_gets_two_calls_a_second(limited):
    """Four threads call as fast as they can for 2.5 s: after the burst of 2 the emulator
    accepts 2 calls a second, and throttles the rest."""
    clients = [client(limited.endpoint_url, "cloudtrail", "us-east-1", config=NO_RETRY)
               for _ in range(4)]
    stop = time.time() + 2.5
    ok = []

    def hammer(ct) -> None:
        while time.time() < stop:
            try:
                ct.lookup_events(MaxResults=1)
                ok.append(time.time())
            except ct.exceptions.ClientError as e:
                assert e.response["Error"]["Code"] == "ThrottlingException"
                assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    threads = [threading.Thread(target=hammer, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    calls = limited.requests("LookupEvents")
    accepted = [r for r in calls if not r.throttled]
    print(f"{len(calls)} calls, {len(accepted)} accepted in 2.5 s")
    assert len(calls) > 20 and len(accepted) == len(ok)
    # A token bucket of 2 refilled at 2/s: at most 2 + 2T calls in any T seconds.
    for seconds in (0.1, 0.5, 1.0, 2.0, 2.5):
        assert most_accepted_within(calls, seconds) <= 2 + 2 * seconds + 1e-9, seconds
    span = accepted[-1].time - accepted[0].time
    assert (len(accepted) - 2) / span <= 2.0 + 1e-6
    assert 5 <= len(accepted) <= 7


def test_a_caller_paced_at_two_a_second_is_never_throttled(limited):
    ct = client(limited.endpoint_url, "cloudtrail", "us-east-1", config=NO_RETRY)
    start = time.monotonic()
    for i in range(7):
        time.sleep(max(0.0, start + i * 0.5 - time.monotonic()))
        ct.lookup_events(MaxResults=1)
    calls = limited.requests("LookupEvents")
    assert len(calls) == 7 and not [r for r in calls if r.throttled]


def test_boto3_retries_a_throttled_call_and_gets_its_answer(limited):
    limited.add_trail_events(lookup_events_records(5, seed=12, start=T0, end=T0 + 60))
    ct = client(limited.endpoint_url, "cloudtrail", "us-east-1",
                config=Config(retries={"mode": "standard", "total_max_attempts": 6}))
    answers = [ct.lookup_events() for _ in range(4)]
    assert all(len(a["Events"]) == 5 for a in answers)
    assert sum(a["ResponseMetadata"]["RetryAttempts"] for a in answers) >= 1
    calls = limited.requests("LookupEvents")
    assert len([r for r in calls if not r.throttled]) == 4
    assert [r for r in calls if r.throttled]
    assert most_accepted_within(calls, 1.0) <= 4


# -- GuardDuty


def new_detector(aws, region: str) -> str:
    return aws.client("guardduty", region).create_detector(Enable=True)["DetectorId"]


def ms(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def list_ids(gd, detector: str, **query) -> list[list[str]]:
    pages, token = [], None
    while True:
        answer = gd.list_findings(DetectorId=detector, **query,
                                  **({"NextToken": token} if token else {}))
        pages.append(answer["FindingIds"])
        token = answer.get("NextToken")
        if not token:
            return pages
        assert len(pages) < 100, "the pages do not end"


def test_list_detectors_is_moto_s_and_findings_need_a_known_detector(aws):
    region = "ap-northeast-2"
    gd = aws.client("guardduty", region)
    detectors = sorted(new_detector(aws, region) for _ in range(2))
    assert sorted(gd.list_detectors()["DetectorIds"]) == detectors
    assert gd.list_findings(DetectorId=detectors[0])["FindingIds"] == []
    for call in (lambda: gd.list_findings(DetectorId="0" * 32),
                 lambda: gd.get_findings(DetectorId="0" * 32, FindingIds=["a"]),
                 lambda: aws.client("guardduty", "us-east-2").list_findings(
                     DetectorId=detectors[0])):  # another region's detector
        with pytest.raises(gd.exceptions.BadRequestException) as bad:
            call()
        assert "detectorId" in str(bad.value)
    gd.delete_detector(DetectorId=detectors[1])
    with pytest.raises(gd.exceptions.BadRequestException):
        gd.list_findings(DetectorId=detectors[1])


def test_findings_by_updated_at_window_page_by_page(aws):
    region = "ap-northeast-3"
    gd = aws.client("guardduty", region)
    detector = new_detector(aws, region)
    findings = guardduty_findings(130, seed=20, region=region, detector_id=detector,
                                  start=T0, end=T0 + 2 * HOUR)
    aws.apis.add_findings(detector, findings, region=region)
    start_ms, end_ms = int(T0 * 1000), int((T0 + HOUR) * 1000)
    inside = [f for f in findings if start_ms <= ms(f["updatedAt"]) < end_ms]
    assert 30 < len(inside) < 100

    pages = list_ids(gd, detector, MaxResults=25,
                     FindingCriteria={"Criterion": {"updatedAt": {
                         "GreaterThanOrEqual": start_ms, "LessThan": end_ms}}},
                     SortCriteria={"AttributeName": "updatedAt", "OrderBy": "ASC"})
    ids = [i for p in pages for i in p]
    assert [len(p) for p in pages[:-1]] == [25] * (len(pages) - 1)
    assert ids == [f["id"] for f in sorted(inside, key=lambda f: (ms(f["updatedAt"]),
                                                                  f["id"]))]
    # The short names, and the other end open: the same and the rest.
    short = list_ids(gd, detector, FindingCriteria={"Criterion": {"updatedAt": {
        "Gte": start_ms, "Lt": end_ms}}})
    assert sorted(i for p in short for i in p) == sorted(ids)
    rest = list_ids(gd, detector, FindingCriteria={"Criterion": {"updatedAt": {
        "GreaterThan": end_ms - 1}}}, SortCriteria={"AttributeName": "updatedAt",
                                                    "OrderBy": "DESC"})
    rest_ids = [i for p in rest for i in p]
    assert [len(p) for p in rest][0] == 50
    assert set(rest_ids) | set(ids) == {f["id"] for f in findings}
    stored = {f["id"]: f for f in findings}
    assert [ms(stored[i]["updatedAt"]) for i in rest_ids] == sorted(
        (ms(stored[i]["updatedAt"]) for i in rest_ids), reverse=True)

    # GetFindings: 50 at a time, each finding as stored.
    got = []
    for i in range(0, len(ids), 50):
        got += gd.get_findings(DetectorId=detector, FindingIds=ids[i:i + 50])["Findings"]
    assert [f["Id"] for f in got] == ids
    for finding in got:
        want = stored[finding["Id"]]
        assert (finding["UpdatedAt"], finding["Type"], finding["Severity"],
                finding["Service"]["Count"], finding["Resource"]["ResourceType"]) == (
            want["updatedAt"], want["type"], want["severity"], want["service"]["count"],
            want["resource"]["resourceType"])
    with pytest.raises(gd.exceptions.BadRequestException):
        gd.get_findings(DetectorId=detector, FindingIds=[f["id"] for f in findings[:51]])
    with pytest.raises(gd.exceptions.BadRequestException):
        gd.list_findings(DetectorId=detector, MaxResults=51)
    with pytest.raises(gd.exceptions.BadRequestException):
        gd.list_findings(DetectorId=detector, NextToken="garbage")
    token = gd.list_findings(DetectorId=detector, MaxResults=5)["NextToken"]
    with pytest.raises(gd.exceptions.BadRequestException):  # a token of another query
        gd.list_findings(DetectorId=detector, MaxResults=5, NextToken=token,
                         SortCriteria={"AttributeName": "severity"})
    # Unknown ids are left out, as GuardDuty does.
    assert gd.get_findings(DetectorId=detector, FindingIds=["f" * 32])["Findings"] == []


def test_equality_criteria_on_simple_fields(aws):
    region = "me-south-1"
    gd = aws.client("guardduty", region)
    detector = new_detector(aws, region)
    findings = guardduty_findings(60, seed=21, region=region, detector_id=detector,
                                  start=T0, end=T0 + HOUR)
    aws.apis.add_findings(detector, findings, region=region)

    def ids(criterion):
        return sorted(i for p in list_ids(gd, detector, FindingCriteria={
            "Criterion": criterion}) for i in p)

    def where(pred):
        return sorted(f["id"] for f in findings if pred(f))

    kind = "Recon:EC2/PortProbeUnprotectedPort"
    assert ids({"type": {"Eq": [kind]}}) == where(lambda f: f["type"] == kind) != []
    assert ids({"type": {"Neq": [kind]}}) == where(lambda f: f["type"] != kind) != []
    assert ids({"severity": {"Equals": ["8"]}}) == where(lambda f: f["severity"] == 8) != []
    assert ids({"severity": {"GreaterThanOrEqual": 5}}) == where(lambda f: f["severity"] >= 5)
    assert ids({"resource.resourceType": {"Eq": ["AccessKey"]},
                "service.archived": {"Eq": ["false"]}}) == where(
        lambda f: f["resource"]["resourceType"] == "AccessKey") != []
    with pytest.raises(gd.exceptions.BadRequestException):
        gd.list_findings(DetectorId=detector, FindingCriteria={"Criterion": {"type": {}}})


def test_an_updated_finding_moves_to_its_new_window(aws):
    region = "af-south-1"
    gd = aws.client("guardduty", region)
    detector = new_detector(aws, region)
    findings = guardduty_findings(10, seed=22, region=region, detector_id=detector,
                                  start=T0, end=T0 + HOUR)
    aws.apis.add_findings(detector, findings, region=region)

    def window(start, end):
        return [i for p in list_ids(gd, detector, FindingCriteria={"Criterion": {
            "updatedAt": {"Gte": int(start * 1000), "Lt": int(end * 1000)}}},
            SortCriteria={"AttributeName": "updatedAt", "OrderBy": "ASC"}) for i in p]

    first = window(T0, T0 + HOUR)
    assert first == [f["id"] for f in findings]  # oldest first, as seeded
    later = dt.datetime.fromtimestamp(T0 + HOUR + 120, dt.UTC)
    new = aws.apis.update_finding(detector, findings[3]["id"], region=region,
                                  updatedAt=f"{later:%Y-%m-%dT%H:%M:%S}.250Z",
                                  service=dict(findings[3]["service"], count=99))
    assert window(T0, T0 + HOUR) == first[:3] + first[4:]
    assert window(T0 + HOUR, T0 + 2 * HOUR) == [findings[3]["id"]]
    (got,) = gd.get_findings(DetectorId=detector, FindingIds=[new["id"]])["Findings"]
    assert (got["UpdatedAt"], got["Service"]["Count"]) == (new["updatedAt"], 99)
    # Without a new updatedAt, an update stamps now.
    before = time.time() * 1000
    bumped = aws.apis.update_finding(detector, findings[0]["id"], region=region,
                                     severity=5)
    assert before - 1 <= ms(bumped["updatedAt"]) <= time.time() * 1000 + 1
    assert window(time.time() - 60, time.time() + 60) == [findings[0]["id"]]
    with pytest.raises(KeyError):
        aws.apis.update_finding(detector, "no-such-finding", region=region)


def test_guardduty_throttling_when_asked_for(limited):
    limited.add_detector("d" * 32)
    gd = client(limited.endpoint_url, "guardduty", "us-east-1", config=NO_RETRY)
    assert gd.list_findings(DetectorId="d" * 32)["FindingIds"] == []  # no limit by default
    assert gd.list_findings(DetectorId="d" * 32)["FindingIds"] == []
    limited.set_rate_limit("ListFindings", rate=1.0, burst=1)
    time.sleep(0.01)
    gd.list_findings(DetectorId="d" * 32)
    with pytest.raises(gd.exceptions.ClientError) as throttled:
        gd.list_findings(DetectorId="d" * 32)
    assert code_of(throttled) == "ThrottlingException"
    assert [r.throttled for r in limited.requests("ListFindings")] == [False] * 3 + [True]


# -- everything else reaches moto through the emulator


def test_other_services_pass_through_to_moto(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="through-the-front")
    body = bytes(range(256)) * 8192  # 2 MiB, streamed both ways
    s3.put_object(Bucket="through-the-front", Key="a/b.bin", Body=body)
    assert s3.get_object(Bucket="through-the-front", Key="a/b.bin")["Body"].read() == body
    direct = client(aws.moto_endpoint_url, "s3", "us-east-1")
    assert direct.head_object(Bucket="through-the-front", Key="a/b.bin")["ContentLength"] \
        == len(body)
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="through-the-front")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    (message,) = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    assert message["Body"] == "hello"
    with pytest.raises(s3.exceptions.NoSuchKey):  # moto's errors come back as they are
        s3.get_object(Bucket="through-the-front", Key="missing")


def test_emulator_in_front_of_moto_in_a_child_process():
    with EmbeddedAws(in_process=False, apis=True) as aws:
        assert aws.endpoint_url != aws.moto_endpoint_url
        aws.apis.add_trail_events(lookup_events_records(3, seed=30, start=T0, end=T0 + 60))
        assert len(aws.client("cloudtrail").lookup_events()["Events"]) == 3
        s3 = aws.client("s3")
        s3.create_bucket(Bucket="child-process")
        assert s3.list_buckets()["Buckets"][0]["Name"] == "child-process"


def test_without_apis_the_endpoint_is_moto_s(embedded_aws):
    assert embedded_aws.apis is None
    assert embedded_aws.endpoint_url == embedded_aws.moto_endpoint_url
