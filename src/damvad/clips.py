"""Temporal clip generation (paper section 3.1): snippets -> a fixed number of max-pooled clips.

A video is cut into S snippets of ``snippet_len`` (64) frames every ``stride`` frames (default 64: the
paper's non-overlapping snippets, the last one partial and padded by repeating its last frame, so
``S = ceil(num_frames / snippet_len)``; the layout and its tail rule: :mod:`damvad.snippets`). Training
and offline scoring group the S snippet maps into C
clips and max-pool each group element-wise (section 3.2); live scoring groups them causally in
fixed-size groups (:func:`online_clips`). Everything here works on numpy arrays and torch tensors.

Differences from the released code (github snehashismajhi/DAM-Anomaly-Detection, ``DL_TRAIN.py``):

* clip ``i`` of ``C`` covers snippets ``[(i*S)//C, ((i+1)*S)//C)``, so every snippet is in exactly one
  clip and no clip is empty. The released loader pools ``[i*j, (i+1)*j)`` with ``j = S//C`` for the
  first C-1 clips and ``[S - C*j, S)`` for the last one, which overlaps the others and drops the
  snippets in between; that bug is not reproduced.
* videos shorter than C snippets repeat the last snippet, as the released code does.
* snippet maps are pooled in the dtype they are stored in (float16 stays float16: a max is exact).
* scores are mapped back to exact frames (:func:`clip_frame_ranges`, :func:`clip_scores_to_frames`)
  instead of ``floor(frames / C)`` frames per clip: the frames a clip covers with non-overlapping
  snippets; with overlapping ones, the frames since the previous clip's end (:mod:`damvad.snippets`).
"""

from __future__ import annotations

import warnings
from typing import TypeVar

import numpy as np
import torch

from damvad.snippets import owned_frame_ranges, snippet_ranges
from damvad.video import SNIPPET_LEN  # noqa: F401  (re-exported: the snippet length clips are made of)

ArrayLike = TypeVar("ArrayLike", np.ndarray, torch.Tensor)



def _check_positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return int(value)


def clip_boundaries(num_snippets: int, num_clips: int) -> np.ndarray:
    """(num_clips, 2) int64 ``[start, end)`` snippet indices of each clip.

    S >= C: edges ``(i*S)//C`` partition the snippets into C non-empty, contiguous clips whose sizes
    differ by at most one. S < C: clip ``i`` is the single snippet ``min(i, S-1)`` (the last snippet is
    repeated, as in the released code).
    """
    if num_snippets == 0:
        raise ValueError("cannot make clips from a video with 0 snippets")
    s = _check_positive("num_snippets", num_snippets)
    c = _check_positive("num_clips", num_clips)
    if s >= c:
        edges = (np.arange(c + 1, dtype=np.int64) * s) // c
        return np.stack([edges[:-1], edges[1:]], axis=1)
    start = np.minimum(np.arange(c, dtype=np.int64), s - 1)
    return np.stack([start, start + 1], axis=1)


def online_clip_boundaries(num_snippets: int, snippets_per_clip: int = 1) -> np.ndarray:
    """``[start, end)`` snippet indices of consecutive groups of k snippets; the last may be shorter.

    Causal: clip ``i`` uses snippets up to ``end_i`` only, so it can be scored as soon as they exist.
    """
    if num_snippets == 0:
        raise ValueError("cannot make clips from a video with 0 snippets")
    s = _check_positive("num_snippets", num_snippets)
    k = _check_positive("snippets_per_clip", snippets_per_clip)
    starts = np.arange(0, s, k, dtype=np.int64)
    return np.stack([starts, np.minimum(starts + k, s)], axis=1)


