"""The benchmark machinery: cached preparation, the Table 1 experiment, the change detector, intervals,
and the diagnosis, on a tiny preset with a cheap stand-in for I3D (the real run is in benchmarks/)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from damvad.benchmark import prepare as prepare_mod
from damvad.benchmark.changedet import ChangeDetector
from damvad.benchmark.table1 import Table1Config, paired_interval, run_table1
from damvad.cli import main
from damvad.synth import benchmark as synth_benchmark

TINY = "synth-tiny-test"


def stand_in_features(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, 64, 224, 224) -> (N, 7, 1024): pooled appearance and motion, fixed random projection."""
    n = x.shape[0]
    frames = x[:, :, :56].reshape(n, 3, 7, 8, 224, 224)
    look = torch.nn.functional.avg_pool2d(frames.mean(3).reshape(n * 21, 224, 224)[:, None], 28)
    motion = (frames[:, :, :, 1:] - frames[:, :, :, :-1]).abs().mean(3)
    move = torch.nn.functional.avg_pool2d(motion.reshape(n * 21, 224, 224)[:, None], 28)
    rows = torch.cat([look.reshape(n, 3, 7, 64), 10 * move.reshape(n, 3, 7, 64)], dim=-1)
    rows = rows.permute(0, 2, 1, 3).reshape(n, 7, 384)
    proj = torch.randn(384, 1024, generator=torch.Generator().manual_seed(0)) / 8
    return torch.relu(rows @ proj)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    params = dict(synth_benchmark.BENCHMARKS["synth-demo-v1"], num_frames=(130, 200), n_train_normal=5,
                  n_train_anomalous=5, n_dev_normal=2, n_dev_anomalous=2, n_test_normal=3, n_test_anomalous=3,
                  size=(160, 120), seed=5)
    mp = pytest.MonkeyPatch()
    mp.setitem(synth_benchmark.BENCHMARKS, TINY, params)
    root = tmp_path_factory.mktemp("bench")
    prepared = prepare_mod.prepare(TINY, root, progress=False, feature_fn=stand_in_features,
                                   weights_sha256="stand-in")
    yield root, prepared
    mp.undo()


def test_prepare_is_cached_and_keyed(tiny):
    root, prepared = tiny
    stamps = {p: p.stat().st_mtime_ns for p in prepared.features.glob("*.npy")}
    again = prepare_mod.prepare(TINY, root, progress=False, feature_fn=stand_in_features, weights_sha256="stand-in")
    assert again.features == prepared.features
    assert {p: p.stat().st_mtime_ns for p in again.features.glob("*.npy")} == stamps  # nothing redone
    key = json.loads((prepared.features / "key.json").read_text())
    assert key["weights_sha256"] == "stand-in" and key["generator"]["seed"] == 5
    other, _ = prepare_mod.feature_key(TINY, "center", "fp32", "stand-in")
    assert other != prepared.key  # another precision: another folder
    assert len(stamps) == 20


def test_change_detector_is_the_l1_between_consecutive_maps():
    clips = torch.rand(2, 5, 7, 16)
    out = ChangeDetector()(clips)["score"].numpy()
    x = clips.numpy()
    ref = np.zeros((2, 5))
    for b in range(2):
        for i in range(1, 5):
            ref[b, i] = np.mean(np.abs(x[b, i] - x[b, i - 1]))
    np.testing.assert_allclose(out, ref, rtol=1e-6)


def test_paired_interval_matches_a_t_table():
    # differences 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.303 (printed tables): half width 4.303 / sqrt(3)
    got = paired_interval([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
    assert got["mean"] == pytest.approx(2.0)
    assert got["half_width"] == pytest.approx(4.303 / math.sqrt(3), rel=1e-3)
    assert got["low"] < 2.0 < got["high"]


def test_table1_trains_every_row_and_reports_paired_intervals(tiny, tmp_path):
    root, _ = tiny
    cfg = Table1Config(benchmark=TINY, root=str(root), out=str(tmp_path / "t1"), split="dev", seeds=[0, 1],
                       train=dict(iterations=12, eval_every=6, checkpoint_every=6, batch_anomalous=3, batch_normal=3,
                                  val_fraction=0.4, model={"hidden": 8, "mlp_hidden": 8}, lr=1e-3),
                       rows={"dist-scaled": {"variant": "dist", "calibrate_dnt": True}})
    prepare_mod_prepare = prepare_mod.prepare

    def cheap_prepare(name, root_, crops, precision, progress, **kw):
        return prepare_mod_prepare(name, root_, crops, precision, progress, feature_fn=stand_in_features,
                                   weights_sha256="stand-in", **kw)

    mp = pytest.MonkeyPatch()
    mp.setattr(prepare_mod, "prepare", cheap_prepare)
    try:
        results = run_table1(cfg, progress=False)
        rows = results["summary"]
        assert list(rows)[0] == "change"
        for label in ("mlp", "lstm", "dist-channel", "dist", "cov-channel", "cov", "dist-scaled", "dist@wD", "cov@wD"):
            assert rows[label]["online"]["frame_auc"]["n"] == 2, label
            assert 0 <= rows[label]["offline"]["far"]["mean"] <= 1
        assert set(results["differences"]) >= {"dist", "cov", "dist-scaled"}
        d = results["differences"]["dist"]["online"]
        runs = results["runs"]
        by_hand = np.mean([runs["dist"][s]["metrics"]["online"]["frame_auc"]
                           - runs["mlp"][s]["metrics"]["online"]["frame_auc"] for s in ("0", "1")])
        assert d["mean"] == pytest.approx(by_hand) and d["n"] == 2
        table = (tmp_path / "t1" / "table.md").read_text()
        assert "| Dist-DAM: + Channel_A + Clip_A | `dist` |" in table and "`dist-scaled`" in table
        assert results["data"]["split"] == "dev" and results["data"]["videos"] == 4
        # The calibration videos are held-out normal *training* videos, never dev/test ones.
        assert all(n.startswith("train_normal") for n in results["data"]["calibration_videos"])
        # A rerun with one more seed trains only the new seed.
        stamp = (tmp_path / "t1" / "mlp" / "seed0" / "model.pt").stat().st_mtime_ns
        cfg.seeds = [0, 1, 2]
        results = run_table1(cfg, progress=False)
        assert (tmp_path / "t1" / "mlp" / "seed0" / "model.pt").stat().st_mtime_ns == stamp
        assert results["summary"]["mlp"]["online"]["frame_auc"]["n"] == 3
    finally:
        mp.undo()


def test_benchmark_summary_command(tiny, capsys):
    root, _ = tiny
    assert main(["benchmark", "summary", TINY, "--root", str(root)]) == 0
    text = capsys.readouterr().out
    assert "snippets/video" in text and "benign changes per normal / anomalous video" in text
    for split in ("train", "dev", "test"):
        assert text.count(f"\n{split} ") >= 1
