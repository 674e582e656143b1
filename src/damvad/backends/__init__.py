"""I3D inference backends behind one typed interface, for the extractor, the detector and the benchmark.

A backend (:class:`I3DBackend`) turns a batch of snippets ``(N, 3, T, 224, 224)`` -- float32 in [-1, 1], or
uint8 in [0, 255] (the extraction path: the backend scales inside its own graph) -- into DAM snippet maps
``(N, ceil(T/8) - 1, 1024)`` and gives the Kinetics logits ``(N, classes)`` of the same pass (tests and
accuracy checks). Outputs are float32 CPU torch tensors whatever the backend runs on, so callers are
device-agnostic; :func:`run_batch` is the one way callers run one (to numpy, with the rows that are not
finite named).

* ``"torch"`` (:mod:`damvad.backends.torch`): the faithful port (:mod:`damvad.i3d`) compiled by the backend's
  own runner (BN folded, channels_last_3d, torch.compile), fp32 / bf16 on the CPU, fp32 / bf16 / fp16 on a
  CUDA device (``device=``; the backend a GPU runs).
* ``"openvino"`` (:mod:`damvad.backends.openvino`): the OpenVINO CPU runtime on an IR converted once and
  cached on disk (:mod:`damvad.backends.openvino_ir`), fp32 / bf16 / int8 (NNCF post-training quantization
  on calibration data the caller passes in).
* :class:`FunctionBackend`: any function with the same shapes (a stand-in for tests and experiments).

The default (``backend=None``, ``precision=None``) depends on the device (:func:`damvad.device.resolve_device`,
``None`` / ``"auto"``: a CUDA device when torch sees one). On the CPU it is the fastest measured on the
reference 2-core AMD EPYC (benchmarks/README.md, ``bench_backends.py``): OpenVINO int8 where the CPU has
int8 dot products (VNNI / AMX), else OpenVINO bf16 where it has bf16 ones, else OpenVINO fp32. On a CUDA
device it is torch fp16 (tensor cores; fp16 keeps 3 more mantissa bits than bf16, and I3D's activations
stay far below fp16's range). The names come from :mod:`damvad.choices`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from damvad.choices import (
    BACKENDS,
    CPU_PRECISIONS,
    CUDA_PRECISIONS,
    DEFAULT_BACKEND,
    DEFAULT_CUDA_PRECISION,
    FP16_NEEDS_CUDA,
)

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import torch

    from damvad.backends.openvino_ir import CalibrationData


@runtime_checkable
class I3DBackend(Protocol):
    """What the extractor and the detector need from an I3D implementation."""

    name: str  # "torch" | "openvino" | "" (a stand-in)
    precision: str  # "fp32" | "bf16" | "fp16" | "int8"
    weights_sha256: str
    num_classes: int
    accepts_uint8: bool  # True: hand it uint8 crops, it scales them itself
    device: torch.device  # where it runs (outputs are on the CPU regardless)
    batch_size: int  # clips per call that fill it
    pin_memory: bool  # inputs in pinned CPU memory are copied to it asynchronously (a GPU)

    def features_and_logits(self, x: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """((N, t, 1024), (N, classes)) float32 CPU tensors from (N, 3, T, 224, 224) float [-1, 1] or uint8."""
        ...

    def __call__(self, x: Any) -> torch.Tensor:
        """Features only."""
        ...

    def logits(self, x: Any) -> torch.Tensor: ...

    def warmup(self, num_frames: int = 64) -> float:
        """Make the first real call fast (compile / load); returns seconds spent."""
        ...

    def info(self) -> dict[str, Any]:
        """Provenance for manifests: backend, precision, versions, quantization details."""
        ...


class FunctionBackend:
    """A function with I3D's shapes behind the backend interface: a stand-in (tests, experiments). What it
    records (name, precision, weights) is what it is told; it has no logits (zeros)."""

    def __init__(self, fn: Callable[[Any], Any], *, name: str = "", precision: str = "fp32",
                 weights_sha256: str = "", accepts_uint8: bool = False, batch_size: int = 1,
                 device: Any = "cpu") -> None:
        import torch

        self.fn = fn
        self.name, self.precision, self.weights_sha256 = name, precision, weights_sha256
        self.accepts_uint8, self.batch_size = accepts_uint8, batch_size
        self.device = torch.device(device)
        self.num_classes = 0
        self.pin_memory = False

    def features_and_logits(self, x: Any) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        feats = torch.as_tensor(self.fn(x)).float().cpu()
        return feats, torch.zeros(feats.shape[0], 0)

    def __call__(self, x: Any) -> torch.Tensor:
        return self.features_and_logits(x)[0]

    def logits(self, x: Any) -> torch.Tensor:
        return self.features_and_logits(x)[1]

    def warmup(self, num_frames: int = 64) -> float:
        return 0.0

    def info(self) -> dict[str, Any]:
        return {}


def as_backend(fn: I3DBackend | Callable[[Any], Any]) -> I3DBackend:
    """``fn`` itself when it is a backend, else a :class:`FunctionBackend` around it (a plain stand-in)."""
    return fn if isinstance(fn, I3DBackend) else FunctionBackend(fn)


def run_batch(backend: I3DBackend, x: Any) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, t, 1024) float32, finite (N,) bool) of one batch: the one way a caller runs a backend.
    ``x``: a numpy array or a tensor, uint8 for a backend that ``accepts_uint8``, else float [-1, 1]."""
    import torch

    with torch.inference_mode():
        out = backend(torch.from_numpy(x) if isinstance(x, np.ndarray) else x)
    feats = out.float().cpu().numpy()
    return feats, np.isfinite(feats.reshape(len(feats), -1)).all(axis=1)


