"""damvad.backends: the typed interface, the defaults and their errors, the one way to run a batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from damvad.backends import FunctionBackend, I3DBackend, as_backend, check_batch, resolve, run_batch
from videotools import fake_features


def test_resolve_defaults_and_errors():
    backend, precision = resolve()
    assert backend == "openvino" and precision in ("int8", "bf16", "fp32")
    assert resolve("torch", "bf16") == ("torch", "bf16")
    with pytest.raises(ValueError, match="needs --backend openvino"):
        resolve("torch", "int8")
    with pytest.raises(ValueError, match="backend must be one of"):
        resolve("tensorrt", None)


def test_check_batch_messages():
    with pytest.raises(ValueError, match="shape"):
        check_batch(np.zeros((1, 64, 224, 224, 3), np.uint8))
    with pytest.raises(ValueError, match="at least 9 frames"):
        check_batch(np.zeros((1, 3, 4, 224, 224), np.uint8))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        check_batch(np.full((1, 3, 16, 224, 224), 200.0, np.float32))
    with pytest.raises(ValueError, match="uint8"):
        check_batch(np.zeros((1, 3, 16, 224, 224), np.int32))


def test_fp16_is_refused_on_the_cpu_with_the_device_error():
    with pytest.raises(ValueError, match="fp16 needs a CUDA device.*use --precision bf16 or fp32"):
        resolve("torch", "fp16", "cpu")


def test_a_plain_function_is_a_stand_in_backend_and_a_batch_comes_back_as_numpy():
    stand_in = as_backend(fake_features)
    assert isinstance(stand_in, FunctionBackend) and isinstance(stand_in, I3DBackend)
    assert as_backend(stand_in) is stand_in  # a backend is taken as it is
    assert (stand_in.name, stand_in.precision, stand_in.weights_sha256, stand_in.batch_size) == ("", "fp32", "", 1)
    assert stand_in.info() == {} and str(stand_in.device) == "cpu" and not stand_in.pin_memory
    x = np.random.default_rng(0).uniform(-1, 1, size=(2, 3, 16, 8, 8)).astype(np.float32)
    feats, finite = run_batch(stand_in, x)
    assert feats.dtype == np.float32 and feats.shape == (2, 1, 1024) and finite.tolist() == [True, True]
    np.testing.assert_array_equal(feats, fake_features(torch.from_numpy(x)).numpy())

    def half_broken(x):
        out = fake_features(x)
        out[1, 0, 3] = float("nan")
        return out

    assert run_batch(FunctionBackend(half_broken), x)[1].tolist() == [True, False]  # which rows, not whether
