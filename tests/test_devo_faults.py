"""Relays failing the way relays fail, and a sink that never confirms what was not read.

Every test streams events through ``WriteToDevo`` over real TLS with client
certificates to the embedded relay, with a fault armed in the relay, and checks
that no event is lost and that duplicates stay within what was in flight: each
crash re-sends at most the one flush it interrupted.

The main fault is a relay that closes its side first (a TCP FIN, no TLS
close_notify) while a flush is on its way, stops reading, and resets the
connection a little later, discarding what it had not read: a relay shutting down
with data unread, a load balancer dropping a dead backend. Its receive buffer is
small (256 KiB), as a busy relay's is, so a flush's tail sits in the collector's
own send buffer when the close arrives. Both kinds of relay are tested: one that
answers our close_notify with its own, and one that only closes.
"""

from __future__ import annotations

import collections

import apache_beam as beam
import pytest

from awscollector.embedded.relay import CloseFirst, DevoRelay
from awscollector.errors import CollectorError, as_collector_error
from awscollector.io.devo import DevoTarget, EventBatch, WriteToDevo

TABLE = "cloud.aws.vpc.flow"
MODES = {"close_notify": True, "bare_close": False}
BATCH_BYTES = 1 << 20
RCVBUF = 256 * 1024


def target(pki, relay) -> DevoTarget:
    return DevoTarget("127.0.0.1", relay.port, "SSL", str(pki.ca_cert), str(pki.client_cert),
                      str(pki.client_key))


def batches(n_batches: int, per_batch: int) -> list[EventBatch]:
    """Events of about 110 bytes each, each one unique and traceable."""
    pad = "x" * 80
    return [EventBatch(TABLE, [f"b{b:04d} e{i:06d} {pad}".encode() for i in range(per_batch)],
                       "non-cloudwatch-logs", "us-east-1") for b in range(n_batches)]


def write(elements, sink: WriteToDevo) -> None:
    try:
        with beam.Pipeline() as p:
            p | beam.Create(elements, reshuffle=False) | sink
    except Exception as e:
        raise as_collector_error(e) from e


# Events in one flush at most: a flush starts once its buffer counts BATCH_BYTES
# (message bytes plus 64 per message), so it holds at most that plus one more batch.
PER_FLUSH = BATCH_BYTES // (95 + 64) + 1500


def check_nothing_lost(relay: DevoRelay, sent: list[EventBatch], crashes: int,
                       per_flush: int = PER_FLUSH) -> int:
    """Every event arrived; duplicates at most one flush per crash. Returns duplicates."""
    expected = collections.Counter(m.decode() for b in sent for m in b.messages)
    received = collections.Counter(relay.events(TABLE))
    missing = expected - received
    assert not missing, f"{sum(missing.values())} events lost, e.g. {next(iter(missing))}"
    assert not relay.bad_lines(), "a line arrived garbled"
    duplicates = sum((received - expected).values())
    assert duplicates <= crashes * per_flush, (duplicates, crashes, per_flush)
    return duplicates


@pytest.mark.parametrize("reset_after", [0.01, 0.1, 0.5])
@pytest.mark.parametrize("mode", list(MODES))
def test_relay_that_closes_first_and_resets_later_loses_nothing(pki, mode, reset_after):
    """Three crashes per run, at different depths into a flush (the tail of the flush
    then fits in the relay's and our socket buffers, so our writes all succeed)."""
    sent = batches(24, 1500)  # about 5 MB on the wire: six flushes
    with DevoRelay(pki, answer_close_notify=MODES[mode], rcvbuf=RCVBUF) as relay:
        faults = [relay.add_fault(CloseFirst(after_bytes=depth, reset_after=reset_after,
                                             times=1, every=2))
                  for depth in (500_000, 750_000, 880_000)]
        write(sent, WriteToDevo(target(pki, relay), max_batch_bytes=BATCH_BYTES,
                                retry_delay=0.02, max_attempts=8))
        crashes = sum(f.hits for f in faults)
        check_nothing_lost(relay, sent, crashes)
        assert crashes == 3, "every armed crash happened mid-stream"
        assert relay.confirmations()["close_notify" if MODES[mode] else "close"] >= 4


@pytest.mark.parametrize("mode", list(MODES))
def test_crashes_repeated_on_every_other_connection(pki, mode):
    """Eight crashes in one stream, each after a different amount read: the fault the
    old sink took for a confirmation most often (a close that arrives while the
    flush's tail is still in our send buffer)."""
    sent = batches(60, 1500)
    depths = (200_000, 850_000, 800_000, 880_000, 100_000, 650_000, 750_000, 870_000)
    with DevoRelay(pki, answer_close_notify=MODES[mode], rcvbuf=RCVBUF) as relay:
        fault = relay.add_fault(CloseFirst(after_bytes=depths, reset_after=0.05, times=8,
                                           every=2))
        write(sent, WriteToDevo(target(pki, relay), max_batch_bytes=BATCH_BYTES,
                                retry_delay=0.02, max_attempts=12))
        check_nothing_lost(relay, sent, fault.hits)
        assert fault.hits == 8


