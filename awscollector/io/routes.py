"""Which service collects which type of object announced on a queue.

An organization's log-archive bucket announces CloudTrail files, VPC Flow Logs,
CloudFront logs and more on one SQS queue, and each kind belongs to another
service (``audit-events-all``, ``non-cloudwatch-logs``, ...). A message goes to
one reader only, so services configured on one queue share its readers: each
object is classified among the types of all of them, and goes to the service
that collects its type, with that service's parser options.

Usage::

    routes = Routes([Route("non-cloudwatch-logs", ("vpc_flow_logs",)),
                     Route("audit-events-all", ("audits_s3",), {"auto_event_type": True})])
    routes.types                       # every type collected from the queue
    routes.claim(message, "audits_s3")  # the message, labelled with its service
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from awscollector.io.sqs import SqsMessage


@dataclass(frozen=True)
class Route:
    """A service (or a source of custom-s3) on a queue: the types it collects and the
    options its parsers get. ``service`` "" keeps the label the queue's reader gave."""

    service: str
    types: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)


class Routes:
    """The routes of one queue; a type belongs to one of them at most."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self._routes = tuple(routes)
        self._by_type: dict[str, Route] = {}
        for route in self._routes:
            for type_ in route.types:
                other = self._by_type.setdefault(type_, route)
                if other is not route:
                    raise ValueError(f"type {type_!r} is collected by both {other.service!r} "
                                     f"and {route.service!r}")

    @classmethod
    def of(cls, types: Iterable[str] | Routes, options: Mapping[str, Any] | None = None
           ) -> Routes:
        """One service's types (and options) as routes; Routes are returned as they are."""
        if isinstance(types, Routes):
            return types
        return cls([Route("", tuple(types), dict(options or {}))])

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(self._by_type)

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(r.service for r in self._routes)

    def options(self, type_: str) -> Mapping[str, Any]:
        route = self._by_type.get(type_)
        return route.options if route is not None else {}

    def claim(self, message: SqsMessage, type_: str) -> SqsMessage:
        """The message labelled with the service that collects ``type_``: its events,
        counters and dead letters are that service's."""
        route = self._by_type.get(type_)
        if route is None or not route.service or route.service == message.service:
            return message
        return dataclasses.replace(message, service=route.service)

    def __repr__(self) -> str:
        shown = (f"{r.service or '-'}: {list(r.types)}" for r in self._routes)
        return f"Routes({', '.join(shown)})"
