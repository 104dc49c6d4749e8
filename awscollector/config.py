"""Load and validate the collector's YAML config.

Every problem found is reported at once, each with a stable code (docs/errors.md) and
the dotted path of the value as the user wrote it::

    from awscollector.config import ConfigError, load_config, summary

    try:
        config = load_config("config.yaml")
    except ConfigError as err:
        print(err)                      # "CFG-007 inputs.aws.services.cisco-umbrella: ..."
        raise SystemExit(2) from None
    print(summary(config))              # "config OK: 3 services, 2 regions"
    config.globals_.persistence.type    # "filesystem"; `config.globals` is the same object
    aws = config.inputs.aws
    for name, service in aws.enabled_services().items():
        print(name, aws.regions_for(name), service.sqs_queue_name, service.readers)

Notes:
- The `globals` block is the field `Config.globals_` (alias "globals", because a field
  named `globals` would shadow the builtin inside the class); the read-only property
  `Config.globals` returns the same object.
- Every service is a subclass of `ServiceConfig`, which has every per-service attribute;
  the ones a service does not take are None. `ServiceConfig.name` is the service name.
- Persistence and dead letter are `FilesystemPersistence`/`S3Persistence` and
  `FilesystemDeadLetter`/`SqsDeadLetter` (bases `Persistence`, `DeadLetter`); branch on
  `.type` and read `.config.directory_name`, `.config.bucket`/`.prefix`, `.config.queue_url`.
- Outputs are `DevoOutput` (type devo_platform: syslog over TLS) or `DevoHttpOutput`
  (type devo_http: Devo's HTTP endpoint); branch on `.type`.
- Certificate paths (`chain`, `cert`, `key`) are stored absolute, resolved against the
  config file's directory. Naive `start_time` values are taken as UTC.
- Secrets (`access_key`, `access_secret`, `assume_role_external_id`, an HTTP output's
  `token`) are SecretStr: read them with `.get_secret_value()`. Dumps (`model_dump`,
  `masked_dict`) show "***".
- `${NAME}` is replaced from the environment in every string value; `$${NAME}` gives a
  literal `${NAME}`.
"""

from __future__ import annotations

import ipaddress
import os
import re
import types
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, NamedTuple, Union, get_args, get_origin
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

__all__ = [
    "AuditEventsAll",
    "AwsInput",
    "CiscoUmbrella",
    "CloudwatchLogs",
    "Config",
    "ConfigError",
    "Credentials",
    "DeadLetter",
    "DevoConfig",
    "DevoHttpConfig",
    "DevoHttpOutput",
    "DevoOutput",
    "FilesystemConfig",
    "FilesystemDeadLetter",
    "FilesystemPersistence",
    "Globals",
    "Guardduty",
    "Inputs",
    "MetricsAll",
    "NonCloudwatchLogs",
    "Persistence",
    "Problem",
    "S3Config",
    "S3Persistence",
    "SERVICES",
    "ServiceConfig",
    "ServiceEventsAll",
    "SqsCloudwatchConsumer",
    "SqsDeadLetter",
    "SqsQueueConfig",
    "load_config",
    "parse_config",
    "summary",
]


# ---------------------------------------------------------------------------- problems


class Problem(NamedTuple):
    """One thing wrong with a config: a CFG code, a dotted path, and what to do."""

    code: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.code} {self.path}: {self.message}"


