"""damvad.plots: the ROC and timeline figures are written atomically as PNGs, whatever spans they mark."""

from __future__ import annotations

import numpy as np

from damvad.plots import _spans, roc_plot, timeline_plot

PNG = b"\x89PNG\r\n\x1a\n"


def test_spans_are_the_runs_of_true_frames():
    assert _spans(np.array([0, 1, 1, 0, 0, 1], bool)) == [(1, 3), (5, 6)]
    assert _spans(np.zeros(4, bool)) == []


def test_roc_and_timeline_are_png_files_and_leave_no_temporary(tmp_path):
    fpr = np.linspace(0, 1, 11)
    roc = roc_plot({"dist offline": (fpr, np.sqrt(fpr), 0.66)}, tmp_path / "roc.png", title="test")
    assert roc.read_bytes().startswith(PNG)
    scores = np.clip(np.sin(np.linspace(0, 6, 300)), 0, 1)
    truth = np.zeros(300, bool)
    truth[100:150] = True
    line = timeline_plot(scores, tmp_path / "t" / "clip.png", title="clip", ground_truth=truth,
                         clip_attention=scores / 2, threshold=0.5, events=[(90, 160), (290, 400)],
                         times=np.arange(300) / 25.0)
    assert line.read_bytes().startswith(PNG)
    one = timeline_plot(np.array([0.3]), tmp_path / "one.png")  # a one-frame video still plots
    assert one.read_bytes().startswith(PNG)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["clip.png", "one.png", "roc.png"]
