"""Parsers for the shipped benchmark annotations, and the one frame-interval convention of damvad.

Interval convention (the only place it is defined)
--------------------------------------------------
Inside damvad every anomalous interval is a pair ``(start, end)`` of **0-based frame indices, end
exclusive**: frames ``start, start + 1, ..., end - 1`` are anomalous, i.e. ``gt[start:end] = True``.
Frame ``i`` is the ``i``-th frame a decoder returns, counting from 0. Each source format is converted
to this convention when it is parsed, and nowhere else:

* **UCF-Crime** ``test_annotations.txt`` holds ``[start, end]`` frame numbers that are **1-based and
  inclusive**: the benchmark's own MATLAB evaluator (Sultani et al., ``Evaluate_Anomaly_Detector.m``)
  does ``GT(max(start,1):min(end,N)) = 1``. We therefore store ``(start - 1, end)``. (RTFM's
  ``make_gt.py`` instead reads them as 0-based inclusive, one frame later; repositories differ.)
  Sixteen ends lie one or two frames past the file's own frame count; they are clipped.
* **XD-Violence** ``test_annotations.txt`` holds 0-based, end-exclusive pairs: the dataset authors'
  ``make_gt.py`` does ``gt[start:end] = 1`` (and several intervals start at frame 0). Stored as is.
* **ShanghaiTech** (Zhong et al. split) anomalous test videos come with a per-frame 0/1 mask
  (``test_frame_mask/NAME.npy``); its length is the video's frame count.
* **User datasets**: ``test/annotations.csv`` with header ``name,start,end`` already uses this
  convention (0-based, end exclusive; several rows per video allowed).

Intervals are clipped to the video's frame count when a frame mask is built
(:func:`intervals_to_mask`); how far an annotation may disagree with the decoded frame count is
decided in :mod:`damvad.datasets`.

The files live in ``damvad/data/annotations/`` and are read through :mod:`importlib.resources`, so
they work from an installed wheel as well as from a source tree.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np

Interval = tuple[int, int]

UCF_CRIME = "ucf-crime"
SHANGHAITECH = "shanghaitech"
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


class DatasetError(ValueError):
    """A dataset, annotation or feature folder that cannot be used as it is (the message says why)."""


class AnnotationError(DatasetError):
    """A malformed annotation file; the message names the file and the line."""


@dataclass(frozen=True)
class AnnotationRow:
    """One video as an annotation file describes it (intervals in the damvad convention)."""

    name: str
    label: int
    category: str
    frames: int | None = None
    intervals: tuple[Interval, ...] | None = None  # None: no frame-level labels in this file
    line: int = 0


# --------------------------------------------------------------------------- resource access


def _resource(dataset: str, *parts: str):
    res = resources.files("damvad") / "data" / "annotations" / dataset
    for part in parts:  # one segment at a time: Traversable.joinpath takes one argument on 3.10
        res = res / part
    return res


def resource_label(dataset: str, *parts: str) -> str:
    """A readable name for a shipped file, used in error messages."""
    return "damvad/data/annotations/" + "/".join((dataset, *parts))


def read_resource_text(dataset: str, filename: str) -> str:
    """Text of a shipped annotation file (works from an installed package)."""
    res = _resource(dataset, filename)
    try:
        return res.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise DatasetError(
            f"{resource_label(dataset, filename)}: shipped annotation file is missing"
        ) from exc


def shanghaitech_mask_names() -> list[str]:
    """Names of the videos with a shipped ShanghaiTech frame mask."""
    folder = _resource(SHANGHAITECH, "test_frame_mask")
    return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".npy"))


def load_shanghaitech_mask(name: str) -> np.ndarray:
    """The per-frame boolean labels of a ShanghaiTech anomalous video (its length = the frame count)."""
    label = resource_label(SHANGHAITECH, "test_frame_mask", f"{name}.npy")
    res = _resource(SHANGHAITECH, "test_frame_mask", f"{name}.npy")
    try:
        with res.open("rb") as fh:
            mask = np.load(fh, allow_pickle=False)
    except FileNotFoundError as exc:
        raise DatasetError(f"{label}: no frame mask for ShanghaiTech video {name!r}") from exc
    except ValueError as exc:
        raise AnnotationError(f"{label}: unreadable frame mask ({exc})") from exc
    return validate_mask(mask, label)


def validate_mask(mask: np.ndarray, source: str) -> np.ndarray:
    """A 1-D 0/1 array as bool; anything else is an annotation error naming ``source``."""
    mask = np.asarray(mask)
    if mask.ndim != 1 or mask.size == 0:
        raise AnnotationError(f"{source}: frame mask must be a non-empty 1-D array, got shape {mask.shape}")
    if mask.dtype != bool:
        if not np.issubdtype(mask.dtype, np.number) or not np.isin(mask, (0, 1)).all():
            raise AnnotationError(f"{source}: frame mask must hold only 0 and 1")
    return mask.astype(bool)


# --------------------------------------------------------------------------- helpers


def _lines(text: str) -> Iterable[tuple[int, list[str]]]:
    """(1-based line number, whitespace-split fields) of each non-blank, non-comment line."""
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield lineno, line.split()


def _int(value: str, source: str, lineno: int, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise AnnotationError(f"{source}:{lineno}: {what} {value!r} is not an integer") from None


def _stem(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return base[:-4] if base.lower().endswith(".mp4") else base


def _check_unique(rows: Sequence[AnnotationRow], source: str) -> None:
    seen: dict[str, int] = {}
    for row in rows:
        if row.name in seen:
            raise AnnotationError(
                f"{source}:{row.line}: video {row.name!r} is listed twice (first on line {seen[row.name]})"
            )
        seen[row.name] = row.line


def check_intervals(intervals: Sequence[Interval], source: str, where: str = "") -> tuple[Interval, ...]:
    """Sort and validate 0-based [start, end) intervals: start >= 0, end > start, no overlap."""
    out = sorted((int(s), int(e)) for s, e in intervals)
    prefix = f"{source}{where}"
    for s, e in out:
        if s < 0 or e <= s:
            raise AnnotationError(
                f"{prefix}: interval [{s}, {e}) is empty or negative (need 0 <= start < end)"
            )
    for (s0, e0), (s1, e1) in zip(out, out[1:], strict=False):
        if s1 < e0:
            raise AnnotationError(f"{prefix}: intervals [{s0}, {e0}) and [{s1}, {e1}) overlap")
    return tuple(out)


# --------------------------------------------------------------------------- UCF-Crime


def parse_ucf_test(text: str, source: str = "ucf-crime/test_annotations.txt") -> list[AnnotationRow]:
    """``NAME.mp4 CLASS s1 e1 s2 e2 FRAMES`` (1-based inclusive, -1 = no interval) -> rows."""
    rows = []
    for lineno, f in _lines(text):
        if len(f) != 7:
            raise AnnotationError(
                f"{source}:{lineno}: expected 7 fields (name class start1 end1 start2 end2 frames), "
                f"got {len(f)}"
            )
        name, category = _stem(f[0]), f[1]
        nums = [
            _int(v, source, lineno, w)
            for v, w in zip(f[2:], ("start1", "end1", "start2", "end2", "frames"), strict=True)
        ]
        frames = nums[4]
        if frames <= 0:
            raise AnnotationError(f"{source}:{lineno}: frame count {frames} must be positive")
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
    _check_unique(rows, source)
    return rows


def parse_ucf_train(text: str, source: str = "ucf-crime/train_videos.txt") -> list[AnnotationRow]:
    """``CLASS_FOLDER/NAME.mp4 FRAMES`` -> rows (no frame labels: training is weakly supervised)."""
    rows = []
    for lineno, f in _lines(text):
        if len(f) != 2:
            raise AnnotationError(f"{source}:{lineno}: expected 2 fields (path frames), got {len(f)}")
        path, frames = f[0], _int(f[1], source, lineno, "frame count")
        if frames <= 0:
            raise AnnotationError(f"{source}:{lineno}: frame count {frames} must be positive")
        folder = path.replace("\\", "/").split("/")[0] if "/" in path else ""
        if not folder:
            raise AnnotationError(f"{source}:{lineno}: path {path!r} has no class folder")
        label = 0 if "normal" in folder.lower() else 1
        rows.append(
            AnnotationRow(_stem(path), label, "Normal" if label == 0 else folder, frames, None, lineno)
        )
    _check_unique(rows, source)
    return rows


# --------------------------------------------------------------------------- ShanghaiTech


def _csv_rows(text: str) -> Iterable[tuple[int, list[str]]]:
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        yield lineno, cells


def _label01(value: str, source: str, lineno: int) -> int:
    if value not in ("0", "1"):
        raise AnnotationError(f"{source}:{lineno}: label {value!r} must be 0 (normal) or 1 (anomalous)")
    return int(value)


def parse_shanghaitech_train(text: str, source: str = "shanghaitech/train.csv") -> list[AnnotationRow]:
    """``name,label`` rows."""
    rows = []
    for lineno, cells in _csv_rows(text):
        if len(cells) != 2:
            raise AnnotationError(f"{source}:{lineno}: expected 2 fields (name,label), got {len(cells)}")
        label = _label01(cells[1], source, lineno)
        rows.append(AnnotationRow(cells[0], label, "Anomaly" if label else "Normal", None, None, lineno))
    _check_unique(rows, source)
    return rows


def parse_shanghaitech_test(text: str, source: str = "shanghaitech/test.csv") -> list[AnnotationRow]:
    """``name,label,frames`` rows; frames is -1 for anomalous videos (their mask gives the length)."""
    rows = []
    for lineno, cells in _csv_rows(text):
        if len(cells) != 3:
            raise AnnotationError(
                f"{source}:{lineno}: expected 3 fields (name,label,frames), got {len(cells)}"
            )
        label = _label01(cells[1], source, lineno)
        frames = _int(cells[2], source, lineno, "frame count")
        if label == 0 and frames <= 0:
            raise AnnotationError(
                f"{source}:{lineno}: normal video {cells[0]!r} needs a positive frame count"
            )
        if label == 1 and frames != -1 and frames <= 0:
            raise AnnotationError(f"{source}:{lineno}: frame count {frames} must be positive or -1")
        rows.append(
            AnnotationRow(
                cells[0],
                label,
                "Anomaly" if label else "Normal",
                frames if frames > 0 else None,
                () if label == 0 else None,
                lineno,
            )
        )
    _check_unique(rows, source)
    return rows


# --------------------------------------------------------------------------- XD-Violence


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
    for lineno, f in _lines(text):
        if len(f) != 1:
            raise AnnotationError(f"{source}:{lineno}: expected one video name per line, got {len(f)} fields")
        name = _stem(f[0])
        if "label_" not in name:
            raise AnnotationError(f"{source}:{lineno}: video name {name!r} has no '_label_' class code")
        rows.append(AnnotationRow(name, xd_label(name), xd_category(name), None, None, lineno))
    _check_unique(rows, source)
    return rows


def parse_xd_test_annotations(
    text: str, source: str = "xd-violence/test_annotations.txt"
) -> dict[str, tuple[Interval, ...]]:
    """``NAME s1 e1 s2 e2 ...`` (0-based, end exclusive) -> {name: intervals}."""
    out: dict[str, tuple[Interval, ...]] = {}
    lines: dict[str, int] = {}
    for lineno, f in _lines(text):
        name, nums = _stem(f[0]), f[1:]
        if not nums or len(nums) % 2:
            raise AnnotationError(
                f"{source}:{lineno}: expected a name then start/end pairs, got {len(nums)} numbers"
            )
        vals = [_int(v, source, lineno, "frame") for v in nums]
        if name in out:
            raise AnnotationError(
                f"{source}:{lineno}: video {name!r} is listed twice (first on line {lines[name]})"
            )
        out[name] = check_intervals(list(zip(vals[0::2], vals[1::2], strict=True)), source, f":{lineno}")
        lines[name] = lineno
    return out


# --------------------------------------------------------------------------- user datasets


def parse_interval_csv(text: str, source: str) -> dict[str, tuple[Interval, ...]]:
    """A user's ``annotations.csv``: header ``name,start,end``, 0-based end-exclusive, rows may repeat."""
    acc: dict[str, list[Interval]] = {}
    first: dict[str, int] = {}
    header_seen = False
    for lineno, cells in _csv_rows(text):
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
        s = _int(cells[1], source, lineno, "start")
        e = _int(cells[2], source, lineno, "end")
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


# --------------------------------------------------------------------------- masks


def intervals_to_mask(intervals: Iterable[Interval], num_frames: int) -> np.ndarray:
    """Boolean frame labels of length ``num_frames``; intervals are clipped to ``[0, num_frames)``."""
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    gt = np.zeros(int(num_frames), dtype=bool)
    for s, e in intervals:
        gt[max(int(s), 0) : min(int(e), num_frames)] = True
    return gt


def mask_to_intervals(mask: np.ndarray) -> list[Interval]:
    """Inverse of :func:`intervals_to_mask`: the maximal runs of True as [start, end)."""
    m = np.asarray(mask, dtype=bool).astype(np.int8)
    edges = np.diff(np.concatenate(([0], m, [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return [(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]
