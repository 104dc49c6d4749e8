"""The formats the collector knows: one line per format module.

    registry = default_registry()            # a new Registry of the built-in formats
    registry.register(my_module.FORMAT)      # a format of your own (README: "Writing
                                             # your own format")

Order matters where key patterns overlap: formats are tried in this order.
"""

from __future__ import annotations

from awscollector.transforms import (
    cloudfront,
    cloudtrail,
    eventbridge,
    guardduty_events,
    securityhub,
    umbrella,
    vpcflow,
    vpcflow_parquet,
)
from awscollector.transforms.formats import Format, Registry

BUILTIN: tuple[Format, ...] = (
    vpcflow_parquet.FORMAT,  # before the text format: sniffs the raw bytes
    vpcflow.FORMAT,
    cloudtrail.FORMAT,
    cloudfront.FORMAT,
    *umbrella.FORMATS,
    # EventBridge events (SQS event services): the specific kinds before the catch-all,
    # so on a queue two event services share, each event goes to the most specific.
    *securityhub.FORMATS,
    guardduty_events.FORMAT,
    eventbridge.FORMAT,
)

# What else AWS writes to an organization's log-archive bucket, that no format here
# collects yet: skipped with its name, not dead-lettered as an unknown key (SRC-006).
_ACCOUNT = r"(^|/)AWSLogs/(o-[a-z0-9]{10,32}/)?\d{12}/"
UNCOLLECTED: dict[str, str] = {
    "AWS Config": _ACCOUNT + "Config/",
    "Elastic Load Balancing access log": _ACCOUNT + "elasticloadbalancing/",
    "AWS Network Firewall log": _ACCOUNT + "network-firewall/",
    "Route 53 Resolver query log": _ACCOUNT + "vpcdnsquerylogs/",
    "AWS WAF log": _ACCOUNT + "WAFLogs/",
}


def default_registry() -> Registry:
    """A registry of the built-in formats; each run gets its own (custom formats join)."""
    return Registry(BUILTIN, UNCOLLECTED)
