"""Figures people look at rather than read: ROC curves (paper Fig. 4) and score timelines (Fig. 3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    from damvad.utils import atomic_open

    path = Path(path)
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format=path.suffix.lstrip(".") or "png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return path


def roc_plot(curves: Mapping[str, tuple[np.ndarray, np.ndarray, float]], path: str | Path,
             title: str = "Frame-level ROC") -> Path:
    """Overlay ROC curves; ``curves`` maps a label to (fpr, tpr, auc)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 5))
    for label, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, lw=1.6, label=f"{label} (AUC {100 * auc:.2f}%)")
    ax.plot([0, 1], [0, 1], ls=":", c="grey", lw=1)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _spans(mask: np.ndarray) -> list[tuple[int, int]]:
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return []
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True))


def timeline_plot(
    scores: np.ndarray,
    path: str | Path,
    title: str = "",
    ground_truth: np.ndarray | None = None,
    clip_attention: np.ndarray | None = None,
    threshold: float | None = None,
    events: Sequence[tuple[int, int]] = (),
    times: np.ndarray | None = None,
) -> Path:
    """Per-frame score (and Clip_A) with ground-truth frames shaded and alert events marked; against each
    frame's time in seconds when ``times`` are given (detect: from the frames' timestamps), else frames."""
    plt = _plt()
    n = len(scores)
    x = np.asarray(times, dtype=np.float64) if times is not None else np.arange(n)
    fig, ax = plt.subplots(figsize=(8, 2.6))
    if ground_truth is not None:
        for i, (s, e) in enumerate(_spans(ground_truth)):
            ax.axvspan(x[s], x[e - 1], color="tab:red", alpha=0.18, lw=0, label="ground truth" if i == 0 else None)
    for i, (s, e) in enumerate(events):
        e = min(e, n) - 1
        ax.axvspan(x[s], x[max(s, e)], ymin=0.95, ymax=1.0, color="tab:orange", lw=0,
                   label="alert" if i == 0 else None)
    ax.plot(x, scores, c="tab:blue", lw=1.4, label="anomaly score D")
    if clip_attention is not None:
        ax.plot(x, clip_attention, c="tab:green", lw=1.0, ls="--", label="Clip_A")
    if threshold is not None:
        ax.axhline(threshold, c="k", lw=0.8, ls=":", label=f"threshold {threshold:.3f}")
    ax.set(ylim=(-0.02, 1.05), xlim=(x[0], x[-1] if n > 1 else 1), title=title,
           xlabel="seconds" if times is not None else "frame", ylabel="score")
    ax.legend(loc="upper left", fontsize=7, ncol=5, framealpha=0.8)
    ax.grid(alpha=0.3)
    return _save(fig, path)
