"""damvad.backends.torch: the torch backend (and its compiled runner, FastI3D: tests/test_i3d.py)."""

from __future__ import annotations

import numpy as np
import torch

from backendtools import rel_l2


def test_torch_backend_takes_uint8_like_float():
    """uint8 crops scaled inside the backend give the float path's features (uncompiled, random weights)."""
    from damvad.backends.torch import TorchBackend
    from test_i3d import random_model

    backend = TorchBackend(random_model(3, num_classes=5), compile=False)
    u8 = np.random.default_rng(0).integers(0, 256, size=(2, 3, 9, 224, 224), dtype=np.uint8)
    f_u8, l_u8 = backend.features_and_logits(u8)
    f_fl, l_fl = backend.features_and_logits(torch.from_numpy(u8.astype(np.float32) / 127.5 - 1.0))
    assert f_u8.shape == (2, 1, 1024) and l_u8.shape == (2, 5)
    assert rel_l2(f_u8, f_fl) < 1e-6 and rel_l2(l_u8, l_fl) < 1e-6
    assert backend.info()["backend"] == "torch"


def test_torch_bf16_is_refused_on_a_cpu_without_bf16_convolutions(monkeypatch):
    """On an AVX2-only CPU torch's bf16 I3D is emulated (one snippet: over 6 min against 3 s in fp32): refused at
    once, naming the CPU's units and the ways out; fp32 there, and bf16 where the CPU runs it, are built."""
    import pytest

    from damvad.backends.torch import FastI3D
    from test_i3d import random_model

    model = random_model(3, num_classes=5)
    monkeypatch.setattr("damvad.backends.torch.cpu_runs_bf16", lambda: False)
    monkeypatch.setattr("damvad.device.cpu_flags", lambda: frozenset({"avx2", "fma"}))
    with pytest.raises(ValueError, match=r"AVX-512 or AMX, and this one has AVX2, no bf16.*--precision fp32"):
        FastI3D(model, precision="bf16", compile=False)
    assert FastI3D(model, precision="fp32", compile=False).precision == "fp32"
    monkeypatch.setattr("damvad.backends.torch.cpu_runs_bf16", lambda: True)
    assert FastI3D(model, precision="bf16", compile=False).precision == "bf16"
