"""Checkpoint stores: names of awkward keys, round trips on files and on S3 (embedded
AWS), atomic replace under concurrent real processes and under SIGKILL, update from
threads, corrupt checkpoints, and the store the config gives."""

from __future__ import annotations

import json
import os
import pickle
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

from awscollector.config.globals import Globals
from awscollector.errors import CollectorError
from awscollector.io.access import AwsAccess
from awscollector.io.checkpoints import (
    CheckpointKey,
    Checkpoints,
    FileCheckpoints,
    S3Checkpoints,
    checkpoints_from_config,
)
from tests.checkpoint_child import KEY, whole

AWKWARD_STREAMS = [
    "/aws/lambda/x",
    "..",
    ".",
    "../../etc/passwd",
    "a/../b",
    "/aws/lambda/x/",
    "%2Faws",  # a literal percent sequence must not collide with "/aws"
    "~tilde~",
    " spaced  name ",
    "new\nline",
    "ünïcödé/日本語",
    "x" * 512,  # log group names reach 512 characters
    "x" * 511 + "y",
    "12abcdef34567890abcdef1234567890",  # a GuardDuty detector id
]


# ---------------------------------------------------------------------------- names


def test_names_of_awkward_streams_are_safe_distinct_and_decode() -> None:
    keys = [CheckpointKey("cloudwatch-logs", "123456789012", "eu-west-1", s)
            for s in AWKWARD_STREAMS]
    names = [k.name for k in keys]
    assert len(set(names)) == len(names)
    for key, name in zip(keys, names, strict=True):
        parts = name.split("/")
        assert len(parts) == 4, name
        assert all(p and p not in (".", "..") and not p.startswith(".") for p in parts), name
        assert all(len(p.encode()) <= 255 for p in parts)
        assert name == CheckpointKey(*(key.service, key.account, key.region,
                                       key.stream)).name  # stable
        if "~" not in parts[3]:
            assert CheckpointKey.from_name(name) == key
    assert KEY.name == "cloudwatch-logs/123456789012/eu-west-1/%2Faws%2Flambda%2Fx.json"


@pytest.mark.parametrize("field", ["service", "account", "region", "stream"])
def test_key_fields_must_be_non_empty(field: str) -> None:
    values = {"service": "s", "account": "a", "region": "r", "stream": "x", field: ""}
    with pytest.raises(ValueError, match=field):
        CheckpointKey(**values)


def test_awkward_keys_stay_inside_the_directory_and_round_trip(tmp_path: Path) -> None:
    root = tmp_path / "state"
    store = FileCheckpoints(root)
    keys = [CheckpointKey("guardduty", "1", "us-east-1", s) for s in AWKWARD_STREAMS]
    for n, key in enumerate(keys):
        store.save(key, {"n": n, "stream": key.stream})
    for n, key in enumerate(keys):
        assert store.load(key) == {"n": n, "stream": key.stream}
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == len(keys)
    assert all(root in p.parents for p in files)


# ---------------------------------------------------------------------------- files


def test_file_round_trip_overwrite_and_missing(tmp_path: Path) -> None:
    store = FileCheckpoints(tmp_path / "state")
    assert isinstance(store, Checkpoints)
    assert store.load(KEY) is None
    first = {"until": "2026-11-27T12:00:00Z", "token": "f/abc==", "n": [1, 2.5, None]}
    store.save(KEY, first)
    assert store.load(KEY) == first
    store.save(KEY, {"until": "2026-11-27T13:00:00Z"})
    assert store.load(KEY) == {"until": "2026-11-27T13:00:00Z"}
    other = CheckpointKey("cloudwatch-logs", "123456789012", "eu-west-2", KEY.stream)
    assert store.load(other) is None
    # No temporary file is left behind by saves that finished.
    assert [p.name for p in store.path(KEY).parent.iterdir()] == [store.path(KEY).name]
    # Pickled with a DoFn, it reads the same files.
    assert pickle.loads(pickle.dumps(store)).load(KEY) == {"until": "2026-11-27T13:00:00Z"}


