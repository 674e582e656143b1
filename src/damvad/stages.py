"""One config schema for every stage: a YAML file with shared top-level keys and a section per stage.

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
``--config FILE`` and ``key=value`` overrides the same way (:func:`damvad.config.load_config`), and
``damvad config show`` prints what each stage gets. The configs of the stages that had none before
(extract, calibrate, detect) are here; the others live beside their code (``TrainConfig``...).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from damvad.backends import ALL_PRECISIONS
from damvad.cluster_connect import CONNECT_TIMEOUT_S
from damvad.config import (
    COMMAND_LINE,
    ConfigError,
    check_fields,
    merge,
    merge_layers,
    parse_overrides,
    read_config_file,
)
from damvad.video import SNIPPET_LEN

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
CROPS = ("center", "5", "10")
STRIDES = f"[1, {SNIPPET_LEN}]"  # a larger stride would leave frames no snippet covers
PRECISIONS = ALL_PRECISIONS  # fp16 among them: refused on the CPU with its reason (damvad.backends.resolve)
BACKENDS = ("openvino", "torch")


@dataclass
class ExtractConfig:
    inputs: list[str] = field(default_factory=list)  # videos, folders or .txt lists
    features: str = ""  # the features folder written (``--out``)
    crops: str = "center"
    backend: str | None = None  # None: the fastest measured (damvad.backends)
    precision: str | None = None  # None: the backend's default for this CPU (as detect without a model contract)
    dtype: str = "float32"
    checkpoint: str | None = None
    compile: bool = True
    overwrite: bool = False
    calibration: list[str] | None = None  # int8 calibration videos
    engine: str = "local"
    address: str | None = None
    connect_timeout: float = CONNECT_TIMEOUT_S  # seconds for a Ray cluster to complete Ray's handshake
    cpus_per_worker: int = 0
    device: str | None = None  # auto | cpu | cuda[:N]; None: auto (damvad.device)
    batch_size: int | None = None  # clips per I3D call; None: 1 on the CPU, from free memory on a GPU
    decoders: int | None = None  # decoding threads of the batched path
    stride: int = SNIPPET_LEN  # frames between snippet starts (damvad.snippets); SNIPPET_LEN: the paper's
    fps: float | None = None  # frame rate of folders of frames (their files have none); None: assumed, warned

    limits: ClassVar[dict[str, str | tuple]] = {
        "crops": CROPS, "backend": BACKENDS, "precision": PRECISIONS, "dtype": ("float32", "float16"),
        "engine": ("local", "ray"), "cpus_per_worker": "[0, inf)", "connect_timeout": "(0, inf)",
        "stride": STRIDES, "fps": "(0, inf)",
    }

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class CalibrateConfig:
    model_file: str = ""  # model.pt or its run folder
    features: str | None = None  # None: the model's training features
    dataset: str | None = None  # None: the model's training dataset
    split: str = "train"
    far: float = 0.01  # share of normal frames allowed to alert
    snippets_per_clip: int | None = None  # None: the model's, else 1
    held_out_only: bool = True
    device: str | None = None  # auto | cpu | cuda[:N]

    limits: ClassVar[dict[str, str | tuple]] = {"far": "(0, 1)", "snippets_per_clip": "[1, inf)"}

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class LiveConfig:
    """The live detector's settings (:class:`damvad.detect.Detector`), shared by ``detect`` and ``serve``."""

    model_file: str = ""
    threshold: float | None = None  # None: the calibrated one
    close_after: float = 2.0
    backend: str | None = None  # None: the model's training features' (damvad.contract)
    precision: str | None = None  # idem
    calibration: list[str] | None = None
    crops: str | None = None  # idem
    snippets_per_clip: int | None = None  # None: what the threshold was calibrated for
    compile: bool = True
    device: str | None = None  # auto | cpu | cuda[:N]
    stride: int | None = None  # None: the model's training features'
    fps: float | None = None  # frame rate of folders of frames; None: assumed, warned

    limits: ClassVar[dict[str, str | tuple]] = {
        "crops": CROPS, "backend": BACKENDS, "precision": PRECISIONS, "close_after": "[0, inf)",
        "snippets_per_clip": "[1, inf)", "stride": STRIDES, "fps": "(0, inf)",
    }

    def __post_init__(self) -> None:
        check_fields(self)

    def detector(self, feature_fn: Any = None) -> Any:
        """The :class:`damvad.detect.Detector` these settings describe (``feature_fn``: a stand-in I3D)."""
        from damvad.detect import Detector

        if not self.model_file:
            raise ValueError("a model file is needed (--model, or `model_file` in the config)")
        return Detector(self.model_file, precision=self.precision, crops=self.crops,
                        snippets_per_clip=self.snippets_per_clip, threshold=self.threshold,
                        close_after=self.close_after, compile=self.compile, feature_fn=feature_fn,
                        backend=self.backend, calibration=self.calibration, device=self.device, stride=self.stride)


@dataclass
class DetectConfig(LiveConfig):
    sources: list[str] = field(default_factory=list)
    output: str | None = None
    format: str | None = None
    report: str | None = None

    limits: ClassVar[dict[str, str | tuple]] = {**LiveConfig.limits, "format": ("csv", "jsonl")}


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


def stage_values(document: dict[str, Any], stage: str, source: str) -> dict[str, Any]:
    """What ``stage`` takes from a config document: its top-level keys, then its section.

    Unknown keys (top level: known to no stage; in a section: not that stage's) are a ConfigError."""
    own = _fields(stage)
    known = {s: _fields(s) for s in STAGES}
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
            raise ConfigError(f"{source}: unknown {name} key(s) {extra}; known: {sorted(known[name])}")
        if name == stage:
            values.update(section)
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
        if key in own:
            continue
        owners = [s for s in STAGES if s != stage and (key == s or key in _fields(s))]
        hint = f" (a key of {', '.join(owners)})" if owners else ""
        raise ConfigError(f"{COMMAND_LINE}: unknown config key {key!r} for {stage}{hint}; known: {sorted(own)}")
    return values


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
            mine = merge(mine, values[stage])
        data, sources = merged_values(stage, path, None, parsed=mine)
        try:
            out[stage] = dataclasses.asdict(stage_class(stage)(**data))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{' / '.join(sources) or 'config'}: {stage}: {exc}") from None
    return yaml.safe_dump(out, sort_keys=False)
