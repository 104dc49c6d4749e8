"""WriteToDevoHttp against the embedded Devo HTTP endpoint, over real HTTPS sockets.

The endpoint answers 2xx only once a request's events are recorded; a crash in the
middle of a request (a reset, or a close first and a reset later) records none of
them. So the sink, which re-sends only what was not acknowledged, should deliver
every event exactly once through such crashes; only a crash between recording and
answering (kill() at the wrong moment) may cause duplicates, at most what was in
flight. End-to-end tests run the collector with the embedded AWS.
"""

from __future__ import annotations

import collections
import logging
import os
import pickle
import random
import subprocess
import sys
import time
from pathlib import Path

import apache_beam as beam
import pytest
import yaml
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline

from awscollector.config import parse_config
from awscollector.embedded.certs import make_test_pki
from awscollector.embedded.config import HTTP_TOKEN_VAR, embedded_config
from awscollector.embedded.http_endpoint import (
    AnswerStatus,
    CloseFirst,
    DevoHttpEndpoint,
    ResetMidRequest,
    WrongToken,
)
from awscollector.errors import CollectorError, as_collector_error
from awscollector.io.delivery import DeliveryFailed
from awscollector.io.devo_http import DevoHttpTarget, EventBatch, HttpTransport, WriteToDevoHttp
from awscollector.pipelines.collector import run_collector
from tests.test_cli import check_demo_run
from tests.vpc_helpers import ENV, queue_depth, seed_objects, setup_queue

TOKEN = "tok-Zq81xVv3-distinctive-7c5e"  # must appear in no error, log or repr
TABLES = ("cloud.aws.vpc.flow", "cloud.aws.cloudtrail.events", "my.app.test.table")
TABLE = TABLES[0]
BATCH_BYTES = 1 << 20
RCVBUF = 256 * 1024


@pytest.fixture
def endpoint(pki):
    with DevoHttpEndpoint(pki, token=TOKEN) as e:
        yield e


def target(pki, endpoint, token: str = TOKEN) -> DevoHttpTarget:
    return DevoHttpTarget(endpoint.url, "mydomain", token, "aws-collector", str(pki.ca_cert))


def events(n: int) -> list[tuple[str, str]]:
    return [(TABLES[i % len(TABLES)], f"event {i} with: colon and ünïcode") for i in range(n)]


def batches(n_batches: int, per_batch: int, seed: int = 1) -> list[EventBatch]:
    """Unique, traceable events of about 110 bytes that gzip only about 2:1 (random hex),
    so that a request of a 1 MiB flush is some 500 KB on the wire."""
    rnd = random.Random(seed)
    return [EventBatch(TABLE, [f"b{b:04d} e{i:06d} {rnd.getrandbits(384):096x}".encode()
                               for i in range(per_batch)], "non-cloudwatch-logs", "us-east-1")
            for b in range(n_batches)]


def run(elements, sink: WriteToDevoHttp, middle=None) -> None:
    try:
        with BeamTestPipeline() as p:
            pcoll = p | beam.Create(elements, reshuffle=False)
            if middle is not None:
                pcoll = pcoll | beam.ParDo(middle)
            pcoll | sink
    except Exception as e:
        raise as_collector_error(e) from e


def sink(pki, endpoint, **kwargs) -> WriteToDevoHttp:
    kwargs.setdefault("max_batch_bytes", BATCH_BYTES)
    kwargs.setdefault("retry_delay", 0.02)
    return WriteToDevoHttp(target(pki, endpoint), **kwargs)


# Events in one flush at most: a flush starts once its buffer counts BATCH_BYTES
# (message bytes plus 64 per message), so it holds at most that plus one more batch.
PER_FLUSH = BATCH_BYTES // (110 + 64) + 1500


def check_nothing_lost(endpoint: DevoHttpEndpoint, sent: list[EventBatch],
                       max_duplicates: int = 0) -> int:
    """Every event arrived; at most max_duplicates twice. Returns the duplicates."""
    expected = collections.Counter(m.decode() for b in sent for m in b.messages)
    received = collections.Counter(endpoint.events(TABLE))
    missing = expected - received
    assert not missing, f"{sum(missing.values())} events lost, e.g. {next(iter(missing))}"
    duplicates = sum((received - expected).values())
    assert duplicates <= max_duplicates, (duplicates, max_duplicates)
    return duplicates


