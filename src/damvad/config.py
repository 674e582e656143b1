"""YAML configs with command-line overrides (``key=value``), checked against a dataclass."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["lr=0.001", "seeds=[0,1,2]", "model.cov_norm=released"]`` -> nested dict (YAML-typed values)."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw != "" else ""
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None,
                **explicit: Any) -> T:
    """Defaults of ``cls`` < YAML file < ``explicit`` keyword values < ``key=value`` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: config file not found")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: a config must be a mapping of key: value")
        data = loaded
    data = _merge(data, {k: v for k, v in explicit.items() if v is not None})
    data = _merge(data, parse_overrides(overrides))
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown config key(s) {unknown}; known: {sorted(names)}")
    return cls(**data)


def dump_config(obj: Any) -> str:
    return yaml.safe_dump(dataclasses.asdict(obj), sort_keys=False)
