"""Checkpoints of the API pullers: where each stream of an API was read up to.

A puller (CloudTrail LookupEvents, GuardDuty, CloudWatch metrics and Logs) keeps,
per ``CheckpointKey``, a small JSON object such as
``{"done": [[start_ms, end_ms]], "open": [...]}`` (io/api.py), and saves it only after what
it covers was delivered. ``globals.persistence`` says where the checkpoints live:

- ``type: filesystem``: ``FileCheckpoints``, one file per key under
  ``config.directory_name`` (a relative one: relative to the directory ``run``
  starts in, as the dead-letter directory is);
- ``type: s3``: ``S3Checkpoints``, one object per key under ``config.prefix`` of
  ``config.bucket``, through the collector's AWS access.

Either way a save replaces the whole checkpoint at once: a reader, or the next run
after a crash, sees the old value or the new one, never a mix. A checkpoint that is
there but cannot be read as one is an error (RUN-010), not a fresh start: starting
over would send the stream's history again.

Usage (in a DoFn, which pickles the store with itself)::

    store = checkpoints_from_config(config.globals.persistence, access, base_dir)
    key = CheckpointKey("cloudwatch-logs", "123456789012", "eu-west-1", "/aws/lambda/x")
    since = (store.load(key) or {}).get("until")
    ...
    store.save(key, {"until": until, "token": token})
    # or, when several threads move the same checkpoint forward:
    store.update(key, lambda old: {**(old or {}), "until": until})

``update`` is load, change, save under a lock per store and key, shared by every copy
of the store in the process (a runner unpickles a DoFn once per thread), so threads
never lose each other's updates. Across processes it is not a transaction: of two
concurrent updates the last save wins whole. That is never corruption, and never a
loss: callers only ever move a checkpoint forward, so at worst it is an older value,
whose data is collected again (a duplicate, not a gap).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from awscollector.errors import CollectorError

if TYPE_CHECKING:
    from awscollector.io.access import AwsAccess

CORRUPT = "RUN-010"  # a checkpoint is there but is not one
UNWRITABLE = "RUN-011"  # a checkpoint file cannot be written

_SUFFIX = ".json"
_MAX_PART = 120  # characters of an encoded part; longer ones end in a digest
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_DIGEST_MARK = "~"  # never produced by the encoding, so a digested name is unambiguous


def _encode(part: str) -> str:
    # Everything but letters, digits, '_' and '-' as %XX of its UTF-8 bytes: no '/',
    # no '.', so no part can climb out of its directory or be hidden, and the name
    # decodes back to the part.
    encoded = _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), part)
    if len(encoded) <= _MAX_PART:
        return encoded
    # File names are limited to 255 bytes (log group names reach 512 characters).
    digest = hashlib.sha256(part.encode()).hexdigest()[:32]
    return encoded[:_MAX_PART - 33] + _DIGEST_MARK + digest


def _decode(name: str) -> str:
    if _DIGEST_MARK in name:
        raise ValueError(f"{name!r} is shortened with a digest; the key is inside the checkpoint")
    raw = re.sub(r"%([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), name)
    return raw.encode("latin-1").decode("utf-8")


@dataclass(frozen=True)
class CheckpointKey:
    """What a checkpoint is of: a stream (log group, detector id, ...) of a service's API
    in an account and region. Every field is a non-empty string."""

    service: str
    account: str
    region: str
    stream: str

    def __post_init__(self) -> None:
        for field, value in asdict(self).items():
            if not isinstance(value, str) or not value:
                raise ValueError(f"CheckpointKey.{field} must be a non-empty string")

    @property
    def name(self) -> str:
        """``service/account/region/stream.json``, each part encoded: a relative path of
        exactly four parts, the same for the same key on every run and machine."""
        return "/".join(_encode(p) for p in (self.service, self.account, self.region,
                                               self.stream)) + _SUFFIX

    @classmethod
    def from_name(cls, name: str) -> CheckpointKey:
        """The key of a ``name`` (not for names shortened with a digest)."""
        parts = name.removesuffix(_SUFFIX).split("/")
        if len(parts) != 4 or not name.endswith(_SUFFIX):
            raise ValueError(f"{name!r} is not a checkpoint name")
        return cls(*(_decode(p) for p in parts))


@runtime_checkable
class Checkpoints(Protocol):
    """Where the API pullers keep their checkpoints."""

    def load(self, key: CheckpointKey) -> dict | None:
        """The last value saved for ``key``; None if none was ever saved."""
        ...

    def save(self, key: CheckpointKey, value: dict) -> None:
        """Replace ``key``'s checkpoint with ``value`` (a JSON object), all at once."""
        ...

    def update(self, key: CheckpointKey,
               change: Callable[[dict | None], dict]) -> dict:
        """Load ``key``'s checkpoint, apply ``change`` to it (None if there is none) and
        save what it returns, which is also returned. Threads of one process updating
        the same key take turns, so none loses another's update."""
        ...


