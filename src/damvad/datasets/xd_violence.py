"""XD-Violence (Wu et al., ECCV 2020): video lists whose names carry the class, and test intervals.

Shipped files: ``train_videos.txt`` and ``test_videos.txt`` (one name per line; ``label_A`` = no
violence) and ``test_annotations.txt`` (``NAME s1 e1 s2 e2 ...``, already 0-based end-exclusive).
The annotations give no frame counts: they come from the features.
"""

from __future__ import annotations

from damvad.datasets.base import Dataset, VideoItem
from damvad.datasets.errors import AnnotationError
from damvad.datasets.intervals import Interval, check_intervals
from damvad.datasets.parsing import AnnotationRow, check_unique, parse_int, text_lines, video_stem
from damvad.datasets.registry import register_dataset
from damvad.datasets.resources import read_resource_text, resource_label

XD_VIOLENCE = "xd-violence"

# XD-Violence label codes (the token after ``label_`` in a video name); A = no violence.
XD_CATEGORIES = {
    "A": "Normal",
    "B1": "Fighting",
    "B2": "Shooting",
    "B4": "Riot",
    "B5": "Abuse",
    "B6": "Car accident",
    "G": "Explosion",
}


def xd_category(name: str) -> str:
    """Readable class of an XD-Violence video from the first code after ``label_``."""
    code = name.rsplit("label_", 1)[-1].split("-")[0] if "label_" in name else ""
    return XD_CATEGORIES.get(code, code or "Unknown")


def xd_label(name: str) -> int:
    """0 when the name carries ``label_A`` (no violence), else 1."""
    return 0 if "label_A" in name else 1


def parse_xd_list(text: str, split: str, source: str) -> list[AnnotationRow]:
    """One video name per line (no extension)."""
    rows = []
    for lineno, f in text_lines(text):
        if len(f) != 1:
            raise AnnotationError(f"{source}:{lineno}: expected one video name per line, got {len(f)} fields")
        name = video_stem(f[0])
        if "label_" not in name:
            raise AnnotationError(f"{source}:{lineno}: video name {name!r} has no '_label_' class code")
        rows.append(AnnotationRow(name, xd_label(name), xd_category(name), None, None, lineno))
    check_unique(rows, source)
    return rows


def parse_xd_test_annotations(
    text: str, source: str = "xd-violence/test_annotations.txt"
) -> dict[str, tuple[Interval, ...]]:
    """``NAME s1 e1 s2 e2 ...`` (0-based, end exclusive) -> {name: intervals}."""
    out: dict[str, tuple[Interval, ...]] = {}
    lines: dict[str, int] = {}
    for lineno, f in text_lines(text):
        name, nums = video_stem(f[0]), f[1:]
        if not nums or len(nums) % 2:
            raise AnnotationError(
                f"{source}:{lineno}: expected a name then start/end pairs, got {len(nums)} numbers"
            )
        vals = [parse_int(v, source, lineno, "frame") for v in nums]
        if name in out:
            raise AnnotationError(
                f"{source}:{lineno}: video {name!r} is listed twice (first on line {lines[name]})"
            )
        out[name] = check_intervals(list(zip(vals[0::2], vals[1::2], strict=True)), source, f":{lineno}")
        lines[name] = lineno
    return out


def build_xd_violence() -> Dataset:
    items = []
    for split, fname in (("train", "train_videos.txt"), ("test", "test_videos.txt")):
        rows = parse_xd_list(
            read_resource_text(XD_VIOLENCE, fname), split, resource_label(XD_VIOLENCE, fname)
        )
        items += [VideoItem(r.name, r.label, split, r.category, None) for r in rows]
    ann_label = resource_label(XD_VIOLENCE, "test_annotations.txt")
    intervals = parse_xd_test_annotations(read_resource_text(XD_VIOLENCE, "test_annotations.txt"), ann_label)
    test_labels = {i.name: i.label for i in items if i.split == "test"}
    for name in intervals:
        if test_labels.get(name) != 1:
            raise AnnotationError(f"{ann_label}: {name!r} is not an anomalous test video")
    missing = [n for n, lab in test_labels.items() if lab == 1 and n not in intervals]
    if missing:
        raise AnnotationError(
            f"{ann_label}: no intervals for {len(missing)} anomalous test videos, e.g. {missing[0]!r}"
        )
    return Dataset(
        XD_VIOLENCE,
        "XD-Violence (Wu et al., ECCV 2020); 'label_A' videos are normal; test "
        "intervals 0-based end-exclusive, frame counts come from the features",
        items,
        intervals=intervals,
    )


register_dataset(XD_VIOLENCE, build_xd_violence, aliases=("xd",))
