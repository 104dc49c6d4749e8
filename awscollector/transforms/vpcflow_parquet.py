"""VPC Flow Logs (and Transit Gateway flow logs) in Parquet, as AWS writes them to S3.

Keys: ``.../vpcflowlogs/<region>/YYYY/MM/DD/<...>.log.parquet``, or with
Hive-compatible prefixes ``.../aws-service=vpcflowlogs/aws-region=.../year=.../
month=.../day=.../<...>.parquet``. The PARQUET framing hands the parser Arrow
record batches, read row group by row group.

Messages for Devo (table ``cloud.aws.vpc.flow``) are those of a custom text
format (transforms/vpcflow.py): a compact JSON object per row, AWS's field names
as keys in the file's column order (a column ``account_id`` is the field
``account-id``), integer columns as JSON numbers, strings as strings, null (and
``-``) as ``null``. A column AWS does not document keeps its name, hyphenated.

A batch is converted column-wise: one Arrow call joins every row's values and
their keys, so there is no Python work per row. A batch with values JSON must
escape, a documented integer field that is not an integer column, or a column of
another Arrow type goes row by row; rows whose integer field is not an integer
are rejected with SRC-004.

    >>> import pyarrow as pa
    >>> batch = pa.record_batch({"version": pa.array([5, 5], pa.int32()),
    ...                          "log_status": ["OK", "NODATA"], "srcaddr": ["10.0.0.1", None]})
    >>> for message in to_messages(batch)[0]:
    ...     print(message.decode())
    {"version":5,"log-status":"OK","srcaddr":"10.0.0.1"}
    {"version":5,"log-status":"NODATA","srcaddr":null}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pyarrow as pa

from awscollector.errors import CollectorError
from awscollector.transforms.formats import PARQUET, Format, Parsed, RecordBatch
from awscollector.transforms.vpcflow import ALL_FIELDS, INTEGER_FIELDS, TABLE

_KNOWN = frozenset(ALL_FIELDS)
_INT, _STR, _OTHER = "int", "str", "other"
# Bytes a string value may hold as it is in JSON: all but controls, '"' and '\'.
_PLAIN = bytes(b for b in range(0x20, 0x100) if b not in b'"\\\x7f')


@dataclass(frozen=True)
class _Plan:
    """How a file's columns become JSON, from its schema."""

    names: tuple[str, ...]  # AWS's field names, in column order
    kinds: tuple[str, ...]  # _INT, _STR or _OTHER per column
    rowwise: bool  # a column the column-wise path cannot take


def aws_name(column: str) -> str:
    """AWS's name of a Parquet column: ``account_id`` -> ``account-id``."""
    return column if column in _KNOWN else column.replace("_", "-")


@lru_cache(maxsize=64)
def _plan(schema: pa.Schema) -> _Plan:
    names = tuple(aws_name(name) for name in schema.names)
    if not _KNOWN.intersection(names):
        raise CollectorError("SRC-003", f"not VPC Flow Logs: no flow log field among its "
                                        f"columns ({', '.join(schema.names)[:300]})")
    if len(set(names)) != len(names):
        raise CollectorError("SRC-003", f"not VPC Flow Logs: a field appears twice among its "
                                        f"columns ({', '.join(schema.names)[:300]})")
    kinds = []
    for name, column in zip(names, schema, strict=True):
        t = column.type
        if pa.types.is_dictionary(t):
            t = t.value_type
        if pa.types.is_integer(t):
            kinds.append(_INT)
        elif (pa.types.is_string(t) or pa.types.is_large_string(t)) and (
                name not in INTEGER_FIELDS):
            kinds.append(_STR)
        else:
            kinds.append(_OTHER)
    return _Plan(names, tuple(kinds), _OTHER in kinds)


def to_messages(batch: pa.RecordBatch) -> tuple[list[bytes], list[tuple[str, dict]]]:
    """(messages, rejected rows as (reason, row)); SRC-003 if it is not a flow log."""
    if not batch.num_rows:
        return [], []
    plan = _plan(batch.schema)
    if not plan.rowwise:
        messages = _columnwise(plan, batch)
        if messages is not None:
            return messages, []
    return _rowwise(plan, batch)