def assert_no_token(*texts: str) -> None:
    for text in texts:
        assert TOKEN not in text


# ---------------------------------------------------------------------------- the basics


def test_events_of_several_tables_arrive_exactly_once_with_their_tags(pki, endpoint):
    sent = events(3000)
    run(sent, sink(pki, endpoint, max_batch_bytes=20_000))
    assert endpoint.counts() == {t: 1000 for t in TABLES}
    for table in TABLES:
        assert endpoint.events(table) == [m for t, m in sent if t == table]
    # Many flushes, one keep-alive connection, every request acknowledged.
    requests = endpoint.requests()
    assert len(requests) >= 3 * 5 and {r.status for r in requests} == {200}
    assert endpoint.connections() == 1


def test_bodies_are_gzip_and_split_at_max_request_bytes(pki, endpoint):
    sent = [EventBatch(TABLE, [f"{b:03d} {i:05d} ".encode() + b"y" * 90 for i in range(2000)])
            for b in range(3)]  # 100-byte events: 101 bytes with the newline
    run(sent, sink(pki, endpoint, max_request_bytes=50_000))
    assert endpoint.events(TABLE) == [m.decode() for b in sent for m in b.messages]
    requests = endpoint.requests()
    assert all(r.events * 101 <= 50_000 for r in requests)
    assert max(r.events for r in requests) == 50_000 // 101
    assert all(r.body_bytes < r.events * 101 / 5 for r in requests)  # compressed


def test_target_masks_the_token_and_quotes_the_path():
    t = DevoHttpTarget("https://http-us.devo.io/", "my domain", TOKEN, "aws-collector")
    assert t.path("cloud.aws.vpc.flow", "h") == (
        f"/stream/my%20domain/token!{TOKEN}/h/cloud.aws.vpc.flow")
    assert t.path("cloud.aws.vpc.flow", "h", masked=True) == (
        "/stream/my%20domain/token!***/h/cloud.aws.vpc.flow")
    assert str(t) == "https://http-us.devo.io/stream/my domain/token!***/aws-collector"
    sink_ = WriteToDevoHttp(t)
    assert_no_token(repr(t), str(t), repr(HttpTransport(t)), repr(sink_), str(sink_),
                    repr(sink_._fn._make_transport))
    # It still reaches the worker, pickled.
    assert pickle.loads(pickle.dumps(t)).token == TOKEN


def test_a_request_acknowledged_is_not_sent_again_when_its_flush_is_retried(pki, endpoint):
    """A flush of 3 requests whose third is answered 503: the retry sends only it."""
    transport = HttpTransport(target(pki, endpoint), max_request_bytes=10_000)
    payload = transport.prepare(TABLE, [f"{i:05d} ".encode() + b"z" * 94 for i in range(250)])
    assert len(payload.bodies) == 3
    endpoint.add_fault(AnswerStatus(503, times=1, every=3))
    with pytest.raises(DeliveryFailed) as err:
        transport.deliver([payload])
    assert err.value.code == "OUT-002" and "HTTP 503 Service Unavailable" in err.value.message
    assert [b.acked for b in payload.bodies] == [True, True, False]
    assert transport.deliver([payload]).how == "HTTP 2xx"
    assert [r.status for r in endpoint.requests()] == [200, 200, 503, 200]
    assert endpoint.total() == 250 and len(set(endpoint.events(TABLE))) == 250
    transport.close()


def test_keep_alive_survives_the_server_closing_idle_connections(pki):
    with DevoHttpEndpoint(pki, token=TOKEN, idle_timeout=0.2) as endpoint:
        transport = HttpTransport(target(pki, endpoint))
        for n in range(3):
            transport.deliver([transport.prepare(TABLE, [f"flush {n}".encode()])])
            if n == 0:
                transport.deliver([transport.prepare(TABLE, [b"same connection"])])
            time.sleep(0.5)  # the endpoint closes the idle connection meanwhile
        transport.close()
        assert endpoint.connections() == 3
        assert endpoint.total() == 4
        assert [r.status for r in endpoint.requests()] == [200] * 4


def test_plain_http_to_loopback_for_testing():
    with DevoHttpEndpoint(None, token=TOKEN) as endpoint:
        assert endpoint.url.startswith("http://")
        run(events(30), WriteToDevoHttp(DevoHttpTarget(endpoint.url, "d", TOKEN, "h")))
        assert endpoint.total() == 30


