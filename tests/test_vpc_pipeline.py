"""VPC Flow Logs from S3+SQS to Devo, end to end over real sockets.

The embedded AWS (moto's server) and the embedded relay (TLS, client
certificates) run in this process; the collector runs either in-process
(run_collector, the same code `aws-collector run` calls) or as the command.
"""

from __future__ import annotations

import gzip
import json
import os

import pytest

from awscollector.embedded.seed import (
    CUSTOM_FIELDS,
    TGW_FIELDS,
    put_tgw_object,
    put_vpc_parquet_object,
    tgw_flow_lines,
    vpc_key,
    vpc_object,
)
from awscollector.pipelines.collector import run_collector
from awscollector.transforms.vpcflow import parse_header, to_messages
from tests.vpc_helpers import (
    config,
    dead_letters,
    object_of,
    put_object,
    queue_depth,
    queue_keys,
    run_cli,
    seed_objects,
    setup_queue,
    tagged_lines,
    write_config,
)

TABLE = "cloud.aws.vpc.flow"


def collect(aws, relay, pki, queue, tmp_path, **kwargs):
    return run_collector(config(aws, relay, pki, queue, tmp_path, **kwargs), [], idle_seconds=2)


def test_n_objects_of_m_lines_arrive_exactly_once_and_the_queue_is_emptied(
        embedded_aws, relay, pki, tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    objects = seed_objects(embedded_aws, bucket, n=7, m=300)
    result = collect(embedded_aws, relay, pki, queue, tmp_path)
    expected = [line for lines in objects.values() for line in lines]
    assert sorted(relay.events(TABLE)) == sorted(expected)
    assert relay.counts() == {TABLE: 7 * 300}
    assert queue_depth(embedded_aws, url) == 0
    assert result.rows == [("non-cloudwatch-logs", "us-east-1", TABLE, 2100, 0)]
    assert dead_letters(tmp_path) == []


def test_custom_format_becomes_json_with_aws_field_names(embedded_aws, relay, pki, tmp_path):
    bucket, queue, _ = setup_queue(embedded_aws)
    lines = tagged_lines(1, 120, CUSTOM_FIELDS)
    put_object(embedded_aws, bucket, vpc_key("us-east-1", 1), lines, CUSTOM_FIELDS)
    collect(embedded_aws, relay, pki, queue, tmp_path)
    events = [json.loads(e) for e in relay.events(TABLE)]
    assert len(events) == 120
    assert list(events[0]) == list(CUSTOM_FIELDS)
    assert events[0]["interface-id"] == "eni-000001000000000"
    assert isinstance(events[0]["srcport"], int)
    nodata = [e for e in events if e["log-status"] == "NODATA"]
    assert nodata and nodata[0]["srcaddr"] is None  # NODATA records are kept, '-' is null


def test_parquet_and_transit_gateway_objects_arrive_once_each(embedded_aws, relay, pki,
                                                              tmp_path):
    """Parquet (AWS's keys, with and without Hive-compatible prefixes) and Transit
    Gateway flow logs (default and custom formats) beside a default-format object, all
    announced on one queue: each record arrives once, as the text format makes it."""
    s3 = embedded_aws.client("s3")
    bucket, queue, url = setup_queue(embedded_aws)
    default = tagged_lines(1, 300)
    put_object(embedded_aws, bucket, vpc_key("us-east-1", 1), default)
    parquet = tagged_lines(2, 2500, CUSTOM_FIELDS)
    put_vpc_parquet_object(s3, bucket, "us-east-1", 2, parquet[:1500])
    put_vpc_parquet_object(s3, bucket, "us-east-1", 3, parquet[1500:], hive=True)
    tgw = tgw_flow_lines(400, seed=4)
    put_tgw_object(s3, bucket, "us-east-1", 4, tgw)
    tgw_custom_fields = TGW_FIELDS[:5] + TGW_FIELDS[16:31]
    tgw_custom = [" ".join(line.split(" ")[:5] + line.split(" ")[16:31])
                  for line in tgw_flow_lines(100, seed=5)]
    put_tgw_object(s3, bucket, "us-east-1", 5, tgw_custom, tgw_custom_fields)

    result = collect(embedded_aws, relay, pki, queue, tmp_path)

    expected = ([line.encode() for line in default] + as_text_messages(CUSTOM_FIELDS, parquet)
                + as_text_messages(TGW_FIELDS, tgw)
                + as_text_messages(tgw_custom_fields, tgw_custom))
    assert sorted(e.encode() for e in relay.events(TABLE)) == sorted(expected)
    assert queue_depth(embedded_aws, url) == 0
    assert dead_letters(tmp_path) == []
    assert result.rows == [("non-cloudwatch-logs", "us-east-1", TABLE, len(expected), 0)]
    blackholed = [json.loads(e) for e in relay.events(TABLE) if '"packets-lost-blackhole":' in e]
    assert any(e["packets-lost-blackhole"] > 0 for e in blackholed)


def as_text_messages(fields, lines) -> list[bytes]:
    fmt = parse_header(" ".join(fields).encode())
    messages, bad = to_messages(fmt, [line.encode() for line in lines])
    assert bad == []
    return messages


def test_default_lines_with_non_integers_are_dead_lettered(embedded_aws, relay, pki,
                                                           tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    lines = tagged_lines(7, 50)
    fields = lines[10].split(" ")
    fields[6] = "https"  # dstport
    broken = " ".join(fields)
    put_object(embedded_aws, bucket, vpc_key("us-east-1", 7), lines[:10] + [broken] + lines[11:])
    collect(embedded_aws, relay, pki, queue, tmp_path)
    assert sorted(relay.events(TABLE)) == sorted(lines[:10] + lines[11:])
    [entry] = dead_letters(tmp_path)
    assert entry["code"] == "SRC-004" and entry["source"]["records"] == [broken]
    assert "integers" in entry["error"] and vpc_key("us-east-1", 7) in entry["error"]
    assert queue_depth(embedded_aws, url) == 0


def _s3_event(bucket: str, key: str, quoted_key: str) -> dict:
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-27T12:00:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": quoted_key, "size": 1}}}]}


def test_sns_wrapped_and_eventbridge_notifications(embedded_aws, relay, pki, tmp_path):
    sqs, s3 = embedded_aws.client("sqs"), embedded_aws.client("s3")
    bucket, queue, url = setup_queue(embedded_aws)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    key_sns, key_eb = vpc_key("us-east-1", 11), vpc_key("us-east-1", 12)
    put_object(embedded_aws, bucket, key_sns, tagged_lines(11, 40))
    put_object(embedded_aws, bucket, key_eb, tagged_lines(12, 60))
    sqs.purge_queue(QueueUrl=url)
    sns = {"Type": "Notification", "MessageId": "1", "TopicArn": "arn:aws:sns:us-east-1:1:t",
           "Message": json.dumps(_s3_event(bucket, key_sns, key_sns.replace("/", "%2F")))}
    eventbridge = {"version": "0", "id": "2", "detail-type": "Object Created",
                   "source": "aws.s3", "region": "us-east-1",
                   "detail": {"bucket": {"name": bucket},
                              "object": {"key": key_eb, "size": 1, "etag": "x"}}}
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(sns))
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(eventbridge))
    collect(embedded_aws, relay, pki, queue, tmp_path)
    assert sorted(relay.events(TABLE)) == sorted(tagged_lines(11, 40) + tagged_lines(12, 60))
    assert queue_depth(embedded_aws, url) == 0


