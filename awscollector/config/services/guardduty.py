"""guardduty: GuardDuty findings, from its API."""

from __future__ import annotations

from pydantic import Field

from awscollector.config.base import NonEmpty
from awscollector.config.services.base import ApiService


class Guardduty(ApiService):
    NAME = "guardduty"

    # The detectors read, in each region of the service; empty: every detector of the
    # region (ListDetectors, when the run starts).
    detector_ids: list[NonEmpty] = Field(default_factory=list)
