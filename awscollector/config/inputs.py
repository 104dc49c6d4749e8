"""The `inputs` block: the AWS account (credentials, regions) and its services."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, SecretStr, ValidationInfo, field_serializer, field_validator
from pydantic_core import InitErrorDetails

from awscollector.config.base import Model, NonEmpty, Region, RoleArn, given
from awscollector.config.problems import error
from awscollector.config.services import SERVICE_TAG, SERVICES, AnyService, ServiceConfig

_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}")  # AWS STS AssumeRole ExternalId


class Credentials(Model):
    access_key: SecretStr | None = None
    access_secret: SecretStr | None = None
    base_assume_role: RoleArn | None = None
    target_assume_role: RoleArn | None = None
    assume_role_external_id: SecretStr | None = None

    @classmethod
    def _raw_checks(cls, data: dict) -> list[InitErrorDetails]:
        found: list[InitErrorDetails] = []
        for have, need in (("access_key", "access_secret"), ("access_secret", "access_key")):
            if given(data, have) and not given(data, need):
                found.append(
                    {"type": error("CFG-005", f"required with {have}"), "loc": (need,),
                     "input": data}
                )
        roles = given(data, "base_assume_role") or given(data, "target_assume_role")
        if given(data, "assume_role_external_id") and not roles:
            found.append(
                {"type": error("CFG-009", "needs target_assume_role or base_assume_role"),
                 "loc": ("assume_role_external_id",), "input": data}
            )
        return found

    @field_validator("access_key", "access_secret")
    @classmethod
    def _not_empty(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            raise error("CFG-004", "must not be empty")
        return value

    @field_validator("assume_role_external_id")
    @classmethod
    def _external_id(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _EXTERNAL_ID.fullmatch(value.get_secret_value()):
            raise error("CFG-004", "must be 2 to 1224 letters, digits or +=,.@:/-")
        return value

    @field_serializer("access_key", "access_secret", "assume_role_external_id")
    def _mask(self, value: SecretStr | None) -> str | None:
        return None if value is None else "***"


class AwsInput(Model):
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
            raise error("CFG-004", "must be an http:// or https:// URL")
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
                service = {**service, SERVICE_TAG: str(name)}
            elif name not in SERVICES:  # report the unknown name rather than the shape
                service = {SERVICE_TAG: str(name)}
            tagged[name] = service
        return tagged

    @field_validator("services")
    @classmethod
    def _something_to_run(
        cls, value: dict[str, ServiceConfig], info: ValidationInfo
    ) -> dict[str, ServiceConfig]:
        if not info.data.get("enabled", True):
            raise error("CFG-012", "inputs.aws is disabled: nothing to run")
        if not any(s.enabled for s in value.values()):
            raise error("CFG-012", f"no enabled service; services: {', '.join(SERVICES)}")
        return value


class Inputs(Model):
    aws: AwsInput
