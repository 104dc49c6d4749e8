"""Cisco Umbrella logs: kinds by folder, every published column count, quoted CSV."""

from __future__ import annotations

import csv
import doctest
import io
import itertools
import random
import re
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from awscollector.io.deadletter import DEAD_LETTER
from awscollector.io.delivery import EventBatch
from awscollector.io.s3 import FormatBatch, ObjectTask
from awscollector.io.sqs import SqsMessage
from awscollector.pipelines.s3_sqs import ExtractObjects, ParseBatches
from awscollector.transforms import umbrella
from awscollector.transforms.formats import SKIP, RecordBatch
from awscollector.transforms.framing import frame_lines, whole_csv_records
from awscollector.transforms.notifications import ObjectRef
from awscollector.transforms.registry import default_registry
from awscollector.transforms.umbrella import KINDS, NOT_CSV, count_columns, parse

SAMPLES = Path(__file__).parent / "samples" / "umbrella"
FOLDER_KIND = {"dnslogs": "dns", "iplogs": "ip", "proxylogs": "proxy",
               "cloudfirewalllogs": "firewall", "intrusionlogs": "intrusion",
               "dlplogs": "dlp", "auditlogs": "audit"}


def sample_names() -> list[str]:
    return sorted(p.name for p in SAMPLES.iterdir())


def framed(data: bytes, batch_bytes: int = 1 << 20) -> list[RecordBatch]:
    return [RecordBatch("s3://b/k", "k", i, lines, header) for i, (header, lines)
            in enumerate(frame_lines([data], None, batch_bytes, quoted=True))]


def parse_all(kind: str, data: bytes, batch_bytes: int = 1 << 20):
    """(events, rejected) of an object, batch by batch as the pipeline does it."""
    events, rejected = [], []
    for batch in framed(data, batch_bytes):
        parsed = parse(KINDS[kind], batch, {})
        assert set(parsed.events) <= {KINDS[kind].table}
        events += parsed.events.get(KINDS[kind].table, [])
        rejected += parsed.rejected
    return events, rejected


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(), newline=""), skipinitialspace=True))


def test_doctest():
    assert doctest.testmod(umbrella).failed == 0


# --- every published version, real layout ------------------------------------------------


def test_the_samples_cover_every_known_column_count():
    covered = {(FOLDER_KIND[n.split("_")[0]], int(n.split("_")[1].split(".")[0]))
               for n in sample_names()}
    assert covered == {(kind.name, n) for kind in KINDS.values() for n in kind.columns}


@pytest.mark.parametrize("name", sample_names())
def test_every_record_of_a_sample_is_one_event_as_written(name):
    kind = FOLDER_KIND[name.split("_")[0]]
    data = (SAMPLES / name).read_bytes()
    rows = csv_rows(data)
    if rows[0][0].isalpha():  # the optional header row
        rows = rows[1:]
    events, rejected = parse_all(kind, data)
    assert rejected == []
    assert len(events) == len(rows)
    for event, row in zip(events, rows, strict=True):
        assert b"\n" not in event
        assert csv_rows(event.replace(b"\\n", b"\n")) == [row]  # the record, unchanged
        assert len(row) in KINDS[kind].columns


def test_quoted_commas_and_quotes_are_data_not_separators():
    data = (SAMPLES / "dnslogs_16.csv").read_bytes()
    events, _ = parse_all("dns", data)
    assert events == data.splitlines()
    assert any(b'"Guest ""Lobby"" Wi-Fi"' in e for e in events)
    assert [count_columns(e) for e in events] == [16] * 5
    proxy, _ = parse_all("proxy", (SAMPLES / "proxylogs_49.csv").read_bytes())
    assert [count_columns(e) for e in proxy] == [49] * 3  # URLs, user agents with commas


def test_bare_fields_of_early_firewall_exports():
    data = (SAMPLES / "cloudfirewalllogs_14.csv").read_bytes()
    assert b'"' not in data
    events, rejected = parse_all("firewall", data)
    assert events == data.splitlines() and rejected == []


def test_audit_records_span_lines_and_the_header_row_is_no_event():
    data = (SAMPLES / "auditlogs_9.csv").read_bytes()
    events, rejected = parse_all("audit", data)
    assert rejected == []
    assert len(events) == 3 and not any(e.startswith(b'"ID"') for e in events)
    assert events[1].endswith(b'"name: Default Policy\\nblockPage: custom ""Berlin"", v2'
                              b'\\nsafeSearch: on\\n"')
    # Records cut by tiny batches come out the same: no batch ends inside a record.
    assert parse_all("audit", data, batch_bytes=64) == (events, [])


