"""WriteToDevo against the embedded relay over real TLS with client certificates."""

from __future__ import annotations

import apache_beam as beam
import pytest

from awscollector.embedded.relay import CloseFirst, DevoRelay
from awscollector.errors import CollectorError, as_collector_error
from awscollector.io.delivery import DeliveryFailed
from awscollector.io.devo import (
    DevoTarget,
    EventBatch,
    SyslogTransport,
    WriteToDevo,
    encode_batch,
    syslog_header,
)

TABLES = ("cloud.aws.vpc.flow", "cloud.aws.cloudtrail.events", "my.app.test.table")

# DoFns run in this process on the DirectRunner; they find the relay through this.
_RELAYS: dict = {}


def target(pki, relay, cert=None, key=None) -> DevoTarget:
    return DevoTarget("127.0.0.1", relay.port, "SSL", str(pki.ca_cert),
                      str(cert or pki.client_cert), str(key or pki.client_key))


def events(n: int) -> list[tuple[str, str]]:
    return [(TABLES[i % len(TABLES)], f"event {i} with: colon and ünïcode") for i in range(n)]


def run(elements, sink: WriteToDevo, middle=None) -> None:
    try:
        with beam.Pipeline() as p:
            pcoll = p | beam.Create(elements, reshuffle=False)
            if middle is not None:
                pcoll = pcoll | beam.ParDo(middle)
            pcoll | sink
    except Exception as e:
        raise as_collector_error(e) from e


def test_events_of_several_tables_arrive_exactly_once_with_their_tags(pki, relay):
    sent = events(3000)
    run(sent, WriteToDevo(target(pki, relay), max_batch_bytes=20_000))
    assert relay.counts() == {t: 1000 for t in TABLES}
    for table in TABLES:
        assert relay.events(table) == [m for t, m in sent if t == table]


def test_event_batches_are_written_with_one_line_per_message(pki, relay):
    batches = [EventBatch("cloud.aws.vpc.flow", [f"line {b}-{i}".encode() for i in range(500)],
                          "non-cloudwatch-logs", "us-east-1") for b in range(4)]
    run(batches, WriteToDevo(target(pki, relay)))
    assert relay.events("cloud.aws.vpc.flow") == [f"line {b}-{i}" for b in range(4)
                                                  for i in range(500)]


def test_syslog_header_is_what_devo_sdk_writes():
    header = syslog_header("my.table", "host1", when=0)
    assert header.startswith(b"<14>")
    assert header.endswith(b" host1 my.table: ")
    assert len(header.split(b" host1")[0]) == len(b"<14>Jan  1 00:00:00")


@pytest.mark.parametrize("messages, payload", [
    ([], b"<14>h t: \n"),
    ([b"a"], b"<14>h t: a\n"),
    ([b"a", b"b"], b"<14>h t: a\n<14>h t: b\n"),
    ([b"a", b"", b"c d"], b"<14>h t: a\n<14>h t: \n<14>h t: c d\n"),
])
def test_encode_batch_writes_a_header_before_and_a_newline_after_each_message(
        messages, payload):
    before = list(messages)
    assert encode_batch(b"<14>h t: ", messages) == payload
    assert messages == before  # the caller's list is left as it was


