"""Config problems: what is wrong, with a stable CFG code, at the path the user wrote.

Pydantic reports errors at its own locations, with the tags of tagged unions in
them and its own wording; ``problem_of`` turns one into a ``Problem`` at the
dotted path of the YAML (``inputs.aws.services.cisco-umbrella.readers``).
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Annotated, Any, NamedTuple, Union, get_args, get_origin

from pydantic import BaseModel, Tag
from pydantic_core import PydanticCustomError


class Problem(NamedTuple):
    """One thing wrong with a config: a CFG code, a dotted path, and what to do."""

    code: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.code} {self.path}: {self.message}"


class ConfigError(Exception):
    """The config is not usable; `problems` lists every problem, sorted by path."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(set(problems), key=lambda p: (p.path, p.code, p.message))
        super().__init__("\n".join(map(str, self.problems)))

    def __reduce__(self):  # pickle by problems, not by the joined text
        return (type(self), (self.problems,))


def error(code: str, message: str) -> PydanticCustomError:
    """A validation error with our code; raise it from a validator."""
    # No context given: pydantic leaves the message as is, so braces in it are safe.
    return PydanticCustomError(code, message)


def dotted(path: tuple | list) -> str:
    return ".".join(str(p) for p in path) or "<config>"


def _unwrap(tp: Any) -> Any:
    """`tp` without Annotated and without `| None`."""
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
            continue
        if get_origin(tp) in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) == 1:
                tp = args[0]
                continue
        return tp


def _tags(tp: Any) -> dict[str, Any]:
    """Tag -> model of a tagged union; empty for anything else."""
    if get_origin(tp) not in (Union, types.UnionType):
        return {}
    found = {}
    for arg in get_args(tp):
        if get_origin(arg) is Annotated:
            for meta in arg.__metadata__:
                if isinstance(meta, Tag):
                    found[meta.tag] = get_args(arg)[0]
    return found


def _resolve(root: type, loc: tuple) -> tuple[list[str], Any]:
    """The user's path for a pydantic error location, and the type found at its end.

    Pydantic puts the tag of a tagged union into the location; the user never wrote it.
    """
    path: list[str] = []
    tp: Any = root
    for seg in loc:
        tp = _unwrap(tp)
        tags = _tags(tp)
        if tags:
            tp = tags.get(seg)
            continue
        path.append(str(seg))
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            fields = tp.model_fields
            field = next((f for n, f in fields.items() if seg in (n, f.alias)), None)
            tp = field.annotation if field else None
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        elif get_origin(tp) is list:
            tp = get_args(tp)[0]
        else:
            tp = None
    return path, _unwrap(tp)


_SECRET_KEYS = {"access_key", "access_secret", "assume_role_external_id", "token"}
_MAPPING_ERRORS = {"model_type", "model_attributes_type", "dict_type", "union_tag_not_found"}


def problem_of(e: Any, root: type, services: Mapping[str, type]) -> Problem:
    """One pydantic error (an item of ``ValidationError.errors()``) as a Problem.

    ``root`` is the model validated; ``services`` the service models by name (the
    union they form is where an unknown name is CFG-006). Messages come from `msg`,
    never from the input.
    """
    loc, kind = e["loc"], e["type"]
    path, tp = _resolve(root, loc)
    message = e["msg"]
    if kind.startswith("CFG-"):
        code = kind
    elif kind == "extra_forbidden":
        _, parent = _resolve(root, loc[:-1])
        code = "CFG-003"
        if isinstance(parent, type) and hasattr(parent, "unknown_key"):
            message = parent.unknown_key(str(loc[-1]))
        else:
            message = "unknown key; allowed keys: "
    elif kind == "missing":
        code, message = "CFG-005", "required key is missing"
    elif kind == "union_tag_invalid" and _tags(tp) == dict(services):
        code = "CFG-006"
        message = f"unknown service; valid services: {', '.join(services)}"
    elif kind == "union_tag_invalid":
        code, message = "CFG-004", f"must be one of {e['ctx']['expected_tags']}"
        path.append("type")
    elif kind in _MAPPING_ERRORS:
        code, message = "CFG-004", "expected a mapping"
    else:
        code = "CFG-004"
    if path and path[-1] in _SECRET_KEYS and isinstance(e.get("input"), str) and e["input"]:
        message = message.replace(e["input"], "***")  # belt and braces: never echo a secret
    return Problem(code, dotted(path), message)
