"""Frame-level evaluation: scores onto frames, ROC AUC, AP (two ways), false-alarm rates, video AUC.

Pure numpy / scikit-learn, no I/O. Conventions follow the field so numbers are comparable: one ROC
AUC over all test frames of all videos concatenated (as Sultani et al. and DAM's released code do),
AP by ``sklearn.metrics.average_precision_score`` (XD-Violence), and Sultani's false-alarm rate:
the fraction of frames of *normal* videos whose score is >= the threshold (0.5 by default).
Rates are fractions (0.01 = 1 %), not percentages.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from sklearn.metrics import auc as _trapezoid_auc
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

__all__ = [
    "average_precision",
    "average_precision_trapezoid",
    "evaluate_scores",
    "false_alarm_rate",
    "frame_auc",
    "mean_per_video_auc",
    "per_video_auc",
    "roc_curve_points",
    "threshold_for_far",
    "video_level_auc",
]


# --------------------------------------------------------------------------- validation


def _scores(name: str, values: object) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"video {name!r}: scores must be 1-D (one per frame), got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"video {name!r}: {int(bad.sum())} score(s) are NaN or infinite (first at frame {idx})"
        )
    return arr


def _labels(name: str, values: object) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"video {name!r}: labels must be 1-D (one per frame), got shape {arr.shape}")
    if arr.dtype != bool and not np.isin(arr, (0, 1)).all():
        raise ValueError(f"video {name!r}: frame labels must be 0/1 or bool")
    return arr.astype(bool)


def _paired(
    scores_by_video: Mapping[str, object], labels_by_video: Mapping[str, object]
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Validated (name, scores, labels) per video, sorted by name; the key sets must match."""
    missing = sorted(set(labels_by_video) - set(scores_by_video))
    extra = sorted(set(scores_by_video) - set(labels_by_video))
    if missing:
        raise ValueError(
            f"no scores for {len(missing)} labelled video(s): {', '.join(missing[:10])}"
            + (" ..." if len(missing) > 10 else "")
        )
    if extra:
        raise ValueError(
            f"scores for {len(extra)} video(s) without labels: {', '.join(extra[:10])}"
            + (" ..." if len(extra) > 10 else "")
        )
    if not labels_by_video:
        raise ValueError("no videos to evaluate")
    out = []
    for name in sorted(labels_by_video):
        s = _scores(name, scores_by_video[name])
        y = _labels(name, labels_by_video[name])
        if s.shape != y.shape:
            raise ValueError(f"video {name!r}: {s.size} scores but {y.size} frame labels")
        out.append((name, s, y))
    return out


def _concat(
    scores_by_video: Mapping[str, object], labels_by_video: Mapping[str, object]
) -> tuple[np.ndarray, np.ndarray]:
    pairs = _paired(scores_by_video, labels_by_video)
    return np.concatenate([p[1] for p in pairs]), np.concatenate([p[2] for p in pairs])


def _both_classes(y: np.ndarray, what: str) -> None:
    if y.all() or not y.any():
        raise ValueError(
            f"{what} is undefined: all {y.size} frames are {'anomalous' if y.all() else 'normal'}"
        )


# --------------------------------------------------------------------------- frame-level metrics


def frame_auc(scores_by_video: Mapping[str, object], labels_by_video: Mapping[str, object]) -> float:
    """ROC AUC over all frames of all videos concatenated (the field's protocol)."""
    s, y = _concat(scores_by_video, labels_by_video)
    _both_classes(y, "frame AUC")
    return float(roc_auc_score(y, s))


