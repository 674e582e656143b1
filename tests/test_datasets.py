"""User datasets (folder and CSV), name resolution, feature checks and the summary table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from damvad.datasets import (
    BUILTIN_DATASETS,
    AnnotationError,
    DatasetError,
    check_features,
    dataset_summary,
    get_dataset,
)
from damvad.store import FeatureStore

# ----------------------------------------------------------------------------------- helpers


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not really a video")
    return path


def _fake_features(
    root: Path,
    name: str,
    frames: int,
    crops: int = 1,
    snippets: int | None = None,
    tail: tuple[int, int] = (7, 1024),
    dtype=np.float16,
) -> None:
    """A feature file + manifest row as the extractor writes them (zeros; only shapes matter here)."""
    s = math.ceil(frames / 64) if snippets is None else snippets
    root.mkdir(parents=True, exist_ok=True)
    arr = np.zeros((s, crops, *tail), dtype=dtype)
    np.save(root / f"{name}.npy", arr)
    meta = {
        "name": name,
        "path": f"/videos/{name}.mp4",
        "frames": frames,
        "fps": 30.0,
        "snippet_len": 64,
        "num_snippets": s,
        "crops": crops,
        "crop_names": ["center"][:crops] or ["center"],
        "dtype": np.dtype(dtype).name,
        "shape": list(arr.shape),
        "weights_sha256": "0" * 64,
        "damvad_version": "0.1.0",
        "precision": "fp32",
        "snippet_ranges": [[i * 64, min((i + 1) * 64, frames)] for i in range(s)],
    }
    (root / f"{name}.json").write_text(json.dumps(meta))


def _split_folder(tmp_path: Path) -> Path:
    root = tmp_path / "mycams"
    _touch(root / "train" / "normal" / "n1.mp4")
    _touch(root / "train" / "normal" / "n2.avi")
    _touch(root / "train" / "anomalous" / "fights" / "a1.mkv")
    _touch(root / "train" / "anomalous" / "notes.txt")  # not a video: ignored
    _touch(root / "test" / "normal" / "tn1.MP4")
    _touch(root / "test" / "anomalous" / "ta1.webm")
    _touch(root / "test" / "anomalous" / "ta2.ts")
    return root


# ----------------------------------------------------------------------------------- names


def test_builtin_names_and_aliases():
    assert get_dataset("UCF_Crime") is get_dataset("ucf-crime")
    assert get_dataset("sht").name == "shanghaitech"
    assert get_dataset("XD-Violence").name == "xd-violence"
    assert get_dataset("ucf-crime").splits == ("train", "test")


def test_unknown_name_lists_known_ones(tmp_path):
    with pytest.raises(DatasetError) as err:
        get_dataset("ucf-crimes-2")
    for known in BUILTIN_DATASETS:
        assert known in str(err.value)
    other = _touch(tmp_path / "list.txt")
    with pytest.raises(DatasetError, match=r"list\.txt: a dataset file must be a \.csv"):
        get_dataset(other)


# ----------------------------------------------------------------------------------- folders


def test_flat_folder_is_all_train(tmp_path):
    _touch(tmp_path / "normal" / "x.mp4")
    _touch(tmp_path / "anomalous" / "y.mov")
    _touch(tmp_path / "anomalous" / ".hidden.mp4")
    ds = get_dataset(tmp_path)
    assert ds.splits == ("train",)
    assert [(v.name, v.label, v.split, v.category) for v in ds.videos()] == [
        ("x", 0, "train", "Normal"),
        ("y", 1, "train", "Anomalous"),
    ]
    assert ds.video("y").path == tmp_path / "anomalous" / "y.mov" and ds.video("y").num_frames is None


def test_split_folder_with_annotations(tmp_path):
    root = _split_folder(tmp_path)
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
    ds = get_dataset(_split_folder(tmp_path))
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
    root = _split_folder(tmp_path)
    (root / "test" / "annotations.csv").write_text(csv_text)
    with pytest.raises(AnnotationError, match=match):
        get_dataset(root)


def test_folder_errors(tmp_path):
    (tmp_path / "empty" / "normal").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"empty: no video files found"):
        get_dataset(tmp_path / "empty")
    (tmp_path / "odd").mkdir()
    with pytest.raises(DatasetError, match=r"odd: not a dataset folder"):
        get_dataset(tmp_path / "odd")
    _touch(tmp_path / "dup" / "normal" / "same.mp4")
    _touch(tmp_path / "dup" / "anomalous" / "same.avi")
    with pytest.raises(DatasetError, match=r"two videos share the name 'same'.*same\.mp4.*same\.avi"):
        get_dataset(tmp_path / "dup")
    _touch(tmp_path / "dup2" / "train" / "normal" / "v.mp4")
    _touch(tmp_path / "dup2" / "test" / "normal" / "v.mp4")
    with pytest.raises(DatasetError, match="two videos share the name 'v'"):
        get_dataset(tmp_path / "dup2")


# ----------------------------------------------------------------------------------- CSV


def test_csv_dataset(tmp_path):
    sub = tmp_path / "lists"
    sub.mkdir()
    (sub / "videos.csv").write_text(
        "path,label,split\nclips/a.mp4,normal,train\n/abs/b.avi,1,test\n\nc.mp4,Anomalous\n"
    )
    ds = get_dataset(sub / "videos.csv")
    assert ds.name == "videos"
    assert [(v.name, v.label, v.split) for v in ds.videos()] == [
        ("a", 0, "train"),
        ("b", 1, "test"),
        ("c", 1, "train"),
    ]
    assert ds.video("a").path == sub / "clips" / "a.mp4"  # relative to the CSV's folder
    assert ds.video("b").path == Path("/abs/b.avi")
    (sub / "noheader.csv").write_text("x.mp4,0\ny.mp4,1\n")
    assert get_dataset(sub / "noheader.csv").video_labels() == {"x": 0, "y": 1}
    (sub / "excel.csv").write_bytes("path,label\r\nx.mp4,normal\r\n".encode("utf-8-sig"))  # BOM + CRLF
    assert get_dataset(sub / "excel.csv").video_labels() == {"x": 0}


@pytest.mark.parametrize(
    "text, match",
    [
        ("path,label\na.mp4,normal\nb.mp4,maybe\n", r"v\.csv:3: label 'maybe'"),
        ("a.mp4,0\nb.mp4,1,val\n", r"v\.csv:2: split 'val'"),
        ("a.mp4,0\nb.mp4\n", r"v\.csv:2: expected 'path,label\[,split\]', got 1 fields"),
        ("a.mp4,0\nx/a.avi,1\n", r"v\.csv: two videos share the name 'a'"),
        ("path,label\n", r"v\.csv: no video rows"),
        ("path,label,kind\na.mp4,0\n", r"v\.csv:1: header must be"),
    ],
)
def test_bad_csv_rows(tmp_path, text, match):
    (tmp_path / "v.csv").write_text(text)
    with pytest.raises(DatasetError, match=match):
        get_dataset(tmp_path / "v.csv")


# ----------------------------------------------------------------------------------- features


def test_check_features_lists_every_bad_video(tmp_path):
    root = _split_folder(tmp_path)
    (root / "test" / "annotations.csv").write_text("name,start,end\nta1,10,20\nta2,0,5\n")
    ds = get_dataset(root)
    feats = tmp_path / "features"
    _fake_features(feats, "tn1", frames=130)  # 3 snippets: fine
    _fake_features(feats, "ta1", frames=130, snippets=2)  # wrong snippet count
    store = FeatureStore(feats)  # ta2 missing
    with pytest.raises(DatasetError) as err:
        check_features(ds, store, "test")
    msg = str(err.value)
    assert "2 of 3 test videos" in msg
    assert "ta2: missing (expected ta2.npy and ta2.json)" in msg
    assert "ta1: 2 snippets, but 130 frames make 3 snippets of 64" in msg
    assert "tn1" not in msg

    _fake_features(feats, "ta1", frames=130)
    _fake_features(feats, "ta2", frames=3)  # interval [0, 5) ends 2 past the end: within tolerance
    check_features(ds, store, "test")  # all fine now: no exception
    with pytest.raises(DatasetError, match=r"(?s)3 of 3 test videos.*tn1: 1 crops, expected 10"):
        check_features(ds, store, "test", crops=10)

    _fake_features(feats, "ta1", frames=3)  # interval [10, 20) cannot belong to a 3-frame video
    with pytest.raises(DatasetError, match=r"ta1: .*ends at frame 20 but the video has 3 frames"):
        check_features(ds, store, "test")
    _fake_features(feats, "ta1", frames=130, tail=(7, 512))
    with pytest.raises(DatasetError, match=r"ta1: shape \(3, 1, 7, 512\)"):
        check_features(ds, store, "test")


def test_check_features_on_ucf_frame_counts(tmp_path):
    ds = get_dataset("ucf-crime")
    feats = tmp_path / "ucf"
    _fake_features(feats, "Abuse028_x264", frames=1412)  # the annotation's count
    _fake_features(feats, "Abuse030_x264", frames=1544 + 100)  # 100 frames more than annotated
    with pytest.raises(DatasetError) as err:
        check_features(ds, FeatureStore(feats), "test")
    msg = str(err.value)
    assert "289 of 290 test videos" in msg
    assert "Abuse030_x264: features cover 1644 frames, the annotation says 1544" in msg
    assert "Abuse028_x264" not in msg
    # at most 20 unusable videos listed (a partial download is hundreds), the rest counted
    assert msg.count(": missing (expected") == 19 and "... and 269 more" in msg


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

    root = _split_folder(tmp_path)
    (root / "test" / "annotations.csv").write_text("name,start,end\nta1,10,20\nta2,0,5\n")
    user = get_dataset(root)
    feats = tmp_path / "f"
    for name, n in (("tn1", 100), ("ta1", 50), ("ta2", 64)):
        _fake_features(feats, name, frames=n)
    text = dataset_summary(user, FeatureStore(feats))
    test_row = next(line for line in text.splitlines() if line.startswith("test "))
    # 100+50+64 frames; 10 + 5 anomalous; 2, 1, 1 snippets
    assert test_row.split() == ["test", "3", "1", "2", "214", "15", "(7.0%)", "1", "/", "1", "/", "2"]
    assert "frame counts of 3 of 3 videos unknown" in text  # train: not in the store
    assert "?" in next(line for line in text.splitlines() if line.startswith("train "))
