"""Custom S3 sources end to end: three sources of service custom-s3 (JSON lines, CSV,
Parquet), each with its own bucket and queue, through one run, over the embedded AWS
(moto's server) and the embedded TLS Devo relay."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from awscollector.config import parse_config
from awscollector.embedded.seed_jsonlogs import waf_object, waf_records
from awscollector.embedded.seed_lb import alb_lines, alb_object
from awscollector.pipelines.collector import run_collector
from awscollector.transforms.flatten import flatten
from tests.vpc_helpers import ENV, queue_depth, raw_config, setup_queue

SAMPLES = Path(__file__).parent / "samples" / "custom"
KINDS = ("login", "request", "payment", "logout", "cache")


def app_events(n: int, seed: int) -> list[dict]:
    """n events like the sample's, kinds in turn, each one traceable by its id."""
    return [{"ts": f"2026-11-27T12:{i // 60 % 60:02d}:{i % 60:02d}.000Z", "level": "INFO",
             "kind": KINDS[i % len(KINDS)], "id": f"{seed}-{i}",
             "user": {"id": 1000 + i % 7, "name": f"user {i % 7}"},
             "message": f"event {i} of batch {seed}"} for i in range(n)]


def jsonl(records: list[dict], spaced: bool = False) -> bytes:
    sep = (", ", ": ") if spaced else (",", ":")
    return b"".join(json.dumps(r, separators=sep, ensure_ascii=False).encode() + b"\n"
                    for r in records)


def compact(record) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def parquet(rows: list[dict]) -> bytes:
    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), out, row_group_size=50)
    return out.getvalue()


def dead_letters(workdir: Path, label: str) -> list[dict]:
    path = workdir / "deadletter" / f"{label}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_three_custom_sources_in_one_run(embedded_aws, relay, pki, tmp_path):
    s3 = embedded_aws.client("s3")
    app_bucket, app_queue, app_url = setup_queue(embedded_aws)
    inv_bucket, inv_queue, inv_url = setup_queue(embedded_aws)
    met_bucket, met_queue, met_url = setup_queue(embedded_aws)

    # app: JSON lines, gzip; the table from each record's kind.
    sample = SAMPLES.joinpath("app_events.jsonl").read_bytes()
    many = app_events(600, seed=2)
    s3.put_object(Bucket=app_bucket, Key="app/2026/11/27/events-1.jsonl.gz",
                  Body=gzip.compress(sample))
    s3.put_object(Bucket=app_bucket, Key="app/2026/11/27/events-2.jsonl.gz",
                  Body=gzip.compress(jsonl(many, spaced=True)))
    s3.put_object(Bucket=app_bucket, Key="app/tmp/scratch.jsonl.gz",  # excluded
                  Body=gzip.compress(jsonl(app_events(5, seed=3))))
    s3.put_object(Bucket=app_bucket, Key="app/README.txt", Body=b"not a log\n")  # not included
    mixed = app_events(3, seed=4)
    s3.put_object(Bucket=app_bucket, Key="app/2026/11/27/events-3.jsonl.gz", Body=gzip.compress(
        jsonl(mixed[:2]) + b'{"level":"INFO","message":"no kind"}\n{"kind": oops}\n'
        + jsonl(mixed[2:])))

    # inventory: CSV with a header, zstd; the table from a part of the key.
    inventory = SAMPLES.joinpath("inventory.csv").read_bytes()
    zstd = zstandard.ZstdCompressor()
    for site in ("madrid", "barcelona"):
        s3.put_object(Bucket=inv_bucket, Key=f"inventory/{site}/2026-11-27.csv.zst",
                      Body=zstd.compress(inventory))
    s3.put_object(Bucket=inv_bucket, Key="inventory/all.csv.zst",  # no usable key part 1
                  Body=zstd.compress(inventory))

    # metrics: Parquet, flattened; a default table for rows without a service.
    rows = [{"service": ["web", "billing", None][i % 3], "at": 1_795_000_000 + i,
             "stats": {"p50_ms": 10.5 + i, "errors": i % 4}} for i in range(120)]
    s3.put_object(Bucket=met_bucket, Key="metrics/2026/11/27/m.parquet", Body=parquet(rows))

    raw = raw_config(embedded_aws, relay, pki, "unused", tmp_path)
    raw["inputs"]["aws"]["services"] = {"custom-s3": {"sources": [
        {"name": "app", "sqs_queue_name": app_queue, "readers": 2,
         "include": [r"^app/.*\.jsonl\.gz$"], "exclude": ["/tmp/"],
         "framing": "json_lines", "table": "my.app.{record.kind}"},
        {"name": "inventory", "sqs_queue_name": inv_queue, "compression": "zstd",
         "framing": "csv", "table": "shop.inventory.{key.1}"},
        {"name": "metrics", "sqs_queue_name": met_queue, "framing": "parquet",
         "flatten": True, "table": "my.app.metrics.{record.service}",
         "default_table": "my.app.metrics.other"},
    ]}}
    config = parse_config(raw, tmp_path, environ=ENV)

    result = run_collector(config, [], idle_seconds=2)

    # app: every event of the included objects, as compact JSON, in its kind's table.
    good = [json.loads(line) for line in sample.splitlines()] + many + mixed
    expected: dict[str, list[str]] = {}
    for record in good:
        expected.setdefault(f"my.app.{record['kind']}", []).append(compact(record))
    for table, messages in expected.items():
        assert sorted(relay.events(table)) == sorted(messages), table
    # inventory: the original lines, in the table of their site.
    lines = sorted(inventory.decode().splitlines()[1:])
    assert sorted(relay.events("shop.inventory.madrid")) == lines
    assert sorted(relay.events("shop.inventory.barcelona")) == lines
    # metrics: flat JSON objects.
    web = [json.loads(m) for m in relay.events("my.app.metrics.web")]
    assert len(web) == 40 and web[0] == {"service": "web", "at": 1_795_000_000,
                                         "stats.p50_ms": 10.5, "stats.errors": 0}
    assert len(relay.events("my.app.metrics.billing")) == 40
    assert len(relay.events("my.app.metrics.other")) == 40
    assert sum(relay.counts().values()) == len(good) + 2 * len(lines) + 120

    # What cannot be delivered is dead-lettered, in each source's own file; what is
    # skipped on purpose (excluded, not included) is not.
    app_dead = dead_letters(tmp_path, "custom-s3.app")
    assert sorted((d["code"], d["source"]["records"][0]) for d in app_dead) == [
        ("SRC-007", '{"kind": oops}'),
        ("SRC-010", '{"level":"INFO","message":"no kind"}')]
    assert {d["source"]["key"] for d in app_dead} == {"app/2026/11/27/events-3.jsonl.gz"}
    [inv_dead] = dead_letters(tmp_path, "custom-s3.inventory")
    assert (inv_dead["code"], inv_dead["source"]["key"]) == ("SRC-010", "inventory/all.csv.zst")
    assert "{key.1}" in inv_dead["error"]
    assert dead_letters(tmp_path, "custom-s3.metrics") == []

    # Every message is done with, the skipped ones too.
    assert [queue_depth(embedded_aws, url) for url in (app_url, inv_url, met_url)] == [0, 0, 0]
    # One set of summary rows per source.
    delivered = {(r[0], r[2]): r[3] for r in result.rows}
    assert delivered == {
        **{("custom-s3.app", table): len(m) for table, m in expected.items()},
        ("custom-s3.inventory", "shop.inventory.barcelona"): 6,
        ("custom-s3.inventory", "shop.inventory.madrid"): 6,
        **{("custom-s3.metrics", f"my.app.metrics.{s}"): 40 for s in ("web", "billing", "other")}}
    dead = {}
    for r in result.rows:
        dead[r[0]] = dead.get(r[0], 0) + r[4]
    assert dead == {"custom-s3.app": 2, "custom-s3.inventory": 1, "custom-s3.metrics": 0}


