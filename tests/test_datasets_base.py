"""Dataset on its own (no shipped files): lookups, splits, and ground truth from intervals or a mask
under the frame-count tolerance."""

from __future__ import annotations

import numpy as np
import pytest

from damvad.datasets import FRAME_TOLERANCE, Dataset, DatasetError, VideoItem


def _dataset() -> Dataset:
    items = [
        VideoItem("tr", 1, "train", "Fight"),
        VideoItem("n", 0, "test", "Normal", 40),
        VideoItem("iv", 1, "test", "Fight"),  # intervals, no own frame count (as XD-Violence, user folders)
        VideoItem("mk", 1, "dev", "Fight", 6),  # a mask, whose length is the frame count
    ]
    mask = np.array([0, 0, 1, 1, 0, 1], dtype=bool)
    return Dataset("toy", "four videos", items, intervals={"iv": ((2, 4), (30, 35))}, masks={"mk": mask})


class _Store:
    def __init__(self, frames: dict[str, int]):
        self._frames = frames

    def frames(self, name: str) -> int:
        return self._frames[name]

    def __contains__(self, name: str) -> bool:
        return name in self._frames

    def __str__(self) -> str:
        return "store"


def test_lookups_and_splits():
    ds = _dataset()
    assert len(ds) == 4 and "iv" in ds and "zz" not in ds
    assert ds.splits == ("train", "dev", "test")
    assert [v.name for v in ds.videos("test")] == ["n", "iv"]
    assert ds.video_labels("test") == {"n": 0, "iv": 1}
    with pytest.raises(DatasetError, match=r"toy: unknown split 'val' \(expected one of train, dev, test\)"):
        ds.videos("val")
    with pytest.raises(DatasetError, match="toy: no video named 'zz'"):
        ds.video("zz")
    assert ds.has_frame_labels("test") and ds.has_frame_labels("dev") and not ds.has_frame_labels("train")


def test_bad_items_refused():
    with pytest.raises(DatasetError, match=r"toy: duplicate video name 'a' \(twice\)"):
        Dataset("toy", "", [VideoItem("a", 0, "train", "N"), VideoItem("a", 1, "test", "X")])
    with pytest.raises(DatasetError, match="toy: video 'a' has unknown split 'val'"):
        Dataset("toy", "", [VideoItem("a", 0, "val", "N")])


def test_ground_truth_from_intervals_and_masks():
    ds = _dataset()
    assert ds.ground_truth("iv", 40).tolist() == [i in (2, 3) or 30 <= i < 35 for i in range(40)]
    assert ds.ground_truth("iv", 33)[30:].all()  # clipped to the video: ends 2 past it, within tolerance
    with pytest.raises(DatasetError, match=r"toy: video 'iv': an anomalous interval ends at frame 35 but"):
        ds.ground_truth("iv", 35 - FRAME_TOLERANCE - 1)
    assert ds.ground_truth("mk").tolist() == [0, 0, 1, 1, 0, 1]
    assert ds.ground_truth("mk", 9).tolist() == [0, 0, 1, 1, 0, 1, 1, 1, 1]  # extended with its last label
    assert ds.ground_truth("mk", 3).tolist() == [0, 0, 1]
    gt = ds.ground_truth("mk")
    gt[:] = True  # callers get their own copy
    assert ds.ground_truth("mk").sum() == 3
    with pytest.raises(DatasetError, match=r"the annotation has 6 frames but the features cover 30"):
        ds.ground_truth("mk", 30)
    with pytest.raises(DatasetError, match="num_frames must be positive, got 0"):
        ds.ground_truth("n", 0)
    with pytest.raises(DatasetError, match="anomalous train video 'tr' has no frame-level annotation"):
        ds.ground_truth("tr", 10)


def test_ground_truths_take_frame_counts_from_the_store():
    ds = _dataset()
    gts = ds.ground_truths("test", _Store({"n": 41, "iv": 36}))
    assert {k: (v.size, int(v.sum())) for k, v in gts.items()} == {"n": (41, 0), "iv": (36, 7)}
    assert list(ds.ground_truths("test", _Store({"iv": 36}), names={"iv"})) == ["iv"]
    with pytest.raises(DatasetError, match="toy: no features for test video 'n' in store"):
        ds.ground_truths("test", _Store({"iv": 36}))
