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

import fcntl
import ipaddress
import select
import socket
import ssl
import struct
import termios
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .certs import TestPki
from .recorder import MAX_BAD_LINES, EventRecorder

__all__ = ["MAX_BAD_LINES", "CloseFirst", "DevoRelay", "parse_lines"]

CHUNK = 1 << 20  # recorded at once: one lock and one parse call per chunk
HANDSHAKE_TIMEOUT = 10.0
JOIN_TIMEOUT = 2.0
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


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
class CloseFirst:
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

    def watches(self) -> bool:
        """Whether it watches the connection that just started."""
        if self.hits >= self.times:
            return False
        self.seen += 1
        return self.seen % self.every == 0

    def depth(self) -> int:
        depths = self.after_bytes if isinstance(self.after_bytes, tuple) else (self.after_bytes,)
        return depths[self.hits % len(depths)]


class _Conn:
    """One accepted connection; `sock` becomes the TLS socket once wrapped."""

    __slots__ = ("sock", "thread", "aborted", "fault")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.thread: threading.Thread | None = None
        self.aborted = False
        self.fault: CloseFirst | None = None


class DevoRelay:
    """A Devo relay on loopback: TLS with client certificates, or plain TCP without a PKI.

    With out_dir, each message is also appended to `out_dir/<tag>.log`, one line per
    event (characters other than letters, digits, ".", "_" and "-" in a tag become "_");
    the files are flushed and closed by stop() and kill(). keep_events=False keeps
    counts only, for benchmarks.
    """

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
        if host == "localhost":
            host = "127.0.0.1"
        ip = ipaddress.ip_address(host)  # a name other than localhost is refused here too
        if not ip.is_loopback:
            raise ValueError(f"the embedded relay only binds loopback, not {host}")
        self.host = host
        self.port = port
        self._family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        self._context = _server_context(pki) if pki is not None else None
        self._keep_events = keep_events
        self.answer_close_notify = answer_close_notify
        self._rcvbuf = rcvbuf
        self.read_delay = read_delay  # seconds between reads of at most 64 KiB: a slow relay
        self.answer_delay = answer_delay  # seconds before answering a close: a hung relay
        self._faults: list[CloseFirst] = []
        self._confirmed = {"close_notify": 0, "close": 0}

        self._lock = threading.Lock()
        # One lock for the events and the connections; the condition is notified on new
        # events and closed connections.
        self._recorder = EventRecorder(out_dir, keep_events, self._lock)
        self._cond = self._recorder.cond
        self._connections = 0
        self._refused = 0
        self._open: set[_Conn] = set()

        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._closing = threading.Event()

    # -- lifecycle

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def start(self) -> DevoRelay:
        """Listen (on the same port as before, after a stop or kill); listening on return."""
        with self._lock:
            if self._listener is not None:
                return self
            listener = socket.socket(self._family, socket.SOCK_STREAM)
            try:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if self._rcvbuf:  # before listen(): accepted sockets inherit it
                    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._rcvbuf)
                listener.bind((self.host, self.port))
                listener.listen(128)
                # A timeout so the accept loop notices stop() even where shutdown()
                # does not wake a blocked accept().
                listener.settimeout(0.2)
            except OSError:
                listener.close()
                raise
            self.port = listener.getsockname()[1]
            self._listener = listener
            self._closing = threading.Event()
            self._accept_thread = threading.Thread(
                target=self._accept_loop,
                args=(listener, self._closing),
                name=f"devo-relay-accept-{self.port}",
                daemon=True,
            )
            self._accept_thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, let open connections read to their EOF, then close files.

        Connections still open after `timeout` seconds (a client that never
        half-closes) are reset, so stop() always returns.
        """
        self._close_listener()
        with self._cond:
            self._cond.wait_for(lambda: not self._open, timeout)
        self._abort_open()
        self._recorder.close_files()

    def kill(self) -> None:
        """Crash: close the listener and reset every open connection, discarding unread data."""
        self._close_listener()
        self._abort_open()
        self._recorder.close_files()

    def __enter__(self) -> DevoRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what was received

    def counts(self) -> dict[str, int]:
        return self._recorder.counts()

    def total(self) -> int:
        return self._recorder.total()

    def events(self, tag: str) -> list[str]:
        """Messages received for tag, in arrival order."""
        if not self._keep_events:
            raise RuntimeError("this relay was made with keep_events=False: only counts are kept")
        return self._recorder.events(tag)

    def bad_lines(self) -> list[bytes]:
        """Lines that did not parse (the first MAX_BAD_LINES of them)."""
        return self._recorder.bad_lines()

    def connections(self) -> int:
        """Connections accepted so far (for TLS: handshake completed)."""
        with self._lock:
            return self._connections

    def refused(self) -> int:
        """TLS handshakes that failed, e.g. a client certificate from another CA."""
        with self._lock:
            return self._refused

    def wait_for_total(self, n: int, timeout: float) -> bool:
        """Wait until at least n events were recorded; False on timeout."""
        return self._recorder.wait_for_total(n, timeout)

    def add_fault(self, fault: CloseFirst) -> CloseFirst:
        """Arm a fault for the connections that start from now on."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def confirmations(self) -> dict[str, int]:
        """Connections that ended with the client's close read in full, by how the relay
        answered: "close_notify" (its own close_notify) or "close" (a bare close)."""
        with self._lock:
            return dict(self._confirmed)

    def reset(self) -> None:
        """Forget events and counters (files in out_dir are left as they are)."""
        self._recorder.reset()
        with self._lock:
            self._connections = 0
            self._refused = 0

    # -- internals

    def _accept_loop(self, listener: socket.socket, closing: threading.Event) -> None:
        while not closing.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # listener shut down
            sock.settimeout(None)
            conn = _Conn(sock)
            conn.thread = threading.Thread(
                target=self._serve, args=(conn,), name="devo-relay-conn", daemon=True
            )
            with self._lock:
                self._open.add(conn)
            conn.thread.start()

    def _serve(self, conn: _Conn) -> None:
        try:
            if self._context is not None and not self._handshake(conn):
                return
            with self._lock:
                self._connections += 1
                conn.fault = next((f for f in self._faults if f.watches()), None)
            if self._read(conn):
                self._answer_close(conn)
        finally:
            # Leave the open set before closing, so kill() never touches a closed socket.
            with self._cond:
                self._open.discard(conn)
                self._cond.notify_all()
            conn.sock.close()

    def _handshake(self, conn: _Conn) -> bool:
        assert self._context is not None
        with self._lock:
            if conn.aborted:
                return False
            conn.sock.settimeout(HANDSHAKE_TIMEOUT)
            # Wrapped under the lock so kill() always sees the socket that owns the fd.
            # suppress_ragged_eofs=False: a client's close_notify reads as EOF, a bare
            # TCP close raises, so the relay answers close_notify only to close_notify.
            conn.sock = self._context.wrap_socket(
                conn.sock, server_side=True, do_handshake_on_connect=False,
                suppress_ragged_eofs=False,
            )
        try:
            conn.sock.do_handshake()
        except OSError:  # ssl.SSLError, timeouts and resets alike
            with self._lock:
                if not conn.aborted:
                    self._refused += 1
            return False
        conn.sock.settimeout(None)
        return True

    def _read(self, conn: _Conn) -> bool:
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
        size = 65536 if self.read_delay else CHUNK
        depth = conn.fault.depth() if conn.fault is not None else 0
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
            if conn.fault is not None and read >= depth:
                self._close_first(conn, conn.fault)
                return False
            if self.read_delay:
                time.sleep(self.read_delay)
        if carry:
            self._record(conn, [carry])  # a last line without its newline
        return clean

    def _close_first(self, conn: _Conn, fault: CloseFirst) -> None:
        """Close our side without close_notify, stop reading, reset a little later."""
        try:
            socket.socket.shutdown(conn.sock, socket.SHUT_WR)  # the plain TCP FIN
        except OSError:
            return  # the client is gone already: not a crash of ours
        with self._lock:
            fault.hits += 1
        time.sleep(fault.reset_after)
        try:
            unread = struct.unpack("i", fcntl.ioctl(conn.sock.fileno(), termios.FIONREAD,
                                                    b"\0" * 4))[0]
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        except OSError:
            return
        with self._lock:
            fault.unread.append(unread)

    def _answer_close(self, conn: _Conn) -> None:
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

    def _record(self, conn: _Conn, lines: list[bytes]) -> None:
        by_tag, bad = parse_lines(lines)
        batch = {tag.decode("utf-8", "replace"): msgs for tag, msgs in by_tag.items()}
        self._recorder.record(batch, bad, valid=lambda: not conn.aborted)

    def _close_listener(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            thread, self._accept_thread = self._accept_thread, None
            closing = self._closing
        if listener is None:
            return
        closing.set()
        try:
            listener.shutdown(socket.SHUT_RDWR)  # wakes a blocked accept() on Linux
        except OSError:
            pass
        if thread is not None:
            thread.join(JOIN_TIMEOUT)
        listener.close()

    def _abort_open(self) -> None:
        """Reset every open connection: linger 0, then wake its reader, which closes it."""
        with self._lock:
            conns = list(self._open)
            for conn in conns:
                conn.aborted = True
                try:
                    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
                    # The plain socket's shutdown, also for a TLS socket: it wakes the
                    # reader blocked in recv() without touching the TLS state.
                    socket.socket.shutdown(conn.sock, socket.SHUT_RD)
                except OSError:
                    pass
        deadline = time.monotonic() + JOIN_TIMEOUT
        for conn in conns:
            if conn.thread is not None:
                conn.thread.join(max(0.0, deadline - time.monotonic()))


def _server_context(pki: TestPki) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile=str(pki.server_cert), keyfile=str(pki.server_key))
    ctx.load_verify_locations(cafile=str(pki.ca_cert))
    ctx.verify_mode = ssl.CERT_REQUIRED  # like Devo: no client certificate, no connection
    return ctx
