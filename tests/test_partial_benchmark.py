"""Partial benchmarks on the two real UCF-Crime test videos in ../shared: decoded frame counts, ground truth
aligned on the real files, evaluate with --allow-missing ("2 of 290"), detect on them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from damvad.datasets import DatasetError, check_features, get_dataset
from damvad.detect import Detector
from damvad.evaluate import EvalConfig, evaluate, format_table
from damvad.extract import extract
from damvad.model import build_model
from damvad.modelfile import load_model, save_model_file
from damvad.scoring import score_video
from damvad.store import FeatureStore
from damvad.video import iter_frames, probe
from videotools import fake_features

UCF = Path(__file__).resolve().parents[1].parent / "shared" / "media" / "ucf-crime"
ROAD, NORMAL = "RoadAccidents002_x264", "Normal_Videos_006_x264"
FRAMES = {ROAD: 347, NORMAL: 450}
pytestmark = pytest.mark.skipif(not (UCF / f"{ROAD}.mp4").is_file() or not (UCF / f"{NORMAL}.mp4").is_file(),
                                reason=f"the real UCF-Crime test videos are absent ({UCF}: ../shared not mounted)")


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """Features of the two real videos (a cheap stand-in for I3D: the frame bookkeeping is what is tested)
    and a small DAM head."""
    root = tmp_path_factory.mktemp("ucf")
    report = extract([UCF / f"{ROAD}.mp4", UCF / f"{NORMAL}.mp4"], root / "features", feature_fn=fake_features,
                     progress=False)
    assert report.ok, report.summary()
    torch.manual_seed(0)
    model = save_model_file(root / "model.pt", build_model("dist", hidden=16, mlp_hidden=8))
    return root, FeatureStore(root / "features"), model


def test_decoded_frame_counts_match_the_annotation(real):
    _, store, _ = real
    for name, frames in FRAMES.items():
        assert store.frames(name) == frames
        assert probe(UCF / f"{name}.mp4").declared_frames == frames
        assert sum(1 for _ in iter_frames(UCF / f"{name}.mp4", short_side=112)) == frames


def test_ground_truth_is_aligned_on_the_real_files(real):
    _, store, _ = real
    dataset = get_dataset("ucf-crime")
    with pytest.raises(DatasetError, match=r"(?s)288 of 290 test videos .*and 268 more.*--allow-missing"):
        check_features(dataset, store, "test")
    missing = check_features(dataset, store, "test", allow_missing=True)
    assert len(missing) == 288 and ROAD not in missing and NORMAL not in missing
    gt = dataset.ground_truths("test", store, names={ROAD, NORMAL})
    assert len(gt[ROAD]) == 347 and len(gt[NORMAL]) == 450 and not gt[NORMAL].any()
    # the annotation's 240-300 is 1-based and inclusive: 0-based frames 239..299, 61 frames
    assert np.flatnonzero(gt[ROAD]).tolist() == list(range(239, 300))


def test_evaluate_with_missing_videos_reports_what_it_covered(real, tmp_path):
    _, store, model = real
    cfg = EvalConfig(dataset="ucf-crime", features=str(store.root), runs=[str(model)], out=str(tmp_path / "eval"),
                     timelines=0)
    with pytest.raises(DatasetError, match="288 of 290"):
        evaluate(cfg, progress=False)
    cfg.allow_missing = True
    report = evaluate(cfg, progress=False)
    cov = report["coverage"]
    assert (cov["videos"], cov["of"], cov["frames"], cov["anomalous_frames"]) == (2, 290, 797, 61)
    assert len(cov["missing"]) == 288 and ROAD not in cov["missing"]
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["coverage"]["missing"] == cov["missing"]
    table = format_table(report)
    assert "2 of 290 videos evaluated (797 frames, 61 anomalous)" in table and "PARTIAL" in table
    m = report["runs"]["model.pt" if "model.pt" in report["runs"] else next(iter(report["runs"]))]
    assert m["protocols"]["offline"]["num_frames"] == 797


def test_detect_on_the_real_videos_equals_the_online_protocol(real):
    _, store, model_path = real
    model, _ = load_model(model_path)
    det = Detector(model_path, i3d=fake_features)
    for name, frames in FRAMES.items():
        result = det.run(UCF / f"{name}.mp4", progress=False)
        assert result.error is None and result.frames == frames and result.warning is None
        ref = score_video(model, store.load(name).maps, frames, "online")
        assert len(result.rows) == -(-frames // 64)
        np.testing.assert_allclose([r.score for r in result.rows], ref.score, rtol=1e-5, atol=1e-6)
        assert result.frame_scores().shape == (frames,)