def test_key_with_spaces_and_unicode(embedded_aws, relay, pki, tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    key = "custom prefix/AWSLogs/123456789012/vpcflowlogs/us-east-1/flujo día+1 ñ.log.gz"
    put_object(embedded_aws, bucket, key, tagged_lines(5, 25))
    collect(embedded_aws, relay, pki, queue, tmp_path)
    assert sorted(relay.events(TABLE)) == sorted(tagged_lines(5, 25))
    assert queue_depth(embedded_aws, url) == 0


def test_readers_3_deliver_each_event_once(embedded_aws, relay, pki, tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    objects = seed_objects(embedded_aws, bucket, n=25, m=100)
    collect(embedded_aws, relay, pki, queue, tmp_path, readers=3)
    expected = [line for lines in objects.values() for line in lines]
    assert sorted(relay.events(TABLE)) == sorted(expected)
    assert queue_depth(embedded_aws, url) == 0


def test_many_regions_at_once(embedded_aws, relay, pki, tmp_path):
    queue = "regional-logs"
    expected = []
    for r, region in enumerate(("eu-west-1", "ap-northeast-1")):
        from awscollector.embedded.seed import create_s3_sqs

        bucket = f"flow-logs-regional-{region}"
        create_s3_sqs(embedded_aws.client("s3", region), embedded_aws.client("sqs", region),
                      bucket, queue, region)
        lines = tagged_lines(100 + r, 80)
        put_object(embedded_aws, bucket, vpc_key(region, r), lines, region=region)
        expected += lines
    result = collect(embedded_aws, relay, pki, queue, tmp_path,
                     regions=("eu-west-1", "ap-northeast-1"))
    assert sorted(relay.events(TABLE)) == sorted(expected)
    assert {(row[1], row[3]) for row in result.rows} == {("eu-west-1", 80),
                                                          ("ap-northeast-1", 80)}


def test_bad_objects_are_dead_lettered_and_good_ones_delivered(embedded_aws, relay, pki,
                                                               tmp_path):
    s3 = embedded_aws.client("s3")
    bucket, queue, url = setup_queue(embedded_aws)
    good = tagged_lines(1, 200)
    put_object(embedded_aws, bucket, vpc_key("us-east-1", 1), good)
    # Truncated gzip: a big object cut in half; its first lines are delivered.
    truncated_lines = tagged_lines(2, 20000)
    body = vpc_object(truncated_lines)
    s3.put_object(Bucket=bucket, Key=vpc_key("us-east-1", 2), Body=body[: len(body) // 2])
    # Binary junk, gzip'd.
    s3.put_object(Bucket=bucket, Key=vpc_key("us-east-1", 3),
                  Body=gzip.compress(os.urandom(50_000)))
    # An unknown header.
    s3.put_object(Bucket=bucket, Key=vpc_key("us-east-1", 4),
                  Body=gzip.compress(b"hello world\n1 2\n"))
    # A stale notification: the object is gone before we read it.
    put_object(embedded_aws, bucket, vpc_key("us-east-1", 5), tagged_lines(5, 10))
    s3.delete_object(Bucket=bucket, Key=vpc_key("us-east-1", 5))
    # A line that does not match its header, among good ones.
    mixed = tagged_lines(6, 30)
    put_object(embedded_aws, bucket, vpc_key("us-east-1", 6), mixed[:15] + ["2 too short"]
               + mixed[15:])
    # A message that is not a notification at all.
    embedded_aws.client("sqs").send_message(QueueUrl=url, MessageBody="not json")

    result = collect(embedded_aws, relay, pki, queue, tmp_path)

    events = relay.events(TABLE)
    by_object: dict[int, int] = {}
    for e in events:
        by_object[object_of(e)] = by_object.get(object_of(e), 0) + 1
    assert by_object[1] == 200
    assert by_object[6] == 30
    assert 0 < by_object[2] < 20000
    assert set(by_object) == {1, 2, 6}
    assert len(events) == len(set(events))

    entries = dead_letters(tmp_path)
    codes = {(e["source"].get("key"), e["code"]) for e in entries}
    assert (vpc_key("us-east-1", 2), "SRC-001") in codes
    assert (vpc_key("us-east-1", 3), "SRC-002") in codes
    assert (vpc_key("us-east-1", 4), "SRC-003") in codes
    assert (vpc_key("us-east-1", 5), "AWS-007") in codes
    assert (vpc_key("us-east-1", 6), "SRC-004") in codes
    assert (None, "SRC-005") in codes
    assert len(entries) == 6
    for e in entries:
        assert set(e) == {"time", "service", "region", "source", "code", "error",
                          "notification"}
        assert e["service"] == "non-cloudwatch-logs" and e["region"] == "us-east-1"
    truncated = next(e for e in entries if e["code"] == "SRC-001")
    assert truncated["source"]["records_read"] == by_object[2]  # the header is no record
    assert truncated["notification"]["Records"][0]["s3"]["bucket"]["name"] == bucket
    assert next(e for e in entries if e["code"] == "SRC-004")["source"]["records"] == [
        "2 too short"]
    assert next(e for e in entries if e["code"] == "SRC-005")["notification"] == "not json"
    # Every message ends as events or dead letters: none is left behind.
    assert queue_depth(embedded_aws, url) == 0
    assert result.rows[0][3:] == (len(events), 6)


def test_relay_down_at_start_exits_non_zero_and_deletes_nothing(embedded_aws, relay, pki,
                                                                tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    objects = seed_objects(embedded_aws, bucket, n=4, m=50)
    path = write_config(embedded_aws, relay, pki, queue, tmp_path)
    relay.stop()
    done = run_cli(path)
    assert done.returncode == 1, done.stderr
    assert "OUT-001" in done.stderr
    assert queue_depth(embedded_aws, url) == 5  # 4 notifications + the s3:TestEvent
    # The relay is back: a second run delivers everything.
    relay.start()
    done = run_cli(path)
    assert done.returncode == 0, done.stderr
    expected = [line for lines in objects.values() for line in lines]
    assert sorted(relay.events(TABLE)) == sorted(expected)
    assert queue_depth(embedded_aws, url) == 0


@pytest.mark.slow
def test_relay_killed_mid_run_keeps_undelivered_messages(embedded_aws, relay, pki, tmp_path):
    import subprocess
    import sys
    import threading

    bucket, queue, url = setup_queue(embedded_aws)
    objects = seed_objects(embedded_aws, bucket, n=60, m=4000)
    path = write_config(embedded_aws, relay, pki, queue, tmp_path)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "awscollector", "run", "--config", str(path), "--until-idle",
         "--idle-seconds", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env)
    # Kill the relay once part of the data has arrived.
    killed = threading.Event()

    def killer():
        if relay.wait_for_total(30_000, timeout=120):
            relay.kill()
            killed.set()

    t = threading.Thread(target=killer)
    t.start()
    out, err = proc.communicate(timeout=300)
    t.join()
    assert killed.is_set(), "the run ended before the relay could be killed"
    assert proc.returncode == 1, err
    assert "OUT-00" in err

    received = relay.events(TABLE)
    complete = {obj for obj, lines in objects.items()
                if set(lines) <= set(received)}
    remaining = queue_keys(embedded_aws, url)
    incomplete_keys = {vpc_key("us-east-1", obj) for obj in objects if obj not in complete}
    # Every object not fully delivered still has its message in the queue.
    assert incomplete_keys <= remaining
    assert len(complete) < len(objects)

    # The relay is back: a second run delivers everything (at least once).
    relay.start()
    done = run_cli(path)
    assert done.returncode == 0, done.stderr
    received = set(relay.events(TABLE))
    assert all(set(lines) <= received for lines in objects.values())
    assert queue_depth(embedded_aws, url) == 0
