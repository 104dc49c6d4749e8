"""Child processes of tests/test_checkpoints.py: savers to kill, racing writers and
readers. Run as ``python -m tests.checkpoint_child ROLE ...`` with stdout and stderr
to a file. It imports only the store, so a child starts in a fraction of a second.

They talk to the test through files only, never pipes or multiprocessing objects:
a child killed with SIGKILL at any moment cannot leave behind a lock or a pipe that
the test then waits on forever. Every wait here has a deadline too.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import time
from pathlib import Path

from awscollector.errors import CollectorError
from awscollector.io.checkpoints import CheckpointKey, FileCheckpoints

KEY = CheckpointKey("cloudwatch-logs", "123456789012", "eu-west-1", "/aws/lambda/x")
DEADLINE_S = 120  # no child outlives this, whatever the test does


class InPlaceCheckpoints(FileCheckpoints):
    """The naive way (``json.dump`` into the file itself), to show the checks catch it."""

    def save(self, key: CheckpointKey, value: dict) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as f:  # truncates, then writes chunk by chunk
            json.dump({"key": key.__dict__, "value": value}, f)


STORES = {"atomic": FileCheckpoints, "inplace": InPlaceCheckpoints}


def payload(writer: int, size: int) -> str:
    return (hashlib.sha256(str(writer).encode()).hexdigest() * (size // 64 + 1))[:size]


def value(writer: int, seq: int, payload: str, body: str = "") -> dict:
    """A value that proves itself whole: its digest covers its writer, seq and payload
    (``body``: the payload's digest, when known)."""
    body = body or hashlib.sha256(payload.encode()).hexdigest()
    digest = hashlib.sha256(f"{writer}|{seq}|{body}".encode()).hexdigest()
    return {"writer": writer, "seq": seq, "payload": payload, "digest": digest}


def whole(value: dict) -> bool:
    body = hashlib.sha256(value["payload"].encode()).hexdigest()
    return value["digest"] == hashlib.sha256(
        f"{value['writer']}|{value['seq']}|{body}".encode()).hexdigest()


def _wait_for(path: Path, until: float) -> bool:
    while not path.exists():
        if time.monotonic() > until:
            return False
        time.sleep(0.005)
    return True


def saver(store: FileCheckpoints, progress: Path, until: float) -> None:
    """Saves big values forever (nearly all its time inside save, where the kill should
    land); after each save appends ``seq\\n`` to ``progress`` in one write, so a line
    without its newline is a report the kill cut short."""
    payloads = [payload(0, 4_000_000 + n * 100_000) for n in range(3)]
    bodies = [hashlib.sha256(p.encode()).hexdigest() for p in payloads]
    fd = os.open(progress, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    seq = 0
    while time.monotonic() < until:
        store.save(KEY, value(0, seq, payloads[seq % 3], bodies[seq % 3]))
        os.write(fd, f"{seq}\n".encode())
        seq += 1


def writer(store: FileCheckpoints, writer: int, rounds: int, ready: Path, go: Path,
           until: float) -> None:
    rng = random.Random(writer)
    payloads = [payload(writer, rng.randrange(10, 200_000)) for _ in range(7)]
    ready.touch()
    if not _wait_for(go, until):
        sys.exit("writer: no go before the deadline")
    for seq in range(rounds):
        store.save(KEY, value(writer, seq, payloads[seq % 7]))


def reader(store: FileCheckpoints, ready: Path, stop: Path, result: Path,
           until: float) -> None:
    loads = bad = 0
    first_bad = ""
    ready.touch()
    while not stop.exists() and time.monotonic() < until:
        try:
            found = store.load(KEY)
        except CollectorError as e:
            bad += 1
            first_bad = first_bad or str(e)[:200]
            continue
        if found is None:
            continue
        loads += 1
        if not whole(found):
            bad += 1
            first_bad = first_bad or f"torn value of writer {found.get('writer')}"
    tmp = result.with_suffix(".tmp")
    tmp.write_text(json.dumps({"loads": loads, "bad": bad, "first_bad": first_bad}))
    os.replace(tmp, result)


def main(argv: list[str]) -> None:
    role, kind, directory, *rest = argv
    store = STORES[kind](directory)
    until = time.monotonic() + DEADLINE_S
    if role == "saver":
        saver(store, Path(rest[0]), until)
    elif role == "writer":
        writer(store, int(rest[0]), int(rest[1]), Path(rest[2]), Path(rest[3]), until)
    elif role == "reader":
        reader(store, Path(rest[0]), Path(rest[1]), Path(rest[2]), until)
    else:
        sys.exit(f"unknown role {role!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
