"""Custom S3 sources (custom-s3): table templates, the parser of each framing on real
samples, key selection, config problems, planning, and the Beam steps over a registry
with custom formats (TestPipeline)."""

from __future__ import annotations

import copy
import decimal
import io
import json
import math
from datetime import UTC, datetime
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from awscollector.config import ConfigError, CustomS3, parse_config, summary
from awscollector.errors import CollectorError
from awscollector.io.counters import RunCounts
from awscollector.io.deadletter import DEAD_LETTER
from awscollector.io.s3 import FormatBatch, ObjectTask
from awscollector.io.sqs import SqsMessage
from awscollector.pipelines.collector import plan_services, run_registry, summary_rows
from awscollector.pipelines.s3_sqs import ExtractObjects, ParseBatches
from awscollector.transforms.custom import CustomParser, KeyFilter, TableTemplate, source_format
from awscollector.transforms.formats import FIRST_LINE, SKIP, SNIFF, Parsed, RecordBatch
from awscollector.transforms.framing import frame_lines, json_records, parquet_rows
from awscollector.transforms.notifications import ObjectRef
from awscollector.transforms.registry import default_registry
from tests.test_config import BASE

SAMPLES = Path(__file__).parent / "samples" / "custom"
SVC = "inputs.aws.services.custom-s3"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def compact(record) -> bytes:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()


def text_batch(data: bytes, key: str = "k", header: str | None = None) -> RecordBatch:
    """The one batch of a small text object, framed as the S3 reader frames it."""
    [(head, lines)] = list(frame_lines([data], header=header))
    return RecordBatch(f"s3://b/{key}", key, 0, lines, head)


def codes(parsed) -> list[tuple[str, object]]:
    return [(r.code, r.record) for r in parsed.rejected]


# ---------------------------------------------------------------------------- templates


def test_template_record_fields_by_dotted_path_and_key_parts():
    t = TableTemplate("my.app.{record.kind}")
    assert t.bind("any/key").table({"kind": "login"}) == "my.app.login"
    nested = TableTemplate("my.{record.user.name}.{record.level}").bind("k")
    assert nested.table({"user": {"name": "alice"}, "level": "INFO"}) == "my.alice.INFO"
    keyed = TableTemplate("logs.{key.1}.{key.-2}").bind("apps/web/2026/x.jsonl.gz")
    assert keyed.static == "logs.web.2026" and keyed.table({}) == "logs.web.2026"
    both = TableTemplate("my.{key.0}.{record.kind}").bind("shop/2026/x.gz")
    assert both.table({"kind": "payment"}) == "my.shop.payment"


@pytest.mark.parametrize(("value", "table"), [
    ("login", "my.app.login"), ("web-01_a", "my.app.web-01_a"), (1041, "my.app.1041"),
    (True, "my.app.true"), (False, "my.app.false"), (None, None), ("", None),
    ("two words", None), ("a.b", None), ("x" * 65, None), (1.5, None), ({"a": 1}, None),
    (["a"], None),
])
def test_template_values_that_can_name_a_table(value, table):
    bound = TableTemplate("my.app.{record.kind}").bind("k")
    assert bound.table({"kind": value}) == table
    assert bound.table({"kind": value}) == table  # the cached answer too


def test_template_missing_key_part_and_non_object_records():
    bound = TableTemplate("logs.{key.3}").bind("a/b")
    assert bound.missing is not None and bound.table({}) is None
    assert TableTemplate("logs.{key.-1}").bind("a/x.gz").missing is not None  # has a dot
    record_t = TableTemplate("my.{record.user.name}").bind("k")
    assert record_t.table({"user": "alice"}) is None  # not an object on the way
    assert record_t.table(["user"]) is None and record_t.table(7) is None


@pytest.mark.parametrize(("text", "message"), [
    ("my app", "' ' cannot be part"), ("my..app", "empty level"), (".my.app", "empty level"),
    ("my.app.", "empty level"), ("", "empty level"), ("my.{record.}", "unknown field"),
    ("my.{foo}", "unknown field {foo}"), ("my.{key.x}", "unknown field"),
    ("my.{record.a", "unbalanced"), ("my.record.a}", "unbalanced"),
    ("my.{record.a..b}", "empty name"), ("my/app", "'/' cannot be part"),
])
def test_bad_templates(text, message):
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        TableTemplate(text)


