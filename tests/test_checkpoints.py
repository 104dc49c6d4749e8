"""Checkpoint stores: names of awkward keys, round trips on files and on S3 (embedded
AWS), atomic replace under concurrent real processes and under SIGKILL, corrupt
checkpoints, and the store the config gives."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import pickle
import random
import signal
import time
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

KEY = CheckpointKey("cloudwatch-logs", "123456789012", "eu-west-1", "/aws/lambda/x")


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


def _payload(writer: int, size: int) -> str:
    return (hashlib.sha256(str(writer).encode()).hexdigest() * (size // 64 + 1))[:size]


def _value(writer: int, seq: int, payload: str, body: str = "") -> dict:
    """A value that proves itself whole: its digest covers its writer, seq and payload
    (``body``: the payload's digest, when known)."""
    body = body or hashlib.sha256(payload.encode()).hexdigest()
    digest = hashlib.sha256(f"{writer}|{seq}|{body}".encode()).hexdigest()
    return {"writer": writer, "seq": seq, "payload": payload, "digest": digest}


def _whole(value: dict) -> bool:
    body = hashlib.sha256(value["payload"].encode()).hexdigest()
    return value["digest"] == hashlib.sha256(
        f"{value['writer']}|{value['seq']}|{body}".encode()).hexdigest()


class _InPlaceCheckpoints(FileCheckpoints):
    """The naive way (``json.dump`` into the file itself), to show the checks catch it."""

    def save(self, key: CheckpointKey, value: dict) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as f:  # truncates, then writes chunk by chunk
            json.dump({"key": key.__dict__, "value": value}, f)


def _writer(store: FileCheckpoints, writer: int, rounds: int, start) -> None:
    start.wait()
    rng = random.Random(writer)
    payloads = [_payload(writer, rng.randrange(10, 200_000)) for _ in range(7)]
    for seq in range(rounds):
        store.save(KEY, _value(writer, seq, payloads[seq % 7]))


def _reader(store: FileCheckpoints, stop, results) -> None:
    loads = bad = 0
    first_bad = ""
    while not stop.is_set():
        try:
            value = store.load(KEY)
        except CollectorError as e:
            bad += 1
            first_bad = first_bad or str(e)[:200]
            continue
        if value is None:
            continue
        loads += 1
        if not _whole(value):
            bad += 1
            first_bad = first_bad or f"torn value of writer {value.get('writer')}"
    results.put((loads, bad, first_bad))


def _race(store: FileCheckpoints, writers: int, readers: int, rounds: int
          ) -> tuple[int, int, str, dict | None]:
    ctx = multiprocessing.get_context("spawn")  # no threads of the test process inherited
    start, stop, results = ctx.Event(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(store, w, rounds, start)) for w in range(writers)]
    reads = [ctx.Process(target=_reader, args=(store, stop, results)) for _ in range(readers)]
    for p in procs + reads:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    stop.set()
    outcomes = [results.get(timeout=60) for _ in reads]
    for p in reads:
        p.join(30)
    loads = sum(o[0] for o in outcomes)
    bad = sum(o[1] for o in outcomes)
    first_bad = next((o[2] for o in outcomes if o[2]), "")
    try:
        final = store.load(KEY)
    except CollectorError:
        final = None
    return loads, bad, first_bad, final


def test_concurrent_savers_and_loaders_only_ever_see_whole_values(tmp_path: Path) -> None:
    store = FileCheckpoints(tmp_path / "state")
    writers, rounds = 3, 300
    loads, bad, first_bad, final = _race(store, writers=writers, readers=2, rounds=rounds)
    assert bad == 0, first_bad
    assert loads > 200, f"only {loads} loads overlapped the saves"
    # Last complete write wins: some writer's last value, whole.
    assert final is not None and _whole(final) and final["seq"] == rounds - 1
    leftovers = [p.name for p in store.path(KEY).parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_the_race_catches_a_store_that_writes_in_place(tmp_path: Path) -> None:
    # The same race on the naive store must see torn values: the check above can fail.
    loads, bad, first_bad, _ = _race(_InPlaceCheckpoints(tmp_path / "state"),
                                     writers=3, readers=2, rounds=300)
    assert bad > 0, f"{loads} loads, none torn: the race shows nothing"


def _saver(store: FileCheckpoints, progress) -> None:
    payloads = [_payload(0, 4_000_000 + n * 100_000) for n in range(3)]
    bodies = [hashlib.sha256(p.encode()).hexdigest() for p in payloads]
    seq = 0
    while True:  # nearly all its time inside save, where the kill should land
        store.save(KEY, _value(0, seq, payloads[seq % 3], bodies[seq % 3]))
        progress.value = seq
        seq += 1


def _kill_mid_save(store: FileCheckpoints, kills: int) -> list[tuple[int, dict | None, str]]:
    ctx = multiprocessing.get_context("spawn")
    rng = random.Random(7)
    outcomes = []
    for _ in range(kills):
        progress = ctx.Value("q", -1)
        proc = ctx.Process(target=_saver, args=(store, progress))
        proc.start()
        deadline = time.monotonic() + 60
        while progress.value < 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))  # anywhere in a save of a few MB
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
        assert proc.exitcode == -signal.SIGKILL
        done = progress.value
        try:
            outcomes.append((done, store.load(KEY), ""))
        except CollectorError as e:
            outcomes.append((done, None, str(e)))
    return outcomes


def test_a_saver_killed_mid_save_leaves_a_whole_earlier_or_later_value(tmp_path: Path
                                                                       ) -> None:
    store = FileCheckpoints(tmp_path / "state")
    outcomes = _kill_mid_save(store, kills=10)
    for done, value, error in outcomes:
        assert not error, error
        # The last save reported done, or the one in flight, which may have landed.
        assert value is not None and _whole(value) and value["seq"] in (done, done + 1)
    # A kill inside a save leaves its temporary file (loads never read it): some did.
    stale = [p for p in store.path(KEY).parent.iterdir() if p.name.endswith(".tmp")]
    assert stale, "no kill landed inside a save: the test shows nothing"


def test_a_kill_mid_save_in_place_leaves_a_corrupt_file_that_load_reports(tmp_path: Path
                                                                          ) -> None:
    outcomes = _kill_mid_save(_InPlaceCheckpoints(tmp_path / "state"), kills=10)
    errors = [e for _, _, e in outcomes if e]
    assert errors, "no kill landed mid-save: the test above shows nothing"
    assert all(e.startswith("RUN-010 checkpoint ") for e in errors)


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
