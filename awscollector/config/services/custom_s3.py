"""custom-s3: any logs in S3 announced by SQS, described by the user, source by source.

    custom-s3:
      regions: [eu-west-1]          # default of the sources (else inputs.aws.regions)
      flatten: false                # default of the sources (JSON and Parquet ones)
      sources:
        - name: myapp               # unique; letters, digits, _ and -
          sqs_queue_name: myapp-logs          # or sqs_queue_url
          include: ['^myapp/.*\\.json\\.gz$']  # regular expressions searched in the key
          exclude: ['/tmp/']
          framing: json_lines       # lines | json_records | json_lines | csv | parquet
          table: my.app.{record.kind}
        - name: old-alb             # logs AWS wrote, copied under keys of another layout:
          sqs_queue_name: lb-copies
          format: alb_access_logs   # a built-in S3 format (or a type of one format),
                                    # instead of framing and table

What the framings, templates and messages do: transforms/custom.py.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator
from pydantic_core import InitErrorDetails

from awscollector.config.base import Bucket, Model, NonEmpty, Region, given, is_false
from awscollector.config.problems import error
from awscollector.config.services.base import ServiceConfig
from awscollector.transforms.custom import JSON_FRAMINGS, TableTemplate, builtin_format

BAD_REGEX = "CFG-013"
BAD_TEMPLATE = "CFG-014"
NOT_FOR_FRAMING = "CFG-015"
DUPLICATE_SOURCE = "CFG-016"


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as e:
        raise error(BAD_REGEX, f"not a regular expression: {e}") from None
    return value


Regex = Annotated[str, AfterValidator(_regex)]
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def _source_name(value: str) -> str:
    # It names the source's summary rows, counters and dead-letter file.
    if not _NAME.fullmatch(value):
        raise error("CFG-004", "1 to 64 letters, digits, _ or -, starting with a letter or "
                               "a digit")
    return value


SourceName = Annotated[str, AfterValidator(_source_name)]
Framing = Literal["lines", "json_records", "json_lines", "csv", "parquet"]


class CustomS3Source(Model):
    """One source: a queue, the objects it takes, how to read them, where they go."""

    name: SourceName
    sqs_queue_name: NonEmpty | None = None
    sqs_queue_url: NonEmpty | None = None
    regions: list[Region] | None = Field(None, min_length=1)
    readers: int = Field(1, ge=1)
    max_receive_count: int = Field(5, ge=1)  # as for the other SQS services
    s3_buckets: list[Bucket] | None = Field(None, min_length=1)  # as for the S3 services
    include: list[Regex] = Field(default_factory=list)  # empty: every key
    exclude: list[Regex] = Field(default_factory=list)
    # A built-in S3 format, instead of framing and table (both, or neither: _raw_checks)
    format: str | None = None
    framing: Framing | None = None  # before the keys whose checks depend on it
    compression: Literal["auto", "gzip", "zstd", "none"] = "auto"
    records_field: NonEmpty = "Records"
    table: str | None = None
    default_table: str | None = None
    flatten: bool | None = None  # None: the service's

    @classmethod
    def _raw_checks(cls, data: dict) -> list[InitErrorDetails]:
        problems: list[InitErrorDetails] = []
        found = [k for k in ("sqs_queue_name", "sqs_queue_url") if given(data, k)]
        if len(found) != 1:
            message = "give sqs_queue_name or sqs_queue_url" + (", not both" if found else "")
            problems.append({"type": error("CFG-007", message), "loc": (), "input": data})
        if given(data, "format"):
            # The format frames and places the records: the options that would do it
            # for the source cannot go with it.
            for key in ("framing", "table", "records_field", "default_table"):
                if given(data, key):
                    problems.append({"type": error(NOT_FOR_FRAMING, (
                        f"give format, or framing and table, not both: format "
                        f"{data['format']} decides how objects are read and where "
                        f"their events go")), "loc": (key,), "input": data})
        else:
            for key in ("framing", "table"):
                if not given(data, key):
                    problems.append({"type": error("CFG-005", (
                        "required key is missing (or give format: a built-in S3 format "
                        "instead of framing and table)")), "loc": (key,), "input": data})
        return problems

    @field_validator("format")
    @classmethod
    def _format(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                builtin_format(value)
            except ValueError as e:
                raise error("CFG-004", str(e)) from None
        return value

    @field_validator("compression")
    @classmethod
    def _compression(cls, value: str, info: ValidationInfo) -> str:
        if value in ("gzip", "zstd") and info.data.get("framing") == "parquet":
            raise error(NOT_FOR_FRAMING, "a Parquet object is read as stored: use auto or "
                                         "none (Parquet compresses inside the file)")
        return value

    @field_validator("records_field")
    @classmethod
    def _records_field(cls, value: str, info: ValidationInfo) -> str:
        framing = info.data.get("framing")
        if framing is not None and framing != "json_records":
            raise error(NOT_FOR_FRAMING, f"only for framing json_records, not {framing}")
        return value

    @field_validator("table")
    @classmethod
    def _table(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        try:
            template = TableTemplate(value)
        except ValueError as e:
            raise error(BAD_TEMPLATE, str(e)) from None
        if template.record_fields and info.data.get("framing") == "lines":
            raise error(NOT_FOR_FRAMING, f"{template.record_fields[0]}: framing lines has no "
                                         "record fields; use {key.N} or another framing")
        return value

    @field_validator("default_table")
    @classmethod
    def _default_table(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            template = TableTemplate(value)
        except ValueError as e:
            raise error(BAD_TEMPLATE, str(e)) from None
        if template.fields:
            raise error(BAD_TEMPLATE, "a table name without {...} fields")
        return value

    @field_validator("flatten")
    @classmethod
    def _flatten(cls, value: bool | None, info: ValidationInfo) -> bool | None:
        name = info.data.get("format")
        if value and name is not None and not builtin_format(name).json_messages:
            raise error(NOT_FOR_FRAMING, f"format {name} keeps the original line: only "
                                         "JSON and Parquet records can be flattened")
        framing = info.data.get("framing")
        if value and framing is not None and framing not in JSON_FRAMINGS:
            raise error(NOT_FOR_FRAMING, f"framing {framing} keeps the original line: only "
                                         "JSON and Parquet records can be flattened")
        return value


class CustomS3(ServiceConfig):
    NAME = "custom-s3"

    sources: list[CustomS3Source] = Field(default_factory=list)

    @classmethod
    def _raw_checks(cls, data: dict) -> list[InitErrorDetails]:
        sources = data.get("sources")
        if not sources:
            if is_false(data.get("enabled", True)):
                return []  # a disabled stub
            return [{"type": error("CFG-005", "give at least one source"), "loc": ("sources",),
                     "input": data}]
        if not isinstance(sources, list):
            return []  # pydantic says what it expects
        found: list[InitErrorDetails] = []
        seen: set[str] = set()
        for n, source in enumerate(sources):
            name = source.get("name") if isinstance(source, dict) else None
            if not isinstance(name, str):
                continue
            if name in seen:
                found.append({"type": error(DUPLICATE_SOURCE, f"another source is named "
                                                              f"{name!r}; names must differ"),
                              "loc": ("sources", n, "name"), "input": data})
            seen.add(name)
        return found

    def sources_regions(self, default: list[str]) -> list[tuple[CustomS3Source, list[str]]]:
        """Each source with its regions: its own, else the service's, else ``default``."""
        return [(s, s.regions or self.regions or default) for s in self.sources]

    def used_regions(self, default: list[str]) -> set[str]:
        return {r for _, regions in self.sources_regions(default) for r in regions}
