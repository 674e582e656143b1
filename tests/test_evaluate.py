"""damvad.evaluate: the report's numbers against sklearn on scores painted by hand onto ground truth read
by hand from the annotation file; run discovery, the per-variant summary and the table."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from damvad.evaluate import EvalConfig, evaluate, find_model_files, format_table, run_label, summarize
from damvad.model import build_model
from damvad.modelfile import ModelCard, Threshold, load_model, save_model_file
from damvad.scoring import score_video
from damvad.store import FeatureStore
from featuretools import make_feature_dataset


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    data, feats = make_feature_dataset(root / "ds", n_train=2, n_test=6)
    runs = root / "runs" / "dist"
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = build_model("dist", hidden=16, mlp_hidden=8)
        threshold = {"value": 0.5, "score": "D", "protocol": "online", "snippets_per_clip": 1, "far_target": 0.05}
        save_model_file(runs / f"seed{seed}" / "model.pt", model, ModelCard(threshold=Threshold.from_dict(threshold)))
    return data, feats, runs


def _ground_truth_by_hand(data, store) -> dict[str, np.ndarray]:
    """0-based, end-exclusive intervals of ROOT/test/annotations.csv over each video's frames."""
    masks = {n: np.zeros(store.frames(n), dtype=bool) for n in store.names() if n.startswith("test_")}
    with open(data / "test" / "annotations.csv") as fh:
        for row in csv.DictReader(fh):
            masks[row["name"]][int(row["start"]):int(row["end"])] = True
    return masks


def _painted(model, store, name: str, protocol: str) -> np.ndarray:
    video = store.load(name)
    frames = video.frames
    vs = score_video(model, video.maps, frames, protocol)
    out = np.full(frames, np.nan)
    for value, (a, b) in zip(vs.score, vs.frame_ranges, strict=True):
        out[a:b] = value
    assert not np.isnan(out).any()  # every frame is covered by a clip
    return out


