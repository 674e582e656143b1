"""One config schema for every stage: YAML files and ``key=value`` overrides, checked against dataclasses.

::

    dataset: ucf-crime            # top level: every stage that has the key takes it
    features: features/ucf-crime
    extract: {crops: "5", precision: fp32}
    train: {out: runs/ucf-crime-dist, iterations: 20000, seeds: [0, 1, 2]}
    evaluate: {protocols: [offline, online]}
    calibrate: {far: 0.01}
    detect: {close_after: 2.0}
    serve: {port: 8080, cameras: [{name: door, source: "rtsp://..."}]}

A stage reads its own top-level keys, then its section (which wins); it ignores the keys only other
stages know, and any key no stage knows is an error naming the file. Every subcommand accepts
``--config FILE`` and ``key=value`` overrides the same way (:func:`load_config`), and ``damvad config
show`` prints what each stage gets (:func:`show_config`). Each stage's config class lives beside its code
(:data:`STAGES` names them; extract, calibrate and detect share :mod:`damvad.stages`).

Every value is checked against its field's type annotation and, where the class declares them in a
``limits`` class variable, its range or choices, before anything is written: a bad value is a
:class:`ConfigError` that names where it came from (the YAML file or the command line), never a
traceback in the middle of a run. Types are coerced where YAML is ambiguous (``lr=3e-4`` is a string to
YAML 1.1, a float here). A class may rename a key (``renamed`` class variable, old -> new): the old one is
still read, with a deprecation warning.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import logging
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

log = logging.getLogger(__name__)

T = TypeVar("T")

COMMAND_LINE = "command line"
# stage -> its config class; imported by name when a config is read, so this module imports no stage
STAGES: dict[str, str] = {
    "extract": "damvad.stages:ExtractConfig",
    "train": "damvad.train:TrainConfig",
    "evaluate": "damvad.evaluate:EvalConfig",
    "calibrate": "damvad.stages:CalibrateConfig",
    "detect": "damvad.stages:DetectConfig",
    "serve": "damvad.serve.config:ServeConfig",
    "table1": "damvad.benchmark.table1:Table1Config",
    "diagnose": "damvad.benchmark.diagnose:DiagnoseConfig",
}


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


def shipped_config(name: str) -> bool:
    """Whether damvad ships a config of this name (``src/damvad/configs/NAME.yaml``)."""
    from importlib.resources import files

    return (files("damvad") / "configs" / f"{name}.yaml").is_file()


def config_path(value: str | None) -> str | None:
    """A config file path, or the name of a shipped config (``ucf-crime``, ``demo``...)."""
    if value is None:
        return None
    if Path(value).exists():
        return value
    from importlib.resources import files

    shipped = files("damvad") / "configs" / f"{value}.yaml"
    if shipped.is_file():
        return str(shipped)
    raise FileNotFoundError(f"{value}: no such config file or shipped config")


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None,
                **explicit: Any) -> T:
    """Defaults of ``cls`` < YAML file < ``explicit`` keyword values < ``key=value`` overrides.

    Each layer is checked (:func:`check_values`) with its source named in the error. A stage's config
    (:data:`STAGES`) reads its part of the shared schema: its top-level keys and section."""
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
    data = renamed_keys(cls, data, source)
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


def renamed_keys(cls: type, data: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """``data`` with the keys ``cls`` renamed (its ``renamed`` class variable, old -> new) under their new
    names, each old one warned about; both spellings at once are an error."""
    renamed: dict[str, str] = getattr(cls, "renamed", {})
    old = [k for k in data if k in renamed]
    if not old:
        return data
    out = dict(data)
    for key in old:
        new = renamed[key]
        if new in out:
            raise ConfigError(f"{source}: {key!r} and {new!r} both given; {key!r} is the old name of {new!r}")
        out[new] = out.pop(key)
        log.warning("%s: config key %r is deprecated, read as %r (rename it)", source, key, new)
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


# ---------------------------------------------------------------------------- the shared schema


def stage_class(stage: str) -> type:
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    module, name = STAGES[stage].split(":")
    return getattr(importlib.import_module(module), name)


def stage_of(cls: type) -> str | None:
    """The stage whose schema ``cls`` is, or None (a config class outside the shared schema)."""
    return next((s for s, ref in STAGES.items() if ref == f"{cls.__module__}:{cls.__qualname__}"), None)


@functools.cache
def _fields(stage: str) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(stage_class(stage)))


@functools.cache
def _known(stage: str) -> frozenset[str]:
    """The keys ``stage`` reads in its section and on the command line: its fields and their old names."""
    return _fields(stage) | frozenset(getattr(stage_class(stage), "renamed", {}))


def stage_values(document: dict[str, Any], stage: str, source: str) -> dict[str, Any]:
    """What ``stage`` takes from a config document: its top-level keys, then its section.

    Unknown keys (top level: known to no stage; in a section: not that stage's) are a ConfigError."""
    own = _fields(stage)
    known = {s: _known(s) for s in STAGES}
    unknown = [k for k in document if k not in STAGES and not any(k in names for names in known.values())]
    if unknown:
        raise ConfigError(f"{source}: unknown config key(s) {sorted(unknown)}; a key belongs at the top level "
                          f"(shared by the stages that have it) or in a section ({', '.join(STAGES)})")
    values = {k: v for k, v in document.items() if k in own}
    for name in STAGES:
        section = document.get(name)
        if name in own or section is None:
            continue  # a field of this stage that shares a stage's name (table1's ``train``) is the field
        if not isinstance(section, dict):
            raise ConfigError(f"{source}: section {name!r} must be a mapping of key: value")
        extra = sorted(set(section) - known[name])
        if extra:
            raise ConfigError(f"{source}: unknown {name} key(s) {extra}; known: {sorted(_fields(name))}")
        if name == stage:
            values.update(renamed_keys(stage_class(stage), section, source))
    return values


def command_line_values(overrides: list[str] | None, stage: str) -> dict[str, Any]:
    """``key=value`` overrides for ``stage``; ``stage.key=value`` is accepted too, another stage's key is
    an error (it would be silently ignored otherwise)."""
    values = parse_overrides(overrides)
    own = _fields(stage)
    section = values.pop(stage, None) if stage not in own else None
    if isinstance(section, dict):
        values.update(section)
    for key in list(values):
        if key in _known(stage):
            continue
        owners = [s for s in STAGES if s != stage and (key == s or key in _fields(s))]
        hint = f" (a key of {', '.join(owners)})" if owners else ""
        raise ConfigError(f"{COMMAND_LINE}: unknown config key {key!r} for {stage}{hint}; known: {sorted(own)}")
    return renamed_keys(stage_class(stage), values, COMMAND_LINE)


def merged_values(stage: str, path: str | Path | None, overrides: list[str] | None,
                  parsed: dict[str, Any] | None = None, **explicit: Any) -> tuple[dict[str, Any], list[str]]:
    """(values, their sources) for ``stage``: file < explicit flags < ``key=value`` (or ``parsed``)."""
    cls = stage_class(stage)
    layers: list[tuple[str, dict[str, Any]]] = []
    if path is not None:
        layers.append((str(path), stage_values(read_config_file(path), stage, str(path))))
    layers.append((COMMAND_LINE, {k: v for k, v in explicit.items() if v is not None}))
    layers.append((COMMAND_LINE, command_line_values(overrides, stage) if parsed is None else parsed))
    return merge_layers(cls, layers)


def show_config(path: str | Path | None = None, overrides: list[str] | None = None,
                stages: list[str] | None = None) -> str:
    """The merged config of every stage (defaults < file < overrides) as YAML: what each would run with.

    Overrides are ``stage.key=value`` or ``key=value`` (every shown stage that has the key)."""
    chosen = stages or [s for s in STAGES if s not in ("table1", "diagnose")]
    for stage in chosen:
        stage_class(stage)  # an unknown stage is an error
    values = parse_overrides(overrides)
    stray = [k for k in values if k not in STAGES and not any(k in _fields(s) for s in chosen)]
    if stray:
        raise ConfigError(f"{COMMAND_LINE}: unknown key(s) {stray} for {', '.join(chosen)}")
    out: dict[str, Any] = {}
    for stage in chosen:
        own = _fields(stage)
        mine = {k: v for k, v in values.items() if k in own}
        if stage not in own and isinstance(values.get(stage), dict):
            mine = merge(mine, renamed_keys(stage_class(stage), values[stage], COMMAND_LINE))
        data, sources = merged_values(stage, path, None, parsed=mine)
        try:
            out[stage] = dataclasses.asdict(stage_class(stage)(**data))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{' / '.join(sources) or 'config'}: {stage}: {exc}") from None
    return yaml.safe_dump(out, sort_keys=False)
