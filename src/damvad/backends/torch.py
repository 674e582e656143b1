"""The torch backend: :class:`damvad.i3d.FastI3D` (BN folded, channels_last_3d, torch.compile), on the CPU
(fp32 / bf16) or a CUDA device (fp32 / bf16 / fp16).

Start-up is torch.compile's (10-90 s once per process, cached in memory); the OpenVINO backend starts in
about a second from its disk cache, so on the CPU this backend is kept for machines where OpenVINO is
unavailable and as the reference. On a GPU it is the backend: uint8 crops go to the device as they are
(4x fewer bytes than float; asynchronously from pinned memory), are scaled to [-1, 1] there, and run in
batches of ``batch_size`` clips (default: from the GPU's free memory, :func:`auto_batch_size`). Outputs
are float32 CPU tensors on every device (the backend interface).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch

from damvad.backends import FP16_NEEDS_CUDA, check_batch
from damvad.device import device_info, resolve_device
from damvad.i3d import INPUT_SIZE, FastI3D, InceptionI3d, load_i3d

# GPU memory one 64-frame clip needs in a batch, an estimate with a 2x margin: the largest live
# activations (Conv3d_1a's padded input and output, ~37 M values), the fp32 staging copy and the uint8
# input (~10 M values each), and cuDNN workspace. Not measured on a GPU yet: a batch that does not fit
# is retried at half the size (FastI3D), so an estimate on the low side costs one retry, not a failure.
CLIP_BYTES = {"fp32": 400 * 2**20, "bf16": 256 * 2**20, "fp16": 256 * 2**20}
MAX_AUTO_BATCH = 32  # beyond this a large GPU is already saturated (bench_gpu.py measures 1 / 8 / 32)
MEMORY_SHARE = 0.5  # of the free memory, leaving room for the DAM head, other processes and fragmentation


def auto_batch_size(device: Any, precision: str, num_frames: int = 64, free_bytes: int | None = None) -> int:
    """Clips per batch: 1 on the CPU (batching measured no faster there); on a GPU the largest power of
    two that fits in :data:`MEMORY_SHARE` of its free memory, at most :data:`MAX_AUTO_BATCH`.

    ``free_bytes`` (for tests) stands in for the device's free memory."""
    dev = resolve_device(device)
    if dev.type != "cuda" and free_bytes is None:
        return 1
    if free_bytes is None:
        free_bytes, _total = torch.cuda.mem_get_info(dev)
    per_clip = CLIP_BYTES.get(precision, CLIP_BYTES["fp32"]) * max(num_frames, 1) / 64
    fits = int(free_bytes * MEMORY_SHARE // per_clip)
    if fits < 1:
        return 1
    return int(min(MAX_AUTO_BATCH, 2 ** int(math.log2(fits))))


def to_float_input(x: Any) -> torch.Tensor:
    """(N, 3, T, H, W) float32 in [-1, 1] from uint8 [0, 255] (x / 127.5 - 1, as snippet_to_input) or float."""
    t = torch.from_numpy(x) if not isinstance(x, torch.Tensor) else x
    if t.dtype != torch.uint8:
        return t
    # channels_last_3d: FastI3D's own layout, so its staging copy is a plain copy
    out = torch.empty(t.shape, dtype=torch.float32, memory_format=torch.channels_last_3d)
    out.copy_(t)
    return out.mul_(1.0 / 127.5).sub_(1.0)


def to_device_input(x: Any, device: torch.device) -> torch.Tensor:
    """:func:`to_float_input` on ``device``: uint8 is copied there as uint8 (asynchronously when pinned),
    then scaled on the device, with the same operations as on the CPU."""
    t = torch.from_numpy(x) if not isinstance(x, torch.Tensor) else x
    moved = t.to(device, non_blocking=t.device.type == "cpu" and t.is_pinned())
    if moved.dtype != torch.uint8:
        return moved
    out = torch.empty(moved.shape, dtype=torch.float32, memory_format=torch.channels_last_3d, device=device)
    out.copy_(moved)
    return out.mul_(1.0 / 127.5).sub_(1.0)


class TorchBackend:
    """:class:`FastI3D` behind the backend interface (see :mod:`damvad.backends`)."""

    name = "torch"
    accepts_uint8 = True

    def __init__(
        self,
        model: InceptionI3d | None = None,
        precision: str = "fp32",
        compile: bool = True,
        checkpoint: str | Path | None = None,
        batch_size: int | None = 1,
        device: Any = "auto",
    ) -> None:
        t0 = time.perf_counter()
        self.device = resolve_device(device)
        if precision == "fp16" and self.device.type == "cpu":
            raise ValueError(FP16_NEEDS_CUDA)
        self.model = model if model is not None else load_i3d(checkpoint)
        if batch_size is None:
            batch_size = auto_batch_size(self.device, precision)
        self.fast = FastI3D(self.model, precision=precision, compile=compile, batch_size=batch_size,  # type: ignore[arg-type]
                            device=self.device)
        self.precision = precision
        self.compile = compile
        self.weights_sha256 = str(getattr(self.model, "weights_sha256", None) or self.fast.weights_key)
        self.num_classes = self.model.num_classes
        self.load_seconds = time.perf_counter() - t0

    @property
    def batch_size(self) -> int:
        """Clips per compiled call (on a GPU it halves after running out of memory)."""
        return self.fast.batch_size

    @property
    def pin_memory(self) -> bool:
        """Whether inputs should come in pinned CPU memory (a GPU copies those asynchronously)."""
        return self.device.type == "cuda"

    def warmup(self, num_frames: int = 64) -> float:
        return self.fast.warmup(num_frames)

    def features_and_logits(self, x: Any) -> tuple[torch.Tensor, torch.Tensor]:
        x = check_batch(x)
        if self.device.type == "cpu":
            return self.fast.features_and_logits(to_float_input(x))
        with torch.inference_mode():
            staged = to_device_input(x, self.device)
        feats, logits = self.fast.features_and_logits(staged)
        return feats.float().cpu(), logits.float().cpu()

    def __call__(self, x: Any) -> torch.Tensor:
        return self.features_and_logits(x)[0]

    def logits(self, x: Any) -> torch.Tensor:
        return self.features_and_logits(x)[1]

    def info(self) -> dict[str, Any]:
        out = {"backend": self.name, "precision": self.precision, "compile": self.compile,
               "torch_version": str(torch.__version__), **device_info(self.device)}
        if self.device.type == "cuda":
            out["batch_size"] = self.batch_size
            out["compiled"] = dict(self.fast.compiled)
        return out


__all__ = ["CLIP_BYTES", "INPUT_SIZE", "TorchBackend", "auto_batch_size", "to_device_input", "to_float_input"]
