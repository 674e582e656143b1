"""The batch extractor: manifest, bad videos in a batch, resume after a kill (fake I3D: fast)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from damvad.extract import extract
from damvad.store import FeatureStore
from videotools import fake_features, write_small_batch, write_video


@pytest.fixture()
def videos(tmp_path):
    return write_small_batch(tmp_path / "videos")


def test_manifest_rows_and_shapes(videos, tmp_path):
    out = tmp_path / "feats"
    report = extract([videos], out, feature_fn=fake_features, weights_sha256="abc", progress=False)
    assert report.ok and sorted(report.done) == ["a", "b", "c"]
    store = FeatureStore(out)
    video = store.load("a")
    record = video.record
    assert record.frames == 150 and record.num_snippets == 3
    assert record.snippet_ranges == ((0, 64), (64, 128), (128, 150)) == record.expected_ranges
    assert video.maps.shape == (3, 1, 7, 1024)
    c = store.load("c")
    assert c.frames == 1 and c.maps.shape == (1, 1, 7, 1024)
    assert record.weights_sha256 == "abc" and record.damvad_version and record.source.size > 0
    manifest = (out / "manifest.csv").read_text().splitlines()
    assert manifest[0].startswith("name,path,frames") and len(manifest) == 4


def test_five_crops_stored_per_snippet(videos, tmp_path):
    report = extract([videos / "b.mp4"], tmp_path / "f5", crops="5", feature_fn=fake_features, progress=False)
    assert report.ok
    store = FeatureStore(tmp_path / "f5")
    video = store.load("b")
    assert video.maps.shape == (1, 5, 7, 1024)
    assert video.record.crop_names[0] == "center" and video.record.crop_setting == "5"


def test_broken_video_is_reported_not_fatal(videos, tmp_path):
    (videos / "broken.mp4").write_bytes(b"\x00garbage" * 100)
    out = tmp_path / "feats"
    extract([videos / "a.mp4"], out, feature_fn=fake_features, progress=False)
    before = (out / "a.npy").read_bytes()
    report = extract(
        [videos, tmp_path / "nope.mp4"], out, feature_fn=fake_features, progress=False
    )
    assert not report.ok
    assert set(report.failed) == {"broken", "nope"}
    assert "does not exist" in report.failed["nope"]
    assert report.skipped == ["a"] and sorted(report.done) == ["b", "c"]
    assert (out / "a.npy").read_bytes() == before  # nothing already written is lost
    assert "FAILED broken" in report.summary()


def test_rerun_skips_finished_and_redoes_a_half_written_video(videos, tmp_path):
    out = tmp_path / "feats"
    extract([videos], out, feature_fn=fake_features, progress=False)
    os.remove(out / "b.json")  # as if killed between the .npy and its row
    report = extract([videos], out, feature_fn=fake_features, progress=False)
    assert sorted(report.skipped) == ["a", "c"] and report.done == ["b"]


def test_duplicate_names_are_refused(tmp_path):
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        write_video(tmp_path / sub / "same.mp4", 3)
    with pytest.raises(ValueError, match="share the name"):
        extract([tmp_path / "x", tmp_path / "y"], tmp_path / "out", feature_fn=fake_features, progress=False)


KILL_SCRIPT = """
import sys, time
sys.path.insert(0, {tests!r})
from videotools import fake_features
from damvad.extract import extract

def slow(x):
    time.sleep(0.25)
    return fake_features(x)

extract([{videos!r}], {out!r}, feature_fn=slow, progress=False)
"""


def test_killed_run_resumes_to_the_same_files(videos, tmp_path):
    for i in range(3):
        write_video(videos / f"long{i}.mp4", 256, seed=10 + i)
    reference = tmp_path / "reference"
    extract([videos], reference, feature_fn=fake_features, progress=False)

    out = tmp_path / "killed"
    script = KILL_SCRIPT.format(tests=str(Path(__file__).parent), videos=str(videos), out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(out.glob("*.json"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(out.glob("*.json")))
    assert 0 < done_before < 6, "the kill should land mid-run"

    report = extract([videos], out, feature_fn=fake_features, progress=False)
    assert report.ok and len(report.skipped) >= done_before
    store, ref = FeatureStore(out), FeatureStore(reference)
    assert store.names() == ref.names()
    for name in ref.names():
        a, b = store.load(name), ref.load(name)
        np.testing.assert_array_equal(a.maps, b.maps)
        assert dataclasses.replace(a.record, path=b.record.path) == b.record
    assert not list(out.glob(".*.tmp")), "temporary files of the killed run are cleaned up"
    assert json.loads((out / "a.json").read_text())["frames"] == 150


def test_a_stride_gives_overlapping_snippets_recorded_and_the_batched_path_agrees(videos, tmp_path):
    report = extract([videos], tmp_path / "s16", feature_fn=fake_features, stride=16, progress=False)
    assert report.ok and report.frames == 150 + 64 + 1
    store = FeatureStore(tmp_path / "s16")
    a = store.load("a")
    assert a.record.stride == 16 and a.maps.shape[0] == 7
    assert a.record.snippet_ranges == ((0, 64), (16, 80), (32, 96), (48, 112), (64, 128), (80, 144), (86, 150))
    assert store.load("c").record.snippet_ranges == ((0, 1),)  # shorter than a snippet: one, padded
    default = FeatureStore(tmp_path / "s64")
    extract([videos / "a.mp4"], default.root, feature_fn=fake_features, progress=False)
    np.testing.assert_array_equal(a.maps[[0, 4]], default.load("a").maps[:2])  # the same snippets, aligned

    batched = extract([videos], tmp_path / "b16", feature_fn=fake_features, stride=16, batch_size=3, decoders=2,
                      progress=False)
    assert batched.ok
    for name in ("a", "b", "c"):
        one, other = store.load(name), FeatureStore(tmp_path / "b16").load(name)
        assert one.record.snippet_ranges == other.record.snippet_ranges
        np.testing.assert_allclose(one.maps, other.maps, rtol=1e-6)
    again = extract([videos], tmp_path / "s16", feature_fn=fake_features, progress=False)  # now stride 64
    assert sorted(again.done) == ["a", "b", "c"] and again.redone["a"] == "extracted with other settings or weights"
