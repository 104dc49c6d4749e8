"""The formats the collector knows: one line per format module.

    registry = default_registry()            # a new Registry of the built-in formats
    registry.register(my_module.FORMAT)      # a format of your own (README: "Writing
                                             # your own format")

Order matters where key patterns overlap: formats are tried in this order.
"""

from __future__ import annotations

from awscollector.transforms import (
    aws_config,
    cloudfront,
    cloudtrail,
    elb,
    eventbridge,
    firehose_logs,
    guardduty_events,
    network_firewall,
    route53_resolver,
    s3_access,
    securityhub,
    umbrella,
    vpcflow,
    vpcflow_parquet,
    waf,
)
from awscollector.transforms.formats import Format, Registry

BUILTIN: tuple[Format, ...] = (
    vpcflow_parquet.FORMAT,  # before the text format: sniffs the raw bytes
    vpcflow.FORMAT,
    cloudtrail.FORMAT,
    cloudfront.FORMAT,
    *umbrella.FORMATS,
    *elb.FORMATS,
    s3_access.FORMAT,
    aws_config.FORMAT,
    waf.FORMAT,
    *network_firewall.FORMATS,
    route53_resolver.FORMAT,
    # Last of those that sniff: its documents start with {"messageType":, which no other
    # format's do, but Firehose's key says nothing, so every other sniffer goes first.
    firehose_logs.FORMAT,
    # EventBridge events (SQS event services): the specific kinds before the catch-all,
    # so on a queue two event services share, each event goes to the most specific.
    *securityhub.FORMATS,
    guardduty_events.FORMAT,
    eventbridge.FORMAT,
)

# What else AWS writes to an organization's log-archive bucket, that no format here
# collects yet: kind -> key pattern, skipped with its name, not dead-lettered as an
# unknown key (SRC-006). Every kind AWS writes there has a format now.
UNCOLLECTED: dict[str, str] = {}


def default_registry() -> Registry:
    """A registry of the built-in formats; each run gets its own (custom formats join)."""
    return Registry(BUILTIN, UNCOLLECTED)
