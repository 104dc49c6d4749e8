"""An embedded Devo relay on loopback, as devo-sdk's Sender sees one.

It accepts TLS connections that present a client certificate signed by the test CA
(or plain TCP when no PKI is given), reads newline-terminated syslog lines
`<PRI>Mmm dd hh:mm:ss host tag: message`, records the messages per tag and never
writes anything back. When a client half-closes, the relay records everything it has
read and only then closes its side. How it closes is the relay's *mode*, since Devo's
relays are not known to do one or the other: by default it answers the client's TLS
close_notify with its own (the collector's strongest confirmation);
``answer_close_notify=False`` makes it close without one (a bare TCP FIN).

    pki = make_test_pki(tmp_path)
    with DevoRelay(pki, out_dir="demo-out") as relay:
        sender = Sender(SenderConfigSSL(address=relay.address, key=str(pki.client_key),
                                        cert=str(pki.client_cert), chain=str(pki.ca_cert)))
        sender.send(tag="my.app.test", msg="hello")
        sender.close()
        assert relay.counts() == {"my.app.test": 1}

kill() resets every open connection at once, as a crashed relay would; start() again
brings the relay back on the same port. Faults that relays really show can be armed:
``CloseFirst`` (close our side first, stop reading, reset later, discarding what
was not read), a small receive buffer (``rcvbuf``) and a slow reader (``read_delay``).
"""

from __future__ import annotations

import select
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from .certs import TestPki
from .recorder import MAX_BAD_LINES
from .server import (
    CHUNK,
    HANDSHAKE_TIMEOUT,
    SLOW_CHUNK,
    Conn,
    DepthFault,
    LoopbackServer,
    close_first,
)

__all__ = ["MAX_BAD_LINES", "CloseFirst", "DevoRelay", "parse_lines"]


def parse_lines(lines: list[bytes]) -> tuple[dict[bytes, list[bytes]], list[bytes]]:
    """Split syslog lines (without their newline) into messages per tag, and bad lines.

    A line is `<PRI>` then a 15-character BSD timestamp ("Nov 27 13:07:57",
    "Jan  1 00:00:00"), a space, a host, a space, the tag, ": " and the message,
    which may itself contain ": ". Bytes operations only: this runs once per event.
    """
    by_tag: dict[bytes, list[bytes]] = {}
    bad: list[bytes] = []
    for line in lines:
        gt = line.find(b">", 1, 5)  # PRI is at most 3 digits
        ts = gt + 1
        host = ts + 16
        if (
            gt < 2
            or line[0] != 0x3C  # "<"
            or len(line) <= host
            or line[host - 1] != 0x20  # space after the timestamp
            or line[ts + 3] != 0x20
            or line[ts + 6] != 0x20
            or line[ts + 9] != 0x3A  # ":"
            or line[ts + 12] != 0x3A
            or not line[1:gt].isdigit()
        ):
            bad.append(line)
            continue
        tag_start = line.find(b" ", host) + 1
        tag_end = line.find(b": ", tag_start) if tag_start > host + 1 else -1
        if tag_end <= tag_start or line.find(b" ", tag_start, tag_end) >= 0:
            bad.append(line)
            continue
        tag = line[tag_start:tag_end]
        msgs = by_tag.get(tag)
        if msgs is None:
            msgs = by_tag[tag] = []
        msgs.append(line[tag_end + 2 :])
    return by_tag, bad


@dataclass
class CloseFirst(DepthFault):
    """A relay that goes away with data unread, as one does when it shuts down or a load
    balancer drops it: after reading ``after_bytes`` of a connection it records the
    whole lines read so far, closes its side (a TCP FIN, no close_notify), stops
    reading, and ``reset_after`` seconds later resets the connection, discarding
    what it had not read.

    It watches every ``every``-th connection that completes its handshake after it
    was armed, until it has crashed ``times`` of them (a connection that ends before
    ``after_bytes`` is not a crash). ``after_bytes`` may be a tuple: the depth of
    each crash in turn. ``unread`` lists, per crash, the bytes the relay's socket
    held unread when it reset (what the reset discarded).
    """

    after_bytes: int | tuple[int, ...]
    reset_after: float = 0.1
    times: int = 1
    every: int = 1
    hits: int = 0
    seen: int = 0
    unread: list[int] = field(default_factory=list)


