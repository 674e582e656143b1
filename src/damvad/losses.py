"""The weighted MIL ranking loss (paper eq. 7) and the released code's regularisers.

Scores are per-clip weighted scores wD of shape (videos, clips); for the full DAM wD lies in [0, 2]
(``D * Clip_A + D``), so the margin of 1 can be reached with ``max wD_a`` well below 2.

Choices where the paper is loose (eq. 7 writes the smoothness and sparsity sums over
``N = T x batchsize`` flattened scores):

* smoothness ``sum_i (wD_a[i] - wD_a[i+1])^2`` and sparsity ``sum_i wD_a[i]`` are taken within each
  anomalous video and never across video boundaries; the flattened form would add spurious
  ``(last clip of video v - first clip of video v+1)^2`` terms. The released code also keeps them
  per video.
* ``reduction="mean"`` (default): the hinge is averaged over the (normal, anomalous) pairs, the two
  regularisers over the anomalous videos, so the loss does not grow with the batch size.
* ``reduction="released"`` reproduces the released TensorFlow objective (``RankingLoss.py``): hinge
  summed over anomalous videos and averaged over normal ones (= Ba x the mean over pairs), and both
  regularisers summed over anomalous videos.
* ``pairing="all_pairs"`` (released code): every anomalous video against every normal one;
  ``"paired"`` (Sultani et al.): the i-th anomalous video against the i-th normal one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor


@dataclass
class RankingLoss:
    """The total loss and its parts; ``smooth`` and ``sparse`` are unweighted (before the lambdas)."""

    total: Tensor
    hinge: Tensor
    smooth: Tensor
    sparse: Tensor

    def as_floats(self) -> dict[str, float]:
        """Detached Python floats, for logs."""
        return {k: float(getattr(self, k).detach()) for k in ("total", "hinge", "smooth", "sparse")}


def _check_scores(x: Any, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"ranking_loss: {name} must be a torch tensor, got {type(x).__name__}")
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"ranking_loss: {name} must have shape (videos, clips) with both > 0, "
                         f"got {tuple(x.shape)}")
    return x


def ranking_loss(
    weighted_anom: Tensor,
    weighted_norm: Tensor,
    lambda_smooth: float = 8e-5,
    lambda_sparse: float = 8e-5,
    pairing: Literal["all_pairs", "paired"] = "all_pairs",
    reduction: Literal["mean", "released"] = "mean",
) -> RankingLoss:
    """Weighted ranking loss of anomalous (Ba, C) and normal (Bn, C') bags of clip scores.

    ``hinge = max(0, 1 - max_i wD_a[i] + max_i wD_n[i])`` per (anomalous, normal) pair,
    ``smooth = sum_i (wD_a[i] - wD_a[i+1])^2`` and ``sparse = sum_i wD_a[i]`` per anomalous video;
    ``total = hinge + lambda_smooth * smooth + lambda_sparse * sparse`` after the reduction.
    """
    a = _check_scores(weighted_anom, "weighted_anom")
    n = _check_scores(weighted_norm, "weighted_norm")
    max_a = a.amax(dim=1)  # (Ba,)
    max_n = n.amax(dim=1)  # (Bn,)
    if pairing == "all_pairs":
        per_pair = torch.relu(1.0 - max_a[:, None] + max_n[None, :])  # (Ba, Bn)
        per_anom = per_pair.mean(dim=1)
    elif pairing == "paired":
        if a.shape[0] != n.shape[0]:
            raise ValueError(f"ranking_loss: pairing='paired' needs as many anomalous as normal videos, "
                             f"got {a.shape[0]} and {n.shape[0]}")
        per_anom = torch.relu(1.0 - max_a + max_n)
    else:
        raise ValueError(f"ranking_loss: pairing must be 'all_pairs' or 'paired', got {pairing!r}")
    smooth_v = (a[:, 1:] - a[:, :-1]).pow(2).sum(dim=1)  # within each video only
    sparse_v = a.sum(dim=1)
    if reduction == "mean":
        hinge, smooth, sparse = per_anom.mean(), smooth_v.mean(), sparse_v.mean()
    elif reduction == "released":
        hinge, smooth, sparse = per_anom.sum(), smooth_v.sum(), sparse_v.sum()
    else:
        raise ValueError(f"ranking_loss: reduction must be 'mean' or 'released', got {reduction!r}")
    total = hinge + lambda_smooth * smooth + lambda_sparse * sparse
    return RankingLoss(total=total, hinge=hinge, smooth=smooth, sparse=sparse)


def logit_wall(logits: Tensor, bound: float = 6.0) -> Tensor:
    """Mean over clips of ``relu(|z| - bound)^2`` for the head's pre-sigmoid outputs z (a declared departure).

    Without Clip_A, wD = D = sigmoid(z) in (0, 1), so the ranking loss's margin of 1 pushes z towards
    +-infinity, where the sigmoid passes no gradient: a video whose top clip sinks there is never learned again,
    and a head whose every clip does collapses. The wall leaves |z| <= bound untouched (sigmoid(6) = 0.9975).
    """
    return torch.relu(logits.abs() - bound).pow(2).mean()


def regularization(
    model: torch.nn.Module,
    outputs: dict[str, Tensor | None],
    weight_l2: float = 1e-3,
    activity_l2: float = 0.01,
) -> Tensor:
    """The released code's regularisers, added to the loss when enabled.

    ``weight_l2 * sum ||W||^2`` over the MLP's Linear weights (Keras ``W_regularizer=l2(1e-3)``; biases
    excluded) plus ``activity_l2 *`` (mean over clips of ``sum_k h[k]^2`` for the DAM LSTM output h, and
    mean over clips of ``Clip_A^2``) -- Keras ``activity_regularizer=l2(0.01)``. Keras versions differ on
    whether that sum over the batch is divided by the batch size; the mean over clip instances is used
    here so the strength does not depend on the batch size. Activity terms are skipped for variants
    without those outputs.
    """
    if not hasattr(model, "mlp_weights"):
        raise TypeError(f"regularization: expected a DAMModel, got {type(model).__name__}")
    weights = model.mlp_weights()
    total = weight_l2 * sum(w.pow(2).sum() for w in weights)
    hidden = outputs.get("dam_hidden")
    if hidden is not None:
        total = total + activity_l2 * hidden.reshape(-1, hidden.shape[-1]).pow(2).sum(dim=1).mean()
    clip = outputs.get("clip_attention")
    if clip is not None:
        total = total + activity_l2 * clip.pow(2).mean()
    return total