# ---------------------------------------------------------------------------- refusals


def test_wrong_token_fails_at_once_with_out_004_and_never_shows_the_token(pki, caplog):
    caplog.set_level(logging.DEBUG)
    with DevoHttpEndpoint(pki, token="the-right-one") as endpoint:
        w = sink(pki, endpoint)
        with pytest.raises(CollectorError) as err:
            run(events(300), w)
        requests = endpoint.requests()
    assert err.value.code == "OUT-004"
    assert "HTTP 401 Unauthorized" in err.value.message
    assert f"table {TABLE} (request 1/1: 100 events, " in err.value.message
    assert "token!***" in err.value.message
    assert [r.status for r in requests] == [401]  # no retry
    assert endpoint.total() == 0
    assert_no_token(str(err.value), repr(err.value), caplog.text, repr(w), str(w.__dict__))


def test_revoked_token_mid_stream_fails_with_out_004(pki, endpoint, caplog):
    caplog.set_level(logging.DEBUG)
    endpoint.add_fault(WrongToken(times=1, every=4))
    with pytest.raises(CollectorError) as err:
        run(events(3000), sink(pki, endpoint, max_batch_bytes=20_000))
    assert err.value.code == "OUT-004"
    assert [r.status for r in endpoint.requests()].count(401) == 1
    assert_no_token(str(err.value), caplog.text)


def test_other_4xx_fails_with_out_005_naming_the_request(pki):
    with DevoHttpEndpoint(pki, token=TOKEN, max_body=1000) as endpoint:
        with pytest.raises(CollectorError) as err:
            run([EventBatch(TABLE, [os.urandom(600).hex().encode()] * 2)],
                sink(pki, endpoint, max_attempts=3))
        assert [r.status for r in endpoint.requests()] == [413]
    message = err.value.message
    assert err.value.code == "OUT-005"
    assert "HTTP 413 Request Entity Too Large" in message
    assert f"table {TABLE} (request 1/1: 2 events, " in message and "bytes gzip" in message
    assert_no_token(message)


def test_endpoint_down_fails_with_out_001(pki, endpoint):
    t = target(pki, endpoint)
    endpoint.stop()
    with pytest.raises(CollectorError) as err:
        run(events(10), WriteToDevoHttp(t, max_attempts=2, retry_delay=0.02))
    assert err.value.code == "OUT-001"
    assert f"127.0.0.1:{endpoint.port}" in err.value.message
    assert "2 attempts" in err.value.message


def test_server_certificate_from_another_ca_is_refused(pki, endpoint, tmp_path):
    other = make_test_pki(tmp_path / "other")
    t = DevoHttpTarget(endpoint.url, "d", TOKEN, "h", str(other.ca_cert))
    with pytest.raises(CollectorError) as err:
        run(events(10), WriteToDevoHttp(t, max_attempts=2, retry_delay=0.02))
    assert err.value.code == "OUT-001"
    assert "CERTIFICATE_VERIFY_FAILED" in err.value.message or "certificate" in err.value.message
    assert endpoint.requests() == []
    # Nor does the system's trust store know the test CA.
    with pytest.raises(CollectorError):
        run(events(10), WriteToDevoHttp(DevoHttpTarget(endpoint.url, "d", TOKEN, "h"),
                                        max_attempts=1))


# ---------------------------------------------------------------------------- faults


def test_5xx_is_retried_then_succeeds(pki, endpoint, caplog):
    caplog.set_level(logging.WARNING)
    first = endpoint.add_fault(AnswerStatus(503, times=3))
    second = endpoint.add_fault(AnswerStatus(500, times=2, every=2))
    sent = batches(20, 1500)  # five flushes
    run(sent, sink(pki, endpoint, max_attempts=6))
    assert (first.hits, second.hits) == (3, 2)
    check_nothing_lost(endpoint, sent)  # a 5xx records nothing: exactly once
    statuses = collections.Counter(r.status for r in endpoint.requests())
    assert (statuses[503], statuses[500]) == (3, 2)
    assert "OUT-002" in caplog.text and "HTTP 503" in caplog.text
    assert_no_token(caplog.text)