class DevoRelay(LoopbackServer):
    """A Devo relay on loopback: TLS with client certificates, or plain TCP without a PKI.

    With out_dir, each message is also appended to `out_dir/<tag>.log`, one line per
    event (characters other than letters, digits, ".", "_" and "-" in a tag become "_");
    the files are flushed and closed by stop() and kill(). keep_events=False keeps
    counts only, for benchmarks.
    """

    _what = "relay"
    _thread_name = "devo-relay"
    _client_certs = True
    # A client's close_notify reads as EOF, a bare TCP close raises, so the relay
    # answers close_notify only to close_notify.
    _suppress_ragged_eofs = False

    def __init__(
        self,
        pki: TestPki | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        out_dir: str | Path | None = None,
        keep_events: bool = True,
        answer_close_notify: bool = True,
        rcvbuf: int | None = None,
        read_delay: float = 0.0,
        answer_delay: float = 0.0,
    ) -> None:
        super().__init__(pki, host, port, out_dir, keep_events, rcvbuf, read_delay)
        self._keep_events = keep_events
        self.answer_close_notify = answer_close_notify
        self.answer_delay = answer_delay  # seconds before answering a close: a hung relay
        self._confirmed = {"close_notify": 0, "close": 0}

    # -- what was received

    def events(self, tag: str) -> list[str]:
        """Messages received for tag, in arrival order."""
        if not self._keep_events:
            raise RuntimeError("this relay was made with keep_events=False: only counts are kept")
        return self._recorder.events(tag)

    def bad_lines(self) -> list[bytes]:
        """Lines that did not parse (the first MAX_BAD_LINES of them)."""
        return self._recorder.bad_lines()

    def refused(self) -> int:
        """TLS handshakes that failed, e.g. a client certificate from another CA."""
        with self._lock:
            return self._refused

    def confirmations(self) -> dict[str, int]:
        """Connections that ended with the client's close read in full, by how the relay
        answered: "close_notify" (its own close_notify) or "close" (a bare close)."""
        with self._lock:
            return dict(self._confirmed)

    # -- internals

    def _converse(self, conn: Conn) -> None:
        with self._lock:
            fault = cast("CloseFirst | None", self._next_fault())  # all a relay arms
        if self._read(conn, fault):
            self._answer_close(conn)

    def _read(self, conn: Conn, fault: CloseFirst | None) -> bool:
        """Read to EOF in chunks of up to CHUNK bytes, recording whole lines per chunk.

        The socket is non-blocking so that, under load, many small writes (a TLS record
        per event, as devo-sdk's Sender sends them) are gathered into one chunk; poll()
        waits only when nothing is there. True when the client closed cleanly (TLS:
        with close_notify) after everything was read and recorded.
        """
        sock = conn.sock
        sock.setblocking(False)
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        size = SLOW_CHUNK if self.read_delay else CHUNK
        depth = fault.depth() if fault is not None else 0
        buf = memoryview(bytearray(size))
        filled = 0
        read = 0
        carry = b""
        eof = clean = False
        while not eof:
            try:
                n = sock.recv_into(buf[filled:])
                eof = clean = n == 0
                filled += n
                read += n
                if n and filled < size and not self.read_delay:
                    continue  # more may be there already
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                if not filled:
                    poller.poll()  # idle: wait for data, EOF, or kill()'s shutdown
                    continue
            except ssl.SSLEOFError:
                eof = True  # a TCP close without close_notify: no confirmation to give
            except OSError:
                return False  # reset by the client (or killed): the partial line is lost
            if conn.aborted:
                return False  # killed: what was read but not recorded is discarded
            if filled:
                lines = bytes(buf[:filled]).split(b"\n")
                filled = 0
                lines[0] = carry + lines[0]
                carry = lines.pop()
                if lines:
                    self._record(conn, lines)
            if fault is not None and read >= depth:
                close_first(conn.sock, fault, self._lock)
                return False
            if self.read_delay:
                time.sleep(self.read_delay)
        if carry:
            self._record(conn, [carry])  # a last line without its newline
        return clean

    def _answer_close(self, conn: Conn) -> None:
        """The client closed after sending everything and it was all recorded: answer."""
        if self.answer_delay:
            time.sleep(self.answer_delay)
        how = "close"
        if isinstance(conn.sock, ssl.SSLSocket) and self.answer_close_notify:
            try:
                conn.sock.setblocking(True)
                conn.sock.settimeout(HANDSHAKE_TIMEOUT)
                conn.sock = conn.sock.unwrap()  # our close_notify; the caller closes
                how = "close_notify"
            except OSError:
                return
        with self._lock:
            self._confirmed[how] += 1

    def _record(self, conn: Conn, lines: list[bytes]) -> None:
        by_tag, bad = parse_lines(lines)
        batch = {tag.decode("utf-8", "replace"): msgs for tag, msgs in by_tag.items()}
        self._recorder.record(batch, bad, valid=lambda: not conn.aborted)