def test_sources_in_builtin_formats_under_keys_of_their_own(embedded_aws, relay, pki,
                                                            tmp_path):
    """Logs AWS wrote, copied to buckets under another layout: each source names the
    built-in format (`format:`), its events go to that format's table, its rows stay
    the source's."""
    s3 = embedded_aws.client("s3")
    lb_bucket, lb_queue, lb_url = setup_queue(embedded_aws)
    waf_bucket, waf_queue, waf_url = setup_queue(embedded_aws)

    # Application LB access logs under a layout of the user's: two files, one with a
    # line cut short; a connection log and an excluded file beside them.
    first, second = alb_lines(20, seed=11), alb_lines(15, seed=12)
    cut = "https 2026-11-27T12:00:00.000000Z app/web-prod/50dc6c495c0c9188 \"GET /"
    s3.put_object(Bucket=lb_bucket, Key="copies/lb/2026-11-27/part-0001.log.gz",
                  Body=alb_object(first))
    s3.put_object(Bucket=lb_bucket, Key="copies/lb/2026-11-27/part-0002.log.gz",
                  Body=alb_object(second[:7] + [cut] + second[7:]))
    s3.put_object(Bucket=lb_bucket, Key="copies/lb/conn_log_part-0003.log.gz",
                  Body=alb_object(first[:3]))  # skipped: the format's own skip
    s3.put_object(Bucket=lb_bucket, Key="copies/tmp/part-0004.log.gz",
                  Body=alb_object(first[:3]))  # skipped: excluded

    # WAF logs, flattened (the source's flatten).
    records = waf_records(12, seed=5)
    s3.put_object(Bucket=waf_bucket, Key="waf/2026/11/27/batch-1.gz", Body=waf_object(records))

    raw = raw_config(embedded_aws, relay, pki, "unused", tmp_path)
    raw["inputs"]["aws"]["services"] = {"custom-s3": {"sources": [
        {"name": "lb-copies", "sqs_queue_name": lb_queue, "format": "alb_access_logs",
         "include": ["^copies/"], "exclude": ["/tmp/"]},
        {"name": "waf-copies", "sqs_queue_name": waf_queue, "format": "waf_logs",
         "flatten": True},
    ]}}
    config = parse_config(raw, tmp_path, environ=ENV)

    result = run_collector(config, [], idle_seconds=2)

    assert sorted(relay.events("web.aws.alb.access")) == sorted(first + second)
    flat = [compact(flatten(r)) for r in records]
    assert sorted(relay.events("cloud.aws.waf.logs")) == sorted(flat)
    assert json.loads(flat[0])["httpRequest.clientIp"] == records[0]["httpRequest"]["clientIp"]
    assert sum(relay.counts().values()) == 35 + 12

    [dead] = dead_letters(tmp_path, "custom-s3.lb-copies")
    assert (dead["code"], dead["source"]["key"], dead["source"]["records"]) == (
        "SRC-004", "copies/lb/2026-11-27/part-0002.log.gz", [cut])
    assert dead["source"]["bucket"] == lb_bucket
    assert dead_letters(tmp_path, "custom-s3.waf-copies") == []
    assert [queue_depth(embedded_aws, url) for url in (lb_url, waf_url)] == [0, 0]
    assert sorted((r[0], r[2], r[3], r[4]) for r in result.rows) == [
        ("custom-s3.lb-copies", "web.aws.alb.access", 35, 1),
        ("custom-s3.waf-copies", "cloud.aws.waf.logs", 12, 0)]