# ---------------------------------------------------------------------------- parsers


def test_lines_are_delivered_as_they_are_to_a_table_from_the_key():
    batch = text_batch(sample("nginx_access.log"), "logs/shop/2026/11/27/access.log.gz")
    parsed = CustomParser("lines", "web.nginx.{key.1}")(batch, {})
    assert parsed.events == {"web.nginx.shop": sample("nginx_access.log").splitlines()}
    assert parsed.rejected == []


def test_a_key_without_the_part_rejects_the_object_or_goes_to_the_default_table():
    batch = text_batch(sample("nginx_access.log"), "access.log")
    with pytest.raises(CollectorError) as caught:
        CustomParser("lines", "web.nginx.{key.1}")(batch, {})
    assert caught.value.code == "SRC-010" and "{key.1}" in caught.value.message
    parsed = CustomParser("lines", "web.nginx.{key.1}", default_table="web.nginx.other")(
        batch, {})
    assert list(parsed.events) == ["web.nginx.other"] and len(parsed.events["web.nginx.other"]) == 4


def test_json_lines_become_compact_json_in_the_table_of_their_kind():
    lines = sample("app_events.jsonl").splitlines()
    parsed = CustomParser("json_lines", "my.app.{record.kind}")(text_batch(b"\n".join(lines)),
                                                                {})
    records = [json.loads(line) for line in lines]
    expected: dict[str, list[bytes]] = {}
    for record in records:
        expected.setdefault(f"my.app.{record['kind']}", []).append(compact(record))
    assert parsed.events == expected
    assert {t: len(m) for t, m in parsed.events.items()} == {
        "my.app.login": 1, "my.app.request": 3, "my.app.payment": 2, "my.app.logout": 1,
        "my.app.cache": 1}
    assert parsed.events["my.app.login"][0] == lines[0]  # compact already: the line itself
    spaced = parsed.events["my.app.request"][1]
    assert b'"ts":"2026-11-27T12:00:01.377Z","level":"WARN"' in spaced  # compacted
    assert "José Ñúñez".encode() in parsed.events["my.app.request"][2]  # not \u-escaped


@pytest.mark.parametrize(("line", "message"), [
    (b'{"a":[1,2],"b":"x y"}', b'{"a":[1,2],"b":"x y"}'),  # compact: the line itself
    (b'{"a":[1, 2]}', b'{"a":[1,2]}'), (b'{"a" :1}', b'{"a":1}'), (b' {"a":1}', b'{"a":1}'),
    (b'{"a":1}\t', b'{"a":1}'), (b'{ "a":{"b":null} }', b'{"a":{"b":null}}'),
    (b'{"a":"b, c"}', b'{"a":"b, c"}'), (b'{"a":"\\u00e9"}', b'{"a":"\\u00e9"}'),
    (b'{"a":"caf\\u00e9", "b":1}', '{"a":"café","b":1}'.encode()),
])
def test_json_lines_messages_are_compact(line, message):
    parsed = CustomParser("json_lines", "my.app")(RecordBatch("s3://b/k", "k", 0, [line]), {})
    assert parsed.events == {"my.app": [message]}


def test_json_lines_that_are_not_json_or_lack_the_field():
    good = sample("app_events.jsonl").splitlines()[0]
    lines = [good, b'{"kind": "login", "oops"', b'{"level":"INFO","message":"no kind"}',
             b'{"kind":"two words"}', b'[1,2]', b'{"kind":null}']
    parsed = CustomParser("json_lines", "my.app.{record.kind}")(text_batch(b"\n".join(lines)),
                                                                {})
    assert parsed.events == {"my.app.login": [good]}
    assert codes(parsed) == [("SRC-007", lines[1])] + [("SRC-010", line) for line in lines[2:]]
    assert "{record.kind}" in parsed.rejected[1].reason
    with_default = CustomParser("json_lines", "my.app.{record.kind}",
                                default_table="my.app.unknown")(text_batch(b"\n".join(lines)), {})
    assert [len(m) for m in with_default.events.values()] == [1, 4]
    assert codes(with_default) == [("SRC-007", lines[1])]


