"""Checks that a feature folder fits a dataset, and the per-split summary table (``damvad dataset``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from damvad.datasets.base import FRAME_TOLERANCE, Dataset, VideoItem
from damvad.datasets.errors import DatasetError
from damvad.store import InconsistentRecordError

FEATURE_MAP_SHAPE = (7, 1024)


def check_features(
    dataset: Dataset, store: Any, split: str, crops: int | None = None, tolerance: int = FRAME_TOLERANCE,
    allow_missing: bool = False,
) -> list[str]:
    """Raise one :class:`DatasetError` listing every video of ``split`` with unusable features.

    Checked: both files present and readable, shape (the snippets of frames, crops, 7, 1024),
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
        video = store.load(item.name, raw=True)
        arr, frames = video.maps, video.frames  # loaded only when the record agrees with the file (its layout)
    except InconsistentRecordError as exc:
        return f"{exc.problem} ({store.json_path(item.name)})"
    except (KeyError, TypeError, ValueError, OSError, RuntimeError) as exc:
        return f"unreadable ({exc})"
    shape = tuple(arr.shape)
    if arr.dtype not in (np.float32, np.float16):
        return f"dtype {arr.dtype}, expected float32 or float16"
    if len(shape) != 4 or shape[2:] != FEATURE_MAP_SHAPE:
        return f"shape {shape}, expected (snippets, crops, 7, 1024)"
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


def missing_videos(dataset: Dataset, store: Any = None) -> list[VideoItem]:
    """The listed videos whose file is not there (a CSV row's path, relative to its folder) and whose features
    are not in ``store`` either: nothing could be extracted or trained from them."""
    return [item for item in dataset.items if item.path is not None and not item.path.exists()
            and (store is None or item.name not in store)]
