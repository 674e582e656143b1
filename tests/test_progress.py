"""Progress on stderr: redrawn in place on a terminal, whole lines in a log (a camera's status included)."""

from __future__ import annotations

import io

import torch

from damvad import progress
from damvad.detect import Detector
from damvad.model import build_model
from damvad.modelfile import save_model_file
from damvad.progress import LOG_INTERVAL, TTY_INTERVAL, StatusLine, on_terminal, progress_bar
from videotools import fake_features, write_video


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_status_line_in_a_log_writes_whole_lines_at_the_log_pace():
    log = io.StringIO()
    status = StatusLine(start=0.0, stream=log)
    assert status.every == LOG_INTERVAL and not status.due(LOG_INTERVAL - 1)
    assert status.due(LOG_INTERVAL + 1)
    status.show("cam: 100 frames", LOG_INTERVAL + 1)
    assert not status.due(LOG_INTERVAL + 2)  # the next one a whole interval after this one
    status.show("cam: 200 frames", 2 * LOG_INTERVAL + 2)
    status.end()
    assert log.getvalue() == "cam: 100 frames\ncam: 200 frames\n"


def test_status_line_on_a_terminal_redraws_in_place_and_ends_its_line_once():
    tty = Terminal()
    status = StatusLine(start=0.0, stream=tty)
    assert status.every == TTY_INTERVAL and status.due(TTY_INTERVAL + 0.1)
    status.end()
    assert tty.getvalue() == ""  # nothing shown, no stray blank line
    status.show("a", 2.0)
    status.show("b", 3.5)
    status.end()
    assert tty.getvalue() == "\ra   \rb   \n"


def test_progress_bar_redraws_at_the_log_pace_off_a_terminal_in_whole_lines():
    log = io.StringIO()
    with progress_bar(total=3, file=log, desc="extract") as bar:
        assert bar.mininterval == LOG_INTERVAL
        bar.update(3)
    lines = log.getvalue().split("\n")
    assert "\r" not in log.getvalue() and lines[-1] == "" and all(line.startswith("extract") for line in lines[:-1])
    assert "3/3" in lines[-2]  # the last redraw, at close, is the finished bar
    with progress_bar(total=3, file=log, mininterval=0.5) as bar:
        assert bar.mininterval == 0.5  # an explicit pace is kept
    with progress_bar(range(2), file=Terminal()) as bar:
        assert bar.mininterval < LOG_INTERVAL and list(bar) == [0, 1]


def test_a_stream_that_cannot_say_is_not_a_terminal():
    closed = io.StringIO()
    closed.close()
    assert not on_terminal(closed) and not on_terminal(io.StringIO()) and on_terminal(Terminal())


def test_detect_status_off_a_terminal_is_whole_lines(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.0)  # a line after every snippet
    torch.manual_seed(0)
    model_file = save_model_file(tmp_path / "model.pt", build_model("dist", hidden=32, mlp_hidden=8))
    video = write_video(tmp_path / "cam.mp4", 64 * 3, seed=5)
    Detector(model_file, i3d=fake_features, threshold=0.5).run(video, progress=True)
    err = capsys.readouterr().err
    status = [line for line in err.splitlines() if "frames/s" in line]
    assert "\r" not in err and len(status) >= 2
    assert all(line.startswith(f"{video}: ") and "latency" in line for line in status)