def default_precision(backend: str) -> str:
    """The precision ``backend`` runs when none is asked for on the CPU (see the module docstring): OpenVINO's
    fastest that this CPU runs natively; torch's fp32, the reference's numbers (the faithful backend; bf16,
    ~1.8x faster where the CPU has bf16 units, is one ``--precision bf16`` away)."""
    if backend == "openvino":
        from damvad.backends.openvino import cpu_capabilities

        caps = cpu_capabilities()
        if "INT8" in caps:
            return "int8"
        return "bf16" if "BF16" in caps else "fp32"
    return "fp32"


def runnable_cpu_precision(backend: str, precision: str) -> str:
    """The precision ``backend`` really runs for ``precision`` on this CPU: OpenVINO drops a bf16 hint on a CPU
    without bf16 units and runs fp32, so that is what is said (a warning) and recorded (the features'
    contract, the resume check). torch's emulated bf16 is refused by its backend instead (too slow to run)."""
    if backend == "openvino" and precision == "bf16" and not cpu_runs_natively(backend, precision):
        from damvad.device import cpu_isa

        log.warning("OpenVINO runs bf16 on CPUs with bf16 units (AVX-512 bf16 or AMX); this one has %s: running "
                    "fp32 and recording fp32", cpu_isa())
        return "fp32"
    return precision


def cpu_runs_natively(backend: str, precision: str) -> bool:
    """Whether this CPU runs ``precision`` for ``backend`` on units made for it. Only bf16 can fail: without bf16
    units torch emulates it (over 100x slower) and OpenVINO drops the hint and runs fp32."""
    if precision != "bf16":
        return True
    if backend == "openvino":
        from damvad.backends.openvino import cpu_capabilities

        return "BF16" in cpu_capabilities()
    from damvad.device import cpu_runs_bf16

    return cpu_runs_bf16()


def resolve(backend: str | None = None, precision: str | None = None, device: Any = "cpu") -> tuple[str, str]:
    """(backend, precision) with ``None`` replaced by the defaults for ``device``; a clear error for bad
    names and for what the device cannot run (OpenVINO or int8 on a GPU, fp16 on the CPU)."""
    from damvad.device import resolve_device

    dev = resolve_device(device)
    if dev.type == "cuda":
        return _resolve_cuda(backend, precision, dev)
    backend = DEFAULT_BACKEND if backend in (None, "auto") else str(backend).lower()
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    precision = default_precision(backend) if precision in (None, "auto") else str(precision).lower()
    if precision == "fp16":
        raise ValueError(FP16_NEEDS_CUDA)
    if precision not in CPU_PRECISIONS[backend]:
        hint = " (int8 needs --backend openvino)" if precision == "int8" else ""
        raise ValueError(f"precision for the {backend} backend must be one of {CPU_PRECISIONS[backend]}, "
                         f"got {precision!r}{hint}")
    return backend, runnable_cpu_precision(backend, precision)


