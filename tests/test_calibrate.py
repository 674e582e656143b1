"""damvad.calibrate: the threshold lets through the requested share of normal *frames* (as evaluate counts
false alarms), checked on frame scores painted by hand; which videos it uses; what it writes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from damvad.calibrate import calibrate, calibrate_model
from damvad.config import ConfigError
from damvad.model import build_model
from damvad.modelfile import ModelCard, load_model, read_model_card, save_model_file
from damvad.scoring import score_video
from damvad.stages import CalibrateConfig
from damvad.store import FeatureStore
from featuretools import make_feature_dataset


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_feature_dataset(tmp_path_factory.mktemp("calibrate"), n_train=8, n_test=2)


def _model_file(path):
    torch.manual_seed(0)
    return save_model_file(path, build_model("dist", hidden=16, mlp_hidden=8))


def _normal_frame_scores(path, feats, names, k):
    model, _ = load_model(path)
    store = FeatureStore(feats)
    out = []
    for name in names:
        video = store.load(name)
        vs = score_video(model, video.maps, video.frames, "online", snippets_per_clip=k)
        out.append(np.repeat(vs.score, vs.frame_ranges[:, 1] - vs.frame_ranges[:, 0]))  # causal clips tile
    return np.concatenate(out)


@pytest.mark.parametrize("k", [1, 3])
def test_threshold_is_the_lowest_that_keeps_normal_frames_under_the_rate(synth, tmp_path, k):
    data, feats = synth
    path = _model_file(tmp_path / "m.pt")
    cfg = CalibrateConfig(model_file=str(path), features=str(feats), dataset=str(data), far=0.05, snippets_per_clip=k)
    th = calibrate(cfg)  # the config is the stage's API
    normal = [f"train_norm_{i:03d}" for i in (0, 2, 4, 6)]
    flat = _normal_frame_scores(path, feats, normal, k)
    share = float(np.mean(flat >= th.value))
    assert th.num_frames == flat.size and th.num_videos == 4
    assert share <= 0.05 and th.far_on_calibration_frames == pytest.approx(share)
    # as low as possible: the next lower distinct score would let more than 5 % of the frames through
    lower = flat[flat < th.value].max()
    assert np.mean(flat >= lower) > 0.05
    assert (th.score, th.protocol, th.snippets_per_clip, th.far_target) == ("D", "online", k, 0.05)
    assert "per frame" in th.far_definition and th.features.root == str(feats)
    assert th.features.manifest_sha256 == FeatureStore(feats).manifest_hash()
    assert th.device == "cpu" and read_model_card(path).threshold == th
    # a later calibration without a clip length keeps the one the model was calibrated for
    assert calibrate_model(path, feats, dataset=str(data), far=0.05, write=False)["snippets_per_clip"] == k


def test_held_out_normal_videos_are_preferred(synth, tmp_path):
    data, feats = synth
    held = ["train_norm_002"]
    path = save_model_file(tmp_path / "m.pt", build_model("mlp", mlp_hidden=8),
                           ModelCard(held_out_videos=(*held, "train_anom_001")))
    th = calibrate_model(path, feats, dataset=str(data), split="train", far=0.05)
    assert th["num_videos"] == 1 and "held out" in th["calibrated_on"]
    assert th["num_frames"] == FeatureStore(feats).frames("train_norm_002")
    assert calibrate_model(path, feats, dataset=str(data), far=0.05, held_out_only=False)["num_videos"] == 4


def test_write_false_leaves_the_file_and_bad_requests_are_clear_errors(synth, tmp_path):
    data, feats = synth
    path = _model_file(tmp_path / "m.pt")
    before = path.read_bytes()
    assert calibrate_model(path, feats, dataset=str(data), far=0.1, write=False)["value"] > 0
    assert path.read_bytes() == before
    for far in (0, 1, 1.5):
        with pytest.raises(ConfigError, match=r"far: must be in \(0, 1\)"):
            calibrate_model(path, feats, dataset=str(data), far=far)
    with pytest.raises(ValueError, match="no features folder recorded; give --features"):
        calibrate_model(path, dataset=str(data))
    with pytest.raises(ValueError, match="no normal videos to calibrate on"):
        calibrate_model(path, feats)  # no dataset: no video labels
    partial = tmp_path / "partial"
    partial.mkdir()
    store = FeatureStore(feats)
    for name in ("train_norm_000", "train_norm_002"):
        for src in (store.npy_path(name), store.json_path(name)):
            (partial / src.name).write_bytes(src.read_bytes())
    with pytest.raises(ValueError, match="no features for 2 normal video.s.: train_norm_004, train_norm_006"):
        calibrate_model(path, partial, dataset=str(data))
    assert path.read_bytes() == before
