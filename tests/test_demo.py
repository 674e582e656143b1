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
    assert summary["plan"]["name"] == "quick"
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
    from damvad.demo import FULL, QUICK, SMALL, demo_params
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
    small = demo_params(SMALL)  # CPUs without fast int8: a third of full's frames, the same recipe and seed
    assert tuple(small["num_frames"]) == (256, 320) and small["seed"] == 8 and small["cameras"] == 4
    assert (small["n_train_normal"], small["n_train_anomalous"], small["n_test_normal"],
            small["n_test_anomalous"]) == (64, 64, 8, 8)
    assert (SMALL.iterations, SMALL.mlp_iterations, FULL.mlp_iterations) == (500, 1000, None)  # the dev study's N
    assert {k: v for k, v in SMALL.__dict__.items() if k not in ("benchmark", "iterations", "mlp_iterations")} == {
        k: v for k, v in FULL.__dict__.items() if k not in ("benchmark", "iterations", "mlp_iterations")}


def test_demo_trains_the_mlp_with_its_own_budget_where_the_plan_gives_one(tmp_path, monkeypatch):
    """The small plan's MLP trains 1,000 iterations beside Dist-DAM's 500; a plan without mlp_iterations trains
    both with ``iterations``."""
    from damvad import train as train_module
    from damvad.demo import SMALL, DemoPlan, _train

    budgets: dict[str, int] = {}
    monkeypatch.setattr(train_module, "train", lambda cfg, **kw: budgets.__setitem__(cfg.variant, cfg.iterations))
    for variant in ("dist", "mlp"):
        _train(SMALL, variant, tmp_path, tmp_path, "cpu", False, {})
    assert budgets == {"dist": 500, "mlp": 1000}
    for variant in ("dist", "mlp"):
        _train(DemoPlan(iterations=70), variant, tmp_path, tmp_path, "cpu", False, {})
    assert budgets == {"dist": 70, "mlp": 70}


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


def test_demo_names_the_cpu_its_plan_and_its_measured_times_first(monkeypatch):
    """A newcomer learns the machine, the plan chosen for it and that plan's measured time before the first
    progress bar; the quick plan and a GPU print the machine and plan alone."""
    from damvad.demo import EXPECTED_TIME, _machine_line

    monkeypatch.setattr("damvad.device.cpu_flags", lambda: frozenset({"avx2", "fma"}))
    line = _machine_line("cpu", "small")
    assert line.startswith("damvad demo on ") and "AVX2, no bf16, no VNNI, no AMX, plan small" in line
    assert line.endswith(EXPECTED_TIME["small"]) and "35 min" in EXPECTED_TIME["full"]
    assert _machine_line("cpu", "quick").endswith("plan quick")


@pytest.mark.parametrize("flags, expected", [
    ({"avx2", "fma"}, "small"),  # AVX2 only: int8 I3D ~89 frames/s, the full plan took 35 min
    ({"avx2", "avx_vnni"}, "small"),  # 256-bit VNNI only
    ({"avx512f", "avx512_vnni"}, "full"),
    ({"avx512f", "amx_int8", "amx_bf16"}, "full"),
    (set(), "full"),  # flags unknown: nothing is made smaller on a guess
])
def test_demo_plan_is_chosen_from_the_cpus_int8_units(monkeypatch, flags, expected):
    from damvad.demo import FULL, SMALL, choose_plan, resolve_plan

    monkeypatch.setattr("damvad.device.cpu_flags", lambda: frozenset(flags))
    assert choose_plan("cpu") == expected
    assert resolve_plan("auto", "cpu") == (expected, FULL if expected == "full" else SMALL)
    assert resolve_plan("full", "cpu") == ("full", FULL)  # a name overrides the machine's choice


def test_demo_plan_on_a_gpu_is_full_and_unknown_names_are_refused(monkeypatch):
    from damvad.demo import DemoPlan, choose_plan, resolve_plan

    monkeypatch.setattr("damvad.device.cpu_flags", lambda: frozenset({"avx2"}))
    monkeypatch.setattr("damvad.device.is_cuda", lambda dev: True)
    assert choose_plan("cuda") == "full"
    assert resolve_plan(DemoPlan(iterations=7), "cpu")[0] == "custom"
    with pytest.raises(ValueError, match="unknown demo plan 'tiny'"):
        resolve_plan("tiny", "cpu")
