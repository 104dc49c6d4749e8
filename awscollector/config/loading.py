"""Reading a config: YAML (duplicate keys refused: CFG-001), ``${NAME}`` from the
environment (CFG-002), then validation, every problem at once."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from awscollector.config.problems import ConfigError, Problem, dotted, problem_of
from awscollector.config.root import Config
from awscollector.config.services import SERVICES

_VAR = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _substitute(
    value: Any, environ: Mapping[str, str], path: tuple, problems: list[Problem]
) -> Any:
    """`value` with ${NAME} replaced in every string; an unset NAME is CFG-002."""
    if isinstance(value, dict):
        return {k: _substitute(v, environ, (*path, k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, environ, (*path, i), problems) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match) -> str:
        escaped, name = match.groups()
        if escaped:
            return "${" + name + "}"
        if name in environ:
            return environ[name]
        problems.append(
            Problem("CFG-002", dotted(path), f"environment variable {name} is not set")
        )
        return match.group(0)

    return _VAR.sub(replace, value)


def parse_config(
    data: dict, base_dir: Path | str, environ: Mapping[str, str] | None = None
) -> Config:
    """Validate an already-loaded config; relative cert paths resolve against base_dir."""
    if not isinstance(data, dict):
        raise ConfigError([Problem("CFG-004", "<config>", "expected a mapping at the top")])
    problems: list[Problem] = []
    data = _substitute(data, os.environ if environ is None else environ, (), problems)
    errors: list[Any] = []
    try:
        config = Config.model_validate(data, context={"base_dir": Path(base_dir)})
    except ValidationError as err:
        errors = err.errors(include_url=False)
    # Raised out here so the pydantic error, which holds the inputs, is not even the
    # ConfigError's __context__. A value with an unset variable is reported once.
    unset = {p.path for p in problems}
    problems += [p for e in errors if (p := problem_of(e, Config, SERVICES)).path not in unset]
    if problems:
        raise ConfigError(problems)
    return config


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys, which PyYAML would silently overwrite."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | os.PathLike, environ: Mapping[str, str] | None = None) -> Config:
    """Read, substitute and validate the YAML config at `path`; raises ConfigError."""
    data, trouble = _read_yaml(Path(path))
    if trouble:
        raise ConfigError([Problem("CFG-001", os.fspath(path), trouble)])
    return parse_config(data, Path(path).parent, environ)


def _read_yaml(path: Path) -> tuple[Any, str | None]:
    """The loaded document, or None and why not (a YAML error's text may quote the file)."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # safe: SafeLoader
    except OSError as err:
        return None, f"cannot read: {err.strerror or err}"
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except yaml.YAMLError as err:
        return None, _yaml_message(err)
    if data is None:
        return None, "the file is empty"
    if not isinstance(data, dict):
        return None, "the top level must be a mapping"
    return data, None


def _yaml_message(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    if mark is None:
        return f"invalid YAML: {problem}"
    return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"
