"""A training-free change detector: the reference for "something changed" (not "something anomalous").

Clip i scores the mean absolute difference between its map and the previous clip's map (the first clip
scores 0: nothing to compare with). It has the DAM head's interface (clips (B, C, t, n) in, a dict with
``score`` / ``weighted`` / ``clip_attention`` out), so it is scored through the one scoring path
(:mod:`damvad.scoring`) under both protocols, exactly like a trained head.
"""

from __future__ import annotations

from torch import Tensor, nn


class ChangeDetector(nn.Module):
    """L1 distance between consecutive clip maps; benign changes (light, shake, crowds) fool it by design."""

    def forward(self, clips: Tensor, previous: Tensor | None = None) -> dict[str, Tensor | None]:
        if clips.ndim != 4:
            raise ValueError(f"clips: expected (B, C, t, n), got {tuple(clips.shape)}")
        prev = clips[:, :1] if previous is None else previous.unsqueeze(1)
        before = clips.new_empty(clips.shape)
        before[:, :1] = prev
        before[:, 1:] = clips[:, :-1]
        score = (clips - before).abs().mean(dim=(-2, -1))
        return {"score": score, "weighted": score, "clip_attention": None}
