"""The table a run prints when it ends: what each service and region delivered.

Apart from the pipeline (no Beam here): the supervisor of ``run --processes`` prints
it for its children without loading Beam.
"""

from __future__ import annotations

from typing import NamedTuple


class SummaryRow(NamedTuple):
    """A line of the summary: what a service delivered in a region to a Devo table."""

    service: str
    region: str
    table: str
    delivered: int  # events confirmed by the run's first output
    dead_lettered: int  # the service's dead-letter entries there (on its first row)


def format_summary(rows: list[SummaryRow]) -> str:
    header = ("service", "region", "Devo table", "delivered", "dead-lettered")
    table = [header] + [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = []
    for n, row in enumerate(table):
        lines.append("  ".join(c.rjust(w) if i >= 3 else c.ljust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    total = sum(r[3] for r in rows), sum(r[4] for r in rows)
    lines.append(f"total: {total[0]} delivered, {total[1]} dead-lettered")
    return "\n".join(lines)
