"""The Ray engine's parts that need no cluster: worker sizing, error messages, the GPU feature path on CPU,
a worker's start-up checks, and the error without Ray installed."""

from __future__ import annotations

import sys
import time

import pytest
import torch

from damvad import __version__
from damvad.cli import main
from damvad.cluster import WorkerShape, _cause, extract_on_ray, plan_workers
from damvad.cluster_worker import FeatureWorker, worker_feature_fn
from videotools import write_video


def test_workers_sized_from_node_resources():
    assert plan_workers({"CPU": 8.0, "memory": 1e9}) == [WorkerShape(8.0, 0.0)]
    assert plan_workers({"CPU": 8.0}, cpus_per_worker=2) == [WorkerShape(2.0, 0.0)] * 4
    assert plan_workers({"CPU": 7.0}, cpus_per_worker=3) == [WorkerShape(3.0, 0.0)] * 2
    assert plan_workers({"CPU": 16.0, "GPU": 4.0}) == [WorkerShape(4.0, 1.0)] * 4  # one per GPU
    assert plan_workers({"CPU": 16.0, "GPU": 4.0}, cpus_per_worker=2) == [WorkerShape(2.0, 0.5)] * 8  # 2 per GPU
    assert plan_workers({"CPU": 12.0, "GPU": 1.0}, cpus_per_worker=4) == [WorkerShape(4.0, 1 / 3)] * 3
    assert plan_workers({"CPU": 4.0, "GPU": 2.0}, cpus_per_worker=4) == [WorkerShape(2.0, 1.0)] * 2  # too few CPUs
    assert plan_workers({"CPU": 2.0, "GPU": 4.0}) == [WorkerShape(0.5, 1.0)] * 4
    assert plan_workers({"CPU": 0.0, "node:__internal_head__": 1.0}) == []  # a head started with --num-cpus 0
    assert plan_workers({"CPU": 2.0}, cpus_per_worker=4) == []


def test_cause_is_one_readable_line():
    class Wrapped(Exception):
        cause = ValueError("first line\nthe real reason")

    assert _cause(Wrapped("traceback...")) == "ValueError: the real reason"
    died = Exception(
        "The actor died because of an error raised in its creation task, ray::FeatureWorker.__init__()\n"
        "  File \"cluster.py\", line 150, in __init__\n"
        "RuntimeError: vm: does not see the driver's features folder /x (marker file missing)"
    )
    assert _cause(died) == "RuntimeError: vm: does not see the driver's features folder /x (marker file missing)"
    assert _cause(Exception("socket closed\nmore")) == "Exception: socket closed"


def test_worker_feature_path_matches_fast_i3d_on_cpu(i3d_model):
    from damvad.i3d import FastI3D

    x = torch.rand(1, 3, 16, 224, 224, generator=torch.Generator().manual_seed(0)) * 2 - 1
    fn = worker_feature_fn(i3d_model, {"backend": "torch", "compile": False}, "fp32", "cpu")
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


def test_clear_error_without_ray(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    write_video(tmp_path / "a.mp4", 3)
    with pytest.raises(RuntimeError, match=r"pip install 'damvad\[cluster\]'"):
        extract_on_ray([tmp_path / "a.mp4"], tmp_path / "out")
    assert main(["extract", str(tmp_path / "a.mp4"), "--out", str(tmp_path / "out"), "--engine", "ray"]) == 2
    assert "damvad[cluster]" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_ray_options_refused_with_the_local_engine(tmp_path, capsys):
    write_video(tmp_path / "a.mp4", 3)
    assert main(["extract", str(tmp_path / "a.mp4"), "--out", str(tmp_path / "out"), "--address", "auto"]) == 2
    assert "--engine ray" in capsys.readouterr().err


def test_an_address_where_nothing_listens_fails_fast():
    import socket

    from damvad.cluster_connect import check_cluster, check_reachable

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="no Ray cluster answers at 127.0.0.1:"):
        check_cluster(f"127.0.0.1:{port}")  # the TCP check: no handshake child is started
    assert time.monotonic() - t0 < 10
    check_reachable("auto")  # resolved by Ray itself
    check_cluster(None)  # a new local instance: nothing to check
    check_cluster("ray://head:10001")  # Ray Client: bounded by its own retries


def test_unreadable_videos_fail_on_the_driver_without_starting_ray(tmp_path):
    ray = pytest.importorskip("ray", reason="needs the cluster extra")
    (tmp_path / "broken.mp4").write_bytes(b"\x00garbage" * 100)
    report = extract_on_ray([tmp_path / "broken.mp4", tmp_path / "missing.mp4"], tmp_path / "out", progress=False)
    assert not ray.is_initialized()
    assert set(report.failed) == {"broken", "missing"} and not report.done
    assert "does not exist" in report.failed["missing"] and "FAILED broken" in report.summary()
