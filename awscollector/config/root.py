"""The whole config, and its one-line summary."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, field_validator

from awscollector.config.base import Model
from awscollector.config.globals import Globals
from awscollector.config.inputs import Inputs
from awscollector.config.outputs import AnyOutput, DevoHttpOutput, DevoOutput
from awscollector.config.problems import error


class Config(Model):
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
            raise error("CFG-012", "no output configured")
        return value

    def masked_dict(self) -> dict[str, Any]:
        """The config as plain data, secrets shown as "***" (for debug logs)."""
        return self.model_dump(mode="json", by_alias=True)


def summary(config: Config) -> str:
    """`config OK: <n> services, <m> regions` (enabled services, distinct regions)."""
    aws = config.inputs.aws
    services = aws.enabled_services()
    regions = {r for s in services.values() for r in s.used_regions(aws.regions)}
    return f"config OK: {len(services)} services, {len(regions)} regions"
