"""The plan/apply core every structure shares: one line per item, and --dry-run.

A structure's module looks an item up, then either reports it ``present`` or
creates it through ``Setup.create``, which with ``dry_run`` reports ``would create``
and calls nothing that writes. So a dry run reads exactly what a real run reads.

    setup = Setup(access, dry_run=False)
    if exists:
        setup.present("sqs queue logs", "us-east-1")
    else:
        url = setup.create("sqs queue logs", "us-east-1",
                           lambda: sqs.create_queue(QueueName="logs")["QueueUrl"])
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from awscollector.awserrors import aws_error, error_code
from awscollector.errors import CollectorError
from awscollector.io.access import AwsAccess

T = TypeVar("T")
CREATED, PRESENT, WOULD_CREATE, NOTE = "created", "present", "would create", "note"


@dataclass(frozen=True)
class Identity:
    """Who setup runs as: the account and partition its ARNs are built in."""

    account: str
    partition: str = "aws"

    def arn(self, service: str, region: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{region}:{self.account}:{resource}"


class Setup:
    """Runs the steps of one `setup`: AWS clients, item lines, problems, dry run."""

    def __init__(self, access: AwsAccess, dry_run: bool = False,
                 out: Callable[[str], None] | None = None,
                 err: Callable[[str], None] | None = None) -> None:
        self.access = access
        self.dry_run = dry_run
        self._out = out or (lambda line: print(line, flush=True))
        self._err = err or (lambda line: print(line, file=sys.stderr, flush=True))
        self.lines: list[str] = []
        self.problems: list[CollectorError] = []

    def client(self, service: str, region: str) -> Any:
        return self.access.client(service, region)

    def identity(self, region: str) -> Identity:
        # AWS-001 on bad credentials (the factory's own check), else the call's error.
        found = self.call(f"sts GetCallerIdentity in {region}",
                          self.access.factory().identity, region=region)
        arn = found.get("Arn", "")
        partition = arn.split(":")[1] if arn.count(":") >= 2 else "aws"
        return Identity(found["Account"], partition or "aws")

    # -- lines ----------------------------------------------------------------------

    def item(self, status: str, what: str, region: str) -> None:
        line = f"{status:<8} {what} ({region})"
        self.lines.append(line)
        self._out(line)

    def present(self, what: str, region: str) -> None:
        self.item(PRESENT, what, region)

    def note(self, what: str, region: str) -> None:
        self.item(NOTE, what, region)

    def create(self, what: str, region: str, action: Callable[[], T]) -> T | None:
        """Runs `action` (the writing call) and reports `created`; with dry_run, only
        reports `would create` and returns None."""
        if self.dry_run:
            self.item(WOULD_CREATE, what, region)
            return None
        result = action()
        self.item(CREATED, what, region)
        return result

    def problem(self, error: CollectorError) -> None:
        """An item that could not be set up: reported now, the rest goes on, exit 1."""
        self.problems.append(error)
        self._err(str(error))

    # -- AWS calls ------------------------------------------------------------------

    @staticmethod
    def call(what: str, fn: Callable[..., T], /, *, missing: frozenset[str] = frozenset(),
             **kwargs: Any) -> T | None:
        """``fn(**kwargs)``; an AWS error becomes our coded one naming `what` (the call
        and its target). An error whose AWS code is in `missing` returns None instead:
        the thing looked up is not there."""
        try:
            return fn(**kwargs)
        except ClientError as e:
            if error_code(e) in missing:
                return None
            raise aws_error(e, what) from None
        except BotoCoreError as e:
            raise aws_error(e, what) from None
