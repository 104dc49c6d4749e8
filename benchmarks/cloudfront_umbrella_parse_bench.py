"""Benchmark: the CloudFront and Cisco Umbrella parsers alone, on 1 MiB batches.

    .venv/bin/python benchmarks/cloudfront_umbrella_parse_bench.py

Cuts realistic objects (awscollector.embedded.seed) into batches as the S3 reader
does, then times ``parse`` over them (best of 5 rounds) and prints events/s and
nanoseconds per event. Umbrella's usual lines (quoted fields, no quote inside) take
the batch-wide check; a batch with ``""`` in some field, or audit records over
several lines, goes record by record.
"""

from __future__ import annotations

import time

from awscollector.embedded.seed import CLOUDFRONT_FIELDS, cloudfront_lines, umbrella_lines
from awscollector.transforms import cloudfront, umbrella
from awscollector.transforms.formats import COMMENT_LINES, RecordBatch
from awscollector.transforms.framing import frame_lines


def batches(text: bytes, header: str | None = None, quoted: bool = False) -> list[RecordBatch]:
    return [RecordBatch("s3://b/k", "k", i, lines, head) for i, (head, lines)
            in enumerate(frame_lines([text], header, 1 << 20, quoted=quoted))]


def bench(name: str, parse, parts: list[RecordBatch], rounds: int = 5) -> None:
    events = sum(sum(map(len, parse(b).events.values())) for b in parts)
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for b in parts:
            parse(b)
        best = min(best, time.perf_counter() - started)
    print(f"{name:42s} {events / best:>12,.0f} events/s {best / events * 1e9:>7,.0f} ns/event"
          f"  ({events} events)")


def main() -> None:
    cf = ("#Version: 1.0\n#Fields: " + " ".join(CLOUDFRONT_FIELDS) + "\n"
          + "\n".join(cloudfront_lines(40_000)) + "\n").encode()
    bench("cloudfront (33 fields)", lambda b: cloudfront.parse(b, {}),
          batches(cf, COMMENT_LINES))
    for kind, n in (("dns", 40_000), ("ip", 40_000), ("proxy", 10_000), ("firewall", 20_000),
                    ("dlp", 20_000), ("audit", 20_000)):
        lines = umbrella_lines(kind, n)
        if kind != "audit":  # Cisco's usual lines: no quote inside a field
            lines = [line for line in lines if line.count('"') == 2 * line.count('","') + 2]
        text = ("\n".join(lines) + "\n").encode()
        k = umbrella.KINDS[kind]
        label = "umbrella audit (records over lines)" if kind == "audit" else f"umbrella {kind}"
        bench(label, lambda b, k=k: umbrella.parse(k, b, {}), batches(text, quoted=True))
    text = ("\n".join(umbrella_lines("dns", 40_000)) + "\n").encode()  # 1 in 4 has a ""
    bench("umbrella dns, quotes in fields", lambda b: umbrella.parse(umbrella.KINDS["dns"], b, {}),
          batches(text, quoted=True))


if __name__ == "__main__":
    main()
