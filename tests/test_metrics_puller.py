"""metrics-all: CloudWatch metrics over HTTP (moto's server) -> datapoints -> the relay.

Metrics are put with PutMetricData in namespaces and dimensions of each test's
own (the embedded AWS lives for the whole session); the puller's streams and
fetch are called as ReadFromApi calls them, then the whole collector runs.

moto's quirks met here: it answers GetMetricData in one page (no NextToken,
MaxDatapoints ignored); a query with dimensions matches the metric's name and
dimensions in any namespace; ListMetrics lists a metric without dimensions once
per datapoint put; a percentile statistic is an HTTP 500. So the tests use
names and dimensions of their own per namespace and no percentiles over HTTP.
"""

from __future__ import annotations

import datetime as dt
import doctest
import json
import math
import time
from collections import Counter

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from awscollector.config import parse_config
from awscollector.config.problems import ConfigError
from awscollector.config.services import MetricsAll
from awscollector.embedded.config import embedded_config
from awscollector.io.api import ApiRecords, ParseApiRecords
from awscollector.io.deadletter import DEAD_LETTER
from awscollector.io.pullers import PULLERS, ApiStream
from awscollector.io.pullers.metrics import PULLER, GetMetricData
from awscollector.pipelines.api_services import API_SERVICES
from awscollector.transforms import cloudwatch_metrics
from awscollector.transforms.cloudwatch_metrics import TABLE
from tests.vpc_helpers import ENV, unique

ACCOUNT = "123456789012"
REGION = "us-east-1"
HOUR = 3_600_000
ALL = ["Average", "Sum", "Minimum", "Maximum", "SampleCount"]


def base_hour(hours_back: int = 4) -> int:
    """An hour (epoch ms, on the hour) a few hours back: its data is complete."""
    now = int(time.time() * 1000)
    return (now - hours_back * HOUR) // HOUR * HOUR


def put(cw, namespace: str, name: str, dims: dict[str, str], points: list[tuple[int, float]]
        ) -> None:
    data = [{"MetricName": name, "Value": value,
             "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
             "Timestamp": dt.datetime.fromtimestamp(ms / 1000, dt.UTC)}
            for ms, value in points]
    for i in range(0, len(data), 500):
        cw.put_metric_data(Namespace=namespace, MetricData=data[i:i + 500])


def stream_of(namespace: str, period: int = 300, statistics=ALL, dimensions=(),
              start: int = 0) -> ApiStream:
    options = {"period_seconds": period, "statistics": list(statistics),
               "dimensions": list(dimensions)}
    return ApiStream("metrics-all", "cloudwatch_metrics", ACCOUNT, REGION, namespace,
                     start, 0, 60.0, options)


def read_window(puller, client, stream, start: int, end: int) -> tuple[list[dict], int]:
    """Every page of a window, as ReadFromApi reads them; and the number of pages."""
    records, token, pages = [], None, 0
    while True:
        page = puller.fetch(client, stream, start, end, token)
        pages += 1
        records += page.records
        token = page.token
        if token is None:
            return records, pages


def stats_of(values: list[float]) -> dict[str, float]:
    return {"Average": sum(values) / len(values), "Sum": sum(values),
            "Minimum": min(values), "Maximum": max(values), "SampleCount": len(values)}


def as_set(records: list[dict]) -> set[tuple]:
    return {(r["namespace"], r["metricName"], tuple(sorted(r["dimensions"].items())),
             r["statistic"], r["timestamp"], r["value"]) for r in records}


# -- pure


def test_doctest():
    assert doctest.testmod(cloudwatch_metrics).failed == 0


def test_parse_makes_one_compact_json_event_per_datapoint_and_rejects_the_bad():
    good = {"namespace": "App", "metricName": "Latency", "dimensions": {"Host": "a", "Az": "b"},
            "statistic": "p99.9", "unit": "Milliseconds", "value": 3,
            "timestamp": 1_700_000_000_500, "period": 60}
    no_value = dict(good, value=None)
    nan = dict(good, value=math.nan)
    failed = dict(good, error="InternalError", messages=[{"Code": "x", "Value": "y"}])
    parsed = cloudwatch_metrics.parse([good, no_value, nan, failed, "junk"],
                                      region="eu-west-1", account=ACCOUNT)
    (message,) = parsed.events[TABLE]
    assert message.decode() == (
        '{"namespace":"App","metricName":"Latency","dimensions":{"Host":"a","Az":"b"},'
        '"statistic":"p99.9","unit":"Milliseconds","value":3,'
        '"timestamp":"2023-11-14T22:13:20.500Z","period":60,"region":"eu-west-1",'
        '"account":"123456789012"}')
    assert [(r.code, r.reason, r.record) for r in parsed.rejected] == [
        ("SRC-017", "a datapoint without a value", no_value),
        ("SRC-017", "a datapoint without a value", nan),
        ("SRC-017", "GetMetricData answered InternalError for the query", failed),
        ("SRC-017", "a datapoint that is not an object", "junk"),
    ]