def roc_curve_points(
    scores_by_video: Mapping[str, object], labels_by_video: Mapping[str, object]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) of the concatenated frames, for plotting."""
    s, y = _concat(scores_by_video, labels_by_video)
    _both_classes(y, "ROC curve")
    fpr, tpr, thr = roc_curve(y, s)
    return fpr, tpr, thr


def average_precision(scores_by_video: Mapping[str, object], labels_by_video: Mapping[str, object]) -> float:
    """AP as ``sklearn.metrics.average_precision_score`` (step-wise sum; the default here)."""
    s, y = _concat(scores_by_video, labels_by_video)
    if not y.any():
        raise ValueError("average precision is undefined: no anomalous frames")
    return float(average_precision_score(y, s))


def average_precision_trapezoid(
    scores_by_video: Mapping[str, object], labels_by_video: Mapping[str, object]
) -> float:
    """AP as area under the PR curve by the trapezoid rule, ``auc(recall, precision)``.

    Several XD-Violence codebases report this one; it is usually a little higher than
    :func:`average_precision`, so say which one a number is.
    """
    s, y = _concat(scores_by_video, labels_by_video)
    if not y.any():
        raise ValueError("average precision is undefined: no anomalous frames")
    precision, recall, _ = precision_recall_curve(y, s)
    return float(_trapezoid_auc(recall, precision))


def _flat_scores(scores: Mapping[str, object] | Sequence[float] | np.ndarray) -> np.ndarray:
    if isinstance(scores, Mapping):
        if not scores:
            raise ValueError("no normal videos given")
        return np.concatenate([_scores(n, scores[n]) for n in sorted(scores)])
    arr = _scores("<scores>", np.ravel(np.asarray(scores, dtype=np.float64)))
    if arr.size == 0:
        raise ValueError("no scores given")
    return arr


def false_alarm_rate(
    normal_scores: Mapping[str, object] | Sequence[float] | np.ndarray, threshold: float = 0.5
) -> float:
    """Fraction of frames of normal videos with score >= ``threshold`` (Sultani et al.)."""
    s = _flat_scores(normal_scores)
    return float(np.count_nonzero(s >= threshold) / s.size)


def threshold_for_far(
    normal_scores: Mapping[str, object] | Sequence[float] | np.ndarray, rate: float
) -> float:
    """The threshold whose false-alarm rate on these normal frames is at most ``rate``, as low as possible.

    With N frames at most k = floor(rate * N) may reach it; the threshold sits midway between the
    (k+1)-th largest score and the next larger distinct score, so the rate holds with ``>=`` and
    small perturbations of the scores do not flip it. When even the top score must stay below, the
    threshold is just above the maximum. Calibrate on held-out normal videos, not on the test set.
    """
    if not 0.0 <= rate <= 1.0 or math.isnan(rate):
        raise ValueError(f"rate must be a fraction in [0, 1], got {rate}")
    s = np.sort(_flat_scores(normal_scores))[::-1]  # descending
    n = s.size
    k = int(math.floor(rate * n + 1e-9))
    if k >= n:
        return float(s[-1])
    below = s[k]  # the (k+1)-th largest: must be excluded
    higher = s[:k][s[:k] > below]
    if higher.size:
        return float((below + higher[-1]) / 2.0)
    return float(below + 1e-6 * max(abs(below), 1.0))


# --------------------------------------------------------------------------- per-video and video-level


def per_video_auc(
    scores_by_video: Mapping[str, object], labels_by_video: Mapping[str, object]
) -> dict[str, float]:
    """ROC AUC inside each video; NaN for videos whose frames are all one class."""
    out = {}
    for name, s, y in _paired(scores_by_video, labels_by_video):
        out[name] = float(roc_auc_score(y, s)) if (y.any() and not y.all()) else float("nan")
    return out


def mean_per_video_auc(aucs: Mapping[str, float]) -> tuple[float, int]:
    """(mean over videos where it is defined, how many such videos); (NaN, 0) when none."""
    vals = np.array([v for v in aucs.values() if not math.isnan(v)], dtype=np.float64)
    return (float(vals.mean()) if vals.size else float("nan"), int(vals.size))


def video_level_auc(scores_by_video: Mapping[str, object], video_labels: Mapping[str, int]) -> float:
    """ROC AUC of each video's max score against its video label (0 normal / 1 anomalous).

    Needs only video labels, so it can select models on held-out *training* videos.
    """
    missing = sorted(set(video_labels) - set(scores_by_video))
    if missing:
        raise ValueError(f"no scores for {len(missing)} video(s): {', '.join(missing[:10])}")
    names = sorted(video_labels)
    y = np.array([int(video_labels[n]) for n in names])
    if not np.isin(y, (0, 1)).all():
        raise ValueError("video labels must be 0 (normal) or 1 (anomalous)")
    top = []
    for n in names:
        s = _scores(n, np.atleast_1d(np.asarray(scores_by_video[n], dtype=np.float64)).ravel())
        if s.size == 0:
            raise ValueError(f"video {n!r}: no scores")
        top.append(s.max())
    if y.all() or not y.any():
        raise ValueError(f"video-level AUC is undefined: all {y.size} videos have label {int(y[0])}")
    return float(roc_auc_score(y, np.array(top)))


# --------------------------------------------------------------------------- everything


def _none_if_nan(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def evaluate_scores(
    scores_by_video: Mapping[str, object],
    labels_by_video: Mapping[str, object],
    video_labels: Mapping[str, int],
    far_rates: Iterable[float] = (0.01, 0.05),
    far_threshold: float = 0.5,
) -> dict:
    """Every number of a test evaluation, JSON-serialisable (undefined values are None).

    Keys: num_videos, num_normal_videos, num_frames, num_anomalous_frames, frame_auc, frame_ap,
    frame_ap_trapezoid, far_at_threshold {threshold, far}, far_targets [{rate, threshold, far, tpr}]
    (thresholds set on these normal videos' frames: a test-set oracle, for reporting only),
    per_video_auc {name: auc|None}, per_video_auc_mean, per_video_auc_count, video_auc.
    """
    pairs = _paired(scores_by_video, labels_by_video)
    missing = sorted(n for n, _, _ in pairs if n not in video_labels)
    if missing:
        raise ValueError(f"no video label for {len(missing)} video(s): {', '.join(missing[:10])}")
    for name, _, y in pairs:
        if int(video_labels[name]) not in (0, 1):
            raise ValueError(f"video {name!r}: video label {video_labels[name]!r} must be 0 or 1")
        if int(video_labels[name]) == 0 and y.any():
            raise ValueError(f"video {name!r} is labelled normal but has {int(y.sum())} anomalous frames")
    s = np.concatenate([p[1] for p in pairs])
    y = np.concatenate([p[2] for p in pairs])
    both = bool(y.any() and not y.all())
    normal = {n: sc for n, sc, _ in pairs if int(video_labels[n]) == 0}
    out: dict = {
        "num_videos": len(pairs),
        "num_normal_videos": len(normal),
        "num_frames": int(y.size),
        "num_anomalous_frames": int(y.sum()),
        "frame_auc": float(roc_auc_score(y, s)) if both else None,
        "frame_ap": float(average_precision_score(y, s)) if y.any() else None,
        "frame_ap_trapezoid": None,
    }
    if y.any():
        precision, recall, _ = precision_recall_curve(y, s)
        out["frame_ap_trapezoid"] = float(_trapezoid_auc(recall, precision))
    targets = []
    if normal:
        normal_flat = np.concatenate(list(normal.values()))
        out["far_at_threshold"] = {
            "threshold": float(far_threshold),
            "far": false_alarm_rate(normal_flat, far_threshold),
        }
        for rate in far_rates:
            t = threshold_for_far(normal_flat, float(rate))
            targets.append(
                {
                    "rate": float(rate),
                    "threshold": t,
                    "far": false_alarm_rate(normal_flat, t),
                    "tpr": float(np.count_nonzero(s[y] >= t) / y.sum()) if y.any() else None,
                }
            )
    else:
        out["far_at_threshold"] = {"threshold": float(far_threshold), "far": None}
    out["far_targets"] = targets
    pv = {
        n: float(roc_auc_score(yy, sc)) if (yy.any() and not yy.all()) else float("nan")
        for n, sc, yy in pairs
    }
    mean, count = mean_per_video_auc(pv)
    out["per_video_auc"] = {n: _none_if_nan(v) for n, v in pv.items()}
    out["per_video_auc_mean"] = _none_if_nan(mean)
    out["per_video_auc_count"] = count
    labels = [int(video_labels[n]) for n, _, _ in pairs]
    out["video_auc"] = (
        video_level_auc({n: sc for n, sc, _ in pairs}, {n: video_labels[n] for n, _, _ in pairs})
        if 0 < sum(labels) < len(labels)
        else None
    )
    return out
