"""`damvad demo --quick`: the README's main job, end to end with the real I3D, on a tiny generated set."""

from __future__ import annotations

import json

from damvad.cli import main


def test_quick_demo_runs_end_to_end(tmp_path, i3d_model, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quick", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "frame AUC" in printed and "live detection" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["test"]) == {"dist/seed0", "mlp/seed0"}
    for run in summary["test"].values():
        assert 0.0 <= run["offline"]["frame_auc"] <= 1.0 and run["online"]["num_frames"] > 0
    for key in ("timeline", "events", "video"):
        assert (out / "live").joinpath(summary["live"][key].split("/")[-1]).exists()
    assert (out / "eval" / "roc.png").exists() and summary["threshold"]["protocol"] == "online"
    # training saw video-level labels only: no frame annotation of a training video exists anywhere
    ann = (out / "data" / "test" / "annotations.csv").read_text()
    assert "train_" not in ann
