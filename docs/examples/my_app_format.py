"""A format of your own: JSON lines of an application, one Devo table per level."""

import json

import apache_beam as beam

from awscollector.io.deadletter import DEAD_LETTER, DeadLetterTarget, WriteDeadLetters
from awscollector.io.devo import WriteToDevo
from awscollector.pipelines.s3_sqs import ReadFromS3Sqs
from awscollector.transforms.formats import JSON_LINES, Format, Parsed
from awscollector.transforms.registry import default_registry


def parse(batch, options):
    """One event per line, to my.app.<level>; a line that is not JSON is rejected."""
    parsed = Parsed()
    for line in batch.records:
        try:
            record = json.loads(line)
        except ValueError:
            parsed.reject("SRC-004", "not a JSON line", line)
            continue
        parsed.add(f"my.app.{record.get('level', 'info')}", line)
    return parsed


MY_APP = Format(name="my_app", type="my_app", table="my.app.info", parse=parse,
                framing=JSON_LINES, keys=(r"^my-app/",), json_messages=True)


def collect(queues, access, devo, dead_letters: DeadLetterTarget, idle_seconds=5):
    """Reads the queues' my-app/ objects until idle; events to Devo, the rest dead-lettered."""
    registry = default_registry()
    registry.register(MY_APP)
    with beam.Pipeline() as pipeline:
        out = pipeline | ReadFromS3Sqs(queues, access, registry, types=["my_app"],
                                       idle_seconds=idle_seconds)
        out["events"] | WriteToDevo(devo)
        for name, pcoll in out.items():
            if name.startswith(DEAD_LETTER):
                pcoll | f"write {name}" >> WriteDeadLetters(dead_letters)
