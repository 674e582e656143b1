"""Benchmark datasets and users' own video collections: splits, video labels, frame ground truth.

``get_dataset`` accepts a built-in name (``ucf-crime``, ``shanghaitech``, ``xd-violence``; shipped
annotations, see :mod:`damvad.annotations` for the frame-interval convention), a folder of videos, or
a CSV file. Folder layouts::

    ROOT/normal/*.mp4, ROOT/anomalous/*.mp4               everything is "train"
    ROOT/train/{normal,anomalous}/..., ROOT/test/{normal,anomalous}/...
    ROOT/test/annotations.csv   optional: name,start,end (0-based frames, end exclusive)

Files may sit in sub-folders (the first sub-folder becomes the category). A CSV file has rows
``path,label[,split]`` (label normal/anomalous or 0/1, split train/test, default train; an optional
header ``path,label[,split]``; relative paths are relative to the CSV's folder).

Frame-count tolerance: ground truth is built for the frame count the features were extracted
from. When the annotation knows its own count (UCF-Crime file, ShanghaiTech mask, normal
ShanghaiTech videos) and the two differ by more than ``FRAME_TOLERANCE`` frames, or, when it does
not (XD-Violence, user datasets), an interval ends more than ``FRAME_TOLERANCE`` frames past the
video's end, this is an error: the features were almost surely made from a different file or
frame rate. Within the tolerance (decoders disagree by a frame or two at the end of a stream)
intervals are clipped to the count and a mask shorter than the count is extended with its last
label. A built-in name wins over a same-named folder; write ``./ucf`` for the folder.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from damvad.annotations import (
    SHANGHAITECH,
    UCF_CRIME,
    XD_VIOLENCE,
    AnnotationError,
    DatasetError,
    Interval,
    intervals_to_mask,
    load_shanghaitech_mask,
    parse_interval_csv,
    parse_shanghaitech_test,
    parse_shanghaitech_train,
    parse_ucf_test,
    parse_ucf_train,
    parse_xd_list,
    parse_xd_test_annotations,
    read_resource_text,
    resource_label,
)
from damvad.store import InconsistentRecordError
from damvad.video import VIDEO_EXTENSIONS  # one list: a video extract takes is one a folder dataset lists

__all__ = [
    "BUILTIN_DATASETS",
    "FRAME_TOLERANCE",
    "VIDEO_EXTENSIONS",
    "AnnotationError",
    "Dataset",
    "DatasetError",
    "VideoItem",
    "check_features",
    "dataset_summary",
    "get_dataset",
]

BUILTIN_DATASETS = (UCF_CRIME, SHANGHAITECH, XD_VIOLENCE)
SPLITS = ("train", "dev", "test")  # dev: frame labels for decisions, never for training or reporting
# A quarter of a 64-frame snippet: covers decoders that disagree on the last frames of a stream,
# catches a different file or frame rate (a 25 vs 30 fps re-encode moves a 1-minute video by 300).
FRAME_TOLERANCE = 16
FEATURE_MAP_SHAPE = (7, 1024)

_ALIASES = {
    "ucfcrime": UCF_CRIME,
    "ucf": UCF_CRIME,
    "ucfcrimes": UCF_CRIME,
    "shanghaitech": SHANGHAITECH,
    "shanghai": SHANGHAITECH,
    "sht": SHANGHAITECH,
    "xdviolence": XD_VIOLENCE,
    "xd": XD_VIOLENCE,
}


class FrameSource(Protocol):
    """Anything that knows a video's decoded frame count (a :class:`damvad.store.FeatureStore`)."""

    def frames(self, name: str) -> int: ...

    def __contains__(self, name: str) -> bool: ...


@dataclass(frozen=True)
class VideoItem:
    """One video of a dataset: ``name`` is the file stem, the key of its features."""

    name: str
    label: int  # 0 normal, 1 anomalous
    split: str  # "train", "dev" or "test"
    category: str
    num_frames: int | None = None  # None when the annotation files do not say
    path: Path | None = None  # user datasets only