def test_flatten_json_lines_from_the_decoded_record():
    line = sample("app_events.jsonl").splitlines()[0]
    parsed = CustomParser("json_lines", "my.app.{record.user.name}", flatten=True)(
        text_batch(line), {})
    [message] = parsed.events["my.app.alice"]
    flat = json.loads(message)
    assert flat["user.name"] == "alice" and flat["user.roles"] == ["admin", "dev"]
    assert flat["request.status"] == 200 and "user" not in flat


def test_flatten_defaults_to_the_services_and_applies_to_json_only():
    assert source_format(_source(), flatten_default=True).parse.flatten is True
    assert source_format(_source(flatten=False), flatten_default=True).parse.flatten is False
    csv_source = _source(framing="csv", table="my.app.x")
    assert source_format(csv_source, flatten_default=True).parse.flatten is False


def test_json_records_of_a_document_become_compact_json():
    [records] = list(json_records([sample("orders.json")], "Records"))
    batch = RecordBatch("s3://b/orders.json", "orders.json", 0, records)
    parsed = CustomParser("json_records", "shop.orders.{record.customer.segment}")(batch, {})
    assert parsed.events == {
        "shop.orders.retail": [compact(records[0]), compact(records[2])],
        "shop.orders.business": [compact(records[1])]}
    assert parsed.events["shop.orders.retail"][0].startswith(b'{"orderId":"ORD-9920",')


def test_csv_lines_as_they_are_to_the_table_of_a_column():
    batch = text_batch(sample("inventory.csv"), "inventory.csv", FIRST_LINE)
    parsed = CustomParser("csv", "shop.inventory.{record.category}")(batch, {})
    lines = sample("inventory.csv").splitlines()[1:]
    assert parsed.events == {"shop.inventory.hardware": lines[0:2],
                             "shop.inventory.electrical": lines[2:4],
                             "shop.inventory.tools": lines[4:6]}
    assert parsed.rejected == []


def test_csv_rows_that_are_wrong_or_not_csv():
    text = sample("inventory.csv")
    header, first, second = text.splitlines()[:3]
    bad = [b"A-1,hardware,too few", b'A-2,hardware,"open quote,MAD-1,1,0.1,2026',
           b"A-3,hardware,caf\xe9,MAD-1,1,0.1,2026", b',,,,,,']
    lines = [first, *bad, header, second]
    parsed = CustomParser("csv", "shop.inventory.{record.category}")(
        RecordBatch("s3://b/i.csv", "i.csv", 0, lines, (header,)), {})
    # The stray quote opens a field the quote of the last line closes: not one row of
    # the header's fields, so line by line, and only the stray line is lost.
    assert parsed.events == {"shop.inventory.hardware": [first, second]}
    assert sorted(codes(parsed)) == sorted([("SRC-004", bad[0]), ("SRC-009", bad[1]),
                                            ("SRC-007", bad[2]), ("SRC-010", bad[3])])


def test_csv_records_over_several_lines_and_empty_lines():
    header = b"id,kind,message"
    lines = [b'1,note,"first line', b"second line, with a comma", b'third"', b"",
             b'2,note,"one ""quoted"" word"', b"3,alert,plain"]
    parsed = CustomParser("csv", "my.{record.kind}")(
        RecordBatch("s3://b/n.csv", "n.csv", 0, lines, (header,)), {})
    assert parsed.events == {"my.note": [b"\\n".join(lines[:3]), lines[4]],
                             "my.alert": [lines[5]]}
    assert parsed.rejected == []


def test_csv_header_without_the_column_and_columns_with_dots():
    batch = text_batch(sample("inventory.csv"), "inventory.csv", FIRST_LINE)
    with pytest.raises(CollectorError) as caught:
        CustomParser("csv", "shop.{record.kind}")(batch, {})
    assert caught.value.code == "SRC-010" and "no column 'kind'" in caught.value.message
    parsed = CustomParser("csv", "shop.{record.kind}", default_table="shop.other")(batch, {})
    assert list(parsed.events) == ["shop.other"] and len(parsed.events["shop.other"]) == 6
    dotted = text_batch(b"event.type,n\nlogin,1\n", "e.csv", FIRST_LINE)
    assert CustomParser("csv", "my.{record.event.type}")(dotted, {}).events == {
        "my.login": [b"login,1"]}


