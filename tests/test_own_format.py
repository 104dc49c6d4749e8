"""The README's "Writing your own format" example, run as a user would run it."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "docs" / "examples" / "my_app_format.py"


def test_the_readme_shows_the_example_as_it_is():
    assert EXAMPLE.read_text() in (REPO / "README.md").read_text()


def test_the_example_collects_its_objects_and_dead_letters_the_rest(
        embedded_aws, relay, pki, tmp_path):
    from awscollector.embedded.seed import create_s3_sqs
    from awscollector.io.access import AwsAccess
    from awscollector.io.deadletter import DeadLetterTarget
    from awscollector.io.devo import DevoTarget
    from awscollector.io.sqs import SqsQueue
    from tests.vpc_helpers import queue_depth, unique

    sys.path.insert(0, str(EXAMPLE.parent))
    try:
        import my_app_format
    finally:
        sys.path.remove(str(EXAMPLE.parent))

    s3, sqs = embedded_aws.client("s3"), embedded_aws.client("sqs")
    bucket, queue = unique("my-app"), unique("my-app-q")
    url = create_s3_sqs(s3, sqs, bucket, queue, "us-east-1")
    lines = [json.dumps({"level": level, "n": n}) for n in range(30)
             for level in ("info", "error")]
    s3.put_object(Bucket=bucket, Key="my-app/2026/11/28/a.jsonl.gz",
                  Body=gzip.compress("\n".join(lines + ["not json"]).encode()))
    s3.put_object(Bucket=bucket, Key="elsewhere/b.log", Body=b"no format knows me\n")

    access = AwsAccess(SimpleNamespace(endpoint_url=embedded_aws.endpoint_url,
                                       credentials=SimpleNamespace(access_key="testing",
                                                                   access_secret="testing")))
    devo = DevoTarget("127.0.0.1", relay.port, "SSL", str(pki.ca_cert), str(pki.client_cert),
                      str(pki.client_key))
    dead = DeadLetterTarget("filesystem", str(tmp_path / "dl"))
    my_app_format.collect([SqsQueue("my-app", "us-east-1", queue)], access, devo, dead,
                          idle_seconds=2)

    assert sorted(relay.events("my.app.info")) == sorted(x for x in lines if '"info"' in x)
    assert sorted(relay.events("my.app.error")) == sorted(x for x in lines if '"error"' in x)
    entries = [json.loads(line) for line in
               (tmp_path / "dl" / "my-app.jsonl").read_text().splitlines()]
    codes = sorted(e["code"] for e in entries)
    assert codes == ["SRC-004", "SRC-006"]  # the bad line; the object no format knows
    assert next(e for e in entries if e["code"] == "SRC-004")["source"]["records"] == [
        "not json"]
    assert queue_depth(embedded_aws, url) == 0
