"""Every Table 1 variant through the whole pipeline on tiny synthetic features: train a few iterations ->
model.pt -> load -> calibrate -> evaluate -> a live-style stream of snippets scored as detect does, which
must equal the whole-video scoring that calibrate and evaluate use."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from damvad.calibrate import calibrate_model
from damvad.evaluate import EvalConfig, evaluate
from damvad.model import VARIANTS
from damvad.modelfile import load_model
from damvad.scoring import StreamScorer, score_video
from damvad.store import FeatureStore
from damvad.train import TrainConfig, train
from featuretools import make_feature_dataset

K = 2  # snippets per online clip, calibrated and then used by evaluate and the stream


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_feature_dataset(tmp_path_factory.mktemp("variants"), n_train=8, n_test=4)


def test_every_table1_variant_is_covered():
    assert set(VARIANTS) == {"mlp", "lstm", "dist-channel", "cov-channel", "dist", "cov"}


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_trains_saves_loads_calibrates_evaluates_and_streams(synth, tmp_path, variant):
    data, feats = synth
    cfg = TrainConfig(dataset=str(data), features=str(feats), out=str(tmp_path / "run"), variant=variant,
                      model={"hidden": 16, "mlp_hidden": 8}, iterations=4, eval_every=2, checkpoint_every=2,
                      batch_anomalous=2, batch_normal=2, val_fraction=0.25, threads=1)
    summary = train(cfg, progress=False)
    assert summary["runs"][0]["variant"] == variant and summary["runs"][0]["iterations"] == 4
    path = tmp_path / "run" / "seed0" / "model.pt"
    model, card = load_model(path)
    assert model.config.variant == variant and card.features.crops == "center"

    th = calibrate_model(path, far=0.1, snippets_per_clip=K)  # features and dataset: those the model recorded
    assert th["snippets_per_clip"] == K and th["far_on_calibration_frames"] <= 0.1

    report = evaluate(EvalConfig(runs=[str(path)], out=str(tmp_path / "eval"), timelines=0), progress=False)
    run = report["runs"]["run/seed0"]
    assert run["variant"] == variant and run["snippets_per_clip"] == K  # the calibrated clip length
    online = run["protocols"]["online"]
    assert 0 <= online["frame_auc"] <= 1 and 0 <= run["protocols"]["offline"]["frame_auc"] <= 1
    assert online["far_at_calibrated_threshold"]["threshold"] == th["value"]

    # detect's way: one snippet at a time with its frame range, the model's carried state, flush at the end
    model, _ = load_model(path)
    store = FeatureStore(feats)
    streamed, truth = [], []
    for name in sorted(n for n in store.names() if n.startswith("test_")):
        video = store.load(name)
        maps, frames = video.maps, video.frames
        scorer = StreamScorer(model, crops=1, snippets_per_clip=K)
        clips = [scorer.push(maps[s], a, b) for s, (a, b) in enumerate(video.record.frame_ranges)]
        clips = [c for c in [*clips, scorer.flush()] if c is not None]
        whole = score_video(model, maps, frames, "online", snippets_per_clip=K)
        np.testing.assert_allclose([c.score for c in clips], whole.score, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose([c.weighted for c in clips], whole.weighted, rtol=1e-5, atol=1e-6)
        assert [[c.start_frame, c.end_frame] for c in clips] == whole.frame_ranges.tolist()
        streamed.append(np.repeat([c.score for c in clips], [c.end_frame - c.start_frame for c in clips]))
        gt = np.zeros(frames, dtype=bool)
        for a, b in _intervals(data, name):
            gt[a:b] = True
        truth.append(gt)
    # the streamed scores give evaluate's online frame AUC
    assert online["frame_auc"] == pytest.approx(roc_auc_score(np.concatenate(truth), np.concatenate(streamed)),
                                                abs=1e-6)


def _intervals(data, name: str) -> list[tuple[int, int]]:
    """The video's anomalous [start, end) frame intervals from the folder dataset's annotation CSV."""
    rows = (data / "test" / "annotations.csv").read_text().splitlines()[1:]
    return [(int(a), int(b)) for n, a, b in (r.split(",") for r in rows) if n == name]