def test_parse_dofn_sends_datapoints_to_the_table_and_rejects_to_the_dead_letter():
    stream = stream_of("App")
    good = {"namespace": "App", "metricName": "Hits", "dimensions": {}, "statistic": "Sum",
            "unit": None, "value": 2.0, "timestamp": HOUR, "period": 300}
    bad = dict(good, value=None)
    items = [ApiRecords(stream.key, [good, bad], (HOUR, 2 * HOUR))]
    with BeamTestPipeline() as p:
        out = (p | beam.Create(items)
               | beam.ParDo(ParseApiRecords({stream.key: stream}))
               .with_outputs(DEAD_LETTER, main="events"))
        assert_that(out.events | beam.FlatMap(
            lambda b: [(b.table, b.service, json.loads(m)["value"]) for m in b.messages]),
            equal_to([(TABLE, "metrics-all", 2.0)]), label="events")
        assert_that(out[DEAD_LETTER] | beam.Map(lambda d: (
            d.code, d.source["api"], d.source["stream"], d.source["window"],
            d.source["records"])),
            equal_to([("SRC-017", "cloudwatch:GetMetricData", "App", [HOUR, 2 * HOUR],
                       [bad])]), label="dead letters")


def test_config_defaults_and_problems(tmp_path, pki):
    config = MetricsAll()
    assert (config.period_seconds, config.statistics, config.dimensions) == (300, ALL, [])
    assert MetricsAll(statistics=["p99", "Sum", "p99.99", "Sum"]).statistics == [
        "p99", "Sum", "p99.99"]

    raw = embedded_config("http://127.0.0.1:1", None, pki, tmp_path, "-", services={
        "metrics-all": {"period_seconds": 90, "statistics": ["Average", "p101", "Median"],
                        "dimensions": [{"name": "InstanceId"}, {"value": "x"}]}})
    with pytest.raises(ConfigError) as err:
        parse_config(raw, tmp_path, environ=ENV)
    found = {(p.code, p.path.removeprefix("inputs.aws.services.metrics-all."))
             for p in err.value.problems}
    assert {("CFG-004", "period_seconds"), ("CFG-004", "statistics.1"),
            ("CFG-004", "statistics.2")} <= found
    assert any(path == "dimensions.1.name" for _, path in found)
    assert all(path != "dimensions.0.name" for _, path in found)
    for period in (0, 30, 61, 330):
        with pytest.raises(ValueError, match="multiple of 60"):
            MetricsAll(period_seconds=period)
    assert MetricsAll(period_seconds=7200).period_seconds == 7200


def test_declared_and_registered():
    service = API_SERVICES["metrics-all"]
    assert (service.puller, service.table) == ("cloudwatch_metrics", TABLE)
    assert PULLERS["cloudwatch_metrics"] is PULLER
    config = MetricsAll(period_seconds=60, statistics=["Sum"],
                        dimensions=[{"name": "Host", "value": "a"}, {"name": "Az"}])
    assert service.options(config) == {
        "period_seconds": 60, "statistics": ["Sum"],
        "dimensions": [{"name": "Host", "value": "a"}, {"name": "Az", "value": None}]}
    assert PULLER.window_ms % PULLER.align_ms == 0 and PULLER.lag_s == 600


# -- over HTTP: the puller's streams and fetch