def _parquet() -> bytes:
    table = pa.table({
        "kind": ["login", "payment", None],
        "at": pa.array([datetime(2026, 11, 27, 12, 0, 1, tzinfo=UTC)] * 3,
                       pa.timestamp("ms", tz="UTC")),
        "amount": pa.array([decimal.Decimal("0.00"), decimal.Decimal("149.90"), None],
                           pa.decimal128(10, 2)),
        "score": [0.5, math.nan, 1.0],
        "user": [{"name": "alice", "id": 1041}, {"name": "bob", "id": 2203}, None],
        "raw": [b"ok", b"\xff\x00", None],
    })
    out = io.BytesIO()
    pq.write_table(table, out, row_group_size=2)
    return out.getvalue()


def test_parquet_rows_become_compact_json():
    def parse(parser: CustomParser) -> Parsed:
        """Every batch of the file, as the S3 reader frames it, into one result."""
        out = Parsed()
        for n, group in enumerate(parquet_rows(io.BytesIO(_parquet()), "s3://b/p")):
            parsed = parser(RecordBatch("s3://b/p.parquet", "p.parquet", n, group), {})
            for table, messages in parsed.events.items():
                out.extend(table, messages)
            out.rejected.extend(parsed.rejected)
        return out

    parsed = parse(CustomParser("parquet", "my.app.{record.kind}",
                                default_table="my.app.other"))
    assert [json.loads(m) for m in parsed.events["my.app.login"]] == [{
        "kind": "login", "at": "2026-11-27T12:00:01+00:00", "amount": "0.00", "score": 0.5,
        "user": {"name": "alice", "id": 1041}, "raw": "ok"}]
    [payment] = [json.loads(m) for m in parsed.events["my.app.payment"]]
    assert payment["score"] is None and payment["raw"] == "/wA="  # NaN; binary as base64
    assert payment["amount"] == "149.90"
    assert json.loads(parsed.events["my.app.other"][0])["kind"] is None
    by_user = parse(CustomParser("parquet", "my.app.{record.user.name}"))
    assert list(by_user.events) == ["my.app.alice", "my.app.bob"] and len(by_user.rejected) == 1


# ---------------------------------------------------------------------------- selection


def _source(**kw):
    base = {"name": "app", "sqs_queue_name": "q", "framing": "json_lines",
            "table": "my.app.{record.kind}"}
    return CustomS3.model_validate({"sources": [{**base, **kw}]}).sources[0]


def test_key_filter():
    f = KeyFilter((r"^app/.*\.jsonl\.gz$", r"^legacy/"), ("/tmp/",))
    assert f("app/2026/11/27/a.jsonl.gz") is None and f("legacy/x") is None
    assert f("app/tmp/a.jsonl.gz") == "its key matches exclude pattern '/tmp/'"
    assert f("app/a.csv") == "its key matches no include pattern"
    assert KeyFilter()("anything/at/all") is None


def test_a_custom_source_decides_alone_and_leaves_other_services_alone():
    registry = default_registry()
    fmt = registry.register(source_format(_source(include=[r"\.gz$"], exclude=["/tmp/"])))
    vpc_key = "AWSLogs/1/vpcflowlogs/us-east-1/2026/11/27/1_vpcflowlogs_x.log.gz"
    # Its own objects, even where a built-in format's key pattern matches too.
    assert registry.classify(vpc_key, (fmt.type,)).kind == fmt.name
    assert registry.classify("app/tmp/a.gz", (fmt.type,)).kind == SKIP
    assert registry.classify("app/a.txt", (fmt.type,)).reason == (
        "its key matches no include pattern")
    # Another service classifies as it did without it: a key it cannot tell is sniffed.
    assert registry.classify("custom/layout/flow.log.gz", ("vpc_flow_logs",)).kind == SNIFF
    assert default_registry().classify("custom/layout/flow.log.gz",
                                       ("vpc_flow_logs",)).kind == SNIFF


# ---------------------------------------------------------------------------- config