def test_always_503_fails_with_out_002_after_the_attempts(pki, endpoint):
    endpoint.add_fault(AnswerStatus(503, times=1000))
    with pytest.raises(CollectorError) as err:
        run(events(30), sink(pki, endpoint, max_attempts=3))
    assert err.value.code == "OUT-002"
    assert "3 attempts" in err.value.message and "HTTP 503" in err.value.message
    assert [r.status for r in endpoint.requests()] == [503] * 3
    assert_no_token(err.value.message)


def test_resets_mid_request_lose_nothing_and_duplicate_nothing(pki):
    """Eight resets at different depths into requests of about 220 KB (three per flush),
    some requests of a flush acknowledged before the crash: nothing lost, nothing sent
    twice."""
    sent = batches(40, 1500)
    depths = (1, 150_000, 60_000, 20_000, 200_000, 90_000, 120_000, 5_000)
    with DevoHttpEndpoint(pki, token=TOKEN, rcvbuf=RCVBUF) as endpoint:
        fault = endpoint.add_fault(ResetMidRequest(depths, times=8, every=2))
        run(sent, sink(pki, endpoint, max_attempts=8, max_request_bytes=400_000))
        assert fault.hits == 8
        check_nothing_lost(endpoint, sent, max_duplicates=0)
        assert endpoint.connections() >= 9  # a new connection after each reset


@pytest.mark.parametrize("reset_after", [0.01, 0.1, 0.5])
def test_endpoint_that_closes_first_and_resets_later_loses_nothing(pki, reset_after):
    """Three crashes per run: the endpoint's FIN arrives while the body is still on its
    way (its receive buffer is small), it stops reading and resets later."""
    sent = batches(24, 1500)
    with DevoHttpEndpoint(pki, token=TOKEN, rcvbuf=RCVBUF) as endpoint:
        faults = [endpoint.add_fault(CloseFirst(after_bytes=depth, reset_after=reset_after,
                                                times=1, every=2))
                  for depth in (100_000, 300_000, 450_000)]
        run(sent, sink(pki, endpoint, max_attempts=8))
        assert [f.hits for f in faults] == [1, 1, 1]
        check_nothing_lost(endpoint, sent, max_duplicates=0)


def test_slow_endpoint_with_a_small_buffer_gets_everything_once(pki):
    """A slow reader is not a fault: the sink waits while the endpoint makes progress."""
    sent = batches(6, 1500)
    with DevoHttpEndpoint(pki, token=TOKEN, rcvbuf=64 * 1024, read_delay=0.002) as endpoint:
        run(sent, sink(pki, endpoint, timeout=5.0, max_attempts=1))
        check_nothing_lost(endpoint, sent, max_duplicates=0)
        assert {r.status for r in endpoint.requests()} == {200}


# DoFns run in this process on the DirectRunner, but are pickled: they find the
# endpoint through this.
_KILL: dict = {}


class _KillEndpointAt(beam.DoFn):
    """Passes batches through; before the ones named, kills the endpoint and restarts it."""

    def __init__(self, prefixes: tuple[bytes, ...]) -> None:
        self.prefixes = prefixes

    def process(self, element):
        if element.messages[0].startswith(self.prefixes):
            _KILL["endpoint"].kill()
            _KILL["endpoint"].start()
            _KILL["kills"] += 1
        yield element


def test_endpoint_killed_outright_mid_stream_loses_nothing(pki):
    """A reset with no warning, three times in one stream."""
    sent = batches(24, 1500)
    with DevoHttpEndpoint(pki, token=TOKEN, rcvbuf=RCVBUF) as endpoint:
        _KILL.update(endpoint=endpoint, kills=0)
        run(sent, sink(pki, endpoint), middle=_KillEndpointAt((b"b0005 ", b"b0012 ", b"b0019 ")))
        assert _KILL["kills"] == 3
        # A kill between recording a request and answering it duplicates that request:
        # at most the flushes in flight.
        check_nothing_lost(endpoint, sent, max_duplicates=3 * 2 * PER_FLUSH)


# ---------------------------------------------------------------------------- end to end


def http_config(aws, endpoint, pki, queue: str, workdir: Path, token: str = TOKEN):
    raw = embedded_config(aws.endpoint_url, None, pki, workdir, queue, http_url=endpoint.url)
    return raw, parse_config(raw, workdir, environ={**ENV, HTTP_TOKEN_VAR: token})