def test_streams_and_exact_statistics_per_period(embedded_aws):
    cw = embedded_aws.client("cloudwatch")
    app, svc = unique("App"), unique("Svc")
    dim = unique("Host")  # a dimension name only this test uses
    a, b = unique("a"), unique("b")
    h = base_hour()
    latency_a = [(h + 10_000, 1.0), (h + 70_000, 5.0), (h + 250_000, 3.0), (h + 300_000, 10.0)]
    latency_b = [(h + 1_800_000, 7.0), (h + 1_810_000, 8.0)]
    requests_a = [(h + 60_000 * i, float(i)) for i in range(60)]  # each minute of the hour
    put(cw, app, "Latency", {dim: a}, latency_a)
    put(cw, app, "Latency", {dim: b}, latency_b)
    put(cw, svc, "Requests", {dim: a, "Az": "z1"}, requests_a)

    assert PULLER.streams(cw, MetricsAll(namespaces=[svc, app])) == [svc, app]
    assert PULLER.streams(cw, MetricsAll(dimensions=[{"name": dim}])) == sorted([app, svc])
    assert PULLER.streams(cw, MetricsAll(dimensions=[{"name": dim, "value": b}])) == [app]
    every = PULLER.streams(cw, MetricsAll())
    assert {app, svc} <= set(every) and len(every) == len(set(every))

    def expected(ns, name, dims, points, stats):
        by_period: dict[int, list[float]] = {}
        for ms, value in points:
            by_period.setdefault(ms - ms % 300_000, []).append(value)
        key = tuple(sorted(dims.items()))
        return {(ns, name, key, stat, t, stats_of(values)[stat])
                for t, values in by_period.items() for stat in stats}

    records, pages = read_window(GetMetricData(), cw, stream_of(app), h, h + HOUR)
    assert pages == 1
    assert as_set(records) == (expected(app, "Latency", {dim: a}, latency_a, ALL)
                               | expected(app, "Latency", {dim: b}, latency_b, ALL))
    assert len(records) == len(as_set(records)) == 5 * 3
    first = next(r for r in records if r["timestamp"] == h and r["statistic"] == "Average")
    assert first == {"namespace": app, "metricName": "Latency", "dimensions": {dim: a},
                     "statistic": "Average", "unit": None, "value": 3.0, "timestamp": h,
                     "period": 300}

    # Only the metrics of the dimension filter; another period and statistics.
    stream = stream_of(svc, period=600, statistics=["Sum", "SampleCount"],
                       dimensions=[{"name": dim, "value": a}])
    records, _ = read_window(GetMetricData(), cw, stream, h, h + HOUR)
    assert as_set(records) == {
        (svc, "Requests", (("Az", "z1"), (dim, a)), stat, h + 600_000 * k,
         stats_of([float(i) for i in range(10 * k, 10 * k + 10)])[stat])
        for k in range(6) for stat in ("Sum", "SampleCount")}
    other = stream_of(svc, dimensions=[{"name": dim, "value": b}])
    assert read_window(GetMetricData(), cw, other, h, h + HOUR)[0] == []


def test_more_than_500_queries_take_several_calls_each_datapoint_once(embedded_aws):
    cw = embedded_aws.client("cloudwatch")
    ns, host = unique("Many"), unique("h")
    h = base_hour()
    for i in range(130):
        put(cw, ns, f"M{i:03d}", {"Host": host}, [(h + 60_000, float(i)), (h + 400_000, i + 0.5)])
    stats = ["Sum", "Minimum", "Maximum", "SampleCount"]  # 130 x 4 = 520 queries
    stream = stream_of(ns, statistics=stats)
    puller = GetMetricData()

    page1 = puller.fetch(cw, stream, h, h + HOUR, None)
    assert json.loads(page1.token) == {"after": json.dumps(["M124", [["Host", host]]],
                                                           separators=(",", ":"))}
    # Resumed elsewhere (another process: no list cached), after a metric that sorts
    # into the first call's range appeared: the second call is still M125..M129.
    put(cw, ns, "M000a", {"Host": host}, [(h + 60_000, 1.0)])
    page2 = GetMetricData().fetch(cw, stream, h, h + HOUR, page1.token)
    assert page2.token is None
    assert {r["metricName"] for r in page1.records} == {f"M{i:03d}" for i in range(125)}
    assert {r["metricName"] for r in page2.records} == {f"M{i:03d}" for i in range(125, 130)}

    records = page1.records + page2.records
    keys = Counter((r["metricName"], r["statistic"], r["timestamp"]) for r in records)
    assert len(records) == 130 * 4 * 2 and set(keys.values()) == {1}
    for r in records:
        i = int(r["metricName"][1:])
        value = float(i) if r["timestamp"] == h else i + 0.5
        assert r["value"] == {"Sum": value, "Minimum": value, "Maximum": value,
                              "SampleCount": 1.0}[r["statistic"]]

    # From the first page on, the new metric is read too: 131 metrics, 2 calls.
    records, pages = read_window(GetMetricData(), cw, stream, h, h + HOUR)
    assert pages == 2 and len(records) == 130 * 4 * 2 + 4


