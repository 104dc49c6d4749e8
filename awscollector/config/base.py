"""What every block of the config shares: the model base, cross-key checks on the raw
input, and small value types (regions, role ARNs)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails

from awscollector.config.problems import error


class Model(BaseModel):
    """Common settings; `_raw_checks` adds cross-key problems to the field problems."""

    model_config = ConfigDict(
        extra="forbid",  # a typo must not be silently ignored
        frozen=True,
        coerce_numbers_to_str=True,  # `id: 100001` and numeric external ids are strings
        hide_input_in_errors=True,  # keep secrets out of str(ValidationError)
    )

    @classmethod
    def allowed_keys(cls) -> list[str]:
        """The keys this block takes, as the user writes them."""
        return [f.alias or name for name, f in cls.model_fields.items() if not f.exclude]

    @classmethod
    def unknown_key(cls, key: str) -> str:
        """The message for a key this block does not take (CFG-003)."""
        return f"unknown key; allowed keys: {', '.join(cls.allowed_keys())}"

    @classmethod
    def _raw_checks(cls, data: dict) -> list[InitErrorDetails]:
        """Problems that involve several keys, checked on the raw input."""
        return []

    @model_validator(mode="wrap")
    @classmethod
    def _with_raw_checks(cls, data: Any, handler: Callable[[Any], Any]) -> Any:
        # Checked on the raw input, so they are reported even when a field is wrong too
        # (an "after" model validator would only run once every field is valid).
        found = cls._raw_checks(data) if isinstance(data, dict) else []
        if not found:
            return handler(data)
        errors: list[InitErrorDetails] = []
        try:
            handler(data)
        except ValidationError as err:
            errors = _reinit(err)
        raise ValidationError.from_exception_data(cls.__name__, [*errors, *found])


def _reinit(err: ValidationError) -> list[InitErrorDetails]:
    """The errors of `err` in the form `ValidationError.from_exception_data` takes."""
    out: list[InitErrorDetails] = []
    for e in err.errors(include_url=False):
        if e["type"].startswith("CFG-"):
            out.append({"type": error(e["type"], e["msg"]), "loc": e["loc"], "input": e["input"]})
        else:
            detail: InitErrorDetails = {"type": e["type"], "loc": e["loc"], "input": e["input"]}
            if "ctx" in e:
                detail["ctx"] = e["ctx"]
            out.append(detail)
    return out


def given(data: Mapping, key: str) -> bool:
    return data.get(key) is not None


def is_false(value: Any) -> bool:
    # The raw value may still be a string from ${VAR}; same words as pydantic's bool.
    return value is False or str(value).strip().lower() in {"false", "0", "off", "f", "n", "no"}


# ---------------------------------------------------------------------------- small types

_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")


def _region(value: str) -> str:
    if not _REGION.fullmatch(value):
        raise error("CFG-004", f"'{value}' is not an AWS region name (like us-east-1)")
    return value


def _role_arn(value: str) -> str:
    if not _ROLE_ARN.fullmatch(value):
        raise error(
            "CFG-008", "not an IAM role ARN; use arn:aws:iam::<12-digit account>:role/<name>"
        )
    return value


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _bucket(value: str) -> str:
    if not _BUCKET.fullmatch(value) or ".." in value:
        raise error("CFG-004", f"'{value}' is not an S3 bucket name (3 to 63 lower-case "
                               f"letters, digits, '.' and '-')")
    return value


Region = Annotated[str, AfterValidator(_region)]
Bucket = Annotated[str, AfterValidator(_bucket)]
RoleArn = Annotated[str, AfterValidator(_role_arn)]
NonEmpty = Annotated[str, Field(min_length=1)]


def by_type(default: str) -> Callable[[Any], str | None]:
    """Discriminator: the block's `type` key picks the model (missing: `default`)."""

    def tag(value: Any) -> str | None:
        if isinstance(value, dict):
            found = value.get("type", default)
            return found if isinstance(found, str) else repr(found)
        return getattr(value, "type", None)

    return tag
