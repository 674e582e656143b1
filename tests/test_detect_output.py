"""Where detect's rows go: a file replaced once there are rows (default), or a log appended to (--append)."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys

import pytest
import torch

from damvad.backends import FunctionBackend
from damvad.cli import main
from damvad.extraction import backend as backend_mod
from damvad.model import build_model
from damvad.modelfile import save_model_file
from videotools import fake_features, write_video


@pytest.fixture()
def setup(tmp_path, monkeypatch):
    monkeypatch.setattr(backend_mod, "open_backend", lambda **s: FunctionBackend(
        fake_features, name="fake", weights_sha256="fake-i3d", precision=s.get("precision") or "fp32"))
    torch.manual_seed(0)
    model = save_model_file(tmp_path / "model.pt", build_model("dist", hidden=16, mlp_hidden=8))
    video = write_video(tmp_path / "cam.mp4", 64 * 3, seed=2)
    return ["detect", str(video), "--model", str(model), "--no-compile", "--quiet"]


def test_append_keeps_earlier_rows_and_writes_one_csv_header(tmp_path, setup):
    out = tmp_path / "alerts.csv"
    for _ in range(2):
        assert main([*setup, "-o", str(out), "--append"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2 * 3 and [r["clip"] for r in rows] == ["0", "1", "2"] * 2  # one header, both runs
    assert main([*setup, "-o", str(out)]) == 0  # without --append the file is replaced
    assert len(list(csv.DictReader(out.open()))) == 3


def test_append_to_jsonl_starts_after_a_cut_last_line_and_writes_events(tmp_path, setup):
    out = tmp_path / "alerts.jsonl"
    out.write_text('{"type": "clip", "from": "yesterday"}\n{"type": "cl')  # a run killed mid-line
    assert main([*setup, "-o", str(out), "--append", "--threshold", "0"]) == 0
    lines = out.read_text().splitlines()
    assert json.loads(lines[0]) == {"type": "clip", "from": "yesterday"} and lines[1] == '{"type": "cl'
    assert [json.loads(x)["type"] for x in lines[2:]] == ["clip"] * 3 + ["event"]  # on lines of their own


def test_append_needs_a_file(setup, capsys):
    assert main([*setup, "--append"]) == 2
    assert "append needs an output file" in capsys.readouterr().err


def test_append_with_nothing_scored_creates_no_file(tmp_path, setup, capsys):
    out = tmp_path / "alerts.csv"
    argv = [a if not a.endswith("cam.mp4") else str(tmp_path / "missing.mp4") for a in setup]
    assert main([*argv, "-o", str(out), "--append"]) == 1  # the source failed
    assert not out.exists() and "nothing scored" in capsys.readouterr().err


def test_a_reader_that_goes_away_stops_detect_quietly(setup, monkeypatch, capsys):
    """`damvad detect cam | head -2`: once the reader closes the pipe, detect stops with 141, no error."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    stdout = os.fdopen(write_end, "w")
    monkeypatch.setattr(sys, "stdout", stdout)
    try:
        assert main(setup) == 141
    finally:
        with contextlib.suppress(OSError):
            stdout.close()
    assert "error" not in capsys.readouterr().err


def test_a_broken_pipe_elsewhere_is_still_an_error(setup, monkeypatch, capsys):
    """A broken pipe that is not stdout's (a socket, a child process) is reported like any other error."""
    from damvad import detect as detect_mod

    def broken(*args, **kwargs):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(detect_mod, "detect", broken)
    assert main(setup) == 2
    assert "damvad detect: error: [Errno 32] Broken pipe" in capsys.readouterr().err