def test_a_period_belongs_to_the_window_it_ends_in(embedded_aws):
    cw = embedded_aws.client("cloudwatch")
    ns, host = unique("Edge"), unique("h")
    h = base_hour()
    # The period [h+55m, h+60m) ends at the window's end; a point at h+60m opens the next.
    put(cw, ns, "Edge", {"Host": host}, [(h, 1.0), (h + HOUR - 1000, 2.0), (h + HOUR, 4.0),
                                         (h + HOUR + 299_000, 8.0), (h + 2 * HOUR - 1, 16.0)])
    stream = stream_of(ns, statistics=["Sum"])

    def sums(start, end):
        return sorted((r["timestamp"] - h, r["value"])
                      for r in read_window(GetMetricData(), cw, stream, start, end)[0])

    assert sums(h, h + HOUR) == [(0, 1.0), (HOUR - 300_000, 2.0)]
    assert sums(h + HOUR, h + 2 * HOUR) == [(HOUR, 12.0), (2 * HOUR - 300_000, 16.0)]
    # Windows cut off the period's grid (as "now minus the lag" cuts them): each
    # period once, in the window where it is complete.
    cuts = [h, h + 7 * 60_000, h + 57 * 60_000, h + 62 * 60_000, h + 65 * 60_000, h + 2 * HOUR]
    got = [sums(s, e) for s, e in zip(cuts, cuts[1:], strict=False)]
    assert got == [[(0, 1.0)], [], [(HOUR - 300_000, 2.0)], [(HOUR, 12.0)],
                   [(2 * HOUR - 300_000, 16.0)]]
    # A window too short for any period to end in it asks nothing.
    assert sums(h + 60_000, h + 120_000) == []


# -- end to end: the collector, over HTTP and TLS


def test_collector_delivers_each_datapoint_once_and_resumes(embedded_aws, relay, pki, tmp_path):
    from awscollector.pipelines.collector import run_collector

    cw = embedded_aws.client("cloudwatch")
    app, svc, host = unique("E2eApp"), unique("E2eSvc"), unique("h")
    h = base_hour(3)
    put(cw, app, "Cpu", {"Host": host}, [(h + 60_000 * i, float(i % 7)) for i in range(150)])
    put(cw, svc, "Calls", {"Host": host, "Op": "get"}, [(h + 30_000, 2.0), (h + 90_000, 3.0)])
    put(cw, svc, "Calls", {"Host": host, "Op": "put"}, [(h + 2 * HOUR + 60_000, 5.0)])
    service = {"namespaces": [app, svc], "statistics": ["Sum", "Maximum"],
               "start_time": dt.datetime.fromtimestamp(h / 1000, dt.UTC).isoformat(),
               "lag_seconds": 0}
    raw = embedded_config(embedded_aws.endpoint_url, relay.port, pki, tmp_path, "-",
                          services={"metrics-all": service})

    def collect():
        return run_collector(parse_config(raw, tmp_path, environ=ENV), [], idle_seconds=1)

    result = collect()

    def iso(ms):
        return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    expected = []
    cpu: dict[int, list[float]] = {}
    for i in range(150):
        cpu.setdefault(60_000 * i // 300_000 * 300_000, []).append(float(i % 7))
    for t, values in cpu.items():
        expected += [(app, "Cpu", {"Host": host}, "Sum", sum(values), h + t),
                     (app, "Cpu", {"Host": host}, "Maximum", max(values), h + t)]
    expected += [(svc, "Calls", {"Host": host, "Op": "get"}, "Sum", 5.0, h),
                 (svc, "Calls", {"Host": host, "Op": "get"}, "Maximum", 3.0, h),
                 (svc, "Calls", {"Host": host, "Op": "put"}, "Sum", 5.0, h + 2 * HOUR),
                 (svc, "Calls", {"Host": host, "Op": "put"}, "Maximum", 5.0, h + 2 * HOUR)]
    events = [json.loads(line) for line in relay.events(TABLE)]
    assert sorted(json.dumps(e, sort_keys=True) for e in events) == sorted(
        json.dumps({"namespace": ns, "metricName": name, "dimensions": dims, "statistic": stat,
                    "unit": None, "value": value, "timestamp": iso(t), "period": 300,
                    "region": REGION, "account": ACCOUNT}, sort_keys=True)
        for ns, name, dims, stat, value, t in expected)
    assert len(events) == 2 * 30 + 4
    rows = {(r[0], r[2]): r[3] for r in result.rows}
    assert rows[("metrics-all", TABLE)] == len(events)

    # A second run starts at its checkpoints: nothing is sent again, not even a point
    # put late into a period already delivered (lag_seconds is there for that).
    relay.reset()
    put(cw, app, "Cpu", {"Host": host}, [(h + 2 * HOUR + 120_000, 100.0)])  # a done period
    collect()
    assert relay.events(TABLE) == []
