"""damvad.benchmark.report: AUC from runs of equal frames against sklearn, localisation, detections, and the
bootstrap over videos."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from damvad.benchmark import report


def _video(rng, n=300, step=16, anomalous=True):
    scores = np.repeat(rng.integers(0, 6, n // step + 1) / 5, step)[:n]  # piecewise constant, many ties
    gt = np.zeros(n, bool)
    if anomalous:
        a = int(rng.integers(0, n - 60))
        gt[a:a + 50] = True
    return scores, gt


def test_grouped_auc_equals_sklearn_on_the_frames():
    rng = np.random.default_rng(0)
    videos = {f"v{i}": _video(rng, anomalous=i % 2 == 0) for i in range(8)}
    runs = report.runs_of({k: v[0] for k, v in videos.items()}, {k: v[1] for k, v in videos.items()})
    assert sum(r[:, 1:].sum() for r in runs.values()) == 8 * 300  # every frame once
    names = sorted(videos)
    want = roc_auc_score(np.concatenate([videos[n][1] for n in names]), np.concatenate([videos[n][0] for n in names]))
    assert report.auc_over(runs, names) == pytest.approx(want, abs=1e-12)
    for name in names:  # a video alone
        if videos[name][1].any():
            want = roc_auc_score(videos[name][1], videos[name][0])
            assert report.grouped_auc(runs[name]) == pytest.approx(want, abs=1e-12)
    assert np.isnan(report.grouped_auc(np.array([[0.3, 0.0, 5.0]])))  # one class only
    with pytest.raises(ValueError, match="labels"):
        report.frame_runs(np.zeros(3), np.zeros(4, bool))


def test_detections_count_an_event_once_when_any_frame_reaches_the_threshold():
    scores = {"a": np.array([0.1, 0.9, 0.1, 0.2, 0.2]), "b": np.zeros(5)}
    events = {"a": [{"kind": "fall", "start_frame": 0, "end_frame": 2}, {"kind": "run", "start_frame": 2,
                                                                         "end_frame": 5}],
              "b": [{"kind": "fall", "start_frame": 1, "end_frame": 3}], "c": [{"kind": "run", "start_frame": 0,
                                                                                "end_frame": 1}]}
    got = report.detections(scores, events, 0.5)
    assert got == {"fall": {"events": 2, "detected": 1}, "run": {"events": 1, "detected": 0}}


def test_video_facts_read_the_generator_manifest(tmp_path):
    (tmp_path / "synth.json").write_text(json.dumps({"videos": [
        {"name": "t1", "split": "test", "camera": "cam01", "events": [{"kind": "run", "start_frame": 1,
                                                                      "end_frame": 9}]},
        {"name": "t2", "split": "test", "camera": "new02"},
        {"name": "d1", "split": "dev", "camera": "cam03"}]}))
    events, groups = report.video_facts(tmp_path, "test")
    assert groups == {"t1": "seen", "t2": "unseen"} and events["t1"][0]["kind"] == "run" and events["t2"] == []
    assert report.video_facts(tmp_path / "nothing", "test") == ({}, {})


def test_bootstrap_keeps_both_labels_and_pairs_rows_on_the_same_resamples():
    rng = np.random.default_rng(1)
    labels = {f"v{i}": i % 2 for i in range(10)}
    resamples = report.bootstrap_resamples(labels, 50, seed=3)
    assert all(sorted(labels[n] for n in s) == [0] * 5 + [1] * 5 for s in resamples)
    assert resamples == report.bootstrap_resamples(labels, 50, seed=3)
    videos = {n: _video(rng, anomalous=bool(lab)) for n, lab in labels.items()}
    runs = report.runs_of({k: v[0] for k, v in videos.items()}, {k: v[1] for k, v in videos.items()})
    noisy = report.runs_of({k: v[0] + rng.normal(0, 0.3, v[0].size) for k, v in videos.items()},
                           {k: v[1] for k, v in videos.items()})
    rows, diffs = report.bootstrap_rows({"base": [runs], "same": [runs, runs], "noisy": [noisy]}, resamples, "base")
    assert diffs["same"]["low"] == diffs["same"]["high"] == diffs["same"]["mean"] == 0.0  # paired: no spread
    assert rows["base"]["low"] <= report.auc_over(runs, sorted(labels)) <= rows["base"]["high"]
    assert diffs["noisy"]["half_width"] > 0
