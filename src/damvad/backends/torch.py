"""The torch backend: :class:`damvad.i3d.FastI3D` (BN folded, channels_last_3d, torch.compile), fp32 / bf16.

Start-up is torch.compile's (10-90 s once per process, cached in memory); the OpenVINO backend starts in
about a second from its disk cache. Kept for machines where OpenVINO is unavailable and as the reference
for a future GPU device option (the interface says nothing about devices: outputs are CPU float32).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from damvad.backends import check_batch
from damvad.i3d import FastI3D, InceptionI3d, load_i3d


def to_float_input(x: Any) -> torch.Tensor:
    """(N, 3, T, H, W) float32 in [-1, 1] from uint8 [0, 255] (x / 127.5 - 1, as snippet_to_input) or float."""
    t = torch.from_numpy(x) if not isinstance(x, torch.Tensor) else x
    if t.dtype != torch.uint8:
        return t
    # channels_last_3d: FastI3D's own layout, so its staging copy is a plain copy
    out = torch.empty(t.shape, dtype=torch.float32, memory_format=torch.channels_last_3d)
    out.copy_(t)
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
        batch_size: int = 1,
    ) -> None:
        t0 = time.perf_counter()
        self.model = model if model is not None else load_i3d(checkpoint)
        self.fast = FastI3D(self.model, precision=precision, compile=compile, batch_size=batch_size)  # type: ignore[arg-type]
        self.precision = precision
        self.compile = compile
        self.weights_sha256 = str(getattr(self.model, "weights_sha256", None) or self.fast.weights_key)
        self.num_classes = self.model.num_classes
        self.load_seconds = time.perf_counter() - t0

    def warmup(self, num_frames: int = 64) -> float:
        return self.fast.warmup(num_frames)

    def features_and_logits(self, x: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return self.fast.features_and_logits(to_float_input(check_batch(x)))

    def __call__(self, x: Any) -> torch.Tensor:
        return self.features_and_logits(x)[0]

    def logits(self, x: Any) -> torch.Tensor:
        return self.features_and_logits(x)[1]

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "precision": self.precision, "compile": self.compile,
                "torch_version": str(torch.__version__)}