def received_all(endpoint, objects: dict[int, list[str]]) -> None:
    received = collections.Counter(endpoint.events(TABLE))
    expected = collections.Counter(line for lines in objects.values() for line in lines)
    assert not expected - received, f"{sum((expected - received).values())} events lost"


def test_collector_delivers_everything_through_http_faults(embedded_aws, pki, tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    objects = seed_objects(embedded_aws, bucket, n=12, m=3000)
    with DevoHttpEndpoint(pki, token=TOKEN, rcvbuf=RCVBUF) as endpoint:
        faults = [endpoint.add_fault(AnswerStatus(503, times=2, every=2)),
                  endpoint.add_fault(ResetMidRequest((2_000, 40_000), times=2, every=2)),
                  endpoint.add_fault(CloseFirst(30_000, reset_after=0.05, times=1))]
        _, config = http_config(embedded_aws, endpoint, pki, queue, tmp_path)
        result = run_collector(config, [], idle_seconds=2)
        received_all(endpoint, objects)
        # Each crash loses its request whole and nothing else: no duplicates.
        assert endpoint.total() == 12 * 3000
        assert sum(f.hits for f in faults) >= 4
    assert queue_depth(embedded_aws, url) == 0
    assert result.rows == [("non-cloudwatch-logs", "us-east-1", TABLE, 12 * 3000, 0)]


def run_cli(config_path: Path, token: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **ENV, HTTP_TOKEN_VAR: token}
    return subprocess.run(
        [sys.executable, "-m", "awscollector", "run", "--config", str(config_path),
         "--until-idle", "--idle-seconds", "2"],
        capture_output=True, text=True, timeout=300, env=env)


def test_bad_token_fails_the_run_with_out_004_and_deletes_nothing(embedded_aws, pki, tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    objects = seed_objects(embedded_aws, bucket, n=4, m=200)
    depth = queue_depth(embedded_aws, url)
    with DevoHttpEndpoint(pki, token="another-token") as endpoint:
        raw, _ = http_config(embedded_aws, endpoint, pki, queue, tmp_path)
        path = tmp_path / "collector.yaml"
        path.write_text(yaml.safe_dump(raw))
        done = run_cli(path, TOKEN)
        assert done.returncode == 1, done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("OUT-004 "), last
        assert "token!***" in last
        assert_no_token(done.stdout, done.stderr)
        assert endpoint.total() == 0
    assert queue_depth(embedded_aws, url) == depth
    # A healthy endpoint: a second run delivers everything.
    with DevoHttpEndpoint(pki, token=TOKEN, port=endpoint.port) as endpoint:
        done = run_cli(path, TOKEN)
        assert done.returncode == 0, done.stderr
        received_all(endpoint, objects)
    assert queue_depth(embedded_aws, url) == 0


def test_endpoint_always_503_fails_the_run_with_out_002_and_deletes_nothing(
        embedded_aws, pki, tmp_path):
    bucket, queue, url = setup_queue(embedded_aws)
    objects = seed_objects(embedded_aws, bucket, n=3, m=100)
    depth = queue_depth(embedded_aws, url)
    with DevoHttpEndpoint(pki, token=TOKEN) as endpoint:
        endpoint.add_fault(AnswerStatus(503, times=10_000))
        _, config = http_config(embedded_aws, endpoint, pki, queue, tmp_path)
        with pytest.raises(CollectorError) as err:
            run_collector(config, [], idle_seconds=2)
        assert err.value.code == "OUT-002"
        assert "HTTP 503" in err.value.message
        assert endpoint.total() == 0
        assert queue_depth(embedded_aws, url) == depth
        endpoint.clear_faults()
        run_collector(config, [], idle_seconds=2)
        received_all(endpoint, objects)
    assert queue_depth(embedded_aws, url) == 0


def test_demo_with_the_http_output(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "awscollector", "demo", "--out", str(out),
                           "--output", "http"], capture_output=True, text=True, timeout=180,
                          cwd=tmp_path)
    check_demo_run(done, out)  # every source, table by table, in <out>/<table>.log
    total = next(line for line in done.stdout.splitlines() if line.startswith("total: "))
    delivered = int(total.split()[1])
    assert f"the HTTP endpoint received {delivered} events: {out}/<table>.log" in done.stdout
    assert "the relay received" not in done.stdout