class ConfigError(Exception):
    """The config is not usable; `problems` lists every problem, sorted by path."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(set(problems), key=lambda p: (p.path, p.code, p.message))
        super().__init__("\n".join(map(str, self.problems)))

    def __reduce__(self):  # pickle by problems, not by the joined text
        return (type(self), (self.problems,))


def _error(code: str, message: str) -> PydanticCustomError:
    # No context given: pydantic leaves the message as is, so braces in it are safe.
    return PydanticCustomError(code, message)


# ---------------------------------------------------------------------------- base model


class _Model(BaseModel):
    """Common settings; `_raw_checks` adds cross-key problems to the field problems."""

    model_config = ConfigDict(
        extra="forbid",  # a typo must not be silently ignored
        frozen=True,
        coerce_numbers_to_str=True,  # `id: 100001` and numeric external ids are strings
        hide_input_in_errors=True,  # keep secrets out of str(ValidationError)
    )

    @classmethod
    def allowed_keys(cls) -> list[str]:
        """The keys this block takes, as the user writes them."""
        return [f.alias or name for name, f in cls.model_fields.items() if not f.exclude]

    @classmethod
    def _raw_checks(cls, data: dict) -> list[InitErrorDetails]:
        """Problems that involve several keys, checked on the raw input."""
        return []

    @model_validator(mode="wrap")
    @classmethod
    def _with_raw_checks(cls, data: Any, handler: Callable[[Any], Any]) -> Any:
        # Checked on the raw input, so they are reported even when a field is wrong too
        # (an "after" model validator would only run once every field is valid).
        found = cls._raw_checks(data) if isinstance(data, dict) else []
        if not found:
            return handler(data)
        errors: list[InitErrorDetails] = []
        try:
            handler(data)
        except ValidationError as err:
            errors = _reinit(err)
        raise ValidationError.from_exception_data(cls.__name__, [*errors, *found])


def _reinit(err: ValidationError) -> list[InitErrorDetails]:
    """The errors of `err` in the form `ValidationError.from_exception_data` takes."""
    out: list[InitErrorDetails] = []
    for e in err.errors(include_url=False):
        if e["type"].startswith("CFG-"):
            out.append({"type": _error(e["type"], e["msg"]), "loc": e["loc"], "input": e["input"]})
        else:
            detail: InitErrorDetails = {"type": e["type"], "loc": e["loc"], "input": e["input"]}
            if "ctx" in e:
                detail["ctx"] = e["ctx"]
            out.append(detail)
    return out


def _given(data: Mapping, key: str) -> bool:
    return data.get(key) is not None


def _is_false(value: Any) -> bool:
    # The raw value may still be a string from ${VAR}; same words as pydantic's bool.
    return value is False or str(value).strip().lower() in {"false", "0", "off", "f", "n", "no"}


# ---------------------------------------------------------------------------- small types

_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}")  # AWS STS AssumeRole ExternalId


def _region(value: str) -> str:
    if not _REGION.fullmatch(value):
        raise _error("CFG-004", f"'{value}' is not an AWS region name (like us-east-1)")
    return value


def _role_arn(value: str) -> str:
    if not _ROLE_ARN.fullmatch(value):
        raise _error(
            "CFG-008", "not an IAM role ARN; use arn:aws:iam::<12-digit account>:role/<name>"
        )
    return value


Region = Annotated[str, AfterValidator(_region)]
RoleArn = Annotated[str, AfterValidator(_role_arn)]
NonEmpty = Annotated[str, Field(min_length=1)]


def _by_type(default: str) -> Callable[[Any], str | None]:
    """Discriminator: the block's `type` key picks the model (missing: `default`)."""

    def tag(value: Any) -> str | None:
        if isinstance(value, dict):
            found = value.get("type", default)
            return found if isinstance(found, str) else repr(found)
        return getattr(value, "type", None)

    return tag


# ---------------------------------------------------------------------------- globals


class FilesystemConfig(_Model):
    directory_name: NonEmpty


class S3Config(_Model):
    bucket: NonEmpty
    prefix: str = ""


class SqsQueueConfig(_Model):
    queue_url: NonEmpty


class Persistence(_Model):
    """Where API pullers keep checkpoints; one subclass per `type`."""

    type: str
    config: FilesystemConfig | S3Config


class FilesystemPersistence(Persistence):
    type: Literal["filesystem"] = "filesystem"
    config: FilesystemConfig = FilesystemConfig(directory_name="state")


class S3Persistence(Persistence):
    type: Literal["s3"]
    config: S3Config


class DeadLetter(_Model):
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
    Discriminator(_by_type("filesystem")),
]
AnyDeadLetter = Annotated[
    Annotated[FilesystemDeadLetter, Tag("filesystem")] | Annotated[SqsDeadLetter, Tag("sqs")],
    Discriminator(_by_type("filesystem")),
]


class Globals(_Model):
    debug: bool = False
    persistence: AnyPersistence = FilesystemPersistence()
    dead_letter: AnyDeadLetter = FilesystemDeadLetter()