@pytest.mark.parametrize("chunk_bytes", [1, 50, 1000, 1 << 20])
def test_a_flush_is_sent_in_chunks_that_together_are_its_whole_payload(pki, relay,
                                                                        chunk_bytes):
    transport = SyslogTransport(target(pki, relay), hostname="h")
    messages = [b"m" * (i % 7) + b"%d" % i for i in range(300)]
    payload = transport.prepare("t", messages)
    chunks = list(payload.chunks(chunk_bytes))
    assert b"".join(chunks) == encode_batch(syslog_header("t", "h"), messages)
    assert payload.size == len(b"".join(chunks))
    # About chunk_bytes each (one message at least), never a message cut in two.
    expected = {1: 300, 50: 300, 1000: -(-payload.size // 1000), 1 << 20: 1}
    assert len(chunks) == pytest.approx(expected[chunk_bytes], rel=0.1)
    assert all(chunk.endswith(b"\n") and chunk.startswith(b"<14>") for chunk in chunks)


def test_relay_down_at_start_fails_with_out_001(pki, relay):
    t = target(pki, relay)
    relay.stop()
    with pytest.raises(CollectorError) as err:
        run(events(10), WriteToDevo(t, max_attempts=2, retry_delay=0.05))
    assert err.value.code == "OUT-001"
    assert f"127.0.0.1:{relay.port}" in err.value.message


def test_untrusted_client_certificate_is_refused(pki, relay):
    t = target(pki, relay, pki.rogue_client_cert, pki.rogue_client_key)
    with pytest.raises(CollectorError) as err:
        run(events(10), WriteToDevo(t, max_attempts=2, retry_delay=0.05))
    assert err.value.code in ("OUT-001", "OUT-002")
    # TLS 1.3: the refusal comes as an alert after our side of the handshake is done,
    # and shows on the write as a reset or an EOF; the message names the real cause.
    assert "alert unknown ca" in err.value.message
    assert "client certificate" in err.value.message
    assert relay.total() == 0
    assert relay.refused() >= 1


class _KillRelayOnce(beam.DoFn):
    """Passes events through; at event `at` it kills the relay and brings it back."""

    def __init__(self, at: int) -> None:
        self.at = at

    def process(self, element):
        if element[1].startswith(f"event {self.at} "):
            relay = _RELAYS["relay"]
            relay.kill()
            relay.start()
        yield element


def test_relay_dropping_the_connection_mid_stream_loses_nothing(pki, relay):
    _RELAYS["relay"] = relay
    sent = events(6000)
    # Small batches: several flushes before the kill, several after it.
    run(sent, WriteToDevo(target(pki, relay), max_batch_bytes=30_000, retry_delay=0.05),
        middle=_KillRelayOnce(at=3100))
    received = [(t, m) for t in TABLES for m in relay.events(t)]
    missing = set(sent) - set(received)
    assert not missing, f"{len(missing)} events lost"
    # Duplicates are allowed (at least once) but bounded by one batch re-sent.
    assert len(received) - len(sent) < 1000
    assert relay.connections() >= 2


def test_plain_tcp_for_testing(relay_tcp):
    sent = events(100)
    run(sent, WriteToDevo(DevoTarget("127.0.0.1", relay_tcp.port, "TCP")))
    assert relay_tcp.total() == 100


@pytest.fixture
def relay_tcp():
    from awscollector.embedded.relay import DevoRelay

    with DevoRelay(None) as r:
        yield r


# -- TLS session resumption: a connection per flush, a full handshake only for the first


def _deliver(transport: SyslogTransport, messages: list[bytes]) -> str:
    receipt = transport.deliver([transport.prepare("my.app.test.table", messages)])
    receipt.settle()
    return receipt.how


def test_flushes_after_the_first_resume_the_tls_session_and_are_still_confirmed(pki, relay):
    transport = SyslogTransport(target(pki, relay), hostname="h")
    hows = [_deliver(transport, [f"flush {n} event {i}".encode() for i in range(2000)])
            for n in range(3)]
    # Every flush confirmed by the relay's close_notify, as without resumption.
    assert hows == ["close_notify"] * 3
    assert relay.events("my.app.test.table") == [f"flush {n} event {i}" for n in range(3)
                                                 for i in range(2000)]
    assert transport.handshakes == {"full": 1, "resumed": 2}
    # The relay saw it too: two of its handshakes resumed a session it had issued.
    assert relay._context.session_stats()["hits"] == 2


def test_a_relay_that_issues_no_session_tickets_gets_full_handshakes(pki, relay):
    relay._context.num_tickets = 0  # TLS 1.3: nothing to resume with
    transport = SyslogTransport(target(pki, relay), hostname="h")
    assert [_deliver(transport, [b"event %d" % n]) for n in range(3)] == ["close_notify"] * 3
    assert relay.events("my.app.test.table") == ["event 0", "event 1", "event 2"]
    assert transport.handshakes == {"full": 3, "resumed": 0}


def test_a_relay_that_refuses_the_offered_session_still_gets_the_flush(pki):
    # A restarted relay (or another one behind the same address) has other ticket keys:
    # the session offered is refused, the handshake is a full one, the flush confirmed.
    with DevoRelay(pki) as first:
        transport = SyslogTransport(target(pki, first), hostname="h")
        assert _deliver(transport, [b"before"]) == "close_notify"
        port = first.port
    with DevoRelay(pki, port=port) as second:
        assert _deliver(transport, [b"after"]) == "close_notify"
        assert _deliver(transport, [b"again"]) == "close_notify"
        assert second.events("my.app.test.table") == ["after", "again"]
        assert second._context.session_stats()["hits"] == 1
    assert transport.handshakes == {"full": 2, "resumed": 1}


def test_after_a_failed_flush_the_next_connection_makes_a_full_handshake(pki, relay):
    transport = SyslogTransport(target(pki, relay), hostname="h", timeout=5)
    assert _deliver(transport, [b"one"]) == "close_notify"
    relay.add_fault(CloseFirst(after_bytes=1000, reset_after=0.05))
    with pytest.raises(DeliveryFailed):
        _deliver(transport, [b"x" * 100 for _ in range(1000)])
    assert _deliver(transport, [b"two"]) == "close_notify"
    assert transport.handshakes == {"full": 2, "resumed": 1}


def test_tls_without_a_client_certificate_is_refused_before_connecting_insecurely(pki, relay):
    transport = SyslogTransport(DevoTarget("127.0.0.1", relay.port, "SSL", str(pki.ca_cert)))
    with pytest.raises(DeliveryFailed) as err:
        _deliver(transport, [b"never sent"])
    assert err.value.code == "OUT-001"
    assert "needs chain, cert and key" in err.value.message
    assert relay.total() == 0
