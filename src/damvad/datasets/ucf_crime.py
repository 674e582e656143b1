"""UCF-Crime (Sultani et al., CVPR 2018): the official split, its frame counts and test intervals.

Shipped files: ``train_videos.txt`` (``CLASS_FOLDER/NAME.mp4 FRAMES``) and ``test_annotations.txt``
(``NAME.mp4 CLASS s1 e1 s2 e2 FRAMES``, 1-based inclusive frame numbers, ``-1 -1`` for none),
converted to the damvad interval convention when parsed (:mod:`damvad.datasets.intervals`).
"""

from __future__ import annotations

from damvad.datasets.base import Dataset, VideoItem
from damvad.datasets.errors import AnnotationError
from damvad.datasets.intervals import check_intervals
from damvad.datasets.parsing import AnnotationRow, check_unique, parse_int, text_lines, video_stem
from damvad.datasets.registry import register_dataset
from damvad.datasets.resources import read_resource_text, resource_label

UCF_CRIME = "ucf-crime"


def parse_ucf_test(text: str, source: str = "ucf-crime/test_annotations.txt") -> list[AnnotationRow]:
    """``NAME.mp4 CLASS s1 e1 s2 e2 FRAMES`` (1-based inclusive, -1 = no interval) -> rows."""
    rows = []
    for lineno, f in text_lines(text):
        if len(f) != 7:
            raise AnnotationError(
                f"{source}:{lineno}: expected 7 fields (name class start1 end1 start2 end2 frames), "
                f"got {len(f)}"
            )
        name, category = video_stem(f[0]), f[1]
        ends = ("start1", "end1", "start2", "end2")
        nums = [parse_int(v, source, lineno, w) for v, w in zip(f[2:6], ends, strict=True)]
        frames = parse_int(f[6], source, lineno, "frame count", positive=True)
        intervals = []
        for s, e in (nums[0:2], nums[2:4]):
            if s == -1 and e == -1:
                continue
            if s < 1 or e < s:
                raise AnnotationError(
                    f"{source}:{lineno}: interval [{s}, {e}] is not a 1-based inclusive frame range "
                    "(need 1 <= start <= end, or -1 -1 for none)"
                )
            intervals.append((s - 1, e))  # 1-based inclusive -> 0-based end-exclusive
        label = 0 if category.lower() == "normal" else 1
        if label == 0 and intervals:
            raise AnnotationError(f"{source}:{lineno}: normal video {name!r} has an anomalous interval")
        if label == 1 and not intervals:
            raise AnnotationError(f"{source}:{lineno}: anomalous video {name!r} has no interval")
        rows.append(
            AnnotationRow(
                name,
                label,
                "Normal" if label == 0 else category,
                frames,
                check_intervals(intervals, source, f":{lineno}"),
                lineno,
            )
        )
    check_unique(rows, source)
    return rows


def parse_ucf_train(text: str, source: str = "ucf-crime/train_videos.txt") -> list[AnnotationRow]:
    """``CLASS_FOLDER/NAME.mp4 FRAMES`` -> rows (no frame labels: training is weakly supervised)."""
    rows = []
    for lineno, f in text_lines(text):
        if len(f) != 2:
            raise AnnotationError(f"{source}:{lineno}: expected 2 fields (path frames), got {len(f)}")
        path, frames = f[0], parse_int(f[1], source, lineno, "frame count", positive=True)
        folder = path.replace("\\", "/").split("/")[0] if "/" in path else ""
        if not folder:
            raise AnnotationError(f"{source}:{lineno}: path {path!r} has no class folder")
        label = 0 if "normal" in folder.lower() else 1
        rows.append(
            AnnotationRow(video_stem(path), label, "Normal" if label == 0 else folder, frames, None, lineno)
        )
    check_unique(rows, source)
    return rows


def build_ucf_crime() -> Dataset:
    train = parse_ucf_train(
        read_resource_text(UCF_CRIME, "train_videos.txt"), resource_label(UCF_CRIME, "train_videos.txt")
    )
    test = parse_ucf_test(
        read_resource_text(UCF_CRIME, "test_annotations.txt"),
        resource_label(UCF_CRIME, "test_annotations.txt"),
    )
    items = [VideoItem(r.name, r.label, "train", r.category, r.frames) for r in train]
    items += [VideoItem(r.name, r.label, "test", r.category, r.frames) for r in test]
    intervals = {r.name: r.intervals for r in test if r.intervals}
    return Dataset(
        UCF_CRIME,
        "UCF-Crime (Sultani et al., CVPR 2018), official split; test intervals are "
        "1-based inclusive frame numbers",
        items,
        intervals=intervals,
    )


register_dataset(UCF_CRIME, build_ucf_crime, aliases=("ucf", "ucfcrimes"))
