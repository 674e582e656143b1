"""The one frame-interval convention of damvad, and the masks and user files built on it.

Interval convention (the only place it is defined)
--------------------------------------------------
Inside damvad every anomalous interval is a pair ``(start, end)`` of **0-based frame indices, end
exclusive**: frames ``start, start + 1, ..., end - 1`` are anomalous, i.e. ``gt[start:end] = True``.
Frame ``i`` is the ``i``-th frame a decoder returns, counting from 0. Each source format is converted
to this convention when it is parsed, and nowhere else:

* **UCF-Crime** ``test_annotations.txt`` holds ``[start, end]`` frame numbers that are **1-based and
  inclusive**: the benchmark's own MATLAB evaluator (Sultani et al., ``Evaluate_Anomaly_Detector.m``)
  does ``GT(max(start,1):min(end,N)) = 1``. We therefore store ``(start - 1, end)``
  (:mod:`damvad.datasets.ucf_crime`; RTFM's ``make_gt.py`` instead reads them as 0-based inclusive,
  one frame later; repositories differ). Sixteen ends lie one or two frames past the file's own frame
  count; they are clipped.
* **XD-Violence** ``test_annotations.txt`` holds 0-based, end-exclusive pairs: the dataset authors'
  ``make_gt.py`` does ``gt[start:end] = 1`` (and several intervals start at frame 0). Stored as is
  (:mod:`damvad.datasets.xd_violence`).
* **ShanghaiTech** (Zhong et al. split) anomalous test videos come with a per-frame 0/1 mask
  (``test_frame_mask/NAME.npy``); its length is the video's frame count
  (:mod:`damvad.datasets.shanghaitech`).
* **User datasets**: ``test/annotations.csv`` with header ``name,start,end`` already uses this
  convention (0-based, end exclusive; several rows per video allowed):
  :func:`damvad.datasets.folder.parse_interval_csv`.

Intervals are clipped to the video's frame count when a frame mask is built
(:func:`intervals_to_mask`); how far an annotation may disagree with the decoded frame count is
decided in :meth:`damvad.datasets.Dataset.ground_truth`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from damvad.datasets.errors import AnnotationError

Interval = tuple[int, int]


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


def validate_mask(mask: np.ndarray, source: str) -> np.ndarray:
    """A 1-D 0/1 array as bool; anything else is an annotation error naming ``source``."""
    mask = np.asarray(mask)
    if mask.ndim != 1 or mask.size == 0:
        raise AnnotationError(f"{source}: frame mask must be a non-empty 1-D array, got shape {mask.shape}")
    if mask.dtype != bool:
        if not np.issubdtype(mask.dtype, np.number) or not np.isin(mask, (0, 1)).all():
            raise AnnotationError(f"{source}: frame mask must hold only 0 and 1")
    return mask.astype(bool)