EXAMPLE = {
    "regions": ["eu-west-1"],
    "sources": [
        {"name": "myapp", "sqs_queue_name": "myapp-logs",
         "include": [r"^myapp/.*\.json\.gz$"], "exclude": ["/tmp/"],
         "framing": "json_lines", "table": "my.app.{record.kind}"},
        {"name": "inventory", "sqs_queue_url": "https://sqs.us-east-2.amazonaws.com/1/inv",
         "regions": ["us-east-2"], "readers": 2, "framing": "csv",
         "table": "shop.inventory.{key.1}", "compression": "zstd"},
    ],
}


def config_with(custom) -> dict:
    data = copy.deepcopy(BASE)
    data["inputs"]["aws"]["services"]["custom-s3"] = custom
    return data


def test_config_of_sources(tmp_path):
    for name in ("chain.crt", "domain.crt", "domain.key"):
        (tmp_path / "certs").mkdir(exist_ok=True)
        (tmp_path / "certs" / name).write_text("x")
    config = parse_config(config_with(EXAMPLE), tmp_path, {})
    service = config.inputs.aws.services["custom-s3"]
    myapp, inventory = service.sources
    assert (myapp.readers, myapp.compression, myapp.flatten, myapp.records_field) == (
        1, "auto", None, "Records")
    assert service.sqs_queue_name is None and service.types is None  # not its options
    assert summary(config) == "config OK: 3 services, 3 regions"  # eu-west-1, us-east-2 too

    registry = run_registry(config)
    plans = [p for p in plan_services(config, registry) if p.name == "custom-s3"]
    assert [(p.label, p.regions, p.default_table) for p in plans] == [
        ("custom-s3.myapp", ["eu-west-1"], "my.app.{record.kind}"),
        ("custom-s3.inventory", ["us-east-2"], "shop.inventory.{key.1}")]
    assert [(q.service, q.region, q.queue, q.reader) for q in plans[1].queues] == [
        ("custom-s3.inventory", "us-east-2", "https://sqs.us-east-2.amazonaws.com/1/inv", n)
        for n in (0, 1)]
    assert registry["custom-s3.inventory"].header == FIRST_LINE
    counters = {("delivered", "devo_1|custom-s3.myapp|eu-west-1|my.app.login"): 5,
                ("deadletter", "custom-s3.myapp|eu-west-1"): 2}
    assert summary_rows(RunCounts.from_counters(counters), plans, "devo_1") == [
        ("custom-s3.myapp", "eu-west-1", "my.app.login", 5, 2),
        ("custom-s3.inventory", "us-east-2", "shop.inventory.{key.1}", 0, 0)]


def _source_with(**changes) -> dict:
    source = copy.deepcopy(EXAMPLE["sources"][0])
    source.update(changes)
    return source


def _format_source(fmt: str, name: str = "copies", **changes) -> dict:
    return {"name": name, "sqs_queue_name": name, "format": fmt, **changes}


