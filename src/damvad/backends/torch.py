"""The torch backend: I3D compiled by torch (BN folded, channels_last_3d, torch.compile), on the CPU
(fp32 / bf16) or a CUDA device (fp32 / bf16 / fp16). The backend owns the compiled runner
(:class:`FastI3D`); the model it compiles is the faithful port of :mod:`damvad.i3d`.

Start-up is torch.compile's (10-90 s once per process, cached in memory: a second video or a second
:class:`FastI3D` reuses the compiled module); the OpenVINO backend starts in about a second from its disk
cache, so on the CPU this backend is kept for machines where OpenVINO is unavailable and as the reference.
On a GPU it is the backend: uint8 crops go to the device as they are (4x fewer bytes than float;
asynchronously from pinned memory), are scaled to [-1, 1] there, and run in batches of ``batch_size`` clips
(default: from the GPU's free memory, :func:`auto_batch_size`). Outputs are float32 CPU tensors on every
device (the backend interface). Measured speeds: benchmarks/README.md.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from damvad.backends import check_batch
from damvad.choices import FP16_NEEDS_CUDA
from damvad.device import cpu_isa, cpu_runs_bf16, device_info, model_device, resolve_device
from damvad.i3d import INPUT_SIZE, InceptionI3d, check_video_input, fold_batchnorm, load_i3d, weights_fingerprint

log = logging.getLogger(__name__)

Precision = Literal["fp32", "bf16", "fp16"]
HALF_DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}

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
        self.weights_sha256 = str(self.fast.weights_key)
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


# ------------------------------------------------------------------------------ the compiled runner


class _Runner(nn.Module):
    """What gets compiled: the (BN-folded) trunk in fp32, bf16 or fp16, the head in fp32; float32 outputs.

    Half precision casts the trunk's weights, not autocast: CPU autocast runs max_pool3d in fp32, which
    costs a round trip bf16 -> fp32 -> bf16 around every pool (measured 2-5 % slower); on a GPU half
    weights make every convolution a tensor-core one without autocast's per-op casts. The head (average
    pool and the 1x1x1 logits conv) stays fp32: it is tiny and CPU avg_pool3d has no half kernels.
    ``"bf16_autocast"`` is kept for the benchmark's comparison.
    """

    def __init__(self, model: InceptionI3d, precision: str) -> None:
        super().__init__()
        if precision not in ("fp32", "bf16", "fp16", "bf16_autocast"):
            raise ValueError(f"unknown precision {precision!r}")
        self.model = model
        self.precision = precision
        self.trunk_dtype = HALF_DTYPES.get(precision, torch.float32)
        if precision in HALF_DTYPES:
            for name in InceptionI3d.TRUNK:
                getattr(model, name).to(self.trunk_dtype)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.precision == "bf16_autocast":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                m5c = self.model.mixed_5c(x)
        else:
            m5c = self.model.mixed_5c(x.to(self.trunk_dtype))
        feats, logits = self.model.head(m5c.float())
        return feats.float(), logits.float()


# Compiled runners, for the life of the process: a second video or FastI3D reuses one without recompiling.
# No way to clear it is offered: dropping a compiled module does not give its memory back (torch's own
# compile caches keep the frozen weights alive, even after torch._dynamo.reset(); checked on torch 2.13),
# and every damvad stage is its own process (a cluster worker wants the reuse).
# key -> (runner, compiled: False when a GPU compilation failed and it runs eager)
_CACHE: dict[tuple[Any, ...], tuple[Callable[[Tensor], tuple[Tensor, Tensor]], bool]] = {}
_CACHE_LOCK = threading.Lock()
# Freezing turns the (BN-folded) weights into constants, so inductor prepacks them for oneDNN and fuses
# bias + ReLU into each convolution. max_autotune measured no faster here (the convolutions are oneDNN
# calls, not templates); see benchmarks/README.md.
COMPILE_OPTIONS: dict[str, Any] = {"freezing": True}
# On a GPU the convolutions are cuDNN calls either way and freezing's gains (oneDNN prepacking, fused
# bias + ReLU in the CPU kernels) do not apply: inductor's defaults (Triton kernels for the pads, pools,
# concatenations and casts). Not measured on a GPU yet (benchmarks/bench_gpu.py measures it).
COMPILE_OPTIONS_CUDA: dict[str, Any] = {}


def compile_options(device: torch.device) -> dict[str, Any]:
    """The inductor options FastI3D compiles with on ``device`` (freezing is a CPU-only choice)."""
    return dict(COMPILE_OPTIONS if device.type == "cpu" else COMPILE_OPTIONS_CUDA)


def cuda_numerics():
    """cuDNN settings for every I3D call on a GPU: autotuned kernels for the fixed shapes (``benchmark``),
    and no TF32, so an fp32 pass is fp32 (TF32 would cost ~1e-3 relative, far off the 1e-5 target); the
    half-precision trunk is unaffected. Restored on exit."""
    return torch.backends.cudnn.flags(enabled=True, benchmark=True, deterministic=False, allow_tf32=False)


class _PatchedConfig:
    """Run a compiled module with inductor config options in force.

    ``torch.compile(options={"freezing": True})`` is silently ignored (freezing is decided before the
    options are applied; checked on torch 2.13): the generated code then keeps aten convolutions
    instead of prepacked oneDNN ones with fused ReLU. Patching the config around the call that
    compiles is what works; it is restored right after, so other code in the process is unaffected.
    """

    def __init__(self, compiled: Callable, options: dict[str, Any]) -> None:
        self.compiled = compiled
        self.options = options

    def __call__(self, x: Tensor) -> tuple[Tensor, Tensor]:
        from torch._inductor import config as inductor_config

        with inductor_config.patch(self.options):
            return self.compiled(x)


def build_runner(
    model: InceptionI3d,
    precision: str = "fp32",
    compile: bool = True,
    options: dict[str, Any] | None = None,
    device: str | torch.device | None = None,
) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
    """Uncached (features, logits) callable for channels_last_3d input: the building block of FastI3D.

    ``device``: where it runs (default: where ``model`` is). ``options`` are inductor config options
    (default :func:`compile_options` of the device); the benchmark uses this to compare alternatives.
    Call it under ``torch.inference_mode()`` (freezing needs grad disabled).
    """
    target = model_device(model) if device is None else resolve_device(device)
    runner = _Runner(fold_batchnorm(model), precision).eval()
    if target.type != "cpu":
        runner = runner.to(target)
    runner = runner.to(memory_format=torch.channels_last_3d)
    if not compile:
        return runner
    compiled = torch.compile(runner, backend="inductor", dynamic=False)
    return _PatchedConfig(compiled, compile_options(target) if options is None else dict(options))


class FastI3D:
    """Fast feature extractor: folded BN, channels_last_3d, torch.compile, fp32 / bf16 / fp16, CPU or GPU.

    ``__call__(x)`` takes (N, 3, T, 224, 224) in [-1, 1] and returns float32 features
    (N, ceil(T/8) - 1, 1024) on its device; ``logits(x)`` gives (N, classes) from the same compiled pass.
    Inputs run in chunks of exactly ``batch_size`` clips (a short last chunk is padded) so the compiled
    graph never sees a new shape. The compiled module is cached per process, keyed by (weights sha256,
    precision, compile, device, batch_size, T): a second FastI3D or a second video reuses it without
    recompiling.

    ``device`` (default: where ``model`` is) may be a CUDA device: the input may then be on the CPU
    (pinned memory is copied asynchronously) or already on the device. On a GPU, a compilation that fails
    falls back to the uncompiled module with a warning (``self.compiled``), and a batch that runs out of
    GPU memory is retried with half the batch size (``self.batch_size`` shrinks; logged).
    """

    def __init__(
        self,
        model: InceptionI3d,
        precision: Precision = "fp32",
        compile: bool = True,
        batch_size: int = 1,
        device: str | torch.device | None = None,
    ) -> None:
        if precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be 'fp32', 'bf16' or 'fp16', got {precision!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not isinstance(model, InceptionI3d):
            raise ValueError(f"FastI3D needs an InceptionI3d, got {type(model).__name__}")
        self.model = model
        self.precision: Precision = precision
        self.compile = compile
        self.batch_size = batch_size
        self.device = model_device(model) if device is None else resolve_device(device)
        if precision == "fp16" and self.device.type != "cuda":
            raise ValueError("precision fp16 runs on a CUDA device (no fast fp16 convolutions on the CPU); "
                             "use bf16 on the CPU")
        if precision == "bf16" and self.device.type == "cpu" and not cpu_runs_bf16():
            raise ValueError(f"torch bf16 needs a CPU with AVX-512 or AMX, and this one has {cpu_isa()}: its bf16 "
                             "convolutions are emulated, over 100x slower than fp32 (an I3D snippet: over 6 min "
                             "against 3 s); use fp32 (--precision fp32; in a benchmark or config: precision=fp32), or "
                             "the openvino backend (int8, the CPU default)")
        self.weights_key = model.weights_sha256 or weights_fingerprint(model)
        self.num_classes = model.num_classes
        self.compile_seconds: dict[int, float] = {}  # T -> seconds spent on the first call (compile)
        self.compiled: dict[int, bool] = {}  # T -> compiled (False: a GPU compilation failed, eager)

    @property
    def on_cuda(self) -> bool:
        return self.device.type == "cuda"

    def _runner(self, num_frames: int) -> Callable:
        key = (self.weights_key, self.precision, self.compile, str(self.device), self.batch_size, num_frames)
        with _CACHE_LOCK:
            cached = _CACHE.get(key)
            if cached is None:
                t0 = time.perf_counter()
                cached = self._first_call(num_frames)
                self.compile_seconds[num_frames] = time.perf_counter() - t0
                _CACHE[key] = cached  # only once it has run: a failed compile is retried, not cached
                log.info(
                    "I3D %s runner ready on %s for T=%d, batch %d in %.1f s",
                    self.precision,
                    self.device,
                    num_frames,
                    self.batch_size,
                    self.compile_seconds[num_frames],
                )
            runner, compiled = cached
            self.compiled.setdefault(num_frames, compiled)
        return runner

    def _first_call(self, num_frames: int) -> tuple[Callable, bool]:
        """(a runner, compiled) with its compilation paid now, inside the cache lock (no double compiles)."""
        shape = (self.batch_size, 3, num_frames, INPUT_SIZE, INPUT_SIZE)
        runner = build_runner(self.model, self.precision, self.compile, device=self.device)
        if not self.on_cuda:
            with torch.inference_mode():
                runner(self._staged(torch.zeros(shape)))
            return runner, self.compile
        with torch.inference_mode(), cuda_numerics():
            zeros = torch.zeros(shape, device=self.device)
            try:
                runner(self._staged(zeros))
            except torch.OutOfMemoryError:
                raise
            except Exception as exc:  # a GPU machine without a working Triton / compiler: run eager
                if not self.compile:
                    raise
                log.warning("torch.compile of I3D failed on %s (%s: %s); running it uncompiled",
                            self.device, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
                runner = build_runner(self.model, self.precision, compile=False, device=self.device)
                runner(self._staged(zeros))
                return runner, False
        return runner, self.compile

    def _staged(self, chunk: Tensor) -> Tensor:
        """A fresh channels_last_3d float32 copy on the device, made under inference mode.

        Always a new inference tensor, whatever the caller passed (layout, grad mode, a view): the
        compiled graph's guards then see the same tensor kind on every call and never recompile. From
        pinned CPU memory to a GPU the copy is asynchronous.
        """
        if self.device.type == "cpu":
            out = torch.empty(chunk.shape, dtype=torch.float32, memory_format=torch.channels_last_3d)
            return out.copy_(chunk)
        out = torch.empty(chunk.shape, dtype=torch.float32, memory_format=torch.channels_last_3d, device=self.device)
        return out.copy_(chunk, non_blocking=chunk.device.type == "cpu" and chunk.is_pinned())

    def warmup(self, num_frames: int = 64) -> float:
        """Compile (or fetch from the cache) for T = num_frames; returns seconds spent."""
        t0 = time.perf_counter()
        self._runner(num_frames)
        return time.perf_counter() - t0

    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """((N, ceil(T/8) - 1, 1024), (N, classes)) float32 on the device, one compiled pass per chunk."""
        check_video_input(x)
        if not self.on_cuda:
            return self._chunks(x)
        while True:
            try:
                with cuda_numerics():
                    return self._chunks(x)
            except torch.OutOfMemoryError as exc:
                if self.batch_size == 1:
                    raise RuntimeError(f"I3D ran out of GPU memory on {self.device} with one clip per batch "
                                       f"({exc}); free the GPU or use --device cpu") from exc
                torch.cuda.empty_cache()
                self.batch_size //= 2
                log.warning("I3D ran out of GPU memory on %s: batch size lowered to %d", self.device,
                            self.batch_size)

    def _chunks(self, x: Tensor) -> tuple[Tensor, Tensor]:
        runner = self._runner(int(x.shape[2]))
        feats, logits = [], []
        with torch.inference_mode():  # the same grad mode as at warm-up: no recompilation
            for start in range(0, x.shape[0], self.batch_size):
                chunk = x[start : start + self.batch_size].detach()
                n = chunk.shape[0]
                if n < self.batch_size:  # same shape every call: no recompilation
                    chunk = torch.cat([chunk, chunk[-1:].expand(self.batch_size - n, *chunk.shape[1:])])
                f, lg = runner(self._staged(chunk))
                feats.append(f[:n])
                logits.append(lg[:n])
        # cat outside inference mode gives plain tensors that callers may use anywhere.
        return torch.cat(feats), torch.cat(logits)

    def __call__(self, x: Tensor) -> Tensor:
        return self.features_and_logits(x)[0]

    def logits(self, x: Tensor) -> Tensor:
        return self.features_and_logits(x)[1]
