"""The statistics of an API service: pages, records, events and each stream's lag,
counted by the steps a run uses (ReadFromApi, ParseApiRecords, WriteToDevo) over
CloudWatch Logs in the embedded AWS and the embedded TLS relay."""

from __future__ import annotations

import time

import apache_beam as beam

from awscollector.config import parse_config
from awscollector.io.access import AwsAccess
from awscollector.io.api import ParseApiRecords, ReadFromApi
from awscollector.io.checkpoints import CheckpointKey, FileCheckpoints
from awscollector.io.deadletter import DEAD_LETTER
from awscollector.io.devo import DevoTarget, WriteToDevo
from awscollector.io.stats import StatsHandle, report_lines
from awscollector.pipelines.api_services import API_SERVICES
from awscollector.pipelines.collector import plan_services, stats_rows
from tests.test_logs_pipeline import ACCOUNT, TABLE, fill_group, iso, logs_config
from tests.vpc_helpers import ENV, unique


def test_an_api_service_counts_pages_records_events_and_its_lag(embedded_aws, relay, pki,
                                                                tmp_path):
    logs = embedded_aws.client("logs")
    prefix = f"/{unique('app')}/"
    now = int(time.time() * 1000)
    start = now - 2 * 3_600_000
    expected = fill_group(logs, prefix + "api", 300, start + 1000, 10_000)
    expected += fill_group(logs, prefix + "cron", 200, start + 1000, 10_000)
    raw = logs_config(embedded_aws, relay, pki, tmp_path, {
        "log_group_prefixes": [prefix], "start_time": iso(start), "lag_seconds": 0})
    config = parse_config(raw, tmp_path, environ=ENV)
    plans = plan_services(config)
    access = AwsAccess(config.inputs.aws)
    (plan,) = plans
    streams = API_SERVICES[plan.name].streams(plan, access)
    checkpoints = FileCheckpoints(tmp_path / "state")
    handle = StatsHandle(stats_rows(plans), 0, "devo_1")

    with beam.Pipeline() as pipeline:
        read = ReadFromApi(streams, access, checkpoints, follow=False, stats=handle)
        parsed = (pipeline | read | beam.ParDo(ParseApiRecords(read.streams))
                  .with_outputs(DEAD_LETTER, main="events"))
        parsed.events | WriteToDevo(DevoTarget.from_config(config.outputs["devo_1"]),
                                    name="devo_1", stats=handle)
    ended = int(time.time() * 1000)

    assert len(relay.events(TABLE)) == len(expected)
    counts = handle.get().snapshot()[("cloudwatch-logs", "us-east-1")]
    assert counts.records == len(expected)
    assert counts.delivered("devo_1") == {TABLE: len(expected)}
    assert counts.pages >= 2  # at least a page per group
    # The lag of each group: now less the end of its saved checkpoint.
    assert set(counts.lags) == {prefix + "api", prefix + "cron"}
    for group, lag in counts.lags.items():
        saved = FileCheckpoints(tmp_path / "state").load(
            CheckpointKey("cloudwatch-logs", ACCOUNT, "us-east-1", group))
        end = saved["done"][-1][1]
        assert start < end <= ended
        assert abs(lag - (time.time() * 1000 - end) / 1000) < 5
    (line,) = report_lines(handle.get(), handle.rows, "devo_1")
    assert line.startswith(f"stats cloudwatch-logs us-east-1: pages={counts.pages} "
                           f"records={len(expected)} events={len(expected)} "
                           f"({TABLE}={len(expected)}) dead_lettered=0 skipped=0 lag=")
