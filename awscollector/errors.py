"""Errors with stable codes. Every code is listed in docs/errors.md.

Families: CFG configuration, AWS access/permissions/throttling/missing resources,
SRC bad input data, OUT output and Devo, RUN runtime.
"""

from __future__ import annotations

import re

MAX_MESSAGE = 2000  # characters; an S3 key alone may take 1024


class CollectorError(Exception):
    """An error an operator can act on: a stable code plus a message.

    The message names what failed (bucket and key, API call, output) and never
    carries a secret. It is one line of at most MAX_MESSAGE characters (see
    one_line), so that an error is one line of a log whatever a server answered.
    """

    def __init__(self, code: str, message: str) -> None:
        message = one_line(message)
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message

    def __reduce__(self):  # keep code and message through pickling (Beam workers)
        return (type(self), (self.code, self.message))


_BREAK = re.compile(r" *[^\S ]\s*")  # a whitespace run with a newline, tab, ... in it


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text` on one line, cut to `limit` characters.

    A whitespace run holding a newline or tab becomes one space; plain spaces are
    kept (an S3 key may hold two in a row).
    """
    text = _BREAK.sub(" ", str(text)).strip()
    return text if len(text) <= limit else text[:limit - 3] + "..."


_CODE = re.compile(r"\b((?:CFG|AWS|SRC|OUT|RUN)-\d{3}) (.+)")


def as_collector_error(e: BaseException) -> BaseException:
    """The CollectorError inside a pipeline failure.

    Beam reports an error raised in a worker as text inside its own exception;
    this finds our code in it. Anything else becomes RUN-001.
    """
    if isinstance(e, CollectorError | KeyboardInterrupt):
        return e
    match = _CODE.search(str(e))
    if match:
        return CollectorError(match.group(1), match.group(2).strip())
    last = str(e).strip().splitlines()[-1:] or [type(e).__name__]
    return CollectorError("RUN-001", f"pipeline failed: {last[0][:500]}")
