"""I3D inference backends behind one small interface, for the extractor, the detector and the benchmark.

A backend turns a batch of snippets ``(N, 3, T, 224, 224)`` -- float32 in [-1, 1], or uint8 in
[0, 255] (the extraction path: the backend scales inside its own graph) -- into DAM snippet maps
``(N, ceil(T/8) - 1, 1024)`` and gives the Kinetics logits ``(N, classes)`` of the same pass (tests and
accuracy checks). Outputs are float32 CPU torch tensors whatever the backend runs on, so callers are
device-agnostic.

* ``"torch"`` (:mod:`damvad.backends.torch`): :class:`damvad.i3d.FastI3D`, torch.compile, fp32 / bf16.
* ``"openvino"`` (:mod:`damvad.backends.openvino`): the OpenVINO CPU runtime on a model converted once
  and cached on disk (``<cache>/openvino``), fp32 / bf16 / int8 (NNCF post-training quantization).

The default (``backend=None``, ``precision=None``) is the fastest measured on the reference 2-core AMD
EPYC (benchmarks/README.md, ``bench_backends.py``): OpenVINO int8 where the CPU has int8 dot products
(VNNI / AMX), else OpenVINO bf16 where it has bf16 ones, else OpenVINO fp32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

BACKENDS: tuple[str, ...] = ("torch", "openvino")
PRECISIONS: dict[str, tuple[str, ...]] = {"torch": ("fp32", "bf16"), "openvino": ("fp32", "bf16", "int8")}
DEFAULT_BACKEND = "openvino"


@runtime_checkable
class I3DBackend(Protocol):
    """What the extractor and the detector need from an I3D implementation."""

    name: str  # "torch" | "openvino"
    precision: str  # "fp32" | "bf16" | "int8"
    weights_sha256: str
    num_classes: int
    accepts_uint8: bool  # True: hand it uint8 crops, it scales them itself

    def features_and_logits(self, x: Any) -> tuple[Any, Any]:
        """((N, t, 1024), (N, classes)) float32 tensors from (N, 3, T, 224, 224) float [-1, 1] or uint8."""
        ...

    def __call__(self, x: Any) -> Any:
        """Features only (the extractor's ``feature_fn``)."""
        ...

    def logits(self, x: Any) -> Any: ...

    def warmup(self, num_frames: int = 64) -> float:
        """Make the first real call fast (compile / load); returns seconds spent."""
        ...

    def info(self) -> dict[str, Any]:
        """Provenance for manifests: backend, precision, versions, quantization details."""
        ...


def default_precision(backend: str) -> str:
    """The fastest precision this CPU runs well for ``backend`` (see the module docstring)."""
    if backend == "openvino":
        from damvad.backends.openvino import cpu_capabilities

        caps = cpu_capabilities()
        if "INT8" in caps:
            return "int8"
        return "bf16" if "BF16" in caps else "fp32"
    import torch

    bf16 = getattr(torch.backends.mkldnn, "is_bf16_supported", None)  # not in every torch build
    return "bf16" if bf16 is not None and bf16() else "fp32"


def resolve(backend: str | None = None, precision: str | None = None) -> tuple[str, str]:
    """(backend, precision) with ``None`` replaced by the defaults; a clear error for bad names."""
    backend = DEFAULT_BACKEND if backend in (None, "auto") else str(backend).lower()
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    precision = default_precision(backend) if precision in (None, "auto") else str(precision).lower()
    if precision not in PRECISIONS[backend]:
        hint = " (int8 needs --backend openvino)" if precision == "int8" else ""
        raise ValueError(f"precision for the {backend} backend must be one of {PRECISIONS[backend]}, "
                         f"got {precision!r}{hint}")
    return backend, precision


def build_backend(
    backend: str | None = None,
    precision: str | None = None,
    *,
    checkpoint: str | Path | None = None,
    model: Any = None,
    compile: bool = True,
    calibration: Any = None,
    progress: bool = False,
) -> I3DBackend:
    """An I3D backend ready to run; ``None`` picks the defaults (:func:`resolve`).

    ``model`` is an already loaded :class:`~damvad.i3d.InceptionI3d` (else ``checkpoint`` or the pretrained
    weights); ``compile`` only concerns the torch backend; ``calibration`` (videos, see
    :func:`damvad.backends.calibration.calibration_snippets`) only int8.
    """
    backend, precision = resolve(backend, precision)
    if backend == "torch":
        from damvad.backends.torch import TorchBackend

        return TorchBackend(model=model, precision=precision, compile=compile, checkpoint=checkpoint)
    from damvad.backends.openvino import OpenVINOBackend

    return OpenVINOBackend(precision=precision, model=model, checkpoint=checkpoint, calibration=calibration,
                           progress=progress)


def check_batch(x: Any) -> Any:
    """Validate a backend input; returns it as a numpy array or torch tensor (not copied).

    Shape (N, 3, T, 224, 224) with T >= 9; uint8 in [0, 255], or float in [-1, 1] (checked).
    """
    import torch

    from damvad.i3d import INPUT_SIZE, MIN_FRAMES, check_video_input

    if isinstance(x, np.ndarray):
        if x.dtype == np.uint8:
            t = torch.from_numpy(x)
        elif np.issubdtype(x.dtype, np.floating):
            t = torch.from_numpy(x)
        else:
            raise ValueError(f"I3D input must be uint8 [0, 255] or float [-1, 1], got {x.dtype}")
    elif isinstance(x, torch.Tensor):
        t = x
    else:
        raise ValueError(f"I3D input must be a numpy array or torch tensor, got {type(x).__name__}")
    if t.dtype == torch.uint8:
        if t.ndim != 5 or t.shape[1] != 3 or tuple(t.shape[3:]) != (INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"I3D input must have shape (B, 3, T, {INPUT_SIZE}, {INPUT_SIZE}), got {tuple(t.shape)}")
        if t.shape[2] < MIN_FRAMES:
            raise ValueError(f"I3D input needs at least {MIN_FRAMES} frames (T), got T={t.shape[2]}")
    else:
        check_video_input(t)
    return x


__all__ = ["BACKENDS", "DEFAULT_BACKEND", "PRECISIONS", "I3DBackend", "build_backend", "check_batch",
           "default_precision", "resolve"]
