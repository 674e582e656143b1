"""The GPU path on a real CUDA device: I3D's tolerances against eager fp32 on the CPU, the batched
extraction, DAM training and scoring on the device. Skipped, with the reason, where torch sees no GPU
(the same code runs on the CPU in test_device.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device: torch sees none here"),
]


def _rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.double().flatten(), b.double().flatten(), dim=0))


@pytest.fixture(scope="module")
def clips_and_reference(i3d_model):
    """Two random 64-frame clips and eager fp32 CPU features: the reference every path is held to."""
    x = torch.rand(2, 3, 64, 224, 224, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.inference_mode():
        want = i3d_model.features(x)
    return x, want.float()


def test_auto_is_the_gpu():
    from damvad.device import device_info, resolve_device

    dev = resolve_device("auto")
    assert dev.type == "cuda" and dev.index is not None
    assert device_info(dev)["device_name"]


def test_fp32_on_the_gpu_within_1e5_of_eager_cpu(i3d_model, clips_and_reference):
    from damvad.backends import build_backend

    x, want = clips_and_reference
    fn = build_backend("torch", "fp32", model=i3d_model, device="cuda", batch_size=2)
    got = fn(x)
    assert got.device.type == "cpu" and got.dtype == torch.float32 and got.shape == want.shape
    assert _rel_l2(got, want) <= 1e-5


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_on_the_gpu_cosine_0_9999(i3d_model, clips_and_reference, precision):
    from damvad.backends import build_backend

    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    x, want = clips_and_reference
    fn = build_backend("torch", precision, model=i3d_model, device="cuda", batch_size=2)
    got = fn(x)
    assert _cosine(got, want) >= 0.9999
    uint8 = ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).pin_memory()
    from_uint8 = fn(uint8)  # the extractor's input: uint8 crops from pinned memory, scaled on the GPU
    assert _cosine(from_uint8, fn(uint8.float() / 127.5 - 1)) >= 0.99999


def test_batched_extraction_on_the_gpu_matches_the_cpu(i3d_model, tmp_path):
    from damvad.backends import build_backend
    from damvad.extract import extract
    from damvad.store import FeatureStore
    from videotools import write_video

    (tmp_path / "v").mkdir()
    for i, frames in enumerate((200, 64, 130)):
        write_video(tmp_path / "v" / f"{i}.mp4", frames, seed=i)
    cpu = build_backend("torch", "fp32", model=i3d_model, compile=False, device="cpu")
    gpu = build_backend("torch", "fp32", model=i3d_model, device="cuda")  # auto batch from free memory
    assert gpu.batch_size >= 1
    extract([tmp_path / "v"], tmp_path / "cpu", feature_fn=cpu, weights_sha256="w", progress=False)
    report = extract([tmp_path / "v"], tmp_path / "gpu", feature_fn=gpu, weights_sha256="w", progress=False)
    assert report.ok and len(report.done) == 3
    a, b = FeatureStore(tmp_path / "cpu"), FeatureStore(tmp_path / "gpu")
    for name in a.names():
        got = b.load(name)
        assert got.record.device.startswith("cuda")
        assert _rel_l2(torch.from_numpy(got.maps), torch.from_numpy(a.load(name).maps)) <= 1e-5


def test_dam_trains_on_the_gpu_and_loads_on_the_cpu(tmp_path):
    from damvad.modelfile import load_model
    from damvad.scoring import score_video
    from damvad.train import TrainConfig, train
    from featuretools import make_feature_dataset

    data, feats = make_feature_dataset(tmp_path / "synth", n_train=12, n_test=6)
    cfg = TrainConfig(dataset=str(data), features=str(feats), out=str(tmp_path / "run"), iterations=20,
                      eval_every=10, checkpoint_every=10, batch_anomalous=3, batch_normal=3, val_fraction=0.25,
                      model={"hidden": 16, "mlp_hidden": 8})
    summary = train(cfg, progress=False, device="cuda")
    assert summary["runs"][0]["device"].startswith("cuda")
    on_cpu, _ = load_model(tmp_path / "run" / "seed0", device="cpu")
    on_gpu, _ = load_model(tmp_path / "run" / "seed0", device="cuda")
    assert next(on_gpu.parameters()).is_cuda
    x = np.random.default_rng(0).normal(size=(20, 1, 7, 1024)).astype(np.float32)
    a, b = score_video(on_cpu, x, 20 * 64), score_video(on_gpu, x, 20 * 64)
    np.testing.assert_allclose(b.score, a.score, rtol=1e-4, atol=1e-5)
