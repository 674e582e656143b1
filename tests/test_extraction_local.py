"""damvad.extraction.local: one video at a time; a full disk stops the batch with every video not extracted
named, and a rerun resumes; a snippet I3D makes non-finite fails its video only."""

from __future__ import annotations

import errno
import os

from damvad.extract import extract
from damvad.store import FeatureStore
from videotools import fake_features, write_video


def test_full_disk_while_writing_features_is_a_clear_error(tmp_path, monkeypatch):
    videos = tmp_path / "videos"
    videos.mkdir()
    for k in range(4):
        write_video(videos / f"v{k}.mp4", 20, seed=k)
    real_fsync, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) > 2:  # the first video's .npy and .json fit, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    out = tmp_path / "feats"
    report = extract([videos], out, feature_fn=fake_features, progress=False)
    text = report.summary()
    assert not report.ok
    assert "No space left on device" in text and str(out / "v1.npy") in text
    for name in ("v1", "v2", "v3"):  # every video not extracted is listed, none silently abandoned
        assert f"FAILED {name}" in text
    assert FeatureStore(out).names() == ["v0"]
    assert not list(out.glob(".*.tmp"))
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert extract([videos], out, feature_fn=fake_features, progress=False).ok  # once there is space: resumes
    assert FeatureStore(out).names() == ["v0", "v1", "v2", "v3"]


def test_non_finite_features_fail_their_video_only(tmp_path):
    write_video(tmp_path / "a.mp4", 100, seed=1)  # two snippets, one call each
    write_video(tmp_path / "b.mp4", 40, seed=2)
    calls = []

    def nan_on_the_second_call(x):
        calls.append(len(x))
        out = fake_features(x)
        if len(calls) == 2:
            out[0, 0, 0] = float("nan")
        return out

    report = extract([tmp_path], tmp_path / "f", feature_fn=nan_on_the_second_call, progress=False)
    assert report.done == ["b"] and report.failed["a"] == "I3D produced non-finite features at snippet 1"
    assert FeatureStore(tmp_path / "f").names() == ["b"]