def test_report_numbers_equal_sklearn_on_hand_painted_frames(setup, tmp_path):
    data, feats, runs = setup
    report = evaluate(EvalConfig(dataset=str(data), features=str(feats), runs=[str(runs)], out=str(tmp_path),
                                 timelines=1), progress=False)
    store = FeatureStore(feats)
    gt = _ground_truth_by_hand(data, store)
    names = sorted(gt)
    labels = {n: int("_anom_" in n) for n in names}
    assert sum(m.any() for m in gt.values()) == 3 and not any(gt[n].any() for n in names if not labels[n])
    assert set(report["runs"]) == {"dist/seed0", "dist/seed1"}
    for seed in (0, 1):
        model, _ = load_model(runs / f"seed{seed}" / "model.pt")
        for protocol in ("offline", "online"):
            m = report["runs"][f"dist/seed{seed}"]["protocols"][protocol]
            scores = {n: _painted(model, store, n, protocol) for n in names}
            s = np.concatenate([scores[n] for n in names])
            y = np.concatenate([gt[n] for n in names])
            assert m["num_frames"] == y.size and m["num_anomalous_frames"] == int(y.sum())
            assert m["frame_auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-9)
            assert m["frame_ap"] == pytest.approx(average_precision_score(y, s), abs=1e-9)
            assert m["video_auc"] == pytest.approx(roc_auc_score([labels[n] for n in names],
                                                                 [scores[n].max() for n in names]), abs=1e-9)
            normal = np.concatenate([scores[n] for n in names if not labels[n]])
            if protocol == "online":  # the threshold was calibrated on the online protocol only
                assert m["far_at_calibrated_threshold"]["far"] == pytest.approx(np.mean(normal >= 0.5))
            else:
                assert "far_at_calibrated_threshold" not in m
    summary = report["summary"]["dist"]
    assert summary["runs"] == 2
    aucs = [report["runs"][f"dist/seed{s}"]["protocols"]["offline"]["frame_auc"] for s in (0, 1)]
    assert summary["offline"]["frame_auc"]["mean"] == pytest.approx(np.mean(aucs))
    assert summary["offline"]["frame_auc"]["std"] == pytest.approx(np.std(aucs, ddof=1))
    assert report["coverage"] == {"videos": 6, "of": 6, "frames": int(sum(len(g) for g in gt.values())),
                                  "anomalous_frames": int(sum(g.sum() for g in gt.values())),
                                  "anomalous_videos": 3, "missing": []}
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["runs"]["dist/seed0"]["protocols"]["offline"]["frame_auc"] == aucs[0]
    assert saved["summary"] == json.loads(json.dumps(report["summary"]))
    assert (tmp_path / "roc.png").stat().st_size > 0 and len(report["timelines"]) == 1
    table = format_table(report)
    assert "6 of 6 videos evaluated" in table and "dist: mean over 2 runs, offline" in table
    assert f"{100 * aucs[0]:7.2f}" in table


def test_weighted_score_and_a_single_protocol(setup, tmp_path):
    data, feats, runs = setup
    report = evaluate(EvalConfig(dataset=str(data), features=str(feats), runs=[str(runs / "seed0" / "model.pt")],
                                 out=str(tmp_path), protocols=["online"], score="wD", timelines=0), progress=False)
    m = report["runs"]["dist/seed0"]["protocols"]["online"]
    assert list(report["runs"]["dist/seed0"]["protocols"]) == ["online"]
    # 0.5 is a threshold for D: neither the fixed nor the calibrated one is reported for wD
    assert "far_at_threshold" not in m and "far_at_calibrated_threshold" not in m
    model, _ = load_model(runs / "seed0" / "model.pt")
    store = FeatureStore(feats)
    gt = _ground_truth_by_hand(data, store)
    names = sorted(gt)
    weighted = []
    for n in names:
        video = store.load(n)
        vs = score_video(model, video.maps, video.frames, "online")
        weighted.append(np.repeat(vs.weighted, np.diff(vs.frame_ranges, axis=1)[:, 0]))  # causal ranges tile
    assert m["frame_auc"] == pytest.approx(roc_auc_score(np.concatenate([gt[n] for n in names]),
                                                         np.concatenate(weighted)), abs=1e-9)


def test_model_files_are_found_in_files_run_folders_and_seed_folders(setup, tmp_path):
    _, _, runs = setup
    seeds = [runs / "seed0" / "model.pt", runs / "seed1" / "model.pt"]
    assert find_model_files([str(runs)]) == seeds
    assert find_model_files([str(runs / "seed1"), str(seeds[0])]) == [seeds[1], seeds[0]]
    with pytest.raises(FileNotFoundError, match="no model.pt in it or its seed folders"):
        find_model_files([str(tmp_path)])
    assert run_label(seeds[0]) == "dist/seed0" and run_label(tmp_path / "other.pt") == "other"
    with pytest.raises(ValueError, match="score must be D or wD"):
        evaluate(EvalConfig(runs=[str(runs)], score="A"), progress=False)


def test_summary_is_per_variant_and_skips_undefined_values():
    def run(variant, auc, video_auc):
        return {"variant": variant, "protocols": {"offline": {"frame_auc": auc, "frame_ap": 0.5,
                                                              "video_auc": video_auc}}}

    runs = {"a/seed0": run("dist", 0.8, None), "a/seed1": run("dist", 0.7, 0.9), "a/seed2": run("dist", 0.9, math.nan),
            "b/seed0": run("mlp", 0.6, 0.6)}
    out = summarize(runs, ["offline"])
    assert set(out) == {"dist", "mlp"} and out["dist"]["runs"] == 3  # never averaged across variants
    auc = out["dist"]["offline"]["frame_auc"]
    assert auc["mean"] == pytest.approx(0.8) and auc["std"] == pytest.approx(np.std([0.8, 0.7, 0.9], ddof=1))
    assert out["dist"]["offline"]["video_auc"] == {"mean": 0.9, "std": 0.0, "n": 1}  # None and NaN left out
    assert out["mlp"]["offline"]["frame_auc"] == {"mean": 0.6, "std": 0.0, "n": 1}
    assert "far_calibrated" not in out["mlp"]["offline"]
