"""A folder of the user's own videos as a dataset. Layouts::

    ROOT/normal/*.mp4, ROOT/anomalous/*.mp4               everything is "train"
    ROOT/train/{normal,anomalous}/..., ROOT/test/{normal,anomalous}/...  (and ROOT/dev/...)
    ROOT/test/annotations.csv   optional: name,start,end (0-based frames, end exclusive)

A video is a file or a folder of frames (:mod:`damvad.framefolder`: ``normal/clip07/000.jpg ...`` is the
video ``clip07``). Videos may sit in sub-folders (the first sub-folder becomes the category). A folder
that damvad's generator wrote (``damvad benchmark prepare``) carries ``synth.json``, which gives the
frame counts.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from damvad.datasets.base import SPLITS, Dataset, VideoItem, check_unique_paths
from damvad.datasets.errors import AnnotationError, DatasetError
from damvad.datasets.intervals import Interval, check_intervals
from damvad.datasets.parsing import csv_rows, parse_int
from damvad.framefolder import IMAGE_EXTENSIONS
from damvad.video import VIDEO_EXTENSIONS, VideoError, find_videos, video_name  # extract's videos, a dataset's


def parse_interval_csv(text: str, source: str) -> dict[str, tuple[Interval, ...]]:
    """A user's ``annotations.csv``: header ``name,start,end``, 0-based end-exclusive, rows may repeat."""
    acc: dict[str, list[Interval]] = {}
    first: dict[str, int] = {}
    header_seen = False
    for lineno, cells in csv_rows(text):
        if not header_seen:
            if [c.lower() for c in cells] != ["name", "start", "end"]:
                raise AnnotationError(
                    f"{source}:{lineno}: header must be 'name,start,end', got {','.join(cells)!r}"
                )
            header_seen = True
            continue
        if len(cells) != 3:
            raise AnnotationError(f"{source}:{lineno}: expected 3 fields (name,start,end), got {len(cells)}")
        name = cells[0]
        if not name:
            raise AnnotationError(f"{source}:{lineno}: empty video name")
        s = parse_int(cells[1], source, lineno, "start")
        e = parse_int(cells[2], source, lineno, "end")
        if s < 0 or e <= s:
            raise AnnotationError(
                f"{source}:{lineno}: interval [{s}, {e}) is empty or negative "
                "(0-based frames, end exclusive: need 0 <= start < end)"
            )
        acc.setdefault(name, []).append((s, e))
        first.setdefault(name, lineno)
    if not header_seen:
        raise AnnotationError(f"{source}: empty file (expected header 'name,start,end')")
    return {
        name: check_intervals(iv, source, f" (video {name!r}, first row on line {first[name]})")
        for name, iv in acc.items()
    }


def _scan_class_folder(folder: Path, label: int, split: str) -> list[VideoItem]:
    items = []
    try:
        found = find_videos([folder])  # the videos extract finds there, folders of frames included
    except VideoError as exc:  # a folder holding both frames and videos (or sub-folders of frames)
        raise DatasetError(str(exc)) from exc
    for path in found:
        rel = path.relative_to(folder)
        if path == folder:
            raise DatasetError(f"{folder}: holds images directly; a folder of frames is one video: put each "
                               "video's frames in a sub-folder of its own")
        category = rel.parts[0] if len(rel.parts) > 1 else ("Anomalous" if label else "Normal")
        items.append(VideoItem(video_name(path), label, split, category, None, path))
    return items


def _scan_split(folder: Path, split: str) -> list[VideoItem]:
    normal, anomalous = folder / "normal", folder / "anomalous"
    if not normal.is_dir() and not anomalous.is_dir():
        raise DatasetError(f"{folder}: needs a 'normal/' and/or an 'anomalous/' sub-folder")
    items = []
    for sub, label in ((normal, 0), (anomalous, 1)):
        if sub.is_dir():
            items += _scan_class_folder(sub, label, split)
    if not items:
        raise DatasetError(
            f"{folder}: no videos found under normal/ or anomalous/ (files {' '.join(VIDEO_EXTENSIONS)}, or "
            f"folders of {' '.join(IMAGE_EXTENSIONS)} frames)"
        )
    return items


def load_folder_dataset(root: Path) -> Dataset:
    """The dataset a folder holds (layouts in the module note)."""
    has_split = any((root / s).is_dir() for s in SPLITS)
    items: list[VideoItem] = []
    if has_split:
        for split in SPLITS:
            if (root / split).is_dir():
                items += _scan_split(root / split, split)
    elif (root / "normal").is_dir() or (root / "anomalous").is_dir():
        items = _scan_split(root, "train")
    else:
        raise DatasetError(
            f"{root}: not a dataset folder: expected normal/ and anomalous/ sub-folders, or train/, dev/ and "
            "test/ each holding them"
        )
    check_unique_paths(items, root)
    items = _with_synth_frame_counts(root, items)
    intervals: dict[str, tuple[Interval, ...]] = {}
    for split in ("dev", "test"):
        ann = root / split / "annotations.csv"
        if not (has_split and ann.is_file()):
            continue
        found = parse_interval_csv(ann.read_text(encoding="utf-8-sig"), str(ann))
        here = {i.name: i for i in items if i.split == split}
        for name in found:
            if name not in here:
                raise AnnotationError(f"{ann}: {name!r} is not a video under {root / split}")
            if here[name].label == 0:
                raise AnnotationError(f"{ann}: {name!r} is a normal video but has anomalous intervals")
        missing = sorted(n for n, i in here.items() if i.label == 1 and n not in found)
        if missing:
            raise AnnotationError(f"{ann}: no rows for anomalous {split} video(s) {', '.join(missing)}")
        intervals.update(found)
    return Dataset(root.name or str(root), f"videos under {root}", items, intervals=intervals, root=root)


def _with_synth_frame_counts(root: Path, items: list[VideoItem]) -> list[VideoItem]:
    """Frame counts from ``synth.json`` when damvad's generator wrote the folder (else unknown: None)."""
    manifest = root / "synth.json"
    if not manifest.is_file():
        return items
    try:
        counts = {v["name"]: int(v["num_frames"]) for v in json.loads(manifest.read_text())["videos"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{manifest}: unreadable generator manifest ({exc})") from exc
    return [dataclasses.replace(i, num_frames=counts.get(i.name, i.num_frames)) for i in items]
