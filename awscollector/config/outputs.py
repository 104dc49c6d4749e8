"""The `outputs` block: Devo's syslog relay (devo_platform), HTTP endpoint (devo_http),
and an archive of files (archive)."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationInfo,
    field_serializer,
    field_validator,
)
from pydantic_core import InitErrorDetails

from awscollector.config.base import Model, NonEmpty, _bucket, by_type, given
from awscollector.config.problems import error


class DevoConfig(Model):
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
            {"type": error("CFG-005", "required when type is SSL"), "loc": (k,), "input": data}
            for k in ("chain", "cert", "key")
            if not given(data, k)
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
        raise error("CFG-010", f"cannot read {value}: {err.strerror or err}") from None
    return os.path.abspath(path)  # no symlink resolution: mounted secrets rotate links


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class DevoHttpConfig(Model):
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
            raise error("CFG-004", "not a URL; use https://<host>[:port]") from None
        if url.scheme not in ("https", "http") or not url.hostname:
            raise error("CFG-004", "must be an https:// URL, like https://http-us.devo.io")
        if url.scheme == "http" and not _is_loopback(url.hostname):
            raise error("CFG-004", "must be https:// (http:// only to a loopback address, "
                                   "for testing)")
        if url.query or url.fragment or url.username or url.password or "/stream" in url.path:
            raise error("CFG-004", "give the endpoint only, like https://http-us.devo.io: "
                                   "domain, token and host are keys of their own")
        return value.rstrip("/")

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value()
        if not secret or any(c.isspace() for c in secret):
            raise error("CFG-004", "must be a non-empty token without spaces")
        return value

    @field_validator("chain")
    @classmethod
    def _readable(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _readable_file(value, info)

    @field_serializer("token")
    def _mask(self, value: SecretStr) -> str:
        return "***"


class DevoOutput(Model):
    """Syslog over TLS to a Devo relay (type devo_platform)."""

    type: Literal["devo_platform"]
    config: DevoConfig


class DevoHttpOutput(Model):
    """Devo's HTTP endpoint, each request acknowledged (type devo_http)."""

    type: Literal["devo_http"]
    config: DevoHttpConfig


class ArchiveConfig(Model):
    """Files of every event: Avro or Parquet, in a local directory or ``s3://bucket/prefix``."""

    format: Literal["avro", "parquet"] = "avro"
    path: NonEmpty
    window_minutes: int = Field(default=60, ge=1)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str, info: ValidationInfo) -> str:
        if value.startswith("s3://"):
            bucket, _, prefix = value[5:].partition("/")
            _bucket(bucket)  # CFG-004 naming what a bucket name may hold
            return f"s3://{bucket}/{prefix.strip('/')}".rstrip("/")
        if "://" in value:
            raise error("CFG-004", "must be a local directory or s3://<bucket>/<prefix>")
        # Relative to the config file, like the certificates.
        base = Path((info.context or {}).get("base_dir", "."))
        return os.path.abspath(base / Path(value).expanduser())


class ArchiveOutput(Model):
    """Avro or Parquet files of every event, local or in S3 (type archive)."""

    type: Literal["archive"]
    config: ArchiveConfig


def _output_tag(value: Any) -> str | None:
    # Without a `type`, the config's keys tell which output was meant, so the problems
    # reported are about that one (the missing `type` among them).
    if isinstance(value, dict) and "type" not in value:
        config = value.get("config")
        http = isinstance(config, dict) and "endpoint" in config
        if isinstance(config, dict) and "path" in config:
            return "archive"
        return "devo_http" if http else "devo_platform"
    return by_type("devo_platform")(value)


AnyOutput = Annotated[
    Annotated[DevoOutput, Tag("devo_platform")] | Annotated[DevoHttpOutput, Tag("devo_http")]
    | Annotated[ArchiveOutput, Tag("archive")],
    Discriminator(_output_tag),
]
