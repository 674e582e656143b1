"""Ctrl-C and SIGTERM (docker stop, systemctl stop): the same clean-up, results kept, the way on said."""

from __future__ import annotations

import json
import os
import signal
import threading

import pytest
import torch

from damvad.backends import FunctionBackend
from damvad.cli import main
from damvad.detect import Detector
from damvad.detections import DetectionInterrupted, RowWriter
from damvad.extraction import backend as backend_mod
from damvad.model import build_model
from damvad.modelfile import save_model_file
from damvad.utils import Terminated, sigterm_as_interrupt
from videotools import fake_features, write_video


def stopping_after(calls: int, stop):
    """fake_features that calls ``stop`` (raise or signal) on its ``calls + 1``-th snippet."""
    seen = []

    def features(x):
        seen.append(1)
        if len(seen) > calls:
            stop()
        return fake_features(x)
    return features


def _raise_interrupt() -> None:
    raise KeyboardInterrupt


def _send_sigterm() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


@pytest.fixture()
def model_file(tmp_path):
    torch.manual_seed(0)
    return save_model_file(tmp_path / "model.pt", build_model("dist", hidden=16, mlp_hidden=8))


@pytest.fixture()
def i3d(monkeypatch):
    """The I3D of every command replaced by ``i3d.features`` (set by the test)."""
    holder = type("Holder", (), {"features": staticmethod(fake_features)})()

    def build(**settings):
        return FunctionBackend(lambda x: holder.features(x), name="fake", weights_sha256="fake-i3d",
                               precision=settings.get("precision") or "fp32")

    monkeypatch.setattr(backend_mod, "open_backend", build)
    return holder


def test_an_interrupted_source_keeps_its_rows_and_closes_its_alert(tmp_path, model_file):
    video = write_video(tmp_path / "cam.mp4", 64 * 6, seed=3)
    out = tmp_path / "rows.jsonl"
    det = Detector(model_file, i3d=stopping_after(3, _raise_interrupt), threshold=0.0)  # every clip alerts
    with open(out, "w") as fh, pytest.raises(DetectionInterrupted) as stop:
        det.run(video, writer=RowWriter(fh, "jsonl"), progress=False)
    result = stop.value.result
    assert isinstance(stop.value, KeyboardInterrupt) and result.interrupted and result.frames == 64 * 3
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["type"] for r in rows] == ["clip"] * 3 + ["event"]
    assert rows[-1]["end_frame"] == 64 * 3  # the open alert closed where scoring stopped


STOPS = [(_raise_interrupt, 130, "interrupted"), (_send_sigterm, 143, "terminated")]


@pytest.mark.parametrize("stop, code, word", STOPS, ids=["ctrl-c", "sigterm"])
def test_detect_stopped_publishes_its_rows_and_says_so(tmp_path, model_file, i3d, capsys, stop, code, word):
    video = write_video(tmp_path / "cam.mp4", 64 * 6, seed=4)
    out, report = tmp_path / "rows.csv", tmp_path / "report"
    i3d.features = stopping_after(2, stop)
    argv = ["detect", str(video), "--model", str(model_file), "--no-compile", "--quiet", "-o", str(out),
            "--report", str(report)]
    assert main(argv) == code
    err = capsys.readouterr().err
    assert f"damvad detect: {word}; the rows scored so far are written" in err
    assert f"{video}: 128 frames" in err and "INTERRUPTED" in err
    assert len(out.read_text().splitlines()) == 1 + 2  # header + the two clips scored before the stop
    events = json.loads((report / "cam_events.json").read_text())
    assert events["interrupted"] is True and events["frames"] == 128
    assert getattr(signal.getsignal(signal.SIGTERM), "__name__", "") != "terminate"  # not outliving the command


def test_extract_interrupted_says_how_to_resume(tmp_path, i3d, capsys):
    (tmp_path / "v").mkdir()
    videos = [write_video(tmp_path / "v" / f"{n}.mp4", 64 * 2, seed=n) for n in range(2)]
    i3d.features = stopping_after(2, _raise_interrupt)  # the second video's first snippet
    assert main(["extract", str(tmp_path / "v"), "--out", str(tmp_path / "f"), "--quiet"]) == 130
    assert "finished videos are kept; the same command resumes the rest" in capsys.readouterr().err
    done = [(tmp_path / "f" / f"{v.stem}.npy").exists() for v in videos]
    assert done == [True, False]


def test_sigterm_raises_terminated_in_the_block_only():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated), sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)  # delivered to this (main) thread at its next bytecode
        for _ in range(1000):
            pass
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_as_interrupt_leaves_other_threads_alone():
    before, seen = signal.getsignal(signal.SIGTERM), []

    def worker() -> None:
        with sigterm_as_interrupt():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [before]
