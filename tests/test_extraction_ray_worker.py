"""damvad.extraction.ray_worker: a worker's start-up checks, its I3D, and the rows it writes (the backend it
runs, not the one the driver planned)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import damvad.extraction.ray_worker as ray_worker
from damvad import __version__
from damvad.backends import FunctionBackend
from damvad.extraction.ray_worker import FeatureWorker, worker_backend
from damvad.store import FeatureStore
from videotools import fake_features, write_video


def test_worker_feature_path_matches_fast_i3d_on_cpu(i3d_model):
    from damvad.backends.torch import FastI3D

    x = torch.rand(1, 3, 16, 224, 224, generator=torch.Generator().manual_seed(0)) * 2 - 1
    fn = worker_backend(i3d_model, {"backend": "torch", "compile": False}, "fp32", "cpu")
    assert fn.info()["device"] == "cpu" and fn.batch_size == 1
    got = fn(x)
    want = FastI3D(i3d_model, precision="fp32", compile=False)(x)
    assert got.dtype == torch.float32 and got.shape == want.shape == (1, 1, 1024)
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def _setup(tmp_path, **over):
    setup = {"damvad_version": __version__, "out_dir": str(tmp_path), "marker": ".damvad-ray-x.check",
             "probe_video": "", "spec": {}, "weights_name": "w.ckpt", "compile": False, "num_cpus": 1,
             "num_gpus": 0}
    setup.update(over)
    return setup


def test_worker_refuses_a_folder_it_does_not_share_with_the_driver(tmp_path):
    with pytest.raises(RuntimeError, match="shared filesystem"):
        FeatureWorker(_setup(tmp_path), b"")
    (tmp_path / ".damvad-ray-x.check").write_text("")
    with pytest.raises(RuntimeError, match="does not see the videos"):
        FeatureWorker(_setup(tmp_path, probe_video=str(tmp_path / "nope.mp4")), b"")
    with pytest.raises(RuntimeError, match="install the same version on every node"):
        FeatureWorker(_setup(tmp_path, damvad_version="0.0.0"), b"")


def test_worker_given_a_gpu_that_torch_does_not_see_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (tmp_path / ".damvad-ray-x.check").write_text("")
    with pytest.raises(RuntimeError, match="Ray gave this worker a GPU but torch sees no CUDA device"):
        FeatureWorker(_setup(tmp_path, num_gpus=1), b"")  # before any weights are loaded


def test_a_gpu_worker_records_the_backend_it_runs(tmp_path, monkeypatch):
    """The driver plans the CPU's default (openvino); a worker given a GPU runs torch there. Its rows say
    torch (they said openvino, with torch's provenance beside it, before the one record of ExtractorSpec)."""
    write_video(tmp_path / "v.mp4", 70, seed=1)
    out = tmp_path / "out"
    out.mkdir()
    (out / ".damvad-ray-x.check").write_text("")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # Ray gave it a GPU (a stand-in runs there)
    monkeypatch.setattr(ray_worker, "_materialise_weights", lambda *a: tmp_path / "w.ckpt")
    monkeypatch.setattr("damvad.i3d.load_i3d", lambda path: SimpleNamespace(weights_sha256="w"))  # the driver's
    stand_in = FunctionBackend(fake_features, name="torch", precision="fp16", weights_sha256="w", batch_size=2,
                               device="cuda:0")
    monkeypatch.setattr(ray_worker, "worker_backend", lambda model, setup, precision, device: stand_in)
    spec = {"backend": "openvino", "precision": "fp16", "weights_sha256": "w"}
    worker = FeatureWorker(_setup(out, spec=spec, num_gpus=1, backend="openvino"), b"")
    assert worker.extract("v", str(tmp_path / "v.mp4"), None)["frames"] == 70  # the batched (GPU) path
    record = FeatureStore(out).record("v")
    assert (record.backend, record.precision, record.device) == ("torch", "fp16", "cuda:0")
