"""guardduty: GuardDuty findings, from its API."""

from __future__ import annotations

from awscollector.config.services.base import ApiService


class Guardduty(ApiService):
    NAME = "guardduty"