# Locks of ``update``, per (store, key), for the whole process: copies of a store
# (unpickled DoFns) share them. Made when first used; stores hold none, so they pickle.
_UPDATE_LOCKS: dict[tuple[tuple[str, ...], CheckpointKey], threading.Lock] = {}
_UPDATE_LOCKS_GUARD = threading.Lock()


class _Updates(ABC):
    """``update`` for a store with ``load``, ``save`` and ``_where`` (what it writes to)."""

    @abstractmethod
    def _where(self) -> tuple[str, ...]:
        """Where the store writes: its locks are shared by the stores writing there."""

    def update(self, key: CheckpointKey, change: Callable[[dict | None], dict]) -> dict:
        """Load ``key``'s checkpoint, apply ``change`` to it (None if there is none) and
        save what it returns, which is also returned.

        Threads of this process updating the same checkpoint of the same store take
        turns, so none loses another's update. Across processes the last save wins
        (whole: see the module's docstring). If ``change`` raises, nothing is saved.
        """
        with _update_lock(self._where(), key):
            new = change(self.load(key))  # type: ignore[attr-defined]
            self.save(key, new)  # type: ignore[attr-defined]
            return new


def _update_lock(where: tuple[str, ...], key: CheckpointKey) -> threading.Lock:
    with _UPDATE_LOCKS_GUARD:
        return _UPDATE_LOCKS.setdefault((where, key), threading.Lock())


def _document(key: CheckpointKey, value: dict) -> bytes:
    if not isinstance(value, dict):
        raise TypeError(f"a checkpoint value is a dict, not {type(value).__name__}")
    # The key goes in too: a shortened name still says whose checkpoint it is.
    return json.dumps({"key": asdict(key), "value": value}, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False).encode("utf-8")


def _value(key: CheckpointKey, data: bytes, where: str) -> dict:
    """The value in a checkpoint's bytes; RUN-010 naming ``where`` if it is not one."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        # The parser's message gives a position, never the content (it may hold a token).
        raise CollectorError(CORRUPT, f"checkpoint {where} is not JSON ({len(data)} bytes):"
                                      f" {type(e).__name__}: {str(e)[:200]}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("value"), dict):
        raise CollectorError(CORRUPT, f"checkpoint {where} is JSON but not a checkpoint"
                                      f" (no 'value' object)")
    if doc.get("key") != asdict(key):
        raise CollectorError(CORRUPT, f"checkpoint {where} belongs to another key"
                                      f" ({doc.get('key')!r:.300})")
    return doc["value"]


class FileCheckpoints(_Updates):
    """Checkpoints as files under ``directory``: ``<directory>/<key.name>``.

    A save writes a temporary file next to the checkpoint, fsyncs it, renames it over
    the checkpoint (``os.replace``, atomic on POSIX) and fsyncs the directory. Readers
    and a run after a crash see a whole old or whole new file; of concurrent savers the
    last rename wins. A crash can leave a ``.*.tmp`` file behind, which loads ignore.
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = os.path.abspath(os.fspath(directory))

    def path(self, key: CheckpointKey) -> Path:
        return Path(self.directory, *key.name.split("/"))

    def load(self, key: CheckpointKey) -> dict | None:
        path = self.path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise CollectorError(CORRUPT, f"checkpoint {path} cannot be read:"
                                          f" {e.strerror or e}") from None
        return _value(key, data, str(path))

    def save(self, key: CheckpointKey, value: dict) -> None:
        path = self.path(key)
        data = _document(key, value)
        tmp = None
        try:
            _make_dirs(path.parent)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            tmp = None
            _fsync_dir(path.parent)  # the rename itself survives a power cut
        except OSError as e:
            raise CollectorError(UNWRITABLE, f"checkpoint {path} cannot be written:"
                                             f" {e.strerror or e}") from None
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass

    def _where(self) -> tuple[str, ...]:
        return ("file", self.directory)

    def __repr__(self) -> str:
        return f"FileCheckpoints({self.directory!r})"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dirs(directory: Path) -> None:
    """``mkdir -p``, fsyncing the parent of each directory it creates."""
    if directory.is_dir():
        return
    _make_dirs(directory.parent)
    try:
        directory.mkdir()
    except FileExistsError:
        return  # another saver made it
    _fsync_dir(directory.parent)