def test_save_refuses_what_is_not_a_json_object(tmp_path: Path) -> None:
    store = FileCheckpoints(tmp_path)
    with pytest.raises(TypeError):
        store.save(KEY, ["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        store.save(KEY, {"x": float("nan")})
    with pytest.raises(TypeError):
        store.save(KEY, {"x": object()})
    assert store.load(KEY) is None  # nothing half-saved


@pytest.mark.parametrize("content, says", [
    (b"", "is not JSON (0 bytes)"),
    (b'{"key": {"service": "cloudwatch-logs", "acc', "is not JSON"),
    (b"\xff\xfe garbage", "is not JSON"),
    (b"[1, 2]", "not a checkpoint"),
    (b'{"key": {}, "value": 3}', "not a checkpoint"),
    (b'{"key": {"service": "x", "account": "1", "region": "r", "stream": "s"},'
     b' "value": {"until": "secret-token-xyz"}}', "belongs to another key"),
])
def test_a_corrupt_checkpoint_is_run_010_naming_the_file(tmp_path: Path, content: bytes,
                                                          says: str) -> None:
    store = FileCheckpoints(tmp_path)
    store.save(KEY, {"until": "t"})
    path = store.path(KEY)
    path.write_bytes(content)
    with pytest.raises(CollectorError) as caught:
        store.load(KEY)
    assert caught.value.code == "RUN-010"
    assert str(path) in str(caught.value) and says in str(caught.value)
    assert "secret-token-xyz" not in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_unreadable_checkpoint_is_run_010(tmp_path: Path) -> None:
    store = FileCheckpoints(tmp_path)
    path = store.path(KEY)
    path.mkdir(parents=True)  # a directory where the file should be: reading it fails
    with pytest.raises(CollectorError, match=r"^RUN-010 checkpoint .* cannot be read"):
        store.load(KEY)


def test_an_unwritable_directory_is_run_011(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    store = FileCheckpoints(tmp_path / "file" / "state")
    with pytest.raises(CollectorError, match=r"^RUN-011 checkpoint .* cannot be written"):
        store.save(KEY, {"until": "t"})


# ------------------------------------------------- concurrent processes and SIGKILL
#
# The children are real processes (python -m tests.checkpoint_child) that the tests
# talk to through files only: no pipes, no multiprocessing locks or queues. (The first
# version reported a saver's progress in a multiprocessing Value; a SIGKILL landing
# while the saver held the Value's lock left it locked forever, and the test's next
# read of the Value waited forever.) Every wait has a timeout, and every child is
# killed in a finally.

REPO = Path(__file__).resolve().parents[1]
WAIT_S = 60  # the longest any step waits on a child; far above what one takes


@contextmanager
def _children(logs: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Starts children (stdout and stderr to a file under ``logs``); at the end kills
    whichever still run and reaps them all, with timeouts."""
    procs: list[subprocess.Popen] = []
    logs.mkdir(parents=True, exist_ok=True)

    def start(*args: object) -> subprocess.Popen:
        log = logs / f"child-{len(procs)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.checkpoint_child", *map(str, args)],
                cwd=REPO, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(REPO)})
        proc.log = log  # type: ignore[attr-defined]
        procs.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for proc in procs:
            proc.wait(timeout=WAIT_S)


def _log(proc: subprocess.Popen) -> str:
    return proc.log.read_text(errors="replace")[-2000:]  # type: ignore[attr-defined]


def _wait_for(paths: list[Path], procs: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not all(p.exists() for p in paths):
        for proc in procs:
            assert proc.poll() is None, f"a child died: {_log(proc)}"
        assert time.monotonic() < deadline, f"children not ready in {WAIT_S}s"
        time.sleep(0.01)


def _race(kind: str, tmp_path: Path, writers: int, readers: int, rounds: int
          ) -> tuple[int, int, str, dict | None]:
    state, flags = tmp_path / "state", tmp_path / "flags"
    flags.mkdir()
    go, stop = flags / "go", flags / "stop"
    results = [flags / f"result-{r}.json" for r in range(readers)]
    with _children(tmp_path / "logs") as start:
        ready = [flags / f"ready-w{w}" for w in range(writers)]
        procs = [start("writer", kind, state, w, rounds, ready[w], go)
                 for w in range(writers)]
        ready += [flags / f"ready-r{r}" for r in range(readers)]
        reads = [start("reader", kind, state, ready[writers + r], stop, results[r])
                 for r in range(readers)]
        _wait_for(ready, procs + reads)  # all are up, so the readers overlap the writes
        go.touch()
        for proc in procs:
            assert proc.wait(timeout=WAIT_S) == 0, _log(proc)
        stop.touch()
        for proc in reads:
            assert proc.wait(timeout=WAIT_S) == 0, _log(proc)
    outcomes = [json.loads(r.read_text()) for r in results]
    loads = sum(o["loads"] for o in outcomes)
    bad = sum(o["bad"] for o in outcomes)
    first_bad = next((o["first_bad"] for o in outcomes if o["first_bad"]), "")
    try:
        final = FileCheckpoints(state).load(KEY)
    except CollectorError:
        final = None
    return loads, bad, first_bad, final


def test_concurrent_savers_and_loaders_only_ever_see_whole_values(tmp_path: Path) -> None:
    writers, rounds = 3, 300
    loads, bad, first_bad, final = _race("atomic", tmp_path, writers=writers, readers=2,
                                         rounds=rounds)
    assert bad == 0, first_bad
    assert loads > 200, f"only {loads} loads overlapped the saves"
    # Last complete write wins: some writer's last value, whole.
    assert final is not None and whole(final) and final["seq"] == rounds - 1
    store = FileCheckpoints(tmp_path / "state")
    leftovers = [p.name for p in store.path(KEY).parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_the_race_catches_a_store_that_writes_in_place(tmp_path: Path) -> None:
    # The same race on the naive store must see torn values: the check above can fail.
    loads, bad, first_bad, _ = _race("inplace", tmp_path, writers=3, readers=2, rounds=300)
    assert bad > 0, f"{loads} loads, none torn: the race shows nothing"


def _saved(progress: Path) -> int:
    """The last save the saver reported done: its last whole line (-1 if none)."""
    lines = progress.read_bytes().split(b"\n") if progress.exists() else [b""]
    whole_lines = lines[:-1]  # after the last newline: nothing, or a line cut short
    return int(whole_lines[-1]) if whole_lines else -1


Outcome = tuple[int, "dict | None", str, bool]


def _kill_mid_save(kind: str, tmp_path: Path, enough: Callable[[list[Outcome]], bool],
                   max_kills: int) -> list[Outcome]:
    """Starts a saver and SIGKILLs it at a random moment after its first save, again
    and again until ``enough(outcomes)`` or ``max_kills``. An outcome: (seq of the last
    save the saver finished, the checkpoint then or None, the load's error or "",
    whether the kill left a temporary file, i.e. landed between the temporary file's
    creation and the rename)."""
    state = tmp_path / "state"
    store = FileCheckpoints(state)
    rng = random.Random(7)
    outcomes: list[Outcome] = []
    with _children(tmp_path / "logs") as start:
        while len(outcomes) < max_kills and not enough(outcomes):
            progress = tmp_path / f"progress-{len(outcomes)}"
            before = set(store.path(KEY).parent.glob("*.tmp"))
            proc = start("saver", kind, state, progress)
            deadline = time.monotonic() + WAIT_S
            while _saved(progress) < 0:  # one save done: past the start-up, in the loop
                assert proc.poll() is None, f"the saver died: {_log(proc)}"
                assert time.monotonic() < deadline, f"no save in {WAIT_S}s: {_log(proc)}"
                time.sleep(0.005)
            # Anywhere in the next saves (one of 4 MB takes some 20 ms here).
            time.sleep(rng.uniform(0.0, 0.1))
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=WAIT_S) == -signal.SIGKILL, _log(proc)
            done = _saved(progress)
            landed = bool(set(store.path(KEY).parent.glob("*.tmp")) - before)
            try:
                outcomes.append((done, store.load(KEY), "", landed))
            except CollectorError as e:
                outcomes.append((done, None, str(e), landed))
    return outcomes


def test_a_saver_killed_mid_save_leaves_a_whole_earlier_or_later_value(tmp_path: Path
                                                                       ) -> None:
    # At least 30 kills, and at least 10 of them between the temporary file's creation
    # and the rename (it is left behind; loads never read it), where a torn write
    # would show. About one kill in six lands there, so 400 is never reached.
    outcomes = _kill_mid_save(
        "atomic", tmp_path, max_kills=400,
        enough=lambda got: len(got) >= 30 and sum(o[3] for o in got) >= 10)
    inside = sum(landed for *_, landed in outcomes)
    assert inside >= 10, f"only {inside} of {len(outcomes)} kills landed inside a save"
    for done, value, error, _ in outcomes:
        assert not error, error
        # The last save reported done, or the one in flight, which may have landed.
        assert value is not None and whole(value) and value["seq"] in (done, done + 1)
    # Both happened: kills before the in-flight save's rename and after it.
    assert {value["seq"] - done for done, value, _, _ in outcomes} == {0, 1}


def test_a_kill_mid_save_in_place_leaves_a_corrupt_file_that_load_reports(tmp_path: Path
                                                                          ) -> None:
    # The same kills on the naive store leave corrupt files: the test above can fail.
    outcomes = _kill_mid_save(
        "inplace", tmp_path, max_kills=100,
        enough=lambda got: len(got) >= 10 and sum(bool(o[2]) for o in got) >= 3)
    errors = [e for _, _, e, _ in outcomes if e]
    assert len(errors) >= 3, f"{len(errors)} corrupt of {len(outcomes)}: the kills show nothing"
    assert all(e.startswith("RUN-010 checkpoint ") for e in errors)


# ---------------------------------------------------------------------------- update


def _count(old: dict | None) -> dict:
    n = (old or {}).get("n", 0)
    time.sleep(0.002)  # between the load and the save: other threads get to run here
    return {"n": n + 1}


def _hammer(stores: list, key: CheckpointKey, per_thread: int, naive: bool = False) -> None:
    def work(store) -> None:
        for _ in range(per_thread):
            if naive:
                store.save(key, _count(store.load(key)))
            else:
                store.update(key, _count)

    with ThreadPoolExecutor(len(stores)) as pool:
        for f in [pool.submit(work, s) for s in stores]:
            f.result(timeout=WAIT_S)


def test_update_from_threads_loses_no_update(tmp_path: Path) -> None:
    store = FileCheckpoints(tmp_path / "state")
    # The same store, and copies as a runner makes them (one DoFn per thread).
    stores = [store] * 3 + [pickle.loads(pickle.dumps(store)) for _ in range(3)]
    _hammer(stores, KEY, per_thread=20)
    assert store.load(KEY) == {"n": 120}
    other = CheckpointKey("guardduty", "1", "us-east-1", "d")
    assert store.update(other, lambda old: {"was": old}) == {"was": None}
    assert store.load(other) == {"was": None}


def test_load_then_save_from_threads_does_lose_updates(tmp_path: Path) -> None:
    # Without update's lock the same threads lose updates: the test above can fail.
    store = FileCheckpoints(tmp_path / "state")
    _hammer([store] * 6, KEY, per_thread=20, naive=True)
    assert store.load(KEY)["n"] < 120


def test_update_whose_change_fails_saves_nothing_and_releases_the_key(tmp_path: Path
                                                                      ) -> None:
    store = FileCheckpoints(tmp_path)
    store.save(KEY, {"n": 1})

    def broken(old: dict | None) -> dict:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        store.update(KEY, broken)
    with pytest.raises(TypeError):
        store.update(KEY, lambda old: ["not", "a", "dict"])  # type: ignore[arg-type,return-value]
    assert store.load(KEY) == {"n": 1}
    # The key's lock was released: the next update goes through (with a timeout).
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(store.update, KEY, _count).result(timeout=WAIT_S) == {"n": 2}


def test_update_of_a_checkpoint_that_cannot_be_read_changes_nothing(tmp_path: Path
                                                                     ) -> None:
    store = FileCheckpoints(tmp_path)
    store.path(KEY).mkdir(parents=True)  # a directory where the file should be
    called = []
    with pytest.raises(CollectorError, match=r"^RUN-010 checkpoint .* cannot be read"):
        store.update(KEY, lambda old: called.append(old) or {"n": 1})
    assert called == [] and store.path(KEY).is_dir()


def test_a_pickled_store_carries_no_lock(tmp_path: Path) -> None:
    store = FileCheckpoints(tmp_path)
    store.update(KEY, _count)  # its lock exists now
    assert not any(isinstance(v, type(threading.Lock())) for v in vars(store).values())
    copy = pickle.loads(pickle.dumps(store))
    assert copy.update(KEY, _count) == {"n": 2}


# ---------------------------------------------------------------------------- S3


@pytest.fixture
def access(embedded_aws) -> AwsAccess:
    return AwsAccess(SimpleNamespace(endpoint_url=embedded_aws.endpoint_url,
                                     credentials=SimpleNamespace(access_key="testing",
                                                                 access_secret="testing")))


@pytest.fixture
def bucket(embedded_aws) -> str:
    name = f"checkpoints-{random.randrange(1 << 30)}"
    embedded_aws.client("s3").create_bucket(Bucket=name)
    return name


def test_s3_round_trip_with_awkward_keys(embedded_aws, access: AwsAccess, bucket: str
                                         ) -> None:
    store = S3Checkpoints(bucket, "collector/state", access)
    assert isinstance(store, Checkpoints)
    keys = [CheckpointKey("cloudwatch-logs", "123456789012", "eu-west-1", s)
            for s in AWKWARD_STREAMS]
    assert store.load(keys[0]) is None
    for n, key in enumerate(keys):
        store.save(key, {"n": n, "until": "2026-11-27T12:00:00Z"})
    store.save(keys[0], {"n": -1})
    # A pickled store (as a DoFn member) reads what the original wrote.
    copy = pickle.loads(pickle.dumps(store))
    assert [copy.load(k)["n"] for k in keys] == [-1, *range(1, len(keys))]
    listed = embedded_aws.client("s3").list_objects_v2(Bucket=bucket)["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(f"collector/state/{k.name}" for k in keys)
    assert repr(store) == f"S3Checkpoints(bucket={bucket!r}, prefix='collector/state/')"


def test_s3_corrupt_checkpoint_is_run_010_naming_bucket_and_key(embedded_aws, access,
                                                                bucket: str) -> None:
    store = S3Checkpoints(bucket, "", access)
    embedded_aws.client("s3").put_object(Bucket=bucket, Key=KEY.name, Body=b'{"key": {')
    with pytest.raises(CollectorError) as caught:
        store.load(KEY)
    assert caught.value.code == "RUN-010"
    assert f"s3://{bucket}/{KEY.name}" in str(caught.value)


def test_s3_missing_bucket_is_an_aws_error_not_a_fresh_start(access) -> None:
    store = S3Checkpoints("no-such-checkpoint-bucket", "p", access)
    for call, op in ((lambda: store.load(KEY), "GetObject"),
                     (lambda: store.save(KEY, {"until": "t"}), "PutObject")):
        with pytest.raises(CollectorError) as caught:
            call()
        assert caught.value.code == "AWS-007"
        assert f"s3 {op} s3://no-such-checkpoint-bucket/p/{KEY.name} failed: NoSuchBucket" \
            in str(caught.value)


def test_s3_refused_credentials_are_aws_001_without_the_secret(embedded_aws, bucket) -> None:
    # moto checks signatures only when enforcing IAM; a wrong endpoint stands in for
    # an AWS that cannot be reached.
    unreachable = AwsAccess(SimpleNamespace(endpoint_url="http://127.0.0.1:1",
                                            credentials=SimpleNamespace(
                                                access_key="AKIDEXAMPLE",
                                                access_secret="very-secret-value")))
    store = S3Checkpoints(bucket, "", unreachable)
    with pytest.raises(CollectorError) as caught:
        store.load(KEY)
    assert caught.value.code == "AWS-006"
    assert "very-secret-value" not in str(caught.value) + repr(store)


def test_s3_update_from_threads_loses_no_update(embedded_aws, access: AwsAccess,
                                               bucket: str) -> None:
    store = S3Checkpoints(bucket, "u", access)
    stores = [store] * 2 + [pickle.loads(pickle.dumps(store)) for _ in range(2)]
    _hammer(stores, KEY, per_thread=8)
    assert store.load(KEY) == {"n": 32}


# ---------------------------------------------------------------------------- config


def test_config_gives_the_store(tmp_path: Path, access: AwsAccess) -> None:
    default = checkpoints_from_config(Globals().persistence, access, tmp_path)
    assert isinstance(default, FileCheckpoints)
    assert default.directory == str(tmp_path / "state")

    relative = Globals.model_validate(
        {"persistence": {"type": "filesystem", "config": {"directory_name": "run/ckpt"}}})
    store = checkpoints_from_config(relative.persistence, None, tmp_path)
    assert store.directory == str(tmp_path / "run" / "ckpt")
    store.save(KEY, {"until": "t"})
    assert (tmp_path / "run" / "ckpt" / Path(KEY.name)).is_file()

    absolute = Globals.model_validate(
        {"persistence": {"type": "filesystem", "config": {"directory_name": str(tmp_path / "a")}}})
    assert checkpoints_from_config(absolute.persistence, None, "/elsewhere").directory == \
        str(tmp_path / "a")

    s3 = Globals.model_validate(
        {"persistence": {"type": "s3", "config": {"bucket": "b", "prefix": "p"}}})
    s3_store = checkpoints_from_config(s3.persistence, access, tmp_path)
    assert isinstance(s3_store, S3Checkpoints)
    assert (s3_store.bucket, s3_store.object_key(KEY)) == ("b", f"p/{KEY.name}")
    with pytest.raises(ValueError, match="needs AWS access"):
        checkpoints_from_config(s3.persistence, None, tmp_path)
