"""The `globals` block: debug logs, statistics, persistence, dead letter."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Discriminator, Field, Tag

from awscollector.config.base import Model, NonEmpty, by_type


class FilesystemConfig(Model):
    directory_name: NonEmpty


class S3Config(Model):
    bucket: NonEmpty
    prefix: str = ""


class SqsQueueConfig(Model):
    queue_url: NonEmpty


class Persistence(Model):
    """Where API pullers keep checkpoints; one subclass per `type`."""

    type: str
    config: FilesystemConfig | S3Config


class FilesystemPersistence(Persistence):
    type: Literal["filesystem"] = "filesystem"
    config: FilesystemConfig = FilesystemConfig(directory_name="state")


class S3Persistence(Persistence):
    type: Literal["s3"]
    config: S3Config


class DeadLetter(Model):
    """Where input that cannot be delivered goes; one subclass per `type`."""

    type: str
    config: FilesystemConfig | SqsQueueConfig


class FilesystemDeadLetter(DeadLetter):
    type: Literal["filesystem"] = "filesystem"
    config: FilesystemConfig = FilesystemConfig(directory_name="deadletter")


class SqsDeadLetter(DeadLetter):
    type: Literal["sqs"]
    config: SqsQueueConfig


AnyPersistence = Annotated[
    Annotated[FilesystemPersistence, Tag("filesystem")] | Annotated[S3Persistence, Tag("s3")],
    Discriminator(by_type("filesystem")),
]
AnyDeadLetter = Annotated[
    Annotated[FilesystemDeadLetter, Tag("filesystem")] | Annotated[SqsDeadLetter, Tag("sqs")],
    Discriminator(by_type("filesystem")),
]


class Globals(Model):
    debug: bool = False
    # a statistics line per service and region this often while running; 0: none
    stats_interval_seconds: int = Field(300, ge=0)
    persistence: AnyPersistence = FilesystemPersistence()
    dead_letter: AnyDeadLetter = FilesystemDeadLetter()