@dataclass
class Dataset:
    """Videos by split plus whatever frame-level ground truth the annotations carry."""

    name: str
    description: str
    items: list[VideoItem]
    intervals: dict[str, tuple[Interval, ...]] = field(default_factory=dict)  # damvad convention
    masks: dict[str, str] = field(default_factory=dict)  # name -> shipped ShanghaiTech mask name
    root: Path | None = None

    def __post_init__(self) -> None:
        self._by_name: dict[str, VideoItem] = {}
        for item in self.items:
            if item.name in self._by_name:
                other = self._by_name[item.name]
                where = f"{other.path} and {item.path}" if item.path or other.path else "twice"
                raise DatasetError(f"{self.name}: duplicate video name {item.name!r} ({where})")
            if item.split not in SPLITS:
                raise DatasetError(f"{self.name}: video {item.name!r} has unknown split {item.split!r}")
            self._by_name[item.name] = item

    # ------------------------------------------------------------------ lookup
    @property
    def splits(self) -> tuple[str, ...]:
        """The splits that hold at least one video, in train/test order."""
        present = {item.split for item in self.items}
        return tuple(s for s in SPLITS if s in present)

    def videos(self, split: str | None = None) -> list[VideoItem]:
        """Videos of ``split`` (all videos when None), in annotation-file order."""
        if split is None:
            return list(self.items)
        if split not in SPLITS:
            raise DatasetError(f"{self.name}: unknown split {split!r} (expected one of {', '.join(SPLITS)})")
        return [item for item in self.items if item.split == split]

    def video(self, name: str) -> VideoItem:
        try:
            return self._by_name[name]
        except KeyError:
            raise DatasetError(f"{self.name}: no video named {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __len__(self) -> int:
        return len(self.items)

    def video_labels(self, split: str | None = None) -> dict[str, int]:
        return {item.name: item.label for item in self.videos(split)}

    # ------------------------------------------------------------------ ground truth
    def _has_frame_labels(self, item: VideoItem) -> bool:
        return item.label == 0 or item.name in self.intervals or item.name in self.masks

    def has_frame_labels(self, split: str) -> bool:
        """True when every video of a non-empty ``split`` has frame labels (normal ones trivially)."""
        items = self.videos(split)
        return bool(items) and all(self._has_frame_labels(item) for item in items)

    def ground_truth(
        self, name: str, num_frames: int | None = None, tolerance: int = FRAME_TOLERANCE
    ) -> np.ndarray:
        """Frame labels (bool, length ``num_frames``) of one video; see the module note on tolerance.

        ``num_frames`` is the decoded count the features cover (``FeatureStore.frames(name)``); when
        None the annotation's own count is used, which XD-Violence and user datasets do not have.
        """
        item = self.video(name)
        if not self._has_frame_labels(item):
            raise DatasetError(
                f"{self.name}: anomalous {item.split} video {name!r} has no frame-level annotation"
            )
        own: int | None = item.num_frames
        mask = None
        if name in self.masks:
            mask = load_shanghaitech_mask(self.masks[name])
            own = int(mask.size)
        if num_frames is None:
            if own is None:
                raise DatasetError(
                    f"{self.name}: video {name!r}: the annotations do not give its frame count; pass "
                    "num_frames (the feature store's frame count for this video)"
                )
            num_frames = own
        num_frames = int(num_frames)
        if num_frames <= 0:
            raise DatasetError(f"{self.name}: video {name!r}: num_frames must be positive, got {num_frames}")
        if own is not None and abs(own - num_frames) > tolerance:
            raise DatasetError(
                f"{self.name}: video {name!r}: the annotation has {own} frames but the features cover "
                f"{num_frames} (more than {tolerance} apart): features from a different file or frame "
                "rate? (raise the tolerance only if you know the decoders disagree)"
            )
        if mask is not None:
            if mask.size >= num_frames:
                return mask[:num_frames].copy()
            return np.concatenate([mask, np.full(num_frames - mask.size, mask[-1], dtype=bool)])
        intervals = self.intervals.get(name, ())
        # Without a count of its own, an interval ending well past the video is the mismatch signal.
        if own is None and intervals and intervals[-1][1] > num_frames + tolerance:
            raise DatasetError(
                f"{self.name}: video {name!r}: an anomalous interval ends at frame {intervals[-1][1]} "
                f"but the video has {num_frames} frames (more than {tolerance} past its end)"
            )
        return intervals_to_mask(intervals, num_frames)

    def ground_truths(
        self, split: str = "test", store: FrameSource | None = None, tolerance: int = FRAME_TOLERANCE,
        names: Collection[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Frame labels of every video of ``split`` (or of ``names`` among them); frame counts from ``store``."""
        out = {}
        for item in self.videos(split):
            if names is not None and item.name not in names:
                continue
            n = None
            if store is not None:
                if item.name not in store:
                    raise DatasetError(f"{self.name}: no features for {split} video {item.name!r} in {store}")
                n = store.frames(item.name)
            out[item.name] = self.ground_truth(item.name, n, tolerance)
        return out


# ---------------------------------------------------------------------------- built-in datasets


def _canonical(name: str) -> str | None:
    key = name.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    return _ALIASES.get(key)


@cache
def _builtin(name: str) -> Dataset:
    if name == UCF_CRIME:
        return _ucf_crime()
    if name == SHANGHAITECH:
        return _shanghaitech()
    return _xd_violence()


def _ucf_crime() -> Dataset:
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


def _shanghaitech() -> Dataset:
    train = parse_shanghaitech_train(
        read_resource_text(SHANGHAITECH, "train.csv"), resource_label(SHANGHAITECH, "train.csv")
    )
    test_label = resource_label(SHANGHAITECH, "test.csv")
    test = parse_shanghaitech_test(read_resource_text(SHANGHAITECH, "test.csv"), test_label)
    items = [VideoItem(r.name, r.label, "train", r.category, None) for r in train]
    masks = {}
    for r in test:
        frames = r.frames
        if r.label == 1:
            # The mask is the ground truth and its length the frame count. Masks of anomalous
            # *training* videos are shipped too but deliberately unused: training sees video labels only.
            mask = load_shanghaitech_mask(r.name)
            if frames is not None and frames != mask.size:
                raise AnnotationError(
                    f"{test_label}:{r.line}: {r.name!r} says {frames} frames, its mask has {mask.size}"
                )
            frames = int(mask.size)
            masks[r.name] = r.name
        items.append(VideoItem(r.name, r.label, "test", r.category, frames))
    return Dataset(
        SHANGHAITECH,
        "ShanghaiTech, weakly-supervised split of Zhong et al. (CVPR 2019); "
        "anomalous test videos labelled by per-frame masks",
        items,
        masks=masks,
    )


def _xd_violence() -> Dataset:
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


# ---------------------------------------------------------------------------- user datasets


def _is_video(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in VIDEO_EXTENSIONS


def _scan_class_folder(folder: Path, label: int, split: str) -> list[VideoItem]:
    items = []
    for path in sorted(folder.rglob("*")):
        if not _is_video(path):
            continue
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        category = rel.parts[0] if len(rel.parts) > 1 else ("Anomalous" if label else "Normal")
        items.append(VideoItem(path.stem, label, split, category, None, path))
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
            f"{folder}: no video files found under normal/ or anomalous/ "
            f"(extensions {' '.join(VIDEO_EXTENSIONS)})"
        )
    return items


def _check_duplicates(items: list[VideoItem], source: Path) -> None:
    seen: dict[str, VideoItem] = {}
    for item in items:
        if item.name in seen:
            raise DatasetError(
                f"{source}: two videos share the name {item.name!r} "
                f"({seen[item.name].path} and {item.path}); names are file stems and key the features, "
                "so they must be unique"
            )
        seen[item.name] = item


def _folder_dataset(root: Path) -> Dataset:
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
    _check_duplicates(items, root)
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


def _csv_label(value: str, source: str, lineno: int) -> int:
    v = value.strip().lower()
    if v in ("0", "normal"):
        return 0
    if v in ("1", "anomalous", "anomaly", "abnormal"):
        return 1
    raise DatasetError(f"{source}:{lineno}: label {value!r} must be normal/anomalous or 0/1")


def _csv_dataset(path: Path) -> Dataset:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # tolerate the BOM Excel writes
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{source}: not a UTF-8 text file ({exc})") from exc
    items: list[VideoItem] = []
    first = True
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
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
        items.append(VideoItem(video.stem, label, split, "Anomalous" if label else "Normal", None, video))
    if not items:
        raise DatasetError(f"{source}: no video rows (expected 'path,label[,split]')")
    _check_duplicates(items, path)
    return Dataset(path.stem, f"videos listed in {path}", items, root=path.parent)


def get_dataset(name_or_path: str | Path) -> Dataset:
    """A built-in benchmark by name, a dataset folder, or a ``path,label[,split]`` CSV file."""
    if isinstance(name_or_path, str):
        canonical = _canonical(name_or_path)
        if canonical is not None:
            return _builtin(canonical)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return _folder_dataset(path)
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise DatasetError(f"{path}: a dataset file must be a .csv of 'path,label[,split]' rows")
        return _csv_dataset(path)
    raise DatasetError(
        f"unknown dataset {str(name_or_path)!r}: not one of {', '.join(BUILTIN_DATASETS)}, "
        "and no such folder or CSV file"
    )


# ---------------------------------------------------------------------------- features


def check_features(
    dataset: Dataset, store: Any, split: str, crops: int | None = None, tolerance: int = FRAME_TOLERANCE,
    allow_missing: bool = False,
) -> list[str]:
    """Raise one :class:`DatasetError` listing every video of ``split`` with unusable features.

    Checked: both files present and readable, shape (ceil(frames / snippet_len), crops, 7, 1024),
    and the frame count against the annotation (within ``tolerance``), including interval ends.
    ``allow_missing``: videos without features (never downloaded, or failed to extract) are returned
    instead, for a partial evaluation; features that are present but wrong are still an error.
    """
    items = dataset.videos(split)
    if not items:
        raise DatasetError(f"{dataset.name}: split {split!r} has no videos")
    problems: list[str] = []
    missing: list[str] = []
    for item in items:
        if allow_missing and item.name not in store:
            missing.append(item.name)
            continue
        problem = _feature_problem(dataset, store, item, crops, tolerance)
        if problem:
            problems.append(f"  {item.name}: {problem}")
    if len(missing) == len(items):
        raise DatasetError(f"{getattr(store, 'root', store)}: none of the {len(items)} {split} videos of "
                           f"{dataset.name} has features")
    if problems:
        raise DatasetError(
            f"{getattr(store, 'root', store)}: {len(problems)} of {len(items)} {split} videos of "
            f"{dataset.name} have missing or unusable features:\n" + "\n".join(problems[:20])
            + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
            + ("\n(damvad evaluate ... --allow-missing evaluates the videos that are present)"
               if not allow_missing and any(": missing (" in p for p in problems) else "")
        )
    return missing


def _feature_problem(
    dataset: Dataset, store: Any, item: VideoItem, crops: int | None, tolerance: int
) -> str | None:
    if item.name not in store:
        return f"missing (expected {item.name}.npy and {item.name}.json)"
    try:
        meta = store.meta(item.name)
        arr = store.load(item.name, mmap=True)
        frames = int(meta["frames"])
        snippet_len = int(meta.get("snippet_len", 64))
    except InconsistentRecordError as exc:
        return f"{exc.problem} ({store.json_path(item.name)})"
    except (KeyError, TypeError, ValueError, OSError, RuntimeError) as exc:
        return f"unreadable ({exc})"
    shape = tuple(arr.shape)
    if arr.dtype not in (np.float32, np.float16):
        return f"dtype {arr.dtype}, expected float32 or float16"
    if len(shape) != 4 or shape[2:] != FEATURE_MAP_SHAPE:
        return f"shape {shape}, expected (snippets, crops, 7, 1024)"
    if frames <= 0 or snippet_len <= 0:
        return f"manifest says {frames} frames, snippet_len {snippet_len}"
    expected = math.ceil(frames / snippet_len)
    if shape[0] != expected:
        return f"{shape[0]} snippets, but {frames} frames make {expected} snippets of {snippet_len}"
    if crops is not None and shape[1] != crops:
        return f"{shape[1]} crops, expected {crops}"
    if item.num_frames is not None and abs(item.num_frames - frames) > tolerance:
        return f"features cover {frames} frames, the annotation says {item.num_frames}"
    if item.split != "train" and dataset._has_frame_labels(item):
        try:
            dataset.ground_truth(item.name, frames, tolerance)
        except DatasetError as exc:
            return str(exc).split(": ", 1)[-1]
    return None


# ---------------------------------------------------------------------------- summary


def _fmt(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


def dataset_summary(dataset: Dataset, store: Any = None, snippet_len: int = 64) -> str:
    """A readable table per split: videos (normal/anomalous), frames, anomalous frames where labelled,
    and snippets per video (min / median / max, ``ceil(frames / snippet_len)``).

    Frame counts come from ``store`` (a FeatureStore) where it has the video, else from the annotations;
    '?' marks totals that are not known.
    """
    lines = [f"{dataset.name}: {dataset.description}"]
    header = (f"{'split':<6} {'videos':>7} {'normal':>7} {'anomalous':>9} {'frames':>12} {'anomalous frames':>17} "
              f"{'snippets/video min/med/max':>27}")
    lines += [header, "-" * len(header)]
    notes: list[str] = []
    for split in dataset.splits:
        items = dataset.videos(split)
        labelled = split != "train" and dataset.has_frame_labels(split)
        n_anom = sum(i.label for i in items)
        frames: int | None = 0
        anomalous: int | None = 0 if labelled else None
        counts: list[int] = []
        for item in items:
            n = None
            if store is not None and item.name in store:
                n = int(store.frames(item.name))
            elif item.num_frames is not None:
                n = item.num_frames
            if n is None:
                anomalous = None
                continue
            counts.append(n)
            frames = None if frames is None else frames + n
            if labelled and anomalous is not None:
                try:
                    anomalous += int(dataset.ground_truth(item.name, n).sum())
                except DatasetError as exc:
                    notes.append(str(exc))
                    anomalous = None
        unknown = len(items) - len(counts)
        if unknown:
            frames = None
            where = "not in the feature store" if store is not None else "without features"
            notes.append(f"{split}: frame counts of {unknown:,} of {len(items):,} videos unknown ({where})")
            if labelled and dataset.intervals:
                marked = sum(e - s for i in items for s, e in dataset.intervals.get(i.name, ()))
                notes.append(
                    f"{split}: the annotations mark {marked:,} anomalous frames before clipping to "
                    "the videos' lengths"
                )
        if labelled and anomalous is not None and frames:
            anom_cell = f"{anomalous:,} ({100 * anomalous / frames:.1f}%)"
        else:
            anom_cell = "-" if not labelled else _fmt(anomalous)
        snip = "?"
        if counts:
            s = np.ceil(np.array(counts) / snippet_len).astype(int)
            snip = f"{s.min()} / {int(np.median(s))} / {s.max()}" + ("" if not unknown else " (known only)")
        lines.append(
            f"{split:<6} {len(items):>7,} {len(items) - n_anom:>7,} {n_anom:>9,} {_fmt(frames):>12} "
            f"{anom_cell:>17} {snip:>27}"
        )
    for split in dataset.splits:
        lines.append(f"frame labels for {split}: {'yes' if dataset.has_frame_labels(split) else 'no'}")
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines)
