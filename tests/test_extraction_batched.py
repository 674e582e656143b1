"""damvad.extraction.batched, run on the CPU: several videos decoded at once, their crops packed into full
batches, give the per-video path's files; the real I3D at batch 2 gives batch 1's features; a snippet I3D
makes non-finite fails its video only."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from damvad.extract import extract
from damvad.store import FeatureStore
from videotools import fake_features, write_small_batch, write_video


@pytest.fixture()
def videos(tmp_path):
    root = write_small_batch(tmp_path / "videos")
    write_video(root / "d.mp4", 200, seed=4)
    (root / "e.mp4").write_bytes(b"not a video at all" * 100)  # fails on both paths
    return root


def _videos(out):
    store = FeatureStore(out)
    return {n: store.load(n) for n in store.names()}


def test_batched_extraction_equals_the_per_video_path(videos, tmp_path):
    """Snippets of several videos, decoded by two threads, packed into batches of 4 clips (5 crops each: a
    batch mixes snippets and videos): the same files as one snippet at a time (fake I3D is batch-invariant)."""
    ref = extract([videos], tmp_path / "ref", crops="5", feature_fn=fake_features, weights_sha256="w",
                  progress=False)
    got = extract([videos], tmp_path / "batched", crops="5", feature_fn=fake_features, weights_sha256="w",
                  progress=False, batch_size=4, decoders=2)
    assert sorted(got.done) == sorted(ref.done) == ["a", "b", "c", "d"]
    assert set(got.failed) == set(ref.failed) == {"e"} and got.failed["e"] == ref.failed["e"]
    assert got.frames == ref.frames
    want, have = _videos(tmp_path / "ref"), _videos(tmp_path / "batched")
    for name, video in want.items():
        np.testing.assert_array_equal(have[name].maps, video.maps)
        assert dataclasses.replace(have[name].record, path=video.record.path) == video.record
        assert video.record.device == "cpu"
    # a rerun on the batched path resumes: everything is already there
    again = extract([videos], tmp_path / "batched", crops="5", feature_fn=fake_features, weights_sha256="w",
                    progress=False, batch_size=4)
    assert sorted(again.skipped) == ["a", "b", "c", "d"] and not again.done


def test_non_finite_features_fail_their_video_only(tmp_path):
    """A NaN in one row of a batch that mixes two videos: that row's video fails, naming the snippet."""
    write_video(tmp_path / "a.mp4", 100, seed=1)  # snippets 0 and 1
    write_video(tmp_path / "b.mp4", 100, seed=2)

    def nan_in_the_last_row(x):
        out = fake_features(x)
        if len(x) == 4:  # the one full batch: a0 a1 b0 b1 (one decoder: in order)
            out[1, 0, 0] = float("nan")
        return out

    report = extract([tmp_path], tmp_path / "f", feature_fn=nan_in_the_last_row, batch_size=4, decoders=1,
                     progress=False)
    assert report.done == ["b"] and report.failed["a"] == "I3D produced non-finite features at snippet 1"


@pytest.mark.slow  # four eager I3D passes on the CPU
def test_batched_torch_backend_matches_batch_one(i3d_model, tmp_path):
    """The real I3D (torch backend, eager, CPU) at batch 2 through the batched path: the per-video features."""
    from damvad.backends import build_backend

    write_video(tmp_path / "v.mp4", 128, seed=5)
    one = build_backend("torch", "fp32", model=i3d_model, compile=False, device="cpu", batch_size=1)
    two = build_backend("torch", "fp32", model=i3d_model, compile=False, device="cpu", batch_size=2)
    assert one.info()["device"] == "cpu" and two.batch_size == 2
    extract([tmp_path / "v.mp4"], tmp_path / "one", feature_fn=one, progress=False)
    extract([tmp_path / "v.mp4"], tmp_path / "two", feature_fn=two, progress=False)
    a, b = FeatureStore(tmp_path / "one").load("v").maps, FeatureStore(tmp_path / "two").load("v").maps
    assert a.shape == b.shape == (2, 1, 7, 1024)
    assert np.linalg.norm(a - b) / np.linalg.norm(a) <= 1e-5
