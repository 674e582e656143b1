"""CSV dataset files: ``path,label[,split]`` rows, headers, relative paths, Excel's BOM, bad rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from damvad.datasets import DatasetError, get_dataset


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
    (sub / "frames" / "cam.v2").mkdir(parents=True)  # a folder of frames is named by its whole name
    (sub / "folders.csv").write_text("frames/cam.v2,normal\nclips/d.mp4,anomalous\n")
    assert get_dataset(sub / "folders.csv").video_labels() == {"cam.v2": 0, "d": 1}


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
