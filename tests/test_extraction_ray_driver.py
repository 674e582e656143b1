"""damvad.extraction.ray_driver without a cluster: worker sizing, error lines, and the errors a driver gives
before Ray starts (no Ray installed, Ray options with the local engine, unreadable videos)."""

from __future__ import annotations

import sys

import pytest

from damvad.cli import main
from damvad.extraction.ray_driver import WorkerShape, _cause, extract_on_ray, plan_workers
from damvad.stages import ExtractConfig
from videotools import write_video


def _ray(inputs, out, **settings) -> ExtractConfig:
    return ExtractConfig(inputs=[str(p) for p in inputs], features=str(out), engine="ray", **settings)


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


def test_clear_error_without_ray(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    write_video(tmp_path / "a.mp4", 3)
    with pytest.raises(RuntimeError, match=r"pip install 'damvad\[cluster\]'"):
        extract_on_ray(_ray([tmp_path / "a.mp4"], tmp_path / "out"))
    assert main(["extract", str(tmp_path / "a.mp4"), "--out", str(tmp_path / "out"), "--engine", "ray"]) == 2
    assert "damvad[cluster]" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_ray_options_refused_with_the_local_engine(tmp_path, capsys):
    write_video(tmp_path / "a.mp4", 3)
    assert main(["extract", str(tmp_path / "a.mp4"), "--out", str(tmp_path / "out"), "--address", "auto"]) == 2
    assert "--engine ray" in capsys.readouterr().err


def test_unreadable_videos_fail_on_the_driver_without_starting_ray(tmp_path):
    ray = pytest.importorskip("ray", reason="needs the cluster extra")
    (tmp_path / "broken.mp4").write_bytes(b"\x00garbage" * 100)
    report = extract_on_ray(_ray([tmp_path / "broken.mp4", tmp_path / "missing.mp4"], tmp_path / "out"),
                            progress=False)
    assert not ray.is_initialized()
    assert set(report.failed) == {"broken", "missing"} and not report.done
    assert "does not exist" in report.failed["missing"] and "FAILED broken" in report.summary()
