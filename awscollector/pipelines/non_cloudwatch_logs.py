"""The ``non-cloudwatch-logs`` service: VPC Flow Logs (and later CloudFront) from S3+SQS.

Objects are classified by key: VPC Flow Logs live under
``.../AWSLogs/<account>/vpcflowlogs/<region>/...``. Lines are parsed with the
header line of their object and tagged ``cloud.aws.vpc.flow``.
"""

from __future__ import annotations

import re

import apache_beam as beam
from apache_beam.metrics import Metrics

from awscollector.errors import CollectorError
from awscollector.io.deadletter import DEAD_LETTER
from awscollector.io.devo import EventBatch
from awscollector.io.s3 import LineBatch
from awscollector.pipelines.context import RunContext, ServicePlan
from awscollector.pipelines.s3_sqs import SKIP, ReadLinesFromS3Sqs
from awscollector.transforms import vpcflow
from awscollector.transforms.notifications import ObjectRef

SERVICE = "non-cloudwatch-logs"
VPC_TABLE = "cloud.aws.vpc.flow"
IMPLEMENTED_TYPES = ("vpc_flow_logs",)

_CLOUDFRONT_KEY = re.compile(r"(^|/)[A-Z0-9]+\.\d{4}-\d{2}-\d{2}-\d{2}\.[0-9a-f]+(\.gz)?$")


def classify_key(key: str, types: tuple[str, ...]) -> str:
    """The source type of an object of this service, from its key."""
    if "/vpcflowlogs/" in key or key.startswith("vpcflowlogs/"):
        kind = "vpc_flow_logs"
    elif _CLOUDFRONT_KEY.search(key):
        kind = "cloudfront_logs"
    elif len(types) == 1:
        kind = types[0]  # one type configured: a custom layout of that type
    else:
        raise CollectorError("SRC-006", f"cannot tell the log type of key {key!r}"
                                        f" (expected one of {', '.join(types)})")
    if kind not in types:
        return SKIP
    if kind not in IMPLEMENTED_TYPES:
        raise CollectorError("SRC-006", f"{kind} objects are not supported yet: {key!r}")
    return kind


class _Classifier:
    """Picklable classify(ref) for the configured types."""

    def __init__(self, types: tuple[str, ...]) -> None:
        self.types = types

    def __call__(self, ref: ObjectRef) -> str:
        return classify_key(ref.key, self.types)


class ParseVpcFlowLogs(beam.DoFn):
    """LineBatch -> EventBatch of ``cloud.aws.vpc.flow``; bad lines and headers dead-lettered."""

    def setup(self) -> None:
        self._formats: dict[bytes, vpcflow.VpcFlowFormat] = {}
        self._bad = Metrics.counter(SERVICE, "bad_lines")

    def _format(self, header: bytes, name: str) -> vpcflow.VpcFlowFormat:
        fmt = self._formats.get(header)
        if fmt is None:
            fmt = vpcflow.parse_header(header, name)
            if len(self._formats) > 256:
                self._formats.clear()
            self._formats[header] = fmt
        return fmt

    def process(self, batch: LineBatch):
        task = batch.task
        try:
            fmt = self._format(batch.first_line, task.name)
        except CollectorError as e:
            if batch.index == 0:  # one entry per object, for its first batch
                yield beam.pvalue.TaggedOutput(DEAD_LETTER, task.dead_letter(
                    e.code, e.message + " (no line of this object was delivered)",
                    header=batch.first_line[:500].decode("utf-8", "replace")))
            return
        lines = batch.lines[1:] if batch.index == 0 else batch.lines
        messages, bad = vpcflow.to_messages(fmt, lines)
        if messages:
            yield EventBatch(VPC_TABLE, messages, task.message.service, task.message.region)
        if bad:
            self._bad.inc(len(bad))
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, task.dead_letter(
                "SRC-004", f"{task.name}: {len(bad)} lines do not match the header"
                           f" ({len(fmt.fields)} fields)",
                batch=batch.index, bad_lines=len(bad),
                lines=[b[:1000].decode("utf-8", "replace") for b in bad[:100]]))


def expand(pbegin, plan: ServicePlan, ctx: RunContext) -> dict[str, beam.PCollection]:
    """The service's events and dead letters, as named PCollections."""
    types = tuple(plan.config.types or IMPLEMENTED_TYPES)
    read = pbegin | f"{plan.label} S3+SQS" >> ReadLinesFromS3Sqs(
        plan.queues, ctx.access, _Classifier(types), **ctx.sqs_options)
    parsed = read["lines"] | f"{plan.label} ParseVpcFlow" >> beam.ParDo(
        ParseVpcFlowLogs()).with_outputs(DEAD_LETTER, main="events")
    out = {k: v for k, v in read.items() if k.startswith(DEAD_LETTER)}
    out[f"{DEAD_LETTER}/parse"] = parsed[DEAD_LETTER]
    out["events"] = parsed.events
    return out
