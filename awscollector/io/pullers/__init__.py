"""The API pullers, by name: one module each (see base.py)."""

from __future__ import annotations

from awscollector.io.pullers import cloudtrail, guardduty, logs, metrics
from awscollector.io.pullers.base import ApiStream, Page, Puller

PULLERS: dict[str, Puller] = {p.name: p for p in (cloudtrail.PULLER, logs.PULLER,
                                                guardduty.PULLER, metrics.PULLER)}

__all__ = ["PULLERS", "ApiStream", "Page", "Puller"]