# ---------------------------------------------------------------------------- outputs


class DevoConfig(_Model):
    address: NonEmpty
    port: int = Field(ge=1, le=65535)
    type: Literal["SSL", "TCP"] = "SSL"
    chain: str | None = None
    cert: str | None = None
    key: str | None = None

    @classmethod
    def _raw_checks(cls, data: dict) -> list[InitErrorDetails]:
        if data.get("type", "SSL") != "SSL":
            return []
        return [
            {"type": _error("CFG-005", "required when type is SSL"), "loc": (k,), "input": data}
            for k in ("chain", "cert", "key")
            if not _given(data, k)
        ]

    @field_validator("chain", "cert", "key")
    @classmethod
    def _readable(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _readable_file(value, info)


def _readable_file(value: str | None, info: ValidationInfo) -> str | None:
    """A certificate path, made absolute; CFG-010 when it cannot be read."""
    # Relative to the config file, so a config and its certs can move together.
    if value is None:
        return None
    base = Path((info.context or {}).get("base_dir", "."))
    path = base / Path(value).expanduser()
    try:
        path.open("rb").close()
    except OSError as err:
        raise _error("CFG-010", f"cannot read {value}: {err.strerror or err}") from None
    return os.path.abspath(path)  # no symlink resolution: mounted secrets rotate links


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class DevoHttpConfig(_Model):
    """Devo's HTTP endpoint: ``<endpoint>/stream/<domain>/token!<token>/<host>/<tag>``."""

    endpoint: NonEmpty
    domain: NonEmpty
    token: SecretStr
    host: NonEmpty | None = None  # None: this machine's host name
    chain: str | None = None  # a CA file instead of the system's CAs

    @field_validator("endpoint")
    @classmethod
    def _https_url(cls, value: str) -> str:
        # The value is not repeated in messages: a pasted URL may hold the token.
        try:
            url = urlsplit(value)
            url.port  # noqa: B018 (raises on a port that is not a number)
        except ValueError:
            raise _error("CFG-004", "not a URL; use https://<host>[:port]") from None
        if url.scheme not in ("https", "http") or not url.hostname:
            raise _error("CFG-004", "must be an https:// URL, like https://http-us.devo.io")
        if url.scheme == "http" and not _is_loopback(url.hostname):
            raise _error("CFG-004", "must be https:// (http:// only to a loopback address, "
                                    "for testing)")
        if url.query or url.fragment or url.username or url.password or "/stream" in url.path:
            raise _error("CFG-004", "give the endpoint only, like https://http-us.devo.io: "
                                    "domain, token and host are keys of their own")
        return value.rstrip("/")

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value()
        if not secret or any(c.isspace() for c in secret):
            raise _error("CFG-004", "must be a non-empty token without spaces")
        return value

    @field_validator("chain")
    @classmethod
    def _readable(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _readable_file(value, info)

    @field_serializer("token")
    def _mask(self, value: SecretStr) -> str:
        return "***"


class DevoOutput(_Model):
    """Syslog over TLS to a Devo relay (type devo_platform)."""

    type: Literal["devo_platform"]
    config: DevoConfig


class DevoHttpOutput(_Model):
    """Devo's HTTP endpoint, each request acknowledged (type devo_http)."""

    type: Literal["devo_http"]
    config: DevoHttpConfig


def _output_tag(value: Any) -> str | None:
    # Without a `type`, the config's keys tell which output was meant, so the problems
    # reported are about that one (the missing `type` among them).
    if isinstance(value, dict) and "type" not in value:
        config = value.get("config")
        http = isinstance(config, dict) and "endpoint" in config
        return "devo_http" if http else "devo_platform"
    return _by_type("devo_platform")(value)


AnyOutput = Annotated[
    Annotated[DevoOutput, Tag("devo_platform")] | Annotated[DevoHttpOutput, Tag("devo_http")],
    Discriminator(_output_tag),
]


# ---------------------------------------------------------------------------- services


class ServiceConfig(_Model):
    """Base of every service: every attribute exists, None where a service has no use.

    Subclasses list the keys they take in KEYS and override those fields' defaults;
    any other field given in the config is CFG-003.
    """

    NAME: ClassVar[str] = ""
    KEYS: ClassVar[tuple[str, ...]] = ()
    TYPES: ClassVar[tuple[str, ...]] = ()

    enabled: bool = True
    regions: list[Region] | None = Field(None, min_length=1)
    flatten: bool = False
    sqs_queue_name: NonEmpty | None = None
    sqs_queue_url: NonEmpty | None = None
    readers: int | None = None
    types: list[str] | None = None
    auto_event_type: bool | None = None
    start_time: datetime | None = None
    request_period_in_seconds: int | None = None
    namespaces: list[str] | None = None
    period_seconds: int | None = None
    log_group_prefixes: list[str] | None = None

    @property
    def name(self) -> str:
        return self.NAME

    @classmethod
    def allowed_keys(cls) -> list[str]:
        return list(cls.KEYS)

    @model_validator(mode="before")
    @classmethod
    def _drop_service_tag(cls, data: Any) -> Any:
        # AwsInput adds the service name under this key for the discriminator.
        if isinstance(data, dict) and _SERVICE_TAG in data:
            data = {k: v for k, v in data.items() if k != _SERVICE_TAG}
        return data

    @field_validator("*", mode="before")
    @classmethod
    def _only_own_keys(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name not in cls.KEYS:
            raise _error(
                "CFG-003",
                f"{cls.NAME} does not take this key; allowed keys: {', '.join(cls.KEYS)}",
            )
        return value

    @field_validator("types")
    @classmethod
    def _known_types(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise _error("CFG-004", f"give at least one type: {', '.join(cls.TYPES)}")
        unknown = [t for t in value if t not in cls.TYPES]
        if unknown:
            raise _error(
                "CFG-011",
                f"unknown type {', '.join(unknown)}; valid types: {', '.join(cls.TYPES)}",
            )
        return list(dict.fromkeys(value))

    @field_validator("start_time")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    def __repr_args__(self):  # only what this service takes; the rest is always None
        return [(k, v) for k, v in super().__repr_args__() if k in self.KEYS]

    @model_serializer(mode="wrap")
    def _own_keys_only(self, handler: Callable[[Any], dict]) -> dict:
        return {k: v for k, v in handler(self).items() if k in self.KEYS}


_COMMON = ("enabled", "regions", "flatten")
_SQS = ("sqs_queue_name", "sqs_queue_url", "readers")
_API = ("start_time", "request_period_in_seconds")
_SERVICE_TAG = "__service__"


class _SqsService(ServiceConfig):
    readers: int = Field(1, ge=1)

    @classmethod
    def _needs_queue(cls, data: dict) -> bool:
        return not _is_false(data.get("enabled", True))  # a disabled one may be a stub

    @classmethod
    def _raw_checks(cls, data: dict) -> list[InitErrorDetails]:
        if not cls._needs_queue(data):
            return []
        given = [k for k in ("sqs_queue_name", "sqs_queue_url") if _given(data, k)]
        if len(given) == 1:
            return []
        message = "give sqs_queue_name or sqs_queue_url" + (", not both" if given else "")
        return [{"type": _error("CFG-007", message), "loc": (), "input": data}]


class _ApiService(ServiceConfig):
    request_period_in_seconds: int = Field(60, ge=1)


class NonCloudwatchLogs(_SqsService):
    NAME = "non-cloudwatch-logs"
    KEYS = (*_COMMON, *_SQS, "types")
    TYPES = ("vpc_flow_logs", "cloudfront_logs")
    types: list[str] = Field(default_factory=lambda: ["vpc_flow_logs", "cloudfront_logs"])


class AuditEventsAll(_SqsService):
    NAME = "audit-events-all"
    KEYS = (*_COMMON, *_SQS, "types", "auto_event_type", *_API)
    TYPES = ("audits_s3", "audit_apis")
    types: list[str] = Field(default_factory=lambda: ["audits_s3"])
    auto_event_type: bool = False
    # Declared here, not inherited from _ApiService too: with two model bases pydantic
    # takes the field from the first one, which still has the None default.
    request_period_in_seconds: int = Field(60, ge=1)

    @classmethod
    def _needs_queue(cls, data: dict) -> bool:
        # Only the S3 half reads SQS; audit_apis alone calls CloudTrail LookupEvents.
        kinds = data.get("types", ["audits_s3"])
        return super()._needs_queue(data) and isinstance(kinds, list) and "audits_s3" in kinds


class CiscoUmbrella(_SqsService):
    NAME = "cisco-umbrella"
    KEYS = (*_COMMON, *_SQS)


class ServiceEventsAll(_SqsService):
    NAME = "service-events-all"
    KEYS = (*_COMMON, *_SQS, "auto_event_type")
    auto_event_type: bool = False


class SqsCloudwatchConsumer(_SqsService):
    NAME = "sqs-cloudwatch-consumer"
    KEYS = (*_COMMON, *_SQS)


class Guardduty(_ApiService):
    NAME = "guardduty"
    KEYS = (*_COMMON, *_API)


class MetricsAll(_ApiService):
    NAME = "metrics-all"
    KEYS = (*_COMMON, *_API, "namespaces", "period_seconds")
    namespaces: list[NonEmpty] = Field(default_factory=list)  # empty: every namespace
    period_seconds: int = Field(300, ge=1)


class CloudwatchLogs(_ApiService):
    NAME = "cloudwatch-logs"
    KEYS = (*_COMMON, *_API, "log_group_prefixes")
    log_group_prefixes: list[NonEmpty] = Field(default_factory=list)  # empty: every group


_SERVICE_CLASSES: tuple[type[ServiceConfig], ...] = (
    NonCloudwatchLogs,
    AuditEventsAll,
    CiscoUmbrella,
    ServiceEventsAll,
    SqsCloudwatchConsumer,
    Guardduty,
    MetricsAll,
    CloudwatchLogs,
)
SERVICES: dict[str, type[ServiceConfig]] = {c.NAME: c for c in _SERVICE_CLASSES}


def _service_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get(_SERVICE_TAG)
    return getattr(value, "NAME", None)


AnyService = Annotated[
    Union[tuple(Annotated[c, Tag(c.NAME)] for c in _SERVICE_CLASSES)],  # noqa: UP007
    Discriminator(_service_tag),
]


# ---------------------------------------------------------------------------- inputs


class Credentials(_Model):
    access_key: SecretStr | None = None
    access_secret: SecretStr | None = None
    base_assume_role: RoleArn | None = None
    target_assume_role: RoleArn | None = None
    assume_role_external_id: SecretStr | None = None

    @classmethod
    def _raw_checks(cls, data: dict) -> list[InitErrorDetails]:
        found: list[InitErrorDetails] = []
        for have, need in (("access_key", "access_secret"), ("access_secret", "access_key")):
            if _given(data, have) and not _given(data, need):
                found.append(
                    {"type": _error("CFG-005", f"required with {have}"), "loc": (need,),
                     "input": data}
                )
        roles = _given(data, "base_assume_role") or _given(data, "target_assume_role")
        if _given(data, "assume_role_external_id") and not roles:
            found.append(
                {"type": _error("CFG-009", "needs target_assume_role or base_assume_role"),
                 "loc": ("assume_role_external_id",), "input": data}
            )
        return found

    @field_validator("access_key", "access_secret")
    @classmethod
    def _not_empty(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            raise _error("CFG-004", "must not be empty")
        return value

    @field_validator("assume_role_external_id")
    @classmethod
    def _external_id(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _EXTERNAL_ID.fullmatch(value.get_secret_value()):
            raise _error("CFG-004", "must be 2 to 1224 letters, digits or +=,.@:/-")
        return value

    @field_serializer("access_key", "access_secret", "assume_role_external_id")
    def _mask(self, value: SecretStr | None) -> str | None:
        return None if value is None else "***"


class AwsInput(_Model):
    id: NonEmpty
    enabled: bool = True
    endpoint_url: str | None = None
    credentials: Credentials | None = None
    regions: list[Region] = Field(default_factory=lambda: ["us-east-1"], min_length=1)
    services: dict[str, AnyService] = Field(default_factory=dict, validate_default=True)

    def enabled_services(self) -> dict[str, ServiceConfig]:
        """The services to run, by name (none when the whole input is disabled)."""
        if not self.enabled:
            return {}
        return {name: s for name, s in self.services.items() if s.enabled}

    def regions_for(self, name: str) -> list[str]:
        """The regions of service `name`: its own, or the input's default."""
        return self.services[name].regions or self.regions

    @field_validator("endpoint_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise _error("CFG-004", "must be an http:// or https:// URL")
        return value

    @field_validator("services", mode="before")
    @classmethod
    def _tag_with_name(cls, value: Any) -> Any:
        # The discriminator sees only the value, so put the key (the name) into it.
        if not isinstance(value, dict):
            return value
        tagged = {}
        for name, service in value.items():
            if service is None:  # `guardduty:` with nothing after it
                service = {}
            if isinstance(service, dict):
                service = {**service, _SERVICE_TAG: str(name)}
            elif name not in SERVICES:  # report the unknown name rather than the shape
                service = {_SERVICE_TAG: str(name)}
            tagged[name] = service
        return tagged

    @field_validator("services")
    @classmethod
    def _something_to_run(
        cls, value: dict[str, ServiceConfig], info: ValidationInfo
    ) -> dict[str, ServiceConfig]:
        if not info.data.get("enabled", True):
            raise _error("CFG-012", "inputs.aws is disabled: nothing to run")
        if not any(s.enabled for s in value.values()):
            raise _error("CFG-012", f"no enabled service; services: {', '.join(SERVICES)}")
        return value


class Inputs(_Model):
    aws: AwsInput


class Config(_Model):
    """The whole config. `globals_` (alias "globals") is also readable as `globals`."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    globals_: Globals = Field(default_factory=Globals, alias="globals")
    outputs: dict[str, AnyOutput] = Field(default_factory=dict, validate_default=True)
    inputs: Inputs

    @property
    def globals(self) -> Globals:
        return self.globals_

    @field_validator("outputs")
    @classmethod
    def _some_output(cls, value: dict[str, DevoOutput | DevoHttpOutput]
                     ) -> dict[str, DevoOutput | DevoHttpOutput]:
        if not value:
            raise _error("CFG-012", "no output configured")
        return value

    def masked_dict(self) -> dict[str, Any]:
        """The config as plain data, secrets shown as "***" (for debug logs)."""
        return self.model_dump(mode="json", by_alias=True)


# ---------------------------------------------------------------------------- ${NAME}

_VAR = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _substitute(
    value: Any, environ: Mapping[str, str], path: tuple, problems: list[Problem]
) -> Any:
    """`value` with ${NAME} replaced in every string; an unset NAME is CFG-002."""
    if isinstance(value, dict):
        return {k: _substitute(v, environ, (*path, k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, environ, (*path, i), problems) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match) -> str:
        escaped, name = match.groups()
        if escaped:
            return "${" + name + "}"
        if name in environ:
            return environ[name]
        problems.append(
            Problem("CFG-002", _dotted(path), f"environment variable {name} is not set")
        )
        return match.group(0)

    return _VAR.sub(replace, value)


# ---------------------------------------------------------------------------- error paths


def _dotted(path: tuple | list) -> str:
    return ".".join(str(p) for p in path) or "<config>"


def _unwrap(tp: Any) -> Any:
    """`tp` without Annotated and without `| None`."""
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
            continue
        if get_origin(tp) in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) == 1:
                tp = args[0]
                continue
        return tp


def _tags(tp: Any) -> dict[str, Any]:
    """Tag -> model of a tagged union; empty for anything else."""
    if get_origin(tp) not in (Union, types.UnionType):
        return {}
    found = {}
    for arg in get_args(tp):
        if get_origin(arg) is Annotated:
            for meta in arg.__metadata__:
                if isinstance(meta, Tag):
                    found[meta.tag] = get_args(arg)[0]
    return found


def _resolve(loc: tuple) -> tuple[list[str], Any]:
    """The user's path for a pydantic error location, and the type found at its end.

    Pydantic puts the tag of a tagged union into the location; the user never wrote it.
    """
    path: list[str] = []
    tp: Any = Config
    for seg in loc:
        tp = _unwrap(tp)
        tags = _tags(tp)
        if tags:
            tp = tags.get(seg)
            continue
        path.append(str(seg))
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            fields = tp.model_fields
            field = next((f for n, f in fields.items() if seg in (n, f.alias)), None)
            tp = field.annotation if field else None
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        elif get_origin(tp) is list:
            tp = get_args(tp)[0]
        else:
            tp = None
    return path, _unwrap(tp)


_SECRET_KEYS = {"access_key", "access_secret", "assume_role_external_id", "token"}
_MAPPING_ERRORS = {"model_type", "model_attributes_type", "dict_type", "union_tag_not_found"}


def _problem(e: Any) -> Problem:
    """One pydantic error as a Problem; messages come from `msg`, never from the input."""
    loc, kind = e["loc"], e["type"]
    path, tp = _resolve(loc)
    message = e["msg"]
    if kind.startswith("CFG-"):
        code = kind
    elif kind == "extra_forbidden":
        _, parent = _resolve(loc[:-1])
        allowed = parent.allowed_keys() if isinstance(parent, type) else []
        code, message = "CFG-003", f"unknown key; allowed keys: {', '.join(allowed)}"
    elif kind == "missing":
        code, message = "CFG-005", "required key is missing"
    elif kind == "union_tag_invalid" and _tags(tp) == _tags(_unwrap(AnyService)):
        code = "CFG-006"
        message = f"unknown service; valid services: {', '.join(SERVICES)}"
    elif kind == "union_tag_invalid":
        code, message = "CFG-004", f"must be one of {e['ctx']['expected_tags']}"
        path.append("type")
    elif kind in _MAPPING_ERRORS:
        code, message = "CFG-004", "expected a mapping"
    else:
        code = "CFG-004"
    if path and path[-1] in _SECRET_KEYS and isinstance(e.get("input"), str) and e["input"]:
        message = message.replace(e["input"], "***")  # belt and braces: never echo a secret
    return Problem(code, _dotted(path), message)


# ---------------------------------------------------------------------------- loading


def parse_config(
    data: dict, base_dir: Path | str, environ: Mapping[str, str] | None = None
) -> Config:
    """Validate an already-loaded config; relative cert paths resolve against base_dir."""
    if not isinstance(data, dict):
        raise ConfigError([Problem("CFG-004", "<config>", "expected a mapping at the top")])
    problems: list[Problem] = []
    data = _substitute(data, os.environ if environ is None else environ, (), problems)
    errors: list[Any] = []
    try:
        config = Config.model_validate(data, context={"base_dir": Path(base_dir)})
    except ValidationError as err:
        errors = err.errors(include_url=False)
    # Raised out here so the pydantic error, which holds the inputs, is not even the
    # ConfigError's __context__. A value with an unset variable is reported once.
    unset = {p.path for p in problems}
    problems += [p for p in map(_problem, errors) if p.path not in unset]
    if problems:
        raise ConfigError(problems)
    return config


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys, which PyYAML would silently overwrite."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | os.PathLike, environ: Mapping[str, str] | None = None) -> Config:
    """Read, substitute and validate the YAML config at `path`; raises ConfigError."""
    data, trouble = _read_yaml(Path(path))
    if trouble:
        raise ConfigError([Problem("CFG-001", os.fspath(path), trouble)])
    return parse_config(data, Path(path).parent, environ)


def _read_yaml(path: Path) -> tuple[Any, str | None]:
    """The loaded document, or None and why not (a YAML error's text may quote the file)."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # safe: SafeLoader
    except OSError as err:
        return None, f"cannot read: {err.strerror or err}"
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except yaml.YAMLError as err:
        return None, _yaml_message(err)
    if data is None:
        return None, "the file is empty"
    if not isinstance(data, dict):
        return None, "the top level must be a mapping"
    return data, None


def _yaml_message(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    if mark is None:
        return f"invalid YAML: {problem}"
    return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"


def summary(config: Config) -> str:
    """`config OK: <n> services, <m> regions` (enabled services, distinct regions)."""
    aws = config.inputs.aws
    services = aws.enabled_services()
    regions = {r for name in services for r in aws.regions_for(name)}
    return f"config OK: {len(services)} services, {len(regions)} regions"