@pytest.mark.parametrize("mode", list(MODES))
def test_slow_relay_with_a_small_buffer_gets_everything_once(pki, mode):
    """A slow reader is not a fault: the sink waits while the relay makes progress."""
    sent = batches(6, 1500)
    with DevoRelay(pki, answer_close_notify=MODES[mode], rcvbuf=64 * 1024,
                   read_delay=0.002) as relay:
        write(sent, WriteToDevo(target(pki, relay), max_batch_bytes=BATCH_BYTES,
                                timeout=5.0))
        assert relay.counts() == {TABLE: 6 * 1500}
        assert collections.Counter(relay.events(TABLE)).most_common(1)[0][1] == 1


# DoFns run in this process on the DirectRunner, but are pickled: they find the
# relay through this.
_KILL: dict = {}


class _KillRelayAt(beam.DoFn):
    """Passes batches through; before the ones named, kills the relay and restarts it."""

    def __init__(self, prefixes: tuple[bytes, ...]) -> None:
        self.prefixes = prefixes

    def process(self, element):
        if element.messages[0].startswith(self.prefixes):
            _KILL["relay"].kill()
            _KILL["relay"].start()
            _KILL["kills"] += 1
        yield element


def test_relay_killed_outright_mid_stream_loses_nothing(pki):
    """A reset with no close first, three times in one stream."""
    sent = batches(24, 1500)
    with DevoRelay(pki, rcvbuf=RCVBUF) as relay:
        _KILL.update(relay=relay, kills=0)
        try:
            with beam.Pipeline() as p:
                (p | beam.Create(sent, reshuffle=False)
                   | beam.ParDo(_KillRelayAt((b"b0005 ", b"b0012 ", b"b0019 ")))
                   | WriteToDevo(target(pki, relay), max_batch_bytes=BATCH_BYTES,
                                 retry_delay=0.02))
        except Exception as e:
            raise as_collector_error(e) from e
        assert _KILL["kills"] == 3
        # A kill may break the flush being sent and the one waiting for confirmation.
        check_nothing_lost(relay, sent, 2 * _KILL["kills"])


def test_relay_that_never_answers_fails_the_bundle_instead_of_assuming(pki):
    """Everything read, but no close and no close_notify: the flush is not confirmed."""
    with DevoRelay(pki, answer_delay=5.0) as relay:
        with pytest.raises(CollectorError) as err:
            write(batches(1, 100), WriteToDevo(target(pki, relay), max_attempts=2,
                                               retry_delay=0.01, timeout=1.0))
    assert err.value.code == "OUT-002"
    assert "2 attempts" in err.value.message


# -- end to end: S3+SQS through the collector to a failing relay


def _collect(embedded_aws, relay, pki, queue, workdir):
    from awscollector.pipelines.collector import run_collector
    from tests.vpc_helpers import config

    return run_collector(config(embedded_aws, relay, pki, queue, workdir), [], idle_seconds=2)


@pytest.mark.parametrize("mode", list(MODES))
def test_collector_deletes_only_messages_whose_events_the_relay_read(embedded_aws, pki,
                                                                     tmp_path, mode):
    from tests.vpc_helpers import queue_depth, seed_objects, setup_queue

    bucket, queue, url = setup_queue(embedded_aws)
    objects = seed_objects(embedded_aws, bucket, n=10, m=4000)
    expected = collections.Counter(line for lines in objects.values() for line in lines)
    with DevoRelay(pki, answer_close_notify=MODES[mode], rcvbuf=RCVBUF) as relay:
        # Three crashes in a row: the first flush is confirmed at its fourth attempt.
        fault = relay.add_fault(CloseFirst(after_bytes=(150_000, 400_000, 60_000),
                                           reset_after=0.2, times=3))
        _collect(embedded_aws, relay, pki, queue, tmp_path)
        received = collections.Counter(relay.events("cloud.aws.vpc.flow"))
    assert not expected - received, f"{sum((expected - received).values())} events lost"
    assert fault.hits == 3
    # A crash re-sends the flush it broke: at most 4 MiB of about 150-byte lines each.
    assert sum((received - expected).values()) <= fault.hits * (4 << 20) // 150
    assert queue_depth(embedded_aws, url) == 0


def test_run_that_cannot_deliver_deletes_nothing_and_the_next_run_delivers_all(
        embedded_aws, pki, tmp_path):
    from tests.vpc_helpers import queue_depth, seed_objects, setup_queue

    bucket, queue, url = setup_queue(embedded_aws)
    objects = seed_objects(embedded_aws, bucket, n=4, m=3000)
    expected = collections.Counter(line for lines in objects.values() for line in lines)
    with DevoRelay(pki, rcvbuf=RCVBUF) as relay:
        # Every connection: the relay reads a little, closes first, resets.
        fault = relay.add_fault(CloseFirst(after_bytes=20_000, reset_after=0.05, times=10**6))
        with pytest.raises(CollectorError) as err:
            _collect(embedded_aws, relay, pki, queue, tmp_path)
        assert err.value.code == "OUT-002"
        assert fault.hits >= 5
        assert relay.total() > 0  # it did read some of it: that is not delivery
        # Nothing deleted, all released: the four objects' messages and the s3:TestEvent.
        assert queue_depth(embedded_aws, url) == 5
        relay.clear_faults()
        _collect(embedded_aws, relay, pki, queue, tmp_path)
        received = collections.Counter(relay.events("cloud.aws.vpc.flow"))
    assert not expected - received
    assert queue_depth(embedded_aws, url) == 0