def test_an_empty_line_inside_a_quoted_field_is_kept():
    data = b'"1","2026-03-02 14:00:00","a@example.com","A","policies","update","","x\n\ny",""\n\n'
    events, rejected = parse_all("audit", data)
    assert rejected == []
    assert events == [data.rstrip(b"\n").replace(b"\n", b"\\n")]


def test_header_rows_quoted_or_bare_only_at_the_start_of_an_object():
    header = b"timestamp,identity,source ip,source port,destination ip,destination port,categories"
    line = b'"2026-03-02 09:00:01","WS-0231","10.0.0.1","1","203.0.113.80","443","Malware"'
    batch = RecordBatch("s3://b/k", "k", 0, [header, line])
    assert parse(KINDS["ip"], batch, {}).events == {"sig.cisco.umbrella.ip": [line]}
    later = RecordBatch("s3://b/k", "k", 1, [header, line])
    assert len(parse(KINDS["ip"], later, {}).events["sig.cisco.umbrella.ip"]) == 2


# --- bad records ------------------------------------------------------------------------


def test_a_column_count_no_version_has_is_rejected():
    good = (SAMPLES / "dnslogs_13.csv").read_bytes().splitlines()
    twelve = good[0].rsplit(b",", 1)[0]
    seventeen = (SAMPLES / "dnslogs_16.csv").read_bytes().splitlines()[1] + b',"extra"'
    parsed = parse(KINDS["dns"], RecordBatch("s3://b/k", "k", 0, [twelve, *good, seventeen]),
                   {})
    assert parsed.events == {"sig.cisco.umbrella.dns": good}
    assert [(r.code, r.record) for r in parsed.rejected] == [("SRC-004", twelve),
                                                              ("SRC-004", seventeen)]
    assert "known: 10, 13, 14, 15, 16" in parsed.rejected[0].reason


@pytest.mark.parametrize("bad", [
    b'"2026-03-02 09:00:01","a"b","c","d","e","f","g"',  # text after a closing quote
    b'"2026-03-02 09:00:01,"a","b","c","d","e","f"',  # a quote left open
    b'x"y,"a","b","c","d","e","f"',  # a quote inside a bare field
])
def test_records_that_are_not_csv_are_rejected_and_the_rest_delivered(bad):
    good = (SAMPLES / "iplogs_7.csv").read_bytes().splitlines()
    parsed = parse(KINDS["ip"], RecordBatch("s3://b/k", "k", 1, [good[0], bad, *good[1:]]), {})
    assert parsed.events == {"sig.cisco.umbrella.ip": good}
    assert [(r.code, r.record) for r in parsed.rejected] == [(NOT_CSV, bad)]


def test_a_stray_quote_does_not_swallow_the_records_after_it():
    good = (SAMPLES / "dnslogs_16.csv").read_bytes().splitlines()
    stray = b'"2026-03-02 08:14:07","x",' + b'"' * 3
    events, rejected = parse_all("dns", b"\n".join([stray, *good, stray, *good]) + b"\n",
                                 batch_bytes=300)
    assert events == good + good
    assert [r.record for r in rejected] == [stray, stray]
    assert {r.code for r in rejected} == {NOT_CSV}


def test_count_columns_agrees_with_the_csv_module_on_random_records():
    rnd = random.Random(5)
    alphabet = ['a', 'Z', ' ', ',', '"', '""', '\\', 'é', '0', ';', '\t']
    for _ in range(3000):
        fields = ["".join(rnd.choices(alphabet, k=rnd.randrange(0, 6)))
                  for _ in range(rnd.randrange(1, 12))]
        quoted = rnd.random() < 0.8
        cells = ['"' + f.replace('"', '""') + '"' if quoted or '"' in f or "," in f else f
                 for f in fields]
        record = ",".join(cells).encode()
        if not record:
            continue  # an empty line: no record at all
        assert count_columns(record) == len(fields), record
        batch = RecordBatch("s3://b/k", "k", 1, [record] * 3)
        kind = umbrella.Kind("t", ("t",), frozenset({len(fields)}))
        assert parse(kind, batch, {}).events == {kind.table: [record] * 3}, record


def test_count_columns_accepts_no_record_the_csv_module_refuses_but_for_spaces():
    """Every short string of quotes, commas, letters and spaces: where both parse it,
    the same columns; we accept nothing csv (strict) refuses, but a space after a
    closing quote; we refuse a quote inside a bare field, which csv takes as data."""
    for n in range(1, 7):
        for chars in itertools.product('",a ', repeat=n):
            text = "".join(chars)
            ours = count_columns(text.encode())
            try:
                theirs = len(next(csv.reader([text], strict=True, skipinitialspace=True)))
            except csv.Error:
                theirs = None
            if ours is not None and theirs is not None:
                assert ours == theirs, text
            elif ours is not None:
                assert re.search(r'" +(,|$)', text), text


