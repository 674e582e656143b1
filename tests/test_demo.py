"""`damvad demo --quick`: the README's main job, end to end with the real I3D, on a tiny generated set."""

from __future__ import annotations

import json

import pytest

from damvad.cli import main
from damvad.demo import QUICK


@pytest.mark.slow
def test_quick_demo_runs_end_to_end(tmp_path, i3d_model, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quick", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "frame AUC" in printed and "live detection" in printed
    assert "cannot rank the variants" in printed and "mean over" not in printed  # never averages variants
    summary = json.loads((out / "summary.json").read_text())
    videos = json.loads((out / "data" / "synth.json").read_text())["videos"]
    assert all(v["num_frames"] >= 8 * 64 for v in videos)  # >= 8 snippets, as the shipped plan: clips to compare
    assert summary["benchmark"] == "synth-demo-v2" and summary["generator"]["benign"]
    assert {v["camera"] for v in videos} == {"cam01", "cam02"}  # cameras shared by both labels
    change = summary["change_detector"]["online"]
    assert 0.0 <= change["frame_auc"] <= 1.0 and "change" in printed  # the reference printed beside the rows
    assert set(summary["test"]) == {"dist/seed0", "mlp/seed0"}
    for variant in ("dist", "mlp"):  # trained with the default selection rule: the whole budget, averaged
        result = json.loads((out / "runs" / variant / "seed0" / "result.json").read_text())
        assert result["selection"] == "average" and result["iteration"] == 40
        config = (out / "runs" / variant / "config.yaml").read_text()  # the plan's dropout reached the head
        assert f"dropout: {QUICK.dropout}" in config and summary["plan"]["dropout"] == QUICK.dropout
    for run in summary["test"].values():
        assert 0.0 <= run["offline"]["frame_auc"] <= 1.0 and run["online"]["num_frames"] > 0
    for key in ("timeline", "events", "video"):
        assert (out / "live").joinpath(summary["live"][key].split("/")[-1]).exists()
    assert (out / "eval" / "roc.png").exists() and summary["threshold"]["protocol"] == "online"
    dist = summary["test"]["dist/seed0"]["online"]
    assert dist["far_at_calibrated_threshold"]["threshold"] == summary["threshold"]["value"]
    assert "far_at_calibrated_threshold" not in summary["test"]["mlp/seed0"]["online"]  # mlp was not calibrated
    # training saw video-level labels only: no frame annotation of a training video exists anywhere
    ann = (out / "data" / "test" / "annotations.csv").read_text()
    assert "train_" not in ann


def test_demo_plan_and_draws():
    """The shipped demo: synth-demo-v4's 90 + 90 half-length training videos and 8 + 8 test videos, the shipped draw
    by default (the demo's seed, 8); --draw-seed changes the seed alone; --quick stays small."""
    from damvad.demo import FULL, QUICK, demo_params
    from damvad.synth.benchmark import benchmark_params

    full = demo_params(FULL)
    assert (full["n_train_normal"], full["n_train_anomalous"], full["n_test_normal"], full["n_test_anomalous"]) == (
        90, 90, 8, 8) and full["seed"] == benchmark_params("synth-demo-v2")["seed"] == 8
    assert tuple(full["num_frames"]) == (512, 640) and full["cameras"] == 4
    assert FULL.val_fraction == 0.1 and FULL.iterations == 1000 and FULL.dropout == 0.5  # the dev study's G
    other = demo_params(FULL, draw_seed=101)
    assert other["seed"] == 101 and {k: v for k, v in other.items() if k != "seed"} == {
        k: v for k, v in full.items() if k != "seed"}
    quick = demo_params(QUICK)
    assert quick["n_train_normal"] == 3 and QUICK.iterations <= 40


def test_demo_says_how_many_snippets_its_videos_have(tmp_path, capsys):
    """Step 1 prints the shortest video's snippet count from the plan's lengths (the shipped plan's videos have 8,
    as the quick plan's), not a fixed number."""
    from damvad.demo import QUICK, _generate, demo_params

    params = {**demo_params(QUICK), "num_frames": (128, 140), "n_train_normal": 1, "n_train_anomalous": 1,
              "n_test_normal": 1, "n_test_anomalous": 1, "size": (224, 168)}
    timings: dict[str, float] = {}
    data = _generate(QUICK, params, tmp_path, quick=True, progress=False, timings=timings)
    assert "videos of >= 2 snippets" in capsys.readouterr().out
    assert (data / "synth.json").exists() and timings["generate_s"] > 0


def test_demo_names_the_cpu_and_its_measured_times_first(monkeypatch):
    """A newcomer on an AVX2-only CPU (35 min measured) learns it before the first progress bar; the quick plan and
    a GPU print the machine alone."""
    from damvad.demo import EXPECTED_TIME, _machine_line

    monkeypatch.setattr("damvad.device.cpu_flags", lambda: frozenset({"avx2", "fma"}))
    line = _machine_line("cpu", quick=False)
    assert line.startswith("damvad demo on ") and "AVX2, no bf16, no VNNI, no AMX" in line
    assert line.endswith(EXPECTED_TIME) and "35 min" in EXPECTED_TIME
    assert EXPECTED_TIME not in _machine_line("cpu", quick=True)
