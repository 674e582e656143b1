"""What happens inside a DAM head while it trains: attention, gate saturation, scales, gradients.

Pure torch, no I/O. Used by training's ``diagnostics`` option and the benchmark's diagnosis. Every
statistic is a plain float so that it can sit in a history row:

* ``channel_entropy``: entropy of Channel_A over the n channels divided by log n (1 = uniform);
  ``channel_peak``: max_k Channel_A[k] * n (1 = uniform; how far the most attended channel stands out);
* ``modulation``: mean |F* - F'| / mean |F'|, how much Channel_A changes the encoded clip at all;
* ``clip_att_mean``, ``clip_att_std`` (over all clips), ``clip_att_within`` (mean over videos of the
  std along the video): whether Clip_A moves, and whether it moves within a video;
* ``<lstm>_saturated``: fraction of gate activations within 0.01 of their bounds (sigmoid gates outside
  [0.01, 0.99], the tanh candidate outside [-0.99, 0.99]); a saturated gate passes no gradient;
* ``dnt_median``, ``dnt_p99``: the scale of the dissimilarity map D_nt fed to the DAM LSTM;
* ``grad_<module>``: gradient L2 norm of each part (after a backward pass).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

SIGMOID_SATURATED = math.log(0.99 / 0.01)  # |z| beyond which sigmoid(z) is within 0.01 of 0 or 1
TANH_SATURATED = math.atanh(0.99)


def gate_saturation(preactivations: Tensor) -> float:
    """Fraction of saturated gate activations in LSTM pre-activations (..., 4h), gate order i, f, g, o."""
    i, f, g, o = preactivations.chunk(4, dim=-1)
    sig = torch.cat([i, f, o], dim=-1).abs() > SIGMOID_SATURATED
    tanh = g.abs() > TANH_SATURATED
    return float((sig.sum() + tanh.sum()) / (sig.numel() + tanh.numel()))


@torch.no_grad()
def head_stats(model: nn.Module, clips: Tensor) -> dict[str, float]:
    """Statistics of one forward pass over clips (B, C, t, n), in eval mode."""
    was = model.training
    model.eval()
    try:
        out = model(clips.float(), return_intermediates=True)
    finally:
        model.train(was)
    stats: dict[str, float] = {}
    enc, mod = out["encoded"], out["modulated"]
    stats["modulation"] = float((mod - enc).abs().mean() / enc.abs().mean().clamp_min(1e-12))
    channel = out["channel_attention"]
    if channel is not None:
        n = channel.shape[-1]
        ent = -(channel * channel.clamp_min(1e-30).log()).sum(-1) / math.log(n)
        stats["channel_entropy"] = float(ent.mean())
        stats["channel_peak"] = float((channel.amax(-1) * n).mean())
    clip = out["clip_attention"]
    if clip is not None:
        stats["clip_att_mean"] = float(clip.mean())
        stats["clip_att_std"] = float(clip.std())
        stats["clip_att_within"] = float(clip.std(dim=1).mean()) if clip.shape[1] > 1 else 0.0
    for key, name in (("encoder_gates", "encoder"), ("dam_gates", "dam")):
        if out.get(key) is not None:
            stats[f"{name}_saturated"] = gate_saturation(out[key])
    dnt = out["dissimilarity_map"]
    if dnt is not None:
        flat = dnt.abs().flatten().float()
        if flat.numel() > 1_000_000:  # quantile() has a size limit; a strided sample is plenty
            flat = flat[:: flat.numel() // 1_000_000 + 1]
        stats["dnt_median"] = float(flat.median())
        stats["dnt_p99"] = float(torch.quantile(flat, 0.99))
    return stats


def grad_norms(model: nn.Module) -> dict[str, float]:
    """L2 norm of the gradient of each top-level part of a DAM head (call after ``backward``)."""
    out = {}
    for name in ("encoder", "dam_lstm", "clip_fc", "mlp"):
        part = getattr(model, name, None)
        if part is None:
            continue
        grads = [p.grad.detach().pow(2).sum() for p in part.parameters() if p.grad is not None]
        out[f"grad_{name}"] = float(torch.stack(grads).sum().sqrt()) if grads else 0.0
    return out
