"""What the tests of the JSON-lines formats (WAF, Network Firewall, Route 53 Resolver)
share: objects put into the embedded S3 and read by the collector's own steps (the
notification's keys classified, the objects framed, the batches parsed), with what
comes out checked against what is expected."""

from __future__ import annotations

import gzip
import json

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from awscollector.io.deadletter import DEAD_LETTER
from awscollector.io.s3 import ReadS3Records
from awscollector.pipelines.s3_sqs import ExtractObjects, ParseBatches
from awscollector.transforms.flatten import flatten
from awscollector.transforms.formats import Registry
from tests.s3_steps import embedded_access, notification


def compact(record: dict) -> bytes:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()


def message(record: dict, flat: bool) -> bytes:
    """The message a record should give, with ``flatten`` or without."""
    return compact(flatten(record) if flat else record)


def lines_object(lines: list[bytes]) -> bytes:
    """An object of these very lines (some of them broken on purpose), gzip'd."""
    return gzip.compress(b"".join(line + b"\n" for line in lines))


def run_collection(embedded_aws, bucket: str, objects: dict[str, bytes], registry: Registry,
                   types: list[str], flatten_on: bool, events: list[tuple[str, bytes]],
                   dead: list[tuple[str, str, tuple]], skipped: int) -> None:
    """Puts ``objects`` (key -> body) in a new bucket, collects one notification of them
    through the S3 steps, and asserts the (table, message) events, the parse dead letters
    as (code, key, records) and the number of objects skipped on purpose."""
    access = embedded_access(embedded_aws)
    s3 = embedded_aws.client("s3")
    s3.create_bucket(Bucket=bucket)
    for key, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    p = TestPipeline()
    tasks = (p | beam.Create([notification(bucket, list(objects))])
             | beam.ParDo(ExtractObjects(registry, types)).with_outputs(DEAD_LETTER,
                                                                         main="tasks"))
    read = tasks.tasks | beam.ParDo(ReadS3Records(
        access, registry, types, batch_bytes=32 << 10)).with_outputs(DEAD_LETTER,
                                                                      main="batches")
    parsed = read.batches | beam.ParDo(ParseBatches(registry, {"flatten": flatten_on})
                                       ).with_outputs(DEAD_LETTER, main="events")
    assert_that(parsed.events | beam.FlatMap(lambda e: [(e.table, m) for m in e.messages]),
                equal_to(events))
    assert_that(tasks[DEAD_LETTER], equal_to([]), label="no notification dead letters")
    assert_that(read[DEAD_LETTER], equal_to([]), label="no read dead letters")
    # Each entry names the bucket and key, in its source and in its one-line error.
    assert_that(parsed[DEAD_LETTER] | beam.Map(
        lambda d: (d.code, d.source["key"], tuple(d.source["records"]),
                   f"s3://{d.source['bucket']}/{d.source['key']}: " in d.error)),
        equal_to([(code, key, records, True) for code, key, records in dead]),
        label="parse dead letters")
    result = p.run()
    result.wait_until_finish()
    counters = result.metrics().query(MetricsFilter().with_name("skipped"))["counters"]
    assert sum(c.committed for c in counters) == skipped
