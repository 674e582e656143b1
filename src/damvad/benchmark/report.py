"""What a benchmark run learned, beyond one frame AUC over all videos concatenated.

* **Ranking**: video AUC (a video's max score against its label) -- per-video offsets decide much of the
  concatenated frame AUC.
* **Localisation**: the frame AUC *inside* each anomalous video, averaged over videos
  (:func:`damvad.metrics.per_video_auc`, as ``damvad evaluate`` reports it).
* **Detection per event kind**: an event counts as detected when a frame of it reaches the calibrated
  threshold.
* **Seen vs unseen cameras**: frame AUC over the videos of cameras the training split had, and of those
  it did not (synth-ucf-v2 keeps some cameras for the test split only).
* **Bootstrap intervals over test videos** (videos resampled with replacement within each label), for
  each row's seed mean and for its difference to the baseline on the same resamples.

Frame scores are piecewise constant (one value per snippet or clip), so each video is kept as runs of
equal (score, label): the AUC of any set of videos is computed from those runs, exactly as sklearn's
``roc_auc_score`` on the frames (ties count one half), at a fraction of the cost.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

Runs = dict[str, np.ndarray]  # video -> (k, 3) rows of (score, anomalous frames, normal frames)


def frame_runs(scores: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """One video's frames as runs of equal (score, label): rows ``(score, positives, negatives)``."""
    scores = np.asarray(scores, np.float64)
    gt = np.asarray(gt, bool)
    if scores.shape != gt.shape:
        raise ValueError(f"frame_runs: {scores.shape[0]} scores for {gt.shape[0]} labels")
    if scores.size == 0:
        return np.zeros((0, 3))
    cut = np.flatnonzero((scores[1:] != scores[:-1]) | (gt[1:] != gt[:-1])) + 1
    starts = np.concatenate([[0], cut])
    lengths = np.diff(np.concatenate([starts, [scores.size]]))
    pos = np.where(gt[starts], lengths, 0)
    return np.stack([scores[starts], pos, lengths - pos], 1).astype(np.float64)


def grouped_auc(rows: np.ndarray) -> float:
    """ROC AUC of weighted scores, rows ``(score, positives, negatives)``: P(pos > neg) + P(tie) / 2.
    NaN when one class is absent."""
    if rows.size == 0:
        return float("nan")
    values, inverse = np.unique(rows[:, 0], return_inverse=True)
    pos = np.bincount(inverse, rows[:, 1], minlength=len(values))
    neg = np.bincount(inverse, rows[:, 2], minlength=len(values))
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    below = np.cumsum(neg) - neg
    return float((pos * (below + 0.5 * neg)).sum() / (n_pos * n_neg))


def runs_of(scores: dict[str, np.ndarray], gt: dict[str, np.ndarray]) -> Runs:
    return {name: frame_runs(scores[name], gt[name]) for name in scores}


def auc_over(runs: Runs, names: list[str]) -> float:
    return grouped_auc(np.concatenate([runs[n] for n in names])) if names else float("nan")


def detections(scores: dict[str, np.ndarray], events: dict[str, list[dict[str, Any]]], threshold: float
               ) -> dict[str, dict[str, int]]:
    """Per event kind: ``{"events": n, "detected": k}``, detected when a frame of the event reaches the threshold."""
    out: dict[str, dict[str, int]] = {}
    for name, evs in events.items():
        if name not in scores:
            continue
        for ev in evs:
            seg = scores[name][int(ev["start_frame"]):int(ev["end_frame"])]
            row = out.setdefault(ev["kind"], {"events": 0, "detected": 0})
            row["events"] += 1
            row["detected"] += int(seg.size > 0 and float(seg.max()) >= threshold)
    return dict(sorted(out.items()))


def video_facts(data_root: str | Path, split: str) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
    """(events per video, camera group per video: ``seen`` / ``unseen`` / ``""``) of a generated split, from
    its ``synth.json`` (a folder without one has neither)."""
    path = Path(data_root) / "synth.json"
    if not path.is_file():
        return {}, {}
    manifest = json.loads(path.read_text())
    videos = [v for v in manifest["videos"] if v["split"] == split]
    events = {v["name"]: list(v.get("events") or []) for v in videos}
    groups = {v["name"]: ("unseen" if str(v.get("camera", "")).startswith("new") else "seen") if v.get("camera") else ""
              for v in videos}
    return events, groups


def bootstrap_resamples(labels: dict[str, int], n: int, seed: int = 0) -> list[list[str]]:
    """``n`` resamples of the videos, with replacement within each label (both classes always present)."""
    rng = np.random.default_rng(seed)
    by_label = [sorted(k for k, v in labels.items() if v == c) for c in (0, 1)]
    out = []
    for _ in range(n):
        sample: list[str] = []
        for members in by_label:
            if members:
                sample += [members[i] for i in rng.integers(0, len(members), len(members))]
        out.append(sample)
    return out


def interval(values: np.ndarray, level: float = 0.95) -> dict[str, float]:
    lo, hi = np.nanpercentile(values, [50 * (1 - level), 50 * (1 + level)])
    return {"low": float(lo), "high": float(hi), "half_width": float((hi - lo) / 2)}


def bootstrap_rows(row_runs: dict[str, list[Runs]], resamples: list[list[str]], baseline: str
                   ) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """(per row: 95 % interval of the seed-mean frame AUC over video resamples; per row but the baseline:
    the interval of its difference to the baseline on the same resamples)."""
    means = {}
    for label, seeds in row_runs.items():
        means[label] = np.array([np.mean([auc_over(r, sample) for r in seeds]) for sample in resamples])
    rows = {label: interval(m) for label, m in means.items()}
    diffs = {label: {"mean": float(np.nanmean(m - means[baseline])), **interval(m - means[baseline])}
             for label, m in means.items() if label != baseline and baseline in means}
    return rows, diffs