def test_the_batch_check_never_takes_a_line_it_should_not():
    rnd = random.Random(11)
    for _ in range(20000):
        lines = [("".join(rnd.choices('",a', k=rnd.randrange(2, 9)))).encode()
                 for _ in range(rnd.randrange(1, 4))]
        seps = [line.count(b'","') for line in lines]
        if umbrella._plain_quoted(lines, sum(seps)):
            for line, k in zip(lines, seps, strict=True):
                assert len(next(csv.reader([line.decode()], strict=True))) == k + 1, lines


# --- framing ----------------------------------------------------------------------------


def test_whole_csv_records_moves_an_open_record_to_the_next_batch():
    assert list(whole_csv_records([[b'"1"', b'"2","x'], [b'y"', b'"3"']])) == [
        [b'"1"'], [b'"2","x', b'y"', b'"3"']]
    assert list(whole_csv_records([[b'"1","x'], [b'y'], [b'z"']])) == [[b'"1","x', b"y", b'z"']]
    # Past max_carry it is no record: left where it is, for the parser to reject.
    assert list(whole_csv_records([[b'"1"', b'"x' * 10], [b'"2"']], max_carry=8)) == [
        [b'"1"', b'"x' * 10], [b'"2"']]


# --- keys, classification and the Beam steps ----------------------------------------------


@pytest.mark.parametrize("folder,kind", [*FOLDER_KIND.items(), ("firewalllogs", "firewall")])
def test_the_folder_of_a_key_says_its_kind(folder, kind):
    registry = default_registry()
    for key in (f"{folder}/2026-03-02/2026-03-02-10-20-a1b2.csv.gz",
                f"org-7731002/cisco/{folder}/2026-03-02/2026-03-02-10-20-x9z0.csv.gz"):
        assert registry.classify(key, (umbrella.TYPE,)).kind == f"umbrella_{kind}"


def test_keys_of_other_layouts_or_services():
    registry = default_registry()
    found = registry.classify("dnslogs/2026-03-02/2026-03-02-10-20-a1b2.csv.gz",
                              ("vpc_flow_logs", "cloudfront_logs"))
    assert found.kind == SKIP  # an Umbrella object in a bucket shared with AWS logs
    with pytest.raises(Exception) as e:
        registry.classify("ravpnlogs/2026-03-02/2026-03-02-10-20-a1b2.csv.gz",
                          (umbrella.TYPE,))
    assert e.value.code == "SRC-006"


def _message(body: str) -> SqsMessage:
    return SqsMessage("cisco-umbrella", "us-east-1", "https://q", "m-1", body)


def test_extract_objects_and_parse_batches_route_each_kind_to_its_table():
    import json

    keys = [f"u/{folder}/2026-03-02/2026-03-02-10-20-a1b2.csv.gz" for folder in FOLDER_KIND]
    body = json.dumps({"Records": [
        {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "awsRegion": "us-east-1",
         "s3": {"bucket": {"name": "b"}, "object": {"key": k, "size": 1}}} for k in keys]})
    lines = {"dns": (SAMPLES / "dnslogs_16.csv").read_bytes().splitlines(),
             "ip": (SAMPLES / "iplogs_7.csv").read_bytes().splitlines()}
    batches = [FormatBatch(ObjectTask(_message(body), ObjectRef("b", key), f"umbrella_{kind}"),
                           f"umbrella_{kind}",
                           RecordBatch(f"s3://b/{key}", key, 1, [*lines[kind], b'"bad']))
               for kind, key in (("dns", keys[0]), ("ip", keys[1]))]
    registry = default_registry()
    with TestPipeline() as p:
        tasks = (p | "msgs" >> beam.Create([_message(body)])
                 | beam.ParDo(ExtractObjects(registry, [umbrella.TYPE])).with_outputs(
                     DEAD_LETTER, main="tasks"))
        assert_that(tasks.tasks | beam.Map(lambda t: t.kind), equal_to(
            [f"umbrella_{k}" for k in FOLDER_KIND.values()]), label="kinds")
        out = (p | "batches" >> beam.Create(batches)
               | beam.ParDo(ParseBatches(registry)).with_outputs(DEAD_LETTER, main="events"))
        assert_that(out.events, equal_to([
            EventBatch("sig.cisco.umbrella.dns", lines["dns"], "cisco-umbrella", "us-east-1"),
            EventBatch("sig.cisco.umbrella.ip", lines["ip"], "cisco-umbrella", "us-east-1")]),
            label="events")
        assert_that(out[DEAD_LETTER] | beam.Map(lambda d: (d.code, d.source["key"])),
                    equal_to([(NOT_CSV, keys[0]), (NOT_CSV, keys[1])]), label="dead letters")