PROBLEMS = {
    "bad regex": ({"sources": [_source_with(include=["ok", "(unclosed"])]}, "CFG-013",
                  f"{SVC}.sources.0.include.1"),
    "bad exclude": ({"sources": [_source_with(exclude=["*x"])]}, "CFG-013",
                    f"{SVC}.sources.0.exclude.0"),
    "unknown framing": ({"sources": [_source_with(framing="xml")]}, "CFG-004",
                        f"{SVC}.sources.0.framing"),
    "unknown compression": ({"sources": [_source_with(compression="bz2")]}, "CFG-004",
                            f"{SVC}.sources.0.compression"),
    "bad table": ({"sources": [_source_with(table="my app.{record.kind}")]}, "CFG-014",
                  f"{SVC}.sources.0.table"),
    "unknown field": ({"sources": [_source_with(table="my.{record}")]}, "CFG-014",
                      f"{SVC}.sources.0.table"),
    "default table with a field": ({"sources": [_source_with(default_table="my.{key.0}")]},
                                   "CFG-014", f"{SVC}.sources.0.default_table"),
    "record field with lines": ({"sources": [_source_with(framing="lines")]}, "CFG-015",
                                f"{SVC}.sources.0.table"),
    "records_field without json_records": ({"sources": [_source_with(records_field="Items")]},
                                           "CFG-015", f"{SVC}.sources.0.records_field"),
    "flatten csv": ({"sources": [_source_with(framing="csv", flatten=True)]}, "CFG-015",
                    f"{SVC}.sources.0.flatten"),
    "gzip parquet": ({"sources": [_source_with(framing="parquet", compression="gzip")]},
                     "CFG-015", f"{SVC}.sources.0.compression"),
    "duplicate name": ({"sources": [_source_with(), _source_with(table="my.x")]}, "CFG-016",
                       f"{SVC}.sources.1.name"),
    "bad name": ({"sources": [_source_with(name="my app")]}, "CFG-004",
                 f"{SVC}.sources.0.name"),
    "no queue": ({"sources": [_source_with(sqs_queue_name=None)]}, "CFG-007",
                 f"{SVC}.sources.0"),
    "no table": ({"sources": [{k: v for k, v in _source_with().items() if k != "table"}]},
                 "CFG-005", f"{SVC}.sources.0.table"),
    "no sources": ({}, "CFG-005", f"{SVC}.sources"),
    "unknown source key": ({"sources": [_source_with(types=["x"])]}, "CFG-003",
                           f"{SVC}.sources.0.types"),
    "service key of another service": ({**EXAMPLE, "readers": 2}, "CFG-003", f"{SVC}.readers"),
    "format and framing": ({"sources": [{**_source_with(format="waf_logs"), "table": None}]},
                           "CFG-015", f"{SVC}.sources.0.framing"),
    "format and table": ({"sources": [{**_source_with(format="waf_logs"), "framing": None}]},
                         "CFG-015", f"{SVC}.sources.0.table"),
    "unknown format": ({"sources": [_format_source("alb_logs")]}, "CFG-004",
                       f"{SVC}.sources.0.format"),
    "type of several formats": ({"sources": [_format_source("elb_logs")]}, "CFG-004",
                                f"{SVC}.sources.0.format"),
    "event format": ({"sources": [_format_source("securityhub_findings")]}, "CFG-004",
                     f"{SVC}.sources.0.format"),
    "flatten text format": ({"sources": [_format_source("alb_access_logs", flatten=True)]},
                            "CFG-015", f"{SVC}.sources.0.flatten"),
    "neither format nor framing": (
        {"sources": [{k: v for k, v in _source_with().items() if k != "framing"}]},
        "CFG-005", f"{SVC}.sources.0.framing"),
}


@pytest.mark.parametrize(("custom", "code", "path"), PROBLEMS.values(), ids=PROBLEMS.keys())
def test_config_problems(tmp_path, custom, code, path):
    with pytest.raises(ConfigError) as caught:
        parse_config(config_with(custom), tmp_path, {})
    found = [(p.code, p.path) for p in caught.value.problems if "outputs" not in p.path]
    assert found == [(code, path)]


def test_every_problem_of_a_source_at_once(tmp_path):
    bad = _source_with(include=["("], framing="lines", records_field="X", flatten=True)
    with pytest.raises(ConfigError) as caught:
        parse_config(config_with({"sources": [bad, _source_with(name="myapp")]}), tmp_path, {})
    found = {(p.code, p.path.removeprefix(SVC)) for p in caught.value.problems
             if "outputs" not in p.path}
    assert found == {("CFG-013", ".sources.0.include.0"), ("CFG-015", ".sources.0.table"),
                     ("CFG-015", ".sources.0.records_field"), ("CFG-015", ".sources.0.flatten"),
                     ("CFG-016", ".sources.1.name")}


