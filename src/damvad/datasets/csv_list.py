"""A CSV file listing the user's videos as a dataset: rows ``path,label[,split]``.

Label normal/anomalous or 0/1, split train/dev/test (default train); an optional header
``path,label[,split]``; relative paths are relative to the CSV's folder; a path may be a video file or
a folder of frames (:mod:`damvad.framefolder`). Registered for ``.csv``.
"""

from __future__ import annotations

from pathlib import Path

from damvad.datasets.base import SPLITS, Dataset, VideoItem, check_unique_paths
from damvad.datasets.errors import DatasetError
from damvad.datasets.parsing import csv_rows
from damvad.datasets.registry import register_file_kind
from damvad.video import video_name


def _csv_label(value: str, source: str, lineno: int) -> int:
    v = value.strip().lower()
    if v in ("0", "normal"):
        return 0
    if v in ("1", "anomalous", "anomaly", "abnormal"):
        return 1
    raise DatasetError(f"{source}:{lineno}: label {value!r} must be normal/anomalous or 0/1")


def load_csv_dataset(path: Path) -> Dataset:
    """The videos a ``path,label[,split]`` CSV file lists."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # tolerate the BOM Excel writes
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{source}: not a UTF-8 text file ({exc})") from exc
    items: list[VideoItem] = []
    first = True
    for lineno, cells in csv_rows(text):
        if first:
            first = False
            if cells and cells[0].lower() == "path":
                if [c.lower() for c in cells] not in (["path", "label"], ["path", "label", "split"]):
                    raise DatasetError(f"{source}:{lineno}: header must be 'path,label[,split]'")
                continue
        if len(cells) not in (2, 3):
            raise DatasetError(f"{source}:{lineno}: expected 'path,label[,split]', got {len(cells)} fields")
        if not cells[0]:
            raise DatasetError(f"{source}:{lineno}: empty path")
        label = _csv_label(cells[1], source, lineno)
        split = cells[2].lower() if len(cells) == 3 and cells[2] else "train"
        if split not in SPLITS:
            raise DatasetError(f"{source}:{lineno}: split {cells[2]!r} must be one of {', '.join(SPLITS)}")
        video = Path(cells[0]).expanduser()
        if not video.is_absolute():
            video = path.parent / video
        items.append(VideoItem(video_name(video), label, split, "Anomalous" if label else "Normal", None, video))
    if not items:
        raise DatasetError(f"{source}: no video rows (expected 'path,label[,split]')")
    check_unique_paths(items, path)
    return Dataset(path.stem, f"videos listed in {path}", items, root=path.parent)


register_file_kind(".csv", load_csv_dataset, "a .csv of 'path,label[,split]' rows")
