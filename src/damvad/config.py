"""YAML configs with command-line overrides (``key=value``), checked against a dataclass.

Every value is checked against its field's type annotation and, where the class declares them in a
``limits`` class variable, its range or choices, before anything is written: a bad value is a
:class:`ConfigError` that names where it came from (the YAML file or the command line), never a
traceback in the middle of a run. Types are coerced where YAML is ambiguous (``lr=3e-4`` is a string to
YAML 1.1, a float here)."""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

COMMAND_LINE = "command line"


class ConfigError(ValueError):
    """A config file or value that cannot be used; the message says where it came from."""


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["lr=0.001", "seeds=[0,1,2]", "model.cov_norm=released"]`` -> nested dict (YAML-typed values)."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"{COMMAND_LINE}: override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        value = _safe_yaml(raw, f"{COMMAND_LINE}: {item!r}") if raw != "" else ""
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _safe_yaml(text: str, where: str) -> Any:
    """Plain YAML only: a syntax error or a Python tag (``!!python/object``) is a ConfigError naming ``where``."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if isinstance(exc, yaml.constructor.ConstructorError):
            problem += "; only plain YAML values are allowed, never Python objects"
        raise ConfigError(f"{where}: not valid YAML{at}: {problem}") from None


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML config file as a mapping (plain YAML only); a clear error naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: config file not found")
    loaded = _safe_yaml(path.read_text(errors="replace"), str(path)) or {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: a config must be a mapping of key: value")
    return loaded


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None,
                **explicit: Any) -> T:
    """Defaults of ``cls`` < YAML file < ``explicit`` keyword values < ``key=value`` overrides.

    Each layer is checked (:func:`check_values`) with its source named in the error. A stage's config
    (:data:`damvad.stages.STAGES`) reads its part of the shared schema: its top-level keys and section."""
    from damvad.stages import merged_values, stage_of

    stage = stage_of(cls)
    if stage is not None:
        data, sources = merged_values(stage, path, overrides, **explicit)
    else:
        layers: list[tuple[str, dict[str, Any]]] = []
        if path is not None:
            layers.append((str(path), read_config_file(path)))
        layers.append((COMMAND_LINE, {k: v for k, v in explicit.items() if v is not None}))
        layers.append((COMMAND_LINE, parse_overrides(overrides)))
        data, sources = merge_layers(cls, layers)
    try:
        return cls(**data)
    except (TypeError, ValueError) as exc:  # the class's own cross-field checks (or a nested config's)
        raise ConfigError(f"{' / '.join(sources) or 'config'}: {exc}") from None


def merge_layers(cls: type, layers: list[tuple[str, dict[str, Any]]]) -> tuple[dict[str, Any], list[str]]:
    """(values, the sources that gave any) of ``(source, values)`` layers, later ones winning, each checked
    against ``cls`` with its source named in the error."""
    data: dict[str, Any] = {}
    for source, layer in layers:
        data = merge(data, check_values(cls, layer, source))
    return data, list(dict.fromkeys(s for s, layer in layers if layer))


def dump_config(obj: Any) -> str:
    return yaml.safe_dump(dataclasses.asdict(obj), sort_keys=False)


# ---------------------------------------------------------------------------- checks


def check_values(cls: type, data: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """``data`` with every value checked and coerced to its field's type and ``cls.limits``."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown config key(s) {unknown}; known: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    limits = getattr(cls, "limits", {})
    problems, out = [], {}
    for key, value in data.items():
        try:
            out[key] = _check(value, hints[key], limits.get(key))
        except ValueError as exc:
            problems.append(f"{key}: {exc}")
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))
    return out


def check_fields(obj: Any) -> None:
    """Check (and coerce in place) every field of a config dataclass instance, e.g. in ``__post_init__``."""
    values = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    for key, value in check_values(type(obj), values, type(obj).__name__).items():
        object.__setattr__(obj, key, value)


_INTERVAL = re.compile(r"^\s*([\[(])\s*(-?inf|[-+0-9.e]+)\s*,\s*(inf|[-+0-9.e]+)\s*([\])])\s*$")


def _check(value: Any, tp: Any, limit: str | tuple | None) -> Any:
    value = _coerce(value, tp)
    if limit is None or value is None:
        return value
    for item in value if isinstance(value, list) else [value]:
        if isinstance(limit, tuple):
            if item not in limit:
                raise ValueError(f"must be one of {', '.join(map(repr, limit))}, got {item!r}")
        else:
            _check_interval(item, limit)
    return value


def _check_interval(value: float, limit: str) -> None:
    """``limit`` in interval notation: ``[1, inf)``, ``(0, 1)``, ``[0, 1)``..."""
    match = _INTERVAL.match(limit)
    if match is None:
        raise AssertionError(f"bad limit {limit!r}")  # pragma: no cover - a programming error
    left, low, high, right = match.groups()
    low_v, high_v = float(low), float(high)
    ok = (value >= low_v if left == "[" else value > low_v) and (value <= high_v if right == "]" else value < high_v)
    if not ok:
        if math.isinf(high_v):
            raise ValueError(f"must be {'>=' if left == '[' else '>'} {low}, got {value!r}")
        raise ValueError(f"must be in {limit.strip()}, got {value!r}")


def _coerce(value: Any, tp: Any) -> Any:
    """``value`` as type ``tp`` (int, float, str, bool, list[...], dict[...], X | None, Any), or ValueError."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(" or ".join(errors))
    if origin is list:
        items = value if isinstance(value, (list, tuple)) else [value]  # seeds: 0 means [0]
        return [_coerce(v, args[0] if args else Any) for v in items]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ValueError(f"expected a mapping (key: value), got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        number = _number(value)
        if number is not None and number.is_integer():
            return int(number)
        raise ValueError(f"expected an integer, got {value!r}")
    if tp is float:
        number = _number(value)
        if number is not None and not math.isnan(number):
            return number
        raise ValueError(f"expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # a folder named 2024
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None