def test_a_source_in_a_builtin_format(tmp_path):
    custom = {"flatten": True, "sources": [
        _format_source("alb_access_logs", include=["^copies/"]),
        _format_source("waf_logs", name="waf", flatten=False),  # a type of one format
        _format_source("config_logs", name="config")]}
    (tmp_path / "certs").mkdir()
    for name in ("chain.crt", "domain.crt", "domain.key"):
        (tmp_path / "certs" / name).write_text("x")
    config = parse_config(config_with(custom), tmp_path, {})
    registry = run_registry(config)
    alb, waf, aws_config = (registry[f"custom-s3.{n}"] for n in ("copies", "waf", "config"))
    assert (alb.table, alb.framing, waf.table, aws_config.records_field) == (
        "web.aws.alb.access", "lines", "cloud.aws.waf.logs", "configurationItems")
    plans = [p for p in plan_services(config, registry) if p.name == "custom-s3"]
    assert [(p.label, p.default_table) for p in plans] == [
        ("custom-s3.copies", "web.aws.alb.access"), ("custom-s3.waf", "cloud.aws.waf.logs"),
        ("custom-s3.config", "cloud.aws.configlogs.events")]
    # Its include/exclude, then what the format skips on purpose.
    assert registry.classify("copies/lb/1.log.gz", (alb.type,)).kind == alb.name
    assert registry.classify("other/1.log.gz", (alb.type,)).kind == SKIP
    assert registry.classify("copies/conn_log_1.log.gz", (alb.type,)).reason == (
        "an ALB connection log: not collected by this version")
    assert registry.classify("c/Config/ConfigWritabilityCheckFile", (aws_config.type,)).kind == SKIP
    # The format's parser; flattened when the source (here the service) says so.
    item = {"resourceType": "AWS::S3::Bucket", "tags": {"env": "prod"}}
    parsed = aws_config.parse(RecordBatch("s3://b/k", "k", 0, [item]), {})
    assert parsed.events == {"cloud.aws.configlogs.events": [
        b'{"resourceType":"AWS::S3::Bucket","tags.env":"prod"}']}
    line = b'{"webaclId":"arn:x","action":"ALLOW","httpRequest":{"clientIp":"192.0.2.1"}}'
    assert waf.parse(RecordBatch("s3://b/k", "k", 0, [line]), {}).events == {
        "cloud.aws.waf.logs": [line]}


# ---------------------------------------------------------------------------- Beam steps


def _message(n: int, *keys: str) -> SqsMessage:
    body = {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-27T12:00:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "apps"}, "object": {"key": key, "size": 100}}}
        for key in keys]}
    return SqsMessage("custom-s3.app", "us-east-1", "https://sqs/q", f"m{n}", json.dumps(body))


def test_extract_and_parse_with_custom_formats_in_the_registry():
    registry = default_registry()
    app = registry.register(source_format(_source(include=[r"^app/.*\.jsonl\.gz$"],
                                                  exclude=["/tmp/"])))
    messages = [_message(1, "app/2026/a.jsonl.gz", "app/tmp/b.jsonl.gz"),
                _message(2, "app/notes.txt")]
    lines = sample("app_events.jsonl").splitlines()[:3] + [b'{"no":"kind"}']
    task = ObjectTask(messages[0], ObjectRef("apps", "app/2026/a.jsonl.gz"), app.name)
    batch = FormatBatch(task, app.name, RecordBatch(task.name, task.ref.key, 0, lines))

    p = BeamTestPipeline()
    tasks = (p | "Messages" >> beam.Create(messages)
             | beam.ParDo(ExtractObjects(registry, (app.type,))).with_outputs(
                 DEAD_LETTER, main="tasks"))
    assert_that(tasks.tasks | beam.Map(lambda t: (t.ref.key, t.kind)),
                equal_to([("app/2026/a.jsonl.gz", app.name)]), label="only the included")
    assert_that(tasks[DEAD_LETTER], equal_to([]), label="skips are no dead letters")
    parsed = (p | "Batches" >> beam.Create([batch])
              | beam.ParDo(ParseBatches(registry, {"flatten": True})).with_outputs(
                  DEAD_LETTER, main="events"))
    assert_that(parsed.events | beam.Map(lambda e: (e.table, len(e.messages), e.service)),
                equal_to([("my.app.login", 1, "custom-s3.app"),
                          ("my.app.request", 2, "custom-s3.app")]), label="events")
    assert_that(parsed.events | "Messages of login" >> beam.FlatMap(
        lambda e: e.messages if e.table == "my.app.login" else []),
        equal_to([lines[0]]), label="not flattened again")  # the source's flatten decides
    assert_that(parsed[DEAD_LETTER] | beam.Map(lambda d: (d.code, d.source["records"])),
                equal_to([("SRC-010", ['{"no":"kind"}'])]), label="dead letters")
    result = p.run()
    result.wait_until_finish()
    skipped = result.metrics().query(MetricsFilter().with_name("skipped"))["counters"]
    assert sum(c.committed for c in skipped) == 2

