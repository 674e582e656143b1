"""Feature checks against a dataset (every unusable video listed) and the per-split summary table."""

from __future__ import annotations

import numpy as np
import pytest

from damvad.datasets import DatasetError, check_features, dataset_summary, get_dataset
from damvad.store import FeatureStore
from datasettools import fake_feature_files, split_folder

# ----------------------------------------------------------------------------------- features


def test_check_features_lists_every_bad_video(tmp_path):
    root = split_folder(tmp_path)
    (root / "test" / "annotations.csv").write_text("name,start,end\nta1,10,20\nta2,0,5\n")
    ds = get_dataset(root)
    feats = tmp_path / "features"
    fake_feature_files(feats, "tn1", frames=130)  # 3 snippets: fine
    fake_feature_files(feats, "ta1", frames=130, snippets=2)  # wrong snippet count
    store = FeatureStore(feats)  # ta2 missing
    with pytest.raises(DatasetError) as err:
        check_features(ds, store, "test")
    msg = str(err.value)
    assert "2 of 3 test videos" in msg
    assert "ta2: missing (expected ta2.npy and ta2.json)" in msg
    assert "ta1: 2 snippets, but 130 frames make 3 snippets of 64" in msg
    assert "tn1" not in msg

    fake_feature_files(feats, "ta1", frames=130)
    fake_feature_files(feats, "ta2", frames=3)  # interval [0, 5) ends 2 past the end: within tolerance
    check_features(ds, store, "test")  # all fine now: no exception
    with pytest.raises(DatasetError, match=r"(?s)3 of 3 test videos.*tn1: 1 crops, expected 10"):
        check_features(ds, store, "test", crops=10)

    fake_feature_files(feats, "ta1", frames=3)  # interval [10, 20) cannot belong to a 3-frame video
    with pytest.raises(DatasetError, match=r"ta1: .*ends at frame 20 but the video has 3 frames"):
        check_features(ds, store, "test")
    fake_feature_files(feats, "ta1", frames=130, tail=(7, 512))
    with pytest.raises(DatasetError, match=r"ta1: shape \(3, 1, 7, 512\)"):
        check_features(ds, store, "test")


def test_check_features_on_ucf_frame_counts(tmp_path):
    ds = get_dataset("ucf-crime")
    feats = tmp_path / "ucf"
    fake_feature_files(feats, "Abuse028_x264", frames=1412)  # the annotation's count
    fake_feature_files(feats, "Abuse030_x264", frames=1544 + 100)  # 100 frames more than annotated
    with pytest.raises(DatasetError) as err:
        check_features(ds, FeatureStore(feats), "test")
    msg = str(err.value)
    assert "289 of 290 test videos" in msg
    assert "Abuse030_x264: features cover 1644 frames, the annotation says 1544" in msg
    assert "Abuse028_x264" not in msg
    # at most 20 unusable videos listed (a partial download is hundreds), the rest counted
    assert msg.count(": missing (expected") == 19 and "... and 269 more" in msg


# ----------------------------------------------------------------------------------- summary


def test_summary_without_and_with_store(tmp_path):
    ds = get_dataset("ucf-crime")
    text = dataset_summary(ds)
    test_row = next(line for line in text.splitlines() if line.startswith("test "))
    gt_total = sum(int(ds.ground_truth(v.name).sum()) for v in ds.videos("test"))
    snippets = sorted(-(-v.num_frames // 64) for v in ds.videos("test"))  # ceil, by hand
    median = int(np.median(snippets))
    assert test_row.split() == ["test", "290", "150", "140", "1,111,808", f"{gt_total:,}",
                                f"({100 * gt_total / 1_111_808:.1f}%)", str(snippets[0]), "/", str(median), "/",
                                str(snippets[-1])]
    assert "(7.6%)" in test_row  # UCF-Crime's published anomalous share of test frames
    train_row = next(line for line in text.splitlines() if line.startswith("train "))
    assert train_row.split()[:4] == ["train", "1,610", "800", "810"]

    root = split_folder(tmp_path)
    (root / "test" / "annotations.csv").write_text("name,start,end\nta1,10,20\nta2,0,5\n")
    user = get_dataset(root)
    feats = tmp_path / "f"
    for name, n in (("tn1", 100), ("ta1", 50), ("ta2", 64)):
        fake_feature_files(feats, name, frames=n)
    text = dataset_summary(user, FeatureStore(feats))
    test_row = next(line for line in text.splitlines() if line.startswith("test "))
    # 100+50+64 frames; 10 + 5 anomalous; 2, 1, 1 snippets
    assert test_row.split() == ["test", "3", "1", "2", "214", "15", "(7.0%)", "1", "/", "1", "/", "2"]
    assert "frame counts of 3 of 3 videos unknown" in text  # train: not in the store
    assert "?" in next(line for line in text.splitlines() if line.startswith("train "))
