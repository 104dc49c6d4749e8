"""What every service block shares, and the two families of services.

A service is a subclass of ``ServiceConfig`` in a module of its own (this
package): its ``NAME``, its ``TYPES`` if it has a ``types`` key, and its options
as fields. The keys a service takes are exactly its fields; any other key is
CFG-003. Reading an option of another service on it gives None, so code can ask
any service for ``sqs_queue_name`` or ``auto_event_type``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field, field_validator, model_validator
from pydantic_core import InitErrorDetails

from awscollector.config.base import Bucket, Model, NonEmpty, Region, given, is_false
from awscollector.config.problems import error

SERVICE_TAG = "__service__"  # AwsInput puts the service's name under this key
_OPTIONS: set[str] = set()  # every option of every service


class ServiceConfig(Model):
    """Base of every service; the options every service takes."""

    NAME: ClassVar[str] = ""
    TYPES: ClassVar[tuple[str, ...]] = ()  # the entries its `types` key may have

    enabled: bool = True
    regions: list[Region] | None = Field(None, min_length=1)
    flatten: bool = False

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        _OPTIONS.update(cls.model_fields)

    def __getattr__(self, name: str) -> Any:
        if name in _OPTIONS:  # another service's option: not applicable here
            return None
        return super().__getattr__(name)

    @property
    def name(self) -> str:
        return self.NAME

    def used_regions(self, default: list[str]) -> set[str]:
        """The regions it collects from; ``default``: the input's regions."""
        return set(self.regions or default)

    @classmethod
    def unknown_key(cls, key: str) -> str:
        if key in _OPTIONS:
            return (f"{cls.NAME} does not take this key; allowed keys: "
                    f"{', '.join(cls.allowed_keys())}")
        return super().unknown_key(key)

    @model_validator(mode="before")
    @classmethod
    def _drop_service_tag(cls, data: Any) -> Any:
        if isinstance(data, dict) and SERVICE_TAG in data:
            data = {k: v for k, v in data.items() if k != SERVICE_TAG}
        return data

    # For the services that declare `types` (check_fields=False: the others don't).
    @field_validator("types", check_fields=False)
    @classmethod
    def _known_types(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise error("CFG-004", f"give at least one type: {', '.join(cls.TYPES)}")
        unknown = [t for t in value if t not in cls.TYPES]
        if unknown:
            raise error(
                "CFG-011",
                f"unknown type {', '.join(unknown)}; valid types: {', '.join(cls.TYPES)}",
            )
        return list(dict.fromkeys(value))


_OPTIONS.update(ServiceConfig.model_fields)


def _utc(value: datetime | None) -> datetime | None:
    """Naive times are taken as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


StartTime = Annotated[datetime | None, AfterValidator(_utc)]
RequestPeriod = Annotated[int, Field(ge=1)]


class SqsService(ServiceConfig):
    """A service that reads S3 notifications (or events) from an SQS queue."""

    sqs_queue_name: NonEmpty | None = None
    sqs_queue_url: NonEmpty | None = None
    readers: int = Field(1, ge=1)
    # A message received more often went unfinished that many times: dead-lettered.
    max_receive_count: int = Field(5, ge=1)

    @classmethod
    def _needs_queue(cls, data: dict) -> bool:
        return not is_false(data.get("enabled", True))  # a disabled one may be a stub

    @classmethod
    def _raw_checks(cls, data: dict) -> list[InitErrorDetails]:
        if not cls._needs_queue(data):
            return []
        found = [k for k in ("sqs_queue_name", "sqs_queue_url") if given(data, k)]
        if len(found) == 1:
            return []
        message = "give sqs_queue_name or sqs_queue_url" + (", not both" if found else "")
        return [{"type": error("CFG-007", message), "loc": (), "input": data}]


class S3SqsService(SqsService):
    """A service that reads S3 objects announced on an SQS queue."""

    # The buckets that notify its queue: `setup` connects them, `iam-policy` scopes
    # s3:GetObject to them (without them: every bucket). Collecting does not need them.
    s3_buckets: list[Bucket] | None = Field(None, min_length=1)


LagSeconds = Annotated[int | None, Field(None, ge=0)]


class ApiService(ServiceConfig):
    """A service that polls an AWS API."""

    start_time: StartTime = None
    request_period_in_seconds: RequestPeriod = 60
    # How far behind now it reads, for data that reaches the API late; None: the API's
    # default (CloudTrail 900 s).
    lag_seconds: LagSeconds = None
