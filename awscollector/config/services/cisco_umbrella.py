"""cisco-umbrella: Cisco Umbrella's logs in S3 (dns, ip, proxy, ...)."""

from __future__ import annotations

from awscollector.config.services.base import S3SqsService


class CiscoUmbrella(S3SqsService):
    NAME = "cisco-umbrella"
