"""A folder of frames is a video: which folders are, natural order, bad frames, frame rate, resume, and the
same features as the frames stored losslessly in a video file (stand-in I3D: fast)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from damvad.extract import extract
from damvad.framefolder import frame_files, natural_key, scan_folder
from damvad.store import FeatureStore
from damvad.video import VideoError, iter_frames, probe, snippet_to_input
from videotools import fake_features, write_frame_folder, write_image, write_lossless_video, write_video

PED2 = Path(__file__).resolve().parents[2] / "shared" / "media" / "ucsd-ped2"
needs_ped2 = pytest.mark.skipif(not PED2.is_dir(), reason=f"UCSD Ped2 frames not found at {PED2}")


def test_frames_come_in_natural_order(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for i in (10, 2, 1, 100, 20):  # each frame's red channel is its number
        write_image(folder / f"f{i}.png", np.full((48, 64, 3), i, np.uint8))
    (folder / "notes.txt").write_text("ignored")
    (folder / ".hidden.png").write_bytes(b"ignored")
    assert [p.name for p in frame_files(folder)] == ["f1.png", "f2.png", "f10.png", "f20.png", "f100.png"]
    assert [int(f[0, 0, 0]) for f in iter_frames(folder, short_side=None)] == [1, 2, 10, 20, 100]
    assert sorted(["a10", "a9", "A1"], key=natural_key) == ["A1", "a9", "a10"]
    info = probe(folder, fps=10)
    assert (info.width, info.height, info.declared_frames, info.fps, info.codec) == (64, 48, 5, 10.0, "frames (png)")


@pytest.mark.parametrize("ext", [".jpg", ".bmp", ".tif"])
def test_every_image_format_decodes(tmp_path, ext):
    folder = write_frame_folder(tmp_path / "clip", 3, ext=ext)
    frames = list(iter_frames(folder))
    assert len(frames) == 3 and frames[0].shape == (256, 341, 3)


def test_which_folders_are_videos_and_ambiguous_ones_say_what_they_hold(tmp_path):
    (tmp_path / "data").mkdir()
    write_video(tmp_path / "data" / "cam.mp4", 3)
    write_frame_folder(tmp_path / "data" / "frames" / "clip2", 2)
    write_frame_folder(tmp_path / "data" / "frames" / "clip10", 2)
    assert scan_folder(tmp_path / "data") == [tmp_path / "data" / p for p in ("cam.mp4", "frames/clip10",
                                                                              "frames/clip2")]
    assert scan_folder(tmp_path / "data" / "frames" / "clip2") == [tmp_path / "data" / "frames" / "clip2"]

    write_image(tmp_path / "data" / "frames" / "stray.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(VideoError, match=r"frames: holds 1 image file\(s\) \(stray.png, ...\) and 2 sub-folder\(s\) "
                                         r"of images \(clip10, clip2\)"):
        scan_folder(tmp_path / "data")
    mixed = write_frame_folder(tmp_path / "mixed", 2)
    write_video(mixed / "preview.mp4", 2)
    with pytest.raises(VideoError, match=r"holds 2 image file\(s\) .* and 1 video file\(s\) \(preview.mp4\)"):
        extract([mixed], tmp_path / "f", feature_fn=fake_features, progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoError, match="holds no image files"):
        probe(tmp_path / "empty")
    assert not (tmp_path / "f").exists()  # refused before anything was made


def test_a_bad_frame_fails_its_video_naming_the_file_and_the_batch_goes_on(tmp_path):
    root = tmp_path / "frames"
    write_frame_folder(root / "good", 70)
    write_frame_folder(root / "broken", 70)
    (root / "broken" / "40.png").write_bytes(b"\x89PNG garbage" * 10)
    write_frame_folder(root / "resized", 70)
    write_image(root / "resized" / "65.png", np.zeros((50, 64, 3), np.uint8))
    out = tmp_path / "f"
    report = extract([root], out, feature_fn=fake_features, fps=10, progress=False)
    assert report.done == ["good"] and set(report.failed) == {"broken", "resized"}
    assert "frame 40.png: cannot be decoded as an image" in report.failed["broken"]
    assert "frame 65.png is 64x50, the first frame 0.png is 64x48" in report.failed["resized"]
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["good.json", "good.npy",
                                                                                   "manifest.csv"]


def test_frame_rate_is_given_or_assumed_with_one_warning_and_recorded(tmp_path, caplog):
    root = tmp_path / "frames"
    write_frame_folder(root / "a", 3)
    write_frame_folder(root / "b", 3)
    with caplog.at_level(logging.WARNING):
        extract([root], tmp_path / "f25", feature_fn=fake_features, progress=False)
    assumed = [r for r in caplog.records if "carry no frame rate" in r.message]
    assert len(assumed) == 1 and "2 folders of frames" in assumed[0].message and "--fps" in assumed[0].message
    assert FeatureStore(tmp_path / "f25").record("a").fps == 25.0
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        extract([root], tmp_path / "f10", feature_fn=fake_features, fps=10, progress=False)
    assert not caplog.records and FeatureStore(tmp_path / "f10").record("b").fps == 10.0


def test_a_changed_frame_redoes_the_video_and_a_touched_one_does_not(tmp_path):
    folder = write_frame_folder(tmp_path / "clip", 5)
    out = tmp_path / "f"
    extract([folder], out, feature_fn=fake_features, fps=10, progress=False)
    before = np.load(out / "clip.npy")
    frame = folder / "2.png"
    frame.write_bytes(frame.read_bytes())  # rewritten: a new mtime, the same bytes
    assert extract([folder], out, feature_fn=fake_features, fps=10, progress=False).skipped == ["clip"]
    write_image(frame, np.full((48, 64, 3), 200, np.uint8))
    report = extract([folder], out, feature_fn=fake_features, fps=10, progress=False)
    assert report.done == ["clip"] and "its source changed" in report.redone["clip"]
    assert not np.array_equal(np.load(out / "clip.npy"), before)
    (folder / "5.png").write_bytes((folder / "4.png").read_bytes())  # a frame added
    report = extract([folder], out, feature_fn=fake_features, fps=10, progress=False)
    assert report.done == ["clip"] and FeatureStore(out).record("clip").frames == 6


def test_shanghaitech_test_frames_are_named_as_the_dataset_names_them(tmp_path):
    from damvad.datasets import get_dataset

    frames = tmp_path / "shanghaitech" / "testing" / "frames"
    for name in ("01_0015", "01_0025"):
        write_frame_folder(frames / name, 2, ext=".jpg")
    extract([tmp_path / "shanghaitech"], tmp_path / "f", feature_fn=fake_features, fps=24, progress=False)
    names = FeatureStore(tmp_path / "f").names()
    test_videos = {it.name for it in get_dataset("shanghaitech").videos("test")}
    assert names == ["01_0015", "01_0025"] and set(names) <= test_videos


@needs_ped2
def test_a_folder_of_real_frames_equals_them_stored_losslessly_in_a_video(tmp_path):
    """Ped2 JPEG frames as a folder and as a lossless RGB video: the same pixels at every step and the same
    features (stand-in I3D); at stride 32 the snippets line up with stride 64's and the last one holds the
    last 64 real frames."""
    folder = tmp_path / "Test001"
    folder.mkdir()
    for path in frame_files(PED2 / "testing" / "frames" / "01")[:130]:
        shutil.copy(path, folder / path.name)
    full = list(iter_frames(folder, short_side=None))
    video = write_lossless_video(tmp_path / "Test001.mkv", full)
    np.testing.assert_array_equal(np.stack(list(iter_frames(video, short_side=None))), np.stack(full))
    planar = np.stack(list(iter_frames(folder, planar=True)))
    np.testing.assert_array_equal(np.stack(list(iter_frames(video, planar=True))), planar)
    assert extract({"folder": folder, "video": video}, tmp_path / "f", feature_fn=fake_features, stride=32,
                   fps=10, progress=False).ok
    assert extract({"folder": folder}, tmp_path / "f64", feature_fn=fake_features, fps=10, progress=False).ok
    a, b = FeatureStore(tmp_path / "f").load("folder"), FeatureStore(tmp_path / "f").load("video")
    assert a.record.snippet_ranges == b.record.snippet_ranges == ((0, 64), (32, 96), (64, 128), (66, 130))
    np.testing.assert_allclose(a.maps, b.maps, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(a.maps[[0, 2]], FeatureStore(tmp_path / "f64").load("folder").maps[:2])
    tail = fake_features(torch.from_numpy(snippet_to_input(planar[66:130], planar=True)))
    np.testing.assert_allclose(a.maps[3], tail.numpy(), rtol=1e-6)
