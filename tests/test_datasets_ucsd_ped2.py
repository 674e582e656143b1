"""UCSD Ped2: the shipped annotations, the real frames in ../shared/media/ucsd-ped2 (skipped when absent),
and the weakly-supervised splits."""

from __future__ import annotations

from pathlib import Path

import pytest

from damvad.datasets import DatasetError, get_dataset
from damvad.datasets.ucsd_ped2 import UCSD_PED2, ucsd_ped2, weak_split
from damvad.framefolder import frame_files
from damvad.video import probe

PED2 = Path(__file__).resolve().parents[2] / "shared" / "media" / "ucsd-ped2"
needs_ped2 = pytest.mark.skipif(not PED2.is_dir(), reason=f"UCSD Ped2 frames not found at {PED2}")


@pytest.fixture()
def shipped(monkeypatch):
    """The dataset from the shipped files alone, as where no frames are found."""
    from damvad.datasets import ucsd_ped2 as module

    monkeypatch.setattr(module, "default_root", lambda: None)
    return ucsd_ped2()


def test_shipped_annotations_are_ucsds_split_and_ground_truth(shipped):
    ds = shipped
    assert [len(ds.videos(s)) for s in ("train", "test")] == [16, 12]
    assert {it.label for it in ds.videos("train")} == {0} and {it.label for it in ds.videos("test")} == {1}
    gt = ds.ground_truths("test")
    assert sum(len(g) for g in gt.values()) == 2010 and sum(int(g.sum()) for g in gt.values()) == 1648
    assert sum(it.num_frames for it in ds.videos("train")) == 2550
    assert gt["Test001"].tolist() == [False] * 60 + [True] * 120
    assert all(it.path is None for it in ds.items)
    assert get_dataset("ped2").name == UCSD_PED2 == ds.name


def test_weak_splits_draw_six_anomalous_and_four_normal_videos_to_train(shipped):
    ds = shipped
    splits = [weak_split(ds, k) for k in range(10)]
    for split in splits:
        train, test = split.videos("train"), split.videos("test")
        assert sorted(it.label for it in train) == [0] * 4 + [1] * 6 and len(test) == 18
        assert not {it.name for it in train} & set(split.intervals)  # training sees video labels only
        assert split.has_frame_labels("test")
    assert len({tuple(it.name for it in s.videos("train")) for s in splits}) == 10  # ten different draws
    again = weak_split(ds, 3)
    assert [it.name for it in again.videos("train")] == [it.name for it in splits[3].videos("train")]


@needs_ped2
def test_real_frames_agree_with_the_annotations():
    ds = ucsd_ped2(PED2)
    for item in ds.items:
        files = frame_files(item.path)
        assert len(files) == item.num_frames
        assert [int(p.stem) for p in files] == list(range(item.num_frames))  # 000.jpg ... in order
    info = probe(ds.video("Test004").path, fps=10)
    assert (info.width, info.height, info.declared_frames) == (360, 240, 180)
    gt = ds.ground_truths("test")
    assert sum(int(g.sum()) for g in gt.values()) == 1648


@needs_ped2
def test_a_copy_that_differs_is_refused(tmp_path):
    root = tmp_path / "ped2"  # links to the real frames, one folder short of a frame
    for split in ("training", "testing"):
        (root / split / "frames").mkdir(parents=True)
        for folder in sorted((PED2 / split / "frames").iterdir()):
            (root / split / "frames" / folder.name).symlink_to(folder)
    short = root / "training" / "frames" / "03"
    short.unlink()
    short.mkdir()
    for frame in frame_files(PED2 / "training" / "frames" / "03")[:-1]:
        (short / frame.name).symlink_to(frame)
    with pytest.raises(DatasetError, match=r"training/frames/03 holds 149 frames, Train003 has 150"):
        ucsd_ped2(root)
    (short / "149.jpg").symlink_to(PED2 / "training" / "frames" / "03" / "149.jpg")
    assert len(ucsd_ped2(root).items) == 28
    ann = root / "testing" / "annotations.csv"
    ann.write_text((PED2 / "testing" / "annotations.csv").read_text().replace("01,60,180", "01,61,180"))
    with pytest.raises(DatasetError, match="intervals differ from the shipped ones"):
        ucsd_ped2(root)