def _resolve_cuda(backend: str | None, precision: str | None, device: Any) -> tuple[str, str]:
    import torch

    backend = "torch" if backend in (None, "auto") else str(backend).lower()
    if backend == "openvino":
        raise ValueError(f"the OpenVINO backend runs on the CPU only, not on {device}; use --backend torch (the "
                         "default on a GPU) or --device cpu")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    precision = DEFAULT_CUDA_PRECISION if precision in (None, "auto") else str(precision).lower()
    if precision not in CUDA_PRECISIONS:
        hint = " (int8 is OpenVINO's, on the CPU)" if precision == "int8" else ""
        raise ValueError(f"precision on {device} must be one of {CUDA_PRECISIONS}, got {precision!r}{hint}")
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"{device} ({torch.cuda.get_device_name(device)}) has no bf16 support; use --precision fp16")
    return backend, precision


def build_backend(
    backend: str | None = None,
    precision: str | None = None,
    *,
    checkpoint: str | Path | None = None,
    model: Any = None,
    compile: bool = True,
    calibration: Any = None,
    calibration_data: CalibrationData | None = None,
    progress: bool = False,
    device: Any = None,
    batch_size: int | None = None,
) -> I3DBackend:
    """An I3D backend ready to run; ``None`` picks the defaults (:func:`resolve`).

    ``model`` is an already loaded :class:`~damvad.i3d.InceptionI3d` (else ``checkpoint`` or the pretrained
    weights); ``compile`` only concerns the torch backend; ``calibration`` (the user's videos) and
    ``calibration_data`` (what turns them into snippets: :mod:`damvad.extraction.calibration`) only int8.
    ``device``: ``None`` / ``"auto"`` (a CUDA device when torch sees one, else the CPU), ``"cpu"``,
    ``"cuda[:N]"`` or a ``torch.device`` (a cluster worker passes the GPU it was given). ``batch_size``: clips
    per call; ``None``: 1 on the CPU, on a GPU as many as its free memory holds
    (:func:`damvad.backends.torch.auto_batch_size`).
    """
    from damvad.device import resolve_device

    dev = resolve_device(device)
    backend, precision = resolve(backend, precision, dev)
    if backend == "torch":
        from damvad.backends.torch import TorchBackend

        return TorchBackend(model=model, precision=precision, compile=compile, checkpoint=checkpoint,
                            batch_size=batch_size, device=dev)
    from damvad.backends.openvino import OpenVINOBackend

    # batch 1 whatever batch_size says: another batch is another converted (and quantized) model, and
    # batching measured no faster on the CPU (benchmarks/README.md); larger calls run clip by clip.
    return OpenVINOBackend(precision=precision, model=model, checkpoint=checkpoint, calibration=calibration,
                           calibration_data=calibration_data, progress=progress)


def check_batch(x: Any) -> Any:
    """Validate a backend input; returns it as a numpy array or torch tensor (not copied).

    Shape (N, 3, T, 224, 224) with T >= 9; uint8 in [0, 255], or float in [-1, 1] (checked).
    """
    import torch

    from damvad.i3d import INPUT_SIZE, MIN_FRAMES, check_video_input

    if isinstance(x, np.ndarray):
        if x.dtype != np.uint8 and not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"I3D input must be uint8 [0, 255] or float [-1, 1], got {x.dtype}")
        t = torch.from_numpy(x)
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


__all__ = ["FunctionBackend", "I3DBackend", "as_backend", "build_backend", "check_batch", "cpu_runs_natively",
           "default_precision", "resolve", "run_batch", "runnable_cpu_precision"]
