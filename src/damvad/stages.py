"""The configs of extract, calibrate, detect (and serve's live part): each stage's whole API.

``extract(cfg)``, ``calibrate(cfg)`` and ``Detector.from_config(cfg)`` take these; the command line only
fills them (``damvad.cli``), as a YAML file and ``key=value`` overrides do (:mod:`damvad.config`, which
reads them in the one schema). Train's and evaluate's configs live beside their code (``TrainConfig``,
``EvalConfig``), serve's in :mod:`damvad.serve.config`. Choices and defaults come from
:mod:`damvad.choices`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from damvad.choices import (
    BACKENDS,
    CLOSE_AFTER,
    CONNECT_TIMEOUT_S,
    CROPS,
    DTYPES,
    ENGINES,
    FAR,
    PRECISIONS,
    ROW_FORMATS,
)
from damvad.config import check_fields
from damvad.snippets import SNIPPET_LEN

STRIDES = f"[1, {SNIPPET_LEN}]"  # a larger stride would leave frames no snippet covers


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
        "crops": CROPS, "backend": BACKENDS, "precision": PRECISIONS, "dtype": DTYPES, "engine": ENGINES,
        "cpus_per_worker": "[0, inf)", "connect_timeout": "(0, inf)", "stride": STRIDES, "fps": "(0, inf)",
    }

    def __post_init__(self) -> None:
        check_fields(self)
        if self.engine == "ray":
            if self.device not in (None, "auto") or self.batch_size or self.decoders:
                raise ValueError("--device, --batch-size and --decoders are for --engine local; a Ray worker runs "
                                 "on the GPU Ray gives it (num_gpus), batched by its free memory")
        elif self.address is not None or self.cpus_per_worker or self.connect_timeout != CONNECT_TIMEOUT_S:
            raise ValueError("--address, --connect-timeout and --cpus-per-worker are for --engine ray")


@dataclass
class CalibrateConfig:
    model_file: str = ""  # model.pt or its run folder
    features: str | None = None  # None: the model's training features
    dataset: str | None = None  # None: the model's training dataset
    split: str = "train"
    far: float = FAR  # share of normal frames allowed to alert
    snippets_per_clip: int | None = None  # None: the model's, else 1
    held_out_only: bool = True
    device: str | None = None  # auto | cpu | cuda[:N]

    limits: ClassVar[dict[str, str | tuple]] = {"far": "(0, 1)", "snippets_per_clip": "[1, inf)"}

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class LiveConfig:
    """The live detector's settings (:meth:`damvad.detect.Detector.from_config`), shared by ``detect`` and
    ``serve``."""

    model_file: str = ""
    threshold: float | None = None  # None: the calibrated one
    close_after: float = CLOSE_AFTER
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


@dataclass
class DetectConfig(LiveConfig):
    sources: list[str] = field(default_factory=list)
    output: str | None = None
    format: str | None = None
    append: bool = False  # rows appended to ``output`` as they come (a log), not the file replaced at the end
    report: str | None = None

    limits: ClassVar[dict[str, str | tuple]] = {**LiveConfig.limits, "format": ROW_FORMATS}
