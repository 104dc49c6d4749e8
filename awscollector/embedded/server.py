"""What the embedded Devo relay and HTTP endpoint share: a loopback TCP/TLS server.

``LoopbackServer`` listens, accepts connections each in a thread, tracks the open ones,
stops gracefully or is killed (every open connection reset), and records events with
an ``EventRecorder``. A subclass speaks its protocol in ``_converse(conn)``. Faults count
what they watch with ``Fault``/``DepthFault``; ``close_first`` is the crash in which
the server closes its side with data unread.
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import ssl
import struct
import termios
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Protocol, Self, TypeVar

from .certs import TestPki
from .recorder import EventRecorder

CHUNK = 1 << 20  # recorded at once: one lock and one parse call per chunk
SLOW_CHUNK = 65536  # a read with read_delay set
HANDSHAKE_TIMEOUT = 10.0
JOIN_TIMEOUT = 2.0
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


class Fault:
    """Arming shared by faults: it watches every ``every``-th connection (or request)
    that starts after it was armed, until it has hit ``times`` of them."""

    times: int
    every: int
    hits: int
    seen: int

    def watches(self) -> bool:
        """Whether it watches the connection (or request) that just started."""
        if self.hits >= self.times:
            return False
        self.seen += 1
        return self.seen % self.every == 0


class DepthFault(Fault):
    """A fault that strikes ``after_bytes`` into a stream; a tuple gives each hit's in turn."""

    after_bytes: int | tuple[int, ...]

    def depth(self) -> int:
        depths = self.after_bytes if isinstance(self.after_bytes, tuple) else (self.after_bytes,)
        return depths[self.hits % len(depths)]


class ClosesFirst(Protocol):
    """What close_first needs of a fault."""

    hits: int
    reset_after: float
    unread: list[int]


F = TypeVar("F", bound=Fault)


def reset_on_close(sock: socket.socket) -> None:
    """Make close() send a reset (linger 0); a socket already gone is left alone."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    except OSError:
        pass


def close_first(sock: socket.socket, fault: ClosesFirst, lock: threading.Lock) -> None:
    """Close our side without close_notify, stop reading, reset ``reset_after`` s later.

    Counts a hit unless the client was gone already, and appends to ``fault.unread``
    what the socket held unread when it reset (what the reset discards).
    """
    try:
        socket.socket.shutdown(sock, socket.SHUT_WR)  # the plain TCP FIN, also under TLS
    except OSError:
        return  # the client is gone already: not a crash of ours
    with lock:
        fault.hits += 1
    time.sleep(fault.reset_after)
    try:
        unread = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0]
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    except OSError:
        return
    with lock:
        fault.unread.append(unread)


def server_context(pki: TestPki, client_certs: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile=str(pki.server_cert), keyfile=str(pki.server_key))
    if client_certs:  # like Devo's relays: no client certificate, no connection
        ctx.load_verify_locations(cafile=str(pki.ca_cert))
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class Conn:
    """One accepted connection; `sock` becomes the TLS socket once wrapped."""

    __slots__ = ("sock", "thread", "aborted", "idle")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.thread: threading.Thread | None = None
        self.aborted = False
        self.idle = False  # waiting for its next request: stop() need not wait for it


class LoopbackServer(ABC):
    """A TCP server on loopback, TLS with the test PKI or plain without one."""

    _what = "server"  # in the loopback error
    _thread_name = "devo-server"
    _client_certs = False
    _suppress_ragged_eofs = True

    def __init__(self, pki: TestPki | None, host: str, port: int, out_dir: str | Path | None,
                 keep_events: bool, rcvbuf: int | None, read_delay: float) -> None:
        if host == "localhost":
            host = "127.0.0.1"
        ip = ipaddress.ip_address(host)  # a name other than localhost is refused here too
        if not ip.is_loopback:
            raise ValueError(f"the embedded {self._what} only binds loopback, not {host}")
        self.host = host
        self.port = port
        self._family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        self._context = server_context(pki, self._client_certs) if pki is not None else None
        self._rcvbuf = rcvbuf
        self.read_delay = read_delay  # seconds between reads of at most 64 KiB: a slow reader
        self._faults: list[Fault] = []

        self._lock = threading.Lock()
        # One lock for the events and the connections; the condition is notified on new
        # events and closed connections.
        self._recorder = EventRecorder(out_dir, keep_events, self._lock)
        self._cond = self._recorder.cond
        self._connections = 0
        self._refused = 0
        self._open: set[Conn] = set()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._closing = threading.Event()

    # -- lifecycle

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def start(self) -> Self:
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
                target=self._accept_loop, args=(listener, self._closing),
                name=f"{self._thread_name}-accept-{self.port}", daemon=True)
            self._accept_thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, let connections finish what is under way, then close files.

        Connections still busy after `timeout` seconds (a client that never
        half-closes) are reset, so stop() always returns.
        """
        self._close_listener()
        with self._cond:
            self._cond.wait_for(lambda: all(c.idle for c in self._open), timeout)
        self._abort_open()
        self._recorder.close_files()

    def kill(self) -> None:
        """Crash: close the listener and reset every open connection, discarding unread data."""
        self._close_listener()
        self._abort_open()
        self._recorder.close_files()

    def __enter__(self) -> Self:
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
        return self._recorder.events(tag)

    def wait_for_total(self, n: int, timeout: float) -> bool:
        """Wait until at least n events were recorded; False on timeout."""
        return self._recorder.wait_for_total(n, timeout)

    def connections(self) -> int:
        """Connections accepted so far (for TLS: handshake completed)."""
        with self._lock:
            return self._connections

    def add_fault(self, fault: F) -> F:
        """Arm a fault for the connections (or requests) that start from now on."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def reset(self) -> None:
        """Forget events and counters (files in out_dir are left as they are)."""
        self._recorder.reset()
        with self._lock:
            self._connections = 0
            self._refused = 0

    # -- serving

    @abstractmethod
    def _converse(self, conn: Conn) -> None:
        """Speak the protocol on a connection that is up; the caller closes it."""

    def _next_fault(self) -> Fault | None:
        """The first armed fault that watches what just started; call under the lock."""
        return next((f for f in self._faults if f.watches()), None)

    def _accept_loop(self, listener: socket.socket, closing: threading.Event) -> None:
        while not closing.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # listener shut down
            sock.settimeout(None)
            conn = Conn(sock)
            conn.thread = threading.Thread(target=self._serve, args=(conn,),
                                           name=f"{self._thread_name}-conn", daemon=True)
            with self._lock:
                self._open.add(conn)
            conn.thread.start()

    def _serve(self, conn: Conn) -> None:
        try:
            if self._context is not None and not self._handshake(conn):
                return
            with self._lock:
                self._connections += 1
            self._converse(conn)
        finally:
            # Leave the open set before closing, so kill() never touches a closed socket.
            with self._cond:
                self._open.discard(conn)
                self._cond.notify_all()
            conn.sock.close()

    def _handshake(self, conn: Conn) -> bool:
        assert self._context is not None
        with self._lock:
            if conn.aborted:
                return False
            conn.sock.settimeout(HANDSHAKE_TIMEOUT)
            # Wrapped under the lock so kill() always sees the socket that owns the fd.
            conn.sock = self._context.wrap_socket(
                conn.sock, server_side=True, do_handshake_on_connect=False,
                suppress_ragged_eofs=self._suppress_ragged_eofs)
        try:
            conn.sock.do_handshake()
        except OSError:  # ssl.SSLError, timeouts and resets alike
            with self._lock:
                if not conn.aborted:
                    self._refused += 1
            return False
        conn.sock.settimeout(None)
        return True

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
