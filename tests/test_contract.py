"""The feature contract: recorded by training and calibration, checked and used by evaluate and detect."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from backendtools import needs_cpu_bf16
from damvad.backends import FunctionBackend
from damvad.calibrate import calibrate_model
from damvad.contract import ContractError, FeatureContract, check_contract, contract_backend, contract_of_records
from damvad.detect import Detector
from damvad.evaluate import EvalConfig, evaluate
from damvad.model import build_model
from damvad.modelfile import FORMAT_1, load_model, read_model_card
from damvad.train import TrainConfig, train
from featuretools import make_feature_dataset, synthetic_record
from videotools import fake_features

VTEST = Path(__file__).resolve().parents[1].parent / "shared" / "media" / "vtest.avi"


def _record(**kw):
    fields = {"weights_sha256": "a" * 64, "crop_names": ("center",), "precision": "fp32", "backend": "torch", **kw}
    return synthetic_record("v", "v.mp4", np.zeros((1, len(fields["crop_names"]), 7, 1024), np.float32), 64, **fields)


def test_records_must_agree_on_the_feature_fields_and_may_mix_precisions():
    mixed = contract_of_records([_record(), _record(precision="bf16", backend="openvino")])
    assert mixed.precision == "bf16,fp32" and mixed.backend == "openvino,torch" and mixed.crops == "center"
    with pytest.raises(ContractError, match="disagree on weights_sha256"):
        contract_of_records([_record(), _record(weights_sha256="b" * 64)])
    with pytest.raises(ContractError, match="disagree on stride"):
        contract_of_records([_record(), _record(stride=16)])
    five = ["center", "top_left", "top_right", "bottom_left", "bottom_right"]
    assert contract_of_records([_record(crop_names=tuple(five))]).crops == "5"


def test_a_feature_difference_is_refused_naming_both_sides_and_rounding_is_warned(caplog):
    trained = FeatureContract("a" * 64, "5", 64, "fp32", "torch")
    with pytest.raises(ContractError, match=r"crops: 5 \(training\) vs center \(detect\)"):
        check_contract(trained, FeatureContract("a" * 64, "center", 64, "fp32", "torch"), "training", "detect")
    with pytest.raises(ContractError, match="weights_sha256: aaaaaaaaaaaa... .training. vs bbbbbbbbbbbb..."):
        check_contract(trained, FeatureContract("b" * 64, "5", 64, "fp32", "torch"), "training", "detect")
    with pytest.raises(ContractError, match=r"stride: 64 \(training\) vs 16 \(detect\)"):
        check_contract(trained, FeatureContract("a" * 64, "5", 64, "fp32", "torch", stride=16), "training", "detect")
    assert FeatureContract.from_dict({"crops": "5"}).stride == 64  # contracts recorded before strides
    with caplog.at_level(logging.WARNING):
        warnings = check_contract(trained, FeatureContract("a" * 64, "5", 64, "bf16", "openvino"), "training",
                                  "detect")
    assert len(warnings) == 2 and "precision bf16 (detect) differs from fp32 (training)" in warnings[0]
    assert "precision bf16" in caplog.text
    # a side that does not know a field (a custom feature function) is not compared on it
    assert check_contract(trained, FeatureContract("", "5", 64, "", ""), "training", "detect") == []


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("contract")
    data, feats = make_feature_dataset(root / "ds", n_train=12, n_test=4)
    cfg = TrainConfig(dataset=str(data), features=str(feats), out=str(root / "run"), variant="dist",
                      model={"hidden": 16, "mlp_hidden": 8}, iterations=3, eval_every=3, checkpoint_every=3,
                      batch_anomalous=2, batch_normal=2, val_fraction=0.25, threads=1)
    train(cfg, progress=False)
    return data, feats, root / "run" / "seed0" / "model.pt"



def test_detection_builds_the_training_precision_only_where_this_cpu_runs_it(monkeypatch):
    """A model trained on torch bf16 features, detected on a CPU without bf16 units (torch would emulate bf16,
    over 100x slower): the backend's default precision instead (the contract check warns about the rounding);
    int8 and fp32 contracts, and bf16 where the CPU runs it, are built as trained; a precision asked for wins."""
    bf16 = FeatureContract("a" * 64, "center", 64, "bf16", "torch")
    monkeypatch.setattr("damvad.device.cpu_runs_bf16", lambda: False)
    assert contract_backend(bf16, None, None) == ("torch", None)
    assert contract_backend(bf16, None, "fp32") == ("torch", "fp32")
    int8 = FeatureContract("a" * 64, "center", 64, "int8", "openvino")
    assert contract_backend(int8, None, None) == ("openvino", "int8")
    monkeypatch.setattr("damvad.device.cpu_runs_bf16", lambda: True)
    assert contract_backend(bf16, None, None) == ("torch", "bf16")
    assert contract_backend(None, "openvino", None) == ("openvino", None)

def test_model_file_carries_the_contract_and_calibration_defaults_to_it(trained, tmp_path):
    data, feats, model_path = trained
    path = tmp_path / "model.pt"
    path.write_bytes(model_path.read_bytes())
    _, card = load_model(path)
    assert card.features.to_dict() == {"weights_sha256": "synthetic", "crops": "center", "snippet_len": 64,
                                       "precision": "fp32", "backend": "", "stride": 64}
    assert card.clips.to_dict() == {"train_protocol": "offline", "num_clips": 16, "protocol": "online",
                                    "snippets_per_clip": 1}
    th = calibrate_model(path, far=0.05, snippets_per_clip=2)  # features and dataset: the model's training ones
    assert th["features"]["root"] == str(feats) and th["features"]["contract"]["precision"] == "fp32"
    assert th["score"] == "D" and "per frame" in th["far_definition"] and th["snippets_per_clip"] == 2
    det = Detector(path, i3d=fake_features)  # defaults from the model: crops, calibrated clip length
    assert det.crops == "center" and det.snippets_per_clip == 2 and det.threshold_source == "calibrated"
    assert det.warnings == []
    det = Detector(path, i3d=fake_features, snippets_per_clip=1)
    assert "calibrated for snippets_per_clip=2" in det.warnings[0]
    report = evaluate(EvalConfig(runs=[str(path)], out=str(tmp_path / "eval"), timelines=0), progress=False)
    run = next(iter(report["runs"].values()))
    assert run["snippets_per_clip"] == 2 and report["config"]["dataset"] == str(data.resolve())
    assert "far_at_calibrated_threshold" in run["protocols"]["online"]


def test_features_of_other_crops_or_weights_are_refused(trained, tmp_path):
    data, _, model_path = trained
    data5, feats5 = make_feature_dataset(tmp_path / "ds5", n_train=12, n_test=4, crops=5)
    with pytest.raises(ContractError, match=r"crops: center \(the model's training features\) vs 5"):
        calibrate_model(model_path, feats5, dataset=str(data), write=False)
    with pytest.raises(ContractError, match="crops: center"):
        evaluate(EvalConfig(runs=[str(model_path)], dataset=str(data5), features=str(feats5),
                            out=str(tmp_path / "eval"), timelines=0), progress=False)

    other_weights = FunctionBackend(fake_features, weights_sha256="c" * 64)
    with pytest.raises(ContractError, match="weights_sha256: synthetic .* vs cccccccccccc"):
        Detector(model_path, i3d=other_weights)
    with pytest.raises(ContractError, match="crops"):
        Detector(model_path, i3d=fake_features, crops="5")


def _format_1_file(path, **meta):
    """A model file as damvad wrote it before the typed card (format 1: top-level num_clips)."""
    model = build_model("dist", hidden=16, mlp_hidden=8)
    torch.save({"format": FORMAT_1, "damvad_version": "0.1.0", "model_config": model.config.to_dict(),
                "state_dict": model.state_dict(), "num_clips": 12, "threshold": None, **meta}, path)
    return path


def test_old_model_files_without_a_contract_load_with_a_warning(tmp_path, caplog):
    torch.manual_seed(0)
    path = _format_1_file(tmp_path / "old.pt")
    with caplog.at_level(logging.WARNING):
        det = Detector(path, i3d=fake_features)
    assert "no feature contract recorded" in caplog.text and det.crops == "center" and det.snippets_per_clip == 1
    assert det.card.clips.num_clips == 12  # migrated from the top-level key
    legacy = _format_1_file(tmp_path / "legacy.pt", provenance={
        "i3d_weights_sha256": "d" * 64, "feature_crops": 5, "feature_precision": "bf16", "snippet_len": 64})
    with caplog.at_level(logging.WARNING):
        contract = read_model_card(legacy).features
    assert contract == FeatureContract("d" * 64, "5", 64, "bf16", "") and "provenance implies" in caplog.text


@needs_cpu_bf16
def test_precision_difference_moves_scores_by_a_measured_bound(tmp_path):
    """fp32 vs bf16 I3D features of the same snippets, scored by one DAM head: the effect a warned precision
    difference has. Measured on vtest.avi (2 snippets, torch 2.13 CPU eager): max relative feature difference
    0.0117, max |score difference| 0.0009 / 0.0004 / 0.0005 for three random heads (seeds 0-2); the bound
    0.05 (scores are in [0, 1]) leaves room for other CPUs' bf16 kernels."""
    from damvad.backends import build_backend
    from damvad.scoring import score_video
    from damvad.video import iter_frames, iter_snippets, snippet_to_input

    if not VTEST.is_file():
        pytest.skip(f"{VTEST} not found: the shared media folder (../shared) is absent")
    frames = []
    for frame in iter_frames(VTEST):
        frames.append(frame)
        if len(frames) == 128:
            break
    inputs = np.stack([snippet_to_input(s.frames, "center") for s in iter_snippets(iter(frames), 64)])
    x = torch.from_numpy(inputs.reshape(-1, *inputs.shape[2:]))  # (2, 3, 64, 224, 224)
    maps = {}
    for precision in ("fp32", "bf16"):
        backend = build_backend("torch", precision, compile=False)
        with torch.inference_mode():
            maps[precision] = backend(x).float().numpy()[:, None]  # (S, 1 crop, 7, 1024)
    rel = np.abs(maps["bf16"] - maps["fp32"]).max() / np.abs(maps["fp32"]).max()
    torch.manual_seed(0)
    model = build_model("dist", hidden=32, mlp_hidden=16).eval()
    scores = {p: score_video(model, m, 128, "online").score for p, m in maps.items()}
    diff = float(np.abs(scores["bf16"] - scores["fp32"]).max())
    print(f"fp32 vs bf16: max relative feature difference {rel:.4f}, max score difference {diff:.5f}")
    assert 0 < rel < 0.1 and diff < 0.05