def _columnwise(plan: _Plan, batch: pa.RecordBatch) -> list[bytes] | None:
    """Every row's message in one join; None if a value needs JSON escaping."""
    import pyarrow.compute as pc  # here, not at the top: 50 ms of every run's start
    pieces: list = []
    pending = "{"
    for name, kind, column in zip(plan.names, plan.kinds, batch.columns, strict=True):
        key = json.dumps(name) + ":"
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        if kind == _INT:
            pieces += [pending + key, pc.fill_null(pc.cast(column, pa.string()), "null")]
            pending = ","
            continue
        if column.type != pa.string():
            column = column.cast(pa.string())
        if _needs_escaping(column):
            return None
        missing = pc.equal(column, "-")
        if column.null_count:
            missing = pc.or_kleene(pc.is_null(column), missing)
        if pc.any(missing).as_py():
            # Only here do values need quotes of their own: "null" has none.
            quoted = pc.binary_join_element_wise('"', column, '"', "")
            pieces += [pending + key, pc.if_else(missing, "null", quoted)]
            pending = ","
        else:
            pieces += [pending + key + '"', column]  # the quotes go in the keys
            pending = '",'
    pieces.append(pending[:-1] + "}")
    return pc.binary_join_element_wise(*pieces, "").cast(pa.binary()).to_pylist()


def _needs_escaping(column: pa.Array) -> bool:
    """Whether a string column holds a control character, '"' or '\\' (rare)."""
    _, offsets, data = column.buffers()
    if data is None:
        return False
    at = memoryview(offsets).cast("i")
    start, end = at[column.offset], at[column.offset + len(column)]
    return bool(data[start:end].to_pybytes().translate(None, _PLAIN))


def _rowwise(plan: _Plan, batch: pa.RecordBatch) -> tuple[list[bytes], list[tuple[str, dict]]]:
    messages, rejected = [], []
    is_int = [name in INTEGER_FIELDS or kind == _INT
              for name, kind in zip(plan.names, plan.kinds, strict=True)]
    for row in batch.to_pylist():
        record: dict[str, Any] = {}
        bad = None
        for name, int_field, value in zip(plan.names, is_int, row.values(), strict=True):
            if isinstance(value, bytes):  # a binary column
                try:
                    value = value.decode("utf-8")
                except UnicodeDecodeError:
                    bad = name
            if value is None or value == "-":
                value = None
            elif int_field:
                if isinstance(value, str) and value.isascii() and value.isdigit():
                    value = int(value)
                elif not isinstance(value, int) or isinstance(value, bool):
                    bad = name
            record[name] = value
        if bad is not None:
            rejected.append((f"a value of {bad} is not what AWS writes there (an integer or "
                             f"UTF-8 text)", row))
            continue
        messages.append(json.dumps(record, separators=(",", ":"), ensure_ascii=False,
                                   default=str).encode("utf-8"))
    return messages, rejected


# -- the format, for the registry (transforms/registry.py)


def parse(batch: RecordBatch, options: Mapping[str, Any]) -> Parsed:
    """A batch of a Parquet log file (``batch.records`` is an Arrow RecordBatch)."""
    try:
        messages, rejected = to_messages(batch.records)
    except CollectorError as e:
        raise CollectorError(e.code, f"{batch.source}: {e.message}") from None
    parsed = Parsed()
    parsed.extend(TABLE, messages)
    for reason, row in rejected:
        parsed.reject("SRC-004", f"{len(rejected)} rows: {reason}", row)
    return parsed


def looks_like_parquet(raw: bytes) -> bool:
    """Whether an object is Parquet, from its first bytes as stored."""
    return raw.startswith(b"PAR1")


FORMAT = Format(
    name="vpc_flow_logs_parquet", type="vpc_flow_logs", table=TABLE, parse=parse,
    framing=PARQUET, keys=(r"(^|/)(aws-service=)?vpcflowlogs/.*\.parquet$",),
    sniff=looks_like_parquet, json_messages=True,
)