class S3Checkpoints(_Updates):
    """Checkpoints as S3 objects: ``s3://<bucket>/<prefix>/<key.name>``.

    A PutObject replaces an object whole, so readers see the old or the new value. AWS
    errors are the collector's AWS codes, naming the call, bucket and key. ``access``
    is the run's ``AwsAccess`` (it pickles without clients, so the store travels with a
    DoFn); ``region`` is where the client is made (S3 follows a bucket elsewhere).
    """

    def __init__(self, bucket: str, prefix: str, access: AwsAccess,
                 region: str = "us-east-1") -> None:
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self.region = region
        self._access = access

    def object_key(self, key: CheckpointKey) -> str:
        return self.prefix + key.name

    def load(self, key: CheckpointKey) -> dict | None:
        from botocore.exceptions import BotoCoreError, ClientError

        from awscollector.awserrors import aws_error, error_code

        object_key = self.object_key(key)
        where = f"s3://{self.bucket}/{object_key}"
        try:
            response = self._client().get_object(Bucket=self.bucket, Key=object_key)
            data = response["Body"].read()
        except ClientError as e:
            if error_code(e) == "NoSuchKey":  # never saved; a missing bucket is an error
                return None
            raise aws_error(e, f"s3 GetObject {where}") from e
        except BotoCoreError as e:
            raise aws_error(e, f"s3 GetObject {where}") from e
        return _value(key, data, where)

    def save(self, key: CheckpointKey, value: dict) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        from awscollector.awserrors import aws_error

        object_key = self.object_key(key)
        data = _document(key, value)
        try:
            self._client().put_object(Bucket=self.bucket, Key=object_key, Body=data,
                                      ContentType="application/json")
        except (ClientError, BotoCoreError) as e:
            raise aws_error(e, f"s3 PutObject s3://{self.bucket}/{object_key}") from e

    def _client(self) -> Any:
        return self._access.client("s3", self.region)

    def _where(self) -> tuple[str, ...]:
        return ("s3", self.bucket, self.prefix)

    def __repr__(self) -> str:
        return f"S3Checkpoints(bucket={self.bucket!r}, prefix={self.prefix!r})"


def checkpoints_from_config(persistence: Any, access: AwsAccess | None,
                            base_dir: str | os.PathLike) -> Checkpoints:
    """The store ``globals.persistence`` configures; a relative ``directory_name`` is
    relative to ``base_dir`` (the collector passes its working directory)."""
    c = persistence.config
    if persistence.type == "s3":
        if access is None:
            raise ValueError("S3 persistence needs AWS access")
        return S3Checkpoints(c.bucket, c.prefix, access)
    if persistence.type == "filesystem":
        return FileCheckpoints(Path(base_dir) / Path(c.directory_name).expanduser())
    raise ValueError(f"unknown persistence type {persistence.type!r}")

