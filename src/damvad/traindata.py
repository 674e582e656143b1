"""The data a training run sees, and what it records of them: every video's clips pooled once, the held-out split,
the held-out AUC, the provenance of the training features. No optimiser here (:mod:`damvad.train`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from damvad.clips import pool_clips
from damvad.datasets import Dataset, check_features
from damvad.metrics import video_level_auc
from damvad.model import ClipScorer, DAMConfig, dissimilarity
from damvad.scoring import score_clips
from damvad.store import FeatureStore
from damvad.utils import provenance


@dataclass
class TrainData:
    """Training clips pooled once per video: (V, C, crops, t, n), and the video labels."""

    names: list[str]
    labels: np.ndarray
    clips: torch.Tensor

    @property
    def crops(self) -> int:
        return int(self.clips.shape[2])


def load_train_data(dataset: Dataset, store: FeatureStore, num_clips: int, progress: bool = True) -> TrainData:
    from damvad.progress import progress_bar

    items = dataset.videos("train")
    if not items:
        raise ValueError(f"{dataset.name}: no training videos")
    check_features(dataset, store, "train")
    labels = np.array([it.label for it in items], dtype=np.int64)
    if labels.min() == labels.max():
        raise ValueError(f"{dataset.name}: training needs both normal and anomalous videos")
    pooled = []
    for it in progress_bar(items, desc="pool clips", disable=not progress, unit="video"):
        maps = store.load(it.name).maps  # finite, float32
        pooled.append(torch.from_numpy(np.asarray(pool_clips(maps, num_clips))))
    clips = torch.stack(pooled)
    if clips.shape[2] > 1 and clips.numel() * 4 > 4 << 30:
        clips = clips.half()  # many crops of a large dataset: keep RAM in check
    return TrainData([it.name for it in items], labels, clips)


@torch.no_grad()
def dnt_scale_for(clips: torch.Tensor, config: DAMConfig) -> float:
    """1 / median |D_nt| over the clip pairs a model sees in ``clips`` (V, C, t, n), each clip with its
    predecessor (zeros before the first): the fixed scale that puts D_nt at ~1 for a DAM LSTM.

    When most entries are zero (short videos repeat their last snippet: identical clips), the median of
    the non-zero entries is used instead."""
    prev = torch.cat([torch.zeros_like(clips[:, :1]), clips[:, :-1]], dim=1)
    d_t, d_n = dissimilarity(clips, prev, config.dissimilarity_kind, config.cov_norm)  # type: ignore[arg-type]
    dnt = (d_t.unsqueeze(-1) * d_n.unsqueeze(-2)).abs().flatten().numpy()
    median = float(np.median(dnt))
    if median == 0 and np.any(dnt > 0):
        median = float(np.median(dnt[dnt > 0]))
    if not median > 0:
        raise ValueError("calibrate_dnt: the training clips' D_nt is zero (identical clips?)")
    return 1.0 / median


def stratified_subset(idx: np.ndarray, labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """``size`` of the videos ``idx`` (sorted), each class kept in proportion (at least one of each)."""
    if size >= len(idx):
        return idx
    rng = np.random.default_rng([seed, 0x5B])
    keep = []
    for cls in (0, 1):
        members = idx[labels[idx] == cls]
        k = max(1, int(round(size * len(members) / len(idx))))
        keep.extend(rng.permutation(members)[:k])
    return np.sort(np.array(keep, dtype=np.int64))


def holdout_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train_idx, val_idx); at least one video of each class stays in training."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for cls in (0, 1):
        idx = np.flatnonzero(labels == cls)
        rng.shuffle(idx)
        k = min(int(round(fraction * len(idx))), len(idx) - 1) if fraction > 0 else 0
        val.extend(idx[:k])
        train.extend(idx[k:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(val, dtype=np.int64))


@torch.no_grad()
def held_out_auc(model: ClipScorer, data: TrainData, val_idx: np.ndarray) -> float:
    """Video-level AUC of the held-out videos: the offline protocol on the clips pooled at load time."""
    scores, labels = {}, {}
    for i in val_idx:
        name = data.names[i]
        scores[name] = score_clips(model, data.clips[i])[0]
        labels[name] = int(data.labels[i])
    return float(video_level_auc(scores, labels))


def training_meta(dataset: Dataset, store: FeatureStore, data: TrainData) -> dict[str, Any]:
    """Provenance every run records: package, dataset, features (manifest hash, weights, crops, precision),
    and the feature contract of every training video (refused when they disagree, see damvad.contract)."""
    from damvad.contract import contract_of_records

    records = [store.record(n) for n in data.names]
    first = records[0]
    contract = contract_of_records(records, f"{store.root} (training videos)")
    return {
        **provenance(),
        "dataset": dataset.name,
        "features": str(store.root),
        "features_manifest_sha256": store.manifest_hash(),
        "i3d_weights_sha256": first.weights_sha256,
        "feature_crops": data.crops,
        "feature_precision": first.precision,
        "snippet_len": first.snippet_len,
        "feature_contract": contract.to_dict(),
    }
