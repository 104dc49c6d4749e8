"""Errors with stable codes. Every code is listed in docs/errors.md.

Families: CFG configuration, AWS access/permissions/throttling/missing resources,
SRC bad input data, OUT output and Devo, RUN runtime.
"""

from __future__ import annotations


class CollectorError(Exception):
    """An error an operator can act on: a stable code plus a message.

    The message names what failed (bucket and key, API call, output) and never
    carries a secret.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message

    def __reduce__(self):  # keep code and message through pickling (Beam workers)
        return (type(self), (self.code, self.message))
