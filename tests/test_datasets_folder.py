"""Folder datasets: layouts, categories, hidden files, user annotations (``annotations.csv``), errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from damvad.datasets import AnnotationError, DatasetError, get_dataset
from damvad.datasets.folder import parse_interval_csv
from datasettools import split_folder, touch


def test_flat_folder_is_all_train(tmp_path):
    touch(tmp_path / "normal" / "x.mp4")
    touch(tmp_path / "anomalous" / "y.mov")
    touch(tmp_path / "anomalous" / ".hidden.mp4")
    ds = get_dataset(tmp_path)
    assert ds.splits == ("train",)
    assert [(v.name, v.label, v.split, v.category) for v in ds.videos()] == [
        ("x", 0, "train", "Normal"),
        ("y", 1, "train", "Anomalous"),
    ]
    assert ds.video("y").path == tmp_path / "anomalous" / "y.mov" and ds.video("y").num_frames is None


def test_split_folder_with_annotations(tmp_path):
    root = split_folder(tmp_path)
    (root / "test" / "annotations.csv").write_text("name,start,end\nta1,10,20\nta2,0,5\nta1,30,40\n")
    ds = get_dataset(str(root))
    assert ds.name == "mycams" and ds.splits == ("train", "test")
    assert {v.name: v.label for v in ds.videos("train")} == {"n1": 0, "n2": 0, "a1": 1}
    assert ds.video("a1").category == "fights"
    assert {v.name for v in ds.videos("test")} == {"tn1", "ta1", "ta2"}
    assert ds.has_frame_labels("test") and not ds.has_frame_labels("train")
    gt = ds.ground_truth("ta1", 50)
    ref = np.zeros(50, dtype=bool)
    ref[10:20] = ref[30:40] = True  # 0-based, end exclusive
    np.testing.assert_array_equal(gt, ref)
    assert not ds.ground_truth("tn1", 7).any() and ds.ground_truth("tn1", 7).size == 7
    with pytest.raises(DatasetError, match="num_frames"):
        ds.ground_truth("ta1")
    with pytest.raises(DatasetError, match="ends at frame 40 but the video has 23 frames"):
        ds.ground_truth("ta1", 23)


def test_split_folder_without_annotations_has_no_frame_labels(tmp_path):
    ds = get_dataset(split_folder(tmp_path))
    assert not ds.has_frame_labels("test")
    with pytest.raises(DatasetError, match="'ta1' has no frame-level annotation"):
        ds.ground_truth("ta1", 100)


@pytest.mark.parametrize(
    "csv_text, match",
    [
        ("name,start,end\nta1,1,2\nzz,3,4\n", r"annotations\.csv: 'zz' is not a video under"),
        ("name,start,end\nta1,1,2\n", r"annotations\.csv: no rows for anomalous test video\(s\) ta2"),
        ("name,start,end\nta1,1,2\nta2,1,2\ntn1,0,3\n", r"'tn1' is a normal video"),
        ("name,start,end\nta1,1,2\nta2,5,2\n", r"annotations\.csv:3: interval \[5, 2\)"),
        ("name,begin,end\n", r"annotations\.csv:1: header must be"),
    ],
)
def test_bad_user_annotations(tmp_path, csv_text, match):
    root = split_folder(tmp_path)
    (root / "test" / "annotations.csv").write_text(csv_text)
    with pytest.raises(AnnotationError, match=match):
        get_dataset(root)


def test_folder_errors(tmp_path):
    (tmp_path / "empty" / "normal").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"empty: no videos found"):
        get_dataset(tmp_path / "empty")
    (tmp_path / "odd").mkdir()
    with pytest.raises(DatasetError, match=r"odd: not a dataset folder"):
        get_dataset(tmp_path / "odd")
    touch(tmp_path / "dup" / "normal" / "same.mp4")
    touch(tmp_path / "dup" / "anomalous" / "same.avi")
    with pytest.raises(DatasetError, match=r"two videos share the name 'same'.*same\.mp4.*same\.avi"):
        get_dataset(tmp_path / "dup")
    touch(tmp_path / "dup2" / "train" / "normal" / "v.mp4")
    touch(tmp_path / "dup2" / "test" / "normal" / "v.mp4")
    with pytest.raises(DatasetError, match="two videos share the name 'v'"):
        get_dataset(tmp_path / "dup2")


def test_user_interval_csv():
    text = "name,start,end\nv1,10,20\nv1,0,5\nv2,3,4\n"
    assert parse_interval_csv(text, "a.csv") == {"v1": ((0, 5), (10, 20)), "v2": ((3, 4),)}
    with pytest.raises(AnnotationError, match=r"a\.csv:1: header must be 'name,start,end'"):
        parse_interval_csv("video,start,end\nv1,1,2\n", "a.csv")
    with pytest.raises(AnnotationError, match=r"a\.csv:3: interval \[7, 7\)"):
        parse_interval_csv("name,start,end\nv1,1,2\nv1,7,7\n", "a.csv")
    with pytest.raises(AnnotationError, match=r"a\.csv:2: end 'x' is not an integer"):
        parse_interval_csv("name,start,end\nv1,1,x\n", "a.csv")
    with pytest.raises(AnnotationError, match=r"a\.csv \(video 'v1'.*overlap"):
        parse_interval_csv("name,start,end\nv1,0,10\nv1,5,12\n", "a.csv")


def test_generated_folder_gives_frame_counts(tmp_path):
    """A folder damvad's generator wrote knows its frame counts (synth.json); others do not."""
    root = split_folder(tmp_path)
    (root / "synth.json").write_text(json.dumps({"videos": [{"name": "ta1", "num_frames": 130},
                                                            {"name": "n1", "num_frames": 64}]}))
    ds = get_dataset(root)
    assert (ds.video("ta1").num_frames, ds.video("n1").num_frames, ds.video("ta2").num_frames) == (130, 64, None)
    (root / "synth.json").write_text('{"videos": [{"name": "ta1"}]}')
    with pytest.raises(DatasetError, match=r"synth\.json: unreadable generator manifest"):
        get_dataset(root)


def test_folders_of_frames_are_videos_of_a_folder_dataset(tmp_path):
    for frame in ("000.jpg", "001.jpg"):
        touch(tmp_path / "normal" / "walk01" / frame)
        touch(tmp_path / "anomalous" / "Biking" / "bike07" / frame)
    touch(tmp_path / "anomalous" / "cart.mp4")
    ds = get_dataset(tmp_path)
    assert [(v.name, v.label, v.category) for v in ds.videos()] == [
        ("walk01", 0, "Normal"), ("bike07", 1, "Biking"), ("cart", 1, "Anomalous")]
    assert ds.video("bike07").path == tmp_path / "anomalous" / "Biking" / "bike07"
    touch(tmp_path / "normal" / "stray.jpg")
    with pytest.raises(DatasetError, match=r"normal: holds 1 image file\(s\) \(stray.jpg, ...\) and 1 sub-folder"):
        get_dataset(tmp_path)
    for frame in (tmp_path / "normal" / "walk01").iterdir():
        frame.rename(tmp_path / "normal" / f"w{frame.name}")
    (tmp_path / "normal" / "walk01").rmdir()
    with pytest.raises(DatasetError, match=r"normal: holds images directly"):
        get_dataset(tmp_path)
