"""The embedded Devo relay and its throwaway PKI, over real sockets and real TLS,
driven by devo-sdk's real Sender."""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from devo.sender import DevoSenderException, Sender, SenderConfigSSL, SenderConfigTCP

from awscollector.embedded.certs import TestPki, make_test_pki
from awscollector.embedded.relay import MAX_BAD_LINES, DevoRelay, parse_lines


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def relay(pki: TestPki):
    with DevoRelay(pki) as r:
        yield r


def ssl_sender(pki: TestPki, address: tuple[str, int], rogue: bool = False, **kw) -> Sender:
    key, cert = (
        (pki.rogue_client_key, pki.rogue_client_cert)
        if rogue
        else (pki.client_key, pki.client_cert)
    )
    kw.setdefault("check_hostname", False)
    config = SenderConfigSSL(
        address=address, key=str(key), cert=str(cert), chain=str(pki.ca_cert), **kw
    )
    return Sender(config=config, timeout=10)


def client_socket(pki: TestPki, address: tuple[str, int]) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    ctx.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    raw = socket.create_connection(address, timeout=5)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


# -- PKI


def test_pki_files_and_chain(tmp_path: Path) -> None:
    pki = make_test_pki(tmp_path / "certs")
    assert pki.directory == tmp_path / "certs"
    for key in (pki.server_key, pki.client_key, pki.rogue_client_key):
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    server, ca_again = x509.load_pem_x509_certificates(pki.server_cert.read_bytes())
    assert ca_again == ca  # the relay presents its whole chain
    client = x509.load_pem_x509_certificate(pki.client_cert.read_bytes())
    rogue = x509.load_pem_x509_certificate(pki.rogue_client_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    client.verify_directly_issued_by(ca)
    with pytest.raises(ValueError):
        rogue.verify_directly_issued_by(ca)  # another CA's name: not ours
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert server.not_valid_before_utc < client.not_valid_after_utc


# -- parsing


def test_parse_lines_forms() -> None:
    lines = [
        b"<14>Nov 27 13:07:57 host-1 my.app.a: plain",
        b"<14>Jan  1 00:00:00 host my.app.b: key: value: more",  # one-digit day, two spaces
        b"<134>Jan  1 00:00:00 host my.app.b: ",  # empty message
        "<14>Jan  1 00:00:00 host my.app.c: caf\u00e9 \u2603".encode(),
        b"",
        b"no syslog here",
        b"<14>2024-01-01T00:00:00Z host my.app.a: iso timestamp",
        b"<14>Jan  1 00:00:00 host tag with spaces: x",
        b"<14>Jan  1 00:00:00 host my.app.a",
        b"<x>Jan  1 00:00:00 host my.app.a: bad pri",
    ]
    by_tag, bad = parse_lines(lines)
    assert by_tag == {
        b"my.app.a": [b"plain"],
        b"my.app.b": [b"key: value: more", b""],
        b"my.app.c": ["caf\u00e9 \u2603".encode()],
    }
    assert bad == lines[4:]


# -- devo-sdk's Sender over TLS


def test_sender_events_recorded_exactly(pki: TestPki, relay: DevoRelay) -> None:
    tags = ["cloud.aws.vpc.flow", "cloud.aws.cloudtrail.events", "my.app.unicode"]
    sent: dict[str, list[str]] = {tag: [] for tag in tags}
    sender = ssl_sender(pki, relay.address)
    for i in range(3000):
        tag = tags[i % 3]
        text = "caf\u00e9 \u2603 \U0001f600" if tag == "my.app.unicode" else "ascii"
        msg = f"event {i}: k=v: {text}"
        sender.send(tag=tag, msg=msg)
        sent[tag].append(msg)
    sender.close()
    # Counts are complete when close() returns: the relay closes only after reading all.
    assert relay.counts() == {tag: len(msgs) for tag, msgs in sent.items()}
    assert relay.total() == 3000
    for tag, msgs in sent.items():
        assert relay.events(tag) == msgs
    assert relay.bad_lines() == []
    assert relay.connections() == 1
    assert relay.refused() == 0


def test_sender_bytes_and_explicit_date(pki: TestPki, relay: DevoRelay) -> None:
    sender = ssl_sender(pki, relay.address)
    sender.send(tag="my.app.dates", msg="default date")  # devo-sdk: "Jan  1 00:00:00"
    sender.send(tag="my.app.dates", msg="two-digit day", date="Nov 27 13:07:57")
    sender.send(tag=b"my.app.dates", msg=b"bytes message: \xc3\xa9")  # bytes: tag as bytes too
    sender.close()
    assert relay.events("my.app.dates") == ["default date", "two-digit day", "bytes message: é"]


class GatedRelay(DevoRelay):
    """Records nothing until its gate opens, to show that Sender.close() waits for it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()

    def _record(self, *args: Any) -> None:
        self.gate.wait(10)
        super()._record(*args)


def test_close_waits_for_relay_to_finish(pki: TestPki) -> None:
    with GatedRelay(pki) as relay:
        sender = ssl_sender(pki, relay.address)
        for i in range(500):  # small enough to sit in socket buffers while the gate is shut
            sender.send(tag="my.app.slow", msg=f"event {i} " + "x" * 100)
        threading.Timer(0.3, relay.gate.set).start()
        started = time.monotonic()
        sender.close()
        # close() returned only after the relay's EOF, which came after it recorded all.
        assert time.monotonic() - started >= 0.25
        assert relay.total() == 500


def test_concurrent_senders(pki: TestPki, relay: DevoRelay) -> None:
    def send(k: int) -> None:
        sender = ssl_sender(pki, relay.address)
        for i in range(1000):
            sender.send(tag=f"my.app.t{k % 2}", msg=f"{k}-{i}")
        sender.close()

    threads = [threading.Thread(target=send, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert relay.counts() == {"my.app.t0": 2000, "my.app.t1": 2000}
    assert relay.connections() == 4
    # Each connection's events keep their order.
    events = relay.events("my.app.t0")
    assert [e for e in events if e.startswith("0-")] == [f"0-{i}" for i in range(1000)]


def test_hostname_check_and_verify_config(pki: TestPki, relay: DevoRelay) -> None:
    # SAN IP:127.0.0.1 satisfies hostname checking; the presented chain satisfies
    # devo-sdk's verify_config (which probes with a handshake of its own, without a
    # client certificate: the relay counts that one as refused).
    sender = ssl_sender(pki, relay.address, check_hostname=True, verify_config=True)
    sender.send(tag="my.app.checked", msg="ok")
    sender.close()
    assert relay.events("my.app.checked") == ["ok"]


def test_rogue_client_refused(pki: TestPki, relay: DevoRelay) -> None:
    sender: Sender | None = None
    with pytest.raises(DevoSenderException, match="unknown ca"):
        # With TLS 1.3 the client finishes its side of the handshake before the relay
        # checks its certificate: the Sender learns of the relay's alert on a later send.
        sender = ssl_sender(pki, relay.address, rogue=True)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            sender.send(tag="my.app.rogue", msg="should not arrive")
            time.sleep(0.01)
    if sender is not None:
        sender.close()  # devo-sdk logs "Error closing connection": the socket is dead
    assert wait_until(lambda: relay.refused() == 1)
    assert relay.total() == 0
    assert relay.connections() == 0


def test_client_without_certificate_refused(pki: TestPki, relay: DevoRelay) -> None:
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    with ctx.wrap_socket(socket.create_connection(relay.address), server_hostname="localhost") as s:
        s.settimeout(5)
        with pytest.raises((ssl.SSLError, OSError)):
            s.sendall(b"<14>Jan  1 00:00:00 h my.app.x: no cert\n")
            s.recv(1)  # the relay's alert arrives here
    assert wait_until(lambda: relay.refused() == 1)
    assert relay.total() == 0


# -- plain TCP


def test_plain_tcp_sender() -> None:
    with DevoRelay() as relay:
        sender = Sender(config=SenderConfigTCP(address=relay.address), timeout=10)
        for i in range(500):
            sender.send(tag="my.app.tcp", msg=f"tcp {i}")
        sender.close()
        assert relay.counts() == {"my.app.tcp": 500}
        assert relay.events("my.app.tcp")[-1] == "tcp 499"


def test_partial_lines_across_reads() -> None:
    with DevoRelay() as relay:
        with socket.create_connection(relay.address) as s:
            s.sendall(b"<14>Jan  1 00:00:00 h my.app.split: fi")
            time.sleep(0.05)  # the relay reads the first half on its own
            s.sendall(b"rst\n<14>Jan  1 00:00:00 h my.app.split: no newline at the end")
            s.shutdown(socket.SHUT_WR)
            assert s.recv(1) == b""  # the relay's EOF, after recording
        assert relay.events("my.app.split") == ["first", "no newline at the end"]


def test_bad_lines_bounded() -> None:
    with DevoRelay() as relay:
        with socket.create_connection(relay.address) as s:
            s.sendall(b"garbage\n" * (MAX_BAD_LINES + 50))
            s.sendall(b"<14>Jan  1 00:00:00 h my.app.ok: ok\n")
            s.shutdown(socket.SHUT_WR)
            assert s.recv(1) == b""
        assert len(relay.bad_lines()) == MAX_BAD_LINES
        assert relay.bad_lines()[0] == b"garbage"
        assert relay.counts() == {"my.app.ok": 1}


def test_keep_events_false_counts_only() -> None:
    with DevoRelay(keep_events=False) as relay:
        sender = Sender(config=SenderConfigTCP(address=relay.address), timeout=10)
        for i in range(100):
            sender.send(tag="my.app.count", msg=f"{i}")
        sender.close()
        assert relay.counts() == {"my.app.count": 100}
        with pytest.raises(RuntimeError):
            relay.events("my.app.count")


# -- files


def test_out_dir_files(pki: TestPki, tmp_path: Path) -> None:
    out = tmp_path / "out"
    relay = DevoRelay(pki, out_dir=out).start()
    sender = ssl_sender(pki, relay.address)
    sender.send(tag="cloud.aws.vpc.flow", msg="2 123 eni-1 ACCEPT OK")
    sender.send(tag="cloud.aws.cloudtrail.events", msg='{"eventName": "x: y", "u": "\u00e9"}')
    sender.send(tag="cloud.aws.vpc.flow", msg="2 123 eni-2 REJECT OK")
    sender.send(tag="../escape", msg="kept inside out_dir")
    sender.close()
    relay.stop()
    assert (out / "cloud.aws.vpc.flow.log").read_text() == (
        "2 123 eni-1 ACCEPT OK\n2 123 eni-2 REJECT OK\n"
    )
    assert (out / "cloud.aws.cloudtrail.events.log").read_text(encoding="utf-8") == (
        '{"eventName": "x: y", "u": "\u00e9"}\n'
    )
    assert (out / ".._escape.log").read_text() == "kept inside out_dir\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# -- lifecycle


def test_stop_then_start_same_port(pki: TestPki) -> None:
    relay = DevoRelay(pki).start()
    port = relay.port
    sender = ssl_sender(pki, relay.address)
    sender.send(tag="my.app.life", msg="before")
    sender.close()
    relay.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(relay.address, timeout=2).close()
    relay.start()
    assert relay.port == port
    sender = ssl_sender(pki, relay.address)
    sender.send(tag="my.app.life", msg="after")
    sender.close()
    relay.stop()
    assert relay.events("my.app.life") == ["before", "after"]
    assert relay.connections() == 2


def test_stop_resets_a_client_that_never_closes(pki: TestPki) -> None:
    relay = DevoRelay(pki).start()
    sock = client_socket(pki, relay.address)
    sock.sendall(b"<14>Jan  1 00:00:00 h my.app.idle: read before stop\n")
    assert relay.wait_for_total(1, 5)
    started = time.monotonic()
    relay.stop(timeout=0.2)
    assert time.monotonic() - started < 2
    assert relay.events("my.app.idle") == ["read before stop"]
    sock.close()


def test_kill_resets_client_mid_stream(pki: TestPki) -> None:
    relay = DevoRelay(pki, keep_events=False).start()
    port = relay.port
    sock = client_socket(pki, relay.address)
    line = b"<14>Jan  1 00:00:00 h my.app.kill: " + b"x" * 120 + b"\n"
    sock.sendall(line * 100)
    assert relay.wait_for_total(100, 5)

    relay.kill()
    killed_at = time.monotonic()
    with pytest.raises(OSError):  # ConnectionResetError, BrokenPipeError or ssl.SSLError
        while time.monotonic() - killed_at < 5:
            sock.sendall(line * 100)
    assert time.monotonic() - killed_at < 2
    sock.close()
    recorded = relay.total()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(relay.address, timeout=2).close()

    # Back on the same port, as a restarted relay would be.
    relay.start()
    assert relay.port == port
    sender = ssl_sender(pki, relay.address)
    sender.send(tag="my.app.kill", msg="after restart")
    sender.close()
    assert relay.total() == recorded + 1
    relay.stop()


def test_reset_and_wait_for_total() -> None:
    with DevoRelay() as relay:
        assert relay.wait_for_total(1, 0.05) is False
        sender = Sender(config=SenderConfigTCP(address=relay.address), timeout=10)
        sender.send(tag="my.app.r", msg="one")
        assert relay.wait_for_total(1, 5)
        sender.close()
        relay.reset()
        assert (relay.counts(), relay.total(), relay.connections()) == ({}, 0, 0)
        assert relay.events("my.app.r") == []


def test_only_loopback() -> None:
    with pytest.raises(ValueError):
        DevoRelay(host="0.0.0.0")
    with pytest.raises(ValueError):
        DevoRelay(host="example.com")
    assert DevoRelay(host="localhost").host == "127.0.0.1"
