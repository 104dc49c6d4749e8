"""The counters the summary is made of (io/counters.py): a key in, the same key out,
through a real Beam pipeline's counters."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline

from awscollector.io.counters import DeadLetterKey, DeliveredKey, RunCounts
from awscollector.pipelines.collector import beam_counters

VPC = DeliveredKey("devo_1", "non-cloudwatch-logs", "us-east-1", "cloud.aws.vpc.flow")
CUSTOM = DeliveredKey("devo_1", "custom-s3.my app", "eu-west-1", "my.app.{record.kind}")
DEAD = DeadLetterKey("custom-s3.my app", "eu-west-1")


class _Count(beam.DoFn):
    """Counts each element under its key, as the outputs and the dead-letter writer do."""

    def process(self, element):
        key, n = element
        key.counter().inc(n)


def test_keys_counted_in_a_pipeline_come_back_as_the_same_keys():
    pipeline = TestPipeline()
    _ = (pipeline | beam.Create([(VPC, 120), (VPC, 30), (CUSTOM, 5), (DEAD, 2)])
         | beam.ParDo(_Count()))
    result = pipeline.run()
    result.wait_until_finish()

    counts = RunCounts.from_counters(beam_counters(result))
    assert counts.delivered == {VPC: 150, CUSTOM: 5}
    assert counts.dead_lettered == {DEAD: 2}


def test_other_counters_are_not_the_summarys():
    counts = RunCounts.from_counters({
        ("delivered", VPC.name()): 3,
        ("s3_sqs", "skipped"): 4, ("stats", "objects|non-cloudwatch-logs|us-east-1"): 9,
        ("deadletter", DEAD.name()): 1})
    assert counts == RunCounts({VPC: 3}, {DEAD: 1})