def _pool_boundaries(features: ArrayLike, bounds: np.ndarray) -> ArrayLike:
    """Element-wise max over axis 0 within each ``[start, end)`` row of ``bounds``.

    ``bounds`` either partitions the snippets or makes every clip a single snippet (short videos).

    The work is memory-bound (one read of the input), so the fastest form was measured per case:
    numpy runs one vectorised ``maximum.reduce`` per clip into a preallocated output (faster here than
    ``maximum.reduceat``, which is slow along axis 0 of multi-dimensional arrays); CPU tensors that need
    no gradient share memory with numpy and take the same path; other tensors use one
    ``index_reduce(amax)``, which carries gradients and runs on any device.
    """
    starts, ends = bounds[:, 0], bounds[:, 1]
    lengths = ends - starts
    if np.all(lengths == 1):  # short videos: every clip is a single (possibly repeated) snippet
        return features[torch.from_numpy(starts) if isinstance(features, torch.Tensor) else starts]
    if not (np.all(starts[1:] == ends[:-1]) and starts[0] == 0 and ends[-1] == features.shape[0]):
        raise AssertionError("internal: clips must partition the snippets")  # pragma: no cover
    if isinstance(features, torch.Tensor):
        if (features.device.type == "cpu" and not (torch.is_grad_enabled() and features.requires_grad)
                and features.dtype in (torch.float32, torch.float64, torch.float16)):
            return torch.from_numpy(_pool_boundaries(features.detach().numpy(), bounds))
        segment = torch.from_numpy(np.repeat(np.arange(len(bounds)), lengths)).to(features.device)
        out = features.new_empty((len(bounds), *features.shape[1:]))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*index_reduce.*")
            return out.index_reduce(0, segment, features, "amax", include_self=False)
    out = np.empty((len(bounds), *features.shape[1:]), dtype=features.dtype)
    for i, (start, end) in enumerate(bounds):
        np.maximum.reduce(features[start:end], axis=0, out=out[i])
    return out


def _check_features(features: object, what: str) -> None:
    if not isinstance(features, (np.ndarray, torch.Tensor)):
        raise TypeError(f"{what}: expected a numpy array or torch tensor, got {type(features).__name__}")
    if features.ndim < 1 or features.shape[0] == 0:
        raise ValueError(f"{what}: expected features of shape (snippets, ...) with at least one snippet, "
                         f"got shape {tuple(features.shape)}")


def pool_clips(features: ArrayLike, num_clips: int) -> ArrayLike:
    """Max-pool snippet maps (S, ..., t, n) into ``num_clips`` clips (C, ..., t, n), same type and dtype.

    The clips follow :func:`clip_boundaries`; see ``_pool_boundaries`` for how it is kept fast.
    """
    _check_features(features, "pool_clips")
    return _pool_boundaries(features, clip_boundaries(int(features.shape[0]), num_clips))


def online_clips(features: ArrayLike, snippets_per_clip: int = 1) -> ArrayLike:
    """Causal clips for live scoring: max over consecutive groups of ``snippets_per_clip`` snippets.

    Returns ``ceil(S / k)`` clips; the last group may hold fewer than k snippets.
    """
    _check_features(features, "online_clips")
    return _pool_boundaries(features, online_clip_boundaries(int(features.shape[0]), snippets_per_clip))


def snippet_frame_ranges(num_frames: int, snippet_len: int = SNIPPET_LEN, stride: int | None = None) -> np.ndarray:
    """(S, 2) ``[start, end)`` frames of each snippet (:func:`damvad.snippets.snippet_ranges`): with the
    default stride (``snippet_len``) ``S = ceil(num_frames / snippet_len)``, the end of the last snippet
    clipped to ``num_frames`` (the extractor pads that snippet by repeating its last frame; the padding
    frames do not exist in the video)."""
    f = _check_positive("num_frames", num_frames)
    n = _check_positive("snippet_len", snippet_len)
    return snippet_ranges(f, n, stride)


def boundaries_to_frame_ranges(
    bounds: np.ndarray, num_frames: int, snippet_len: int = SNIPPET_LEN, stride: int | None = None
) -> np.ndarray:
    """Map snippet ``[start, end)`` rows to the ``[start, end)`` frames their score is given to: the frames
    they cover with non-overlapping snippets, the frames since the previous row's end with overlapping ones
    (:func:`damvad.snippets.owned_frame_ranges`)."""
    snippets = snippet_frame_ranges(num_frames, snippet_len, stride)
    bounds = np.asarray(bounds, dtype=np.int64)
    if bounds.ndim != 2 or bounds.shape[1] != 2:
        raise ValueError(f"expected (clips, 2) snippet boundaries, got shape {bounds.shape}")
    if bounds.size and (bounds.min() < 0 or bounds[:, 1].max() > len(snippets)
                        or np.any(bounds[:, 1] <= bounds[:, 0])):
        raise ValueError(f"snippet boundaries out of range for {num_frames} frames "
                         f"({len(snippets)} snippets of {snippet_len}) or empty")
    return owned_frame_ranges(snippets, bounds)


def clip_frame_ranges(num_frames: int, num_clips: int, snippet_len: int = SNIPPET_LEN,
                      stride: int | None = None) -> np.ndarray:
    """(C, 2) ``[start, end)`` frames of each of the C clips of a ``num_frames`` video (their scores' frames).

    When the video has fewer snippets than clips, the repeated clips cover the same (last) snippet,
    so their ranges overlap; :func:`clip_scores_to_frames` gives such frames the first clip's score.
    """
    num_snippets = len(snippet_frame_ranges(num_frames, snippet_len, stride))
    return boundaries_to_frame_ranges(clip_boundaries(num_snippets, num_clips), num_frames, snippet_len, stride)


def online_clip_frame_ranges(
    num_frames: int, snippets_per_clip: int = 1, snippet_len: int = SNIPPET_LEN, stride: int | None = None
) -> np.ndarray:
    """``[start, end)`` frames of each causal clip of :func:`online_clips` (their scores' frames)."""
    num_snippets = len(snippet_frame_ranges(num_frames, snippet_len, stride))
    bounds = online_clip_boundaries(num_snippets, snippets_per_clip)
    return boundaries_to_frame_ranges(bounds, num_frames, snippet_len, stride)


def clip_scores_to_frames(scores: np.ndarray, frame_ranges: np.ndarray, num_frames: int) -> np.ndarray:
    """Per-frame scores (num_frames,) from per-clip scores and their frame ranges: the one place that paints
    clip scores onto frames (evaluate, calibrate, detect's timelines and annotated videos).

    Each frame takes the score of the first clip that covers it (later clips covering the same frames
    only exist when the last snippet was repeated to fill C clips). Frames no clip covers are an error.
    """
    scores = np.asarray(scores)
    frame_ranges = np.asarray(frame_ranges, dtype=np.int64)
    if scores.ndim != 1 or frame_ranges.shape != (len(scores), 2):
        raise ValueError(f"expected scores (C,) and frame ranges (C, 2), got {scores.shape} and "
                         f"{frame_ranges.shape}")
    f = _check_positive("num_frames", num_frames)
    if not np.isfinite(scores).all():
        first = int(np.flatnonzero(~np.isfinite(scores))[0])
        raise ValueError(f"clip scores contain NaN or infinity (first at clip {first})")
    lengths = frame_ranges[:, 1] - frame_ranges[:, 0]
    if np.any(frame_ranges < 0) or np.any(frame_ranges > f) or np.any(lengths <= 0):
        raise ValueError(f"clip frame ranges out of [0, {f}] or empty")
    # Keep the first clip of every run of identical ranges, then paint the remaining disjoint ranges.
    keep = np.ones(len(scores), dtype=bool)
    keep[1:] = np.any(frame_ranges[1:] != frame_ranges[:-1], axis=1)
    kept, kept_scores = frame_ranges[keep], scores[keep]
    if np.any(kept[1:, 0] < kept[:-1, 1]):
        raise ValueError("clip frame ranges overlap other than by repetition")
    if kept[0, 0] != 0 or kept[-1, 1] != f or np.any(kept[1:, 0] != kept[:-1, 1]):
        raise ValueError(f"clip frame ranges do not cover all {f} frames contiguously")
    return np.repeat(kept_scores, kept[:, 1] - kept[:, 0])
