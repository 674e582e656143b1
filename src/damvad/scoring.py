"""The one scoring path shared by offline evaluation, the online protocol and live detection.

A video's snippet maps (S, crops, t, n) become clips (the paper's C max-pooled clips, or causal groups
of k snippets), each crop is scored as its own stream, and the scores are averaged over crops (the
field's test-time augmentation, averaged at the score level). :class:`StreamScorer` does the online
grouping one snippet at a time with the model's carried state; it gives the same numbers as
:func:`score_video` with ``protocol="online"`` (tested), so a live camera is scored exactly as the
online evaluation says it is. Each score is given to the frames its clip owns (with overlapping snippets,
the frames since the previous clip ended: :mod:`damvad.snippets`), the same rule in every protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from damvad.choices import NUM_CLIPS, SCORES
from damvad.clips import (
    SNIPPET_LEN,
    boundaries_to_frame_ranges,
    clip_boundaries,
    clip_scores_to_frames,
    online_clip_boundaries,
    online_clips,
    pool_clips,
)
from damvad.device import model_device
from damvad.model import ClipScorer, StreamState

Protocol = Literal["offline", "online"]


@dataclass
class VideoScores:
    """Per-clip outputs of one video, crops averaged, with the exact frames each clip's score is given to."""

    frame_ranges: np.ndarray  # (K, 2) [start, end): the frames a clip covers, or since the previous clip's end
    score: np.ndarray  # (K,) D
    weighted: np.ndarray  # (K,) wD (= D for variants without Clip_A)
    clip_attention: np.ndarray | None  # (K,) Clip_A, or None
    num_frames: int  # the video's frames (the per-frame views cover all of them)

    def values(self, which: Literal["D", "wD"] = "D") -> np.ndarray:
        if which not in SCORES:
            raise ValueError(f"score must be 'D' or 'wD', got {which!r}")
        return self.score if which == "D" else self.weighted

    def per_frame(self, which: Literal["D", "wD", "attention"] = "D") -> np.ndarray:
        """The clips' score (or Clip_A) on each of the video's frames: what evaluation and calibration compare
        with frame labels and thresholds."""
        clip = self.clip_attention if which == "attention" else self.values(which)
        if clip is None:
            raise ValueError("this variant has no clip attention")
        return clip_scores_to_frames(clip, self.frame_ranges, self.num_frames)


def _check_maps(features: np.ndarray | torch.Tensor, name: str = "features") -> torch.Tensor:
    x = torch.from_numpy(np.array(features, dtype=np.float32))  # a copy: features may be a read-only mmap
    if x.ndim == 3:  # (S, t, n): a single crop
        x = x.unsqueeze(1)
    if x.ndim != 4:
        raise ValueError(f"{name}: expected (snippets, crops, t, n) maps, got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name}: no snippets")
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).any(dim=(1, 2, 3)).nonzero()[0])
        raise ValueError(f"{name}: non-finite values (NaN/inf) in snippet {bad}")
    return x


def _mean_over_crops(out: dict[str, torch.Tensor | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    def avg(v: torch.Tensor | None) -> np.ndarray | None:
        return None if v is None else v.mean(dim=0).detach().cpu().numpy().astype(np.float64)

    return avg(out["score"]), avg(out["weighted"]), avg(out["clip_attention"])  # type: ignore[return-value]


def clip_snippet_bounds(
    num_snippets: int, protocol: Protocol, num_clips: int = NUM_CLIPS, snippets_per_clip: int = 1
) -> np.ndarray:
    if protocol == "offline":
        return clip_boundaries(num_snippets, num_clips)
    if protocol == "online":
        return online_clip_boundaries(num_snippets, snippets_per_clip)
    raise ValueError(f"protocol must be 'offline' or 'online', got {protocol!r}")


@torch.no_grad()
def score_video(
    model: ClipScorer,
    features: np.ndarray | torch.Tensor,
    num_frames: int,
    protocol: Protocol = "offline",
    num_clips: int = NUM_CLIPS,
    snippets_per_clip: int = 1,
    snippet_len: int = SNIPPET_LEN,
    stride: int | None = None,
) -> VideoScores:
    """Score a whole video from its (S, crops, t, n) snippet maps, cut every ``stride`` frames (None:
    ``snippet_len``).

    ``offline``: the paper's C clips spanning the video. ``online``: causal clips of
    ``snippets_per_clip`` snippets, each scored from itself and its predecessor only.
    """
    x = _check_maps(features)
    bounds = clip_snippet_bounds(x.shape[0], protocol, num_clips, snippets_per_clip)
    clips = pool_clips(x, num_clips) if protocol == "offline" else online_clips(x, snippets_per_clip)
    score, weighted, att = score_clips(model, clips)
    ranges = boundaries_to_frame_ranges(bounds, num_frames, snippet_len, stride)
    return VideoScores(ranges, score, weighted, att, num_frames)


@torch.no_grad()
def score_clips(model: ClipScorer, clips: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(D, wD, Clip_A) per clip of one video's (K, crops, t, n) clip maps, each crop a stream, crops averaged.

    Also what training's held-out selection scores, on the clips it pooled once."""
    was_training = model.training
    model.eval()
    try:  # crops as the batch: (crops, K, ...), on the model's device
        out = model(clips.to(model_device(model)).float().transpose(0, 1).contiguous())
    finally:
        model.train(was_training)
    return _mean_over_crops(out)


@dataclass
class ClipResult:
    """One scored causal clip of a stream."""

    index: int
    start_frame: int  # the frames its score is given to: since the previous clip's end
    end_frame: int  # exclusive: its last snippet's end
    score: float
    weighted: float
    clip_attention: float | None


@dataclass
class StreamScorer:
    """Scores a stream snippet by snippet: groups ``snippets_per_clip`` snippet maps into a clip
    (element-wise max), then takes one model step with the carried state (the previous clip).

    Memory is constant: the state is one clip map per crop, the buffer at most k snippet maps.
    """

    model: ClipScorer
    crops: int = 1
    snippets_per_clip: int = 1
    _state: StreamState | None = field(default=None, init=False)
    _buffer: list[torch.Tensor] = field(default_factory=list, init=False)
    _last_end: int = field(default=0, init=False)  # where the previous clip ended: the next one's frames start
    _buffer_end: int = field(default=0, init=False)
    _clips: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.snippets_per_clip <= 0:
            raise ValueError(f"snippets_per_clip must be positive, got {self.snippets_per_clip}")
        self.model.eval()
        self.reset()

    def reset(self) -> None:
        self._state = self.model.init_state(self.crops)
        self._buffer = []
        self._clips = 0
        self._last_end = 0

    @torch.no_grad()
    def push(
        self, snippet_map: np.ndarray | torch.Tensor, start_frame: int, end_frame: int
    ) -> ClipResult | None:
        """Add one snippet's (crops, t, n) maps and its [start, end) frames; returns a result when it completes
        a clip. The result's frames run from the previous clip's end (``start_frame`` of the first snippet
        only for the first clip: 0 in a whole stream) to this snippet's end (:mod:`damvad.snippets`)."""
        x = _check_maps(np.asarray(snippet_map)[None], "snippet map")[0]
        if x.shape[0] != self.crops:
            raise ValueError(f"snippet map has {x.shape[0]} crops, the scorer was built for {self.crops}")
        if not self._clips and not self._buffer:
            self._last_end = start_frame
        self._buffer.append(x)
        self._buffer_end = end_frame
        if len(self._buffer) == self.snippets_per_clip:
            return self._score_buffer()
        return None

    def flush(self) -> ClipResult | None:
        """Score a partial clip at the end of a stream (as the online protocol's last group)."""
        return self._score_buffer() if self._buffer else None

    @torch.no_grad()
    def _score_buffer(self) -> ClipResult:
        clip = torch.stack(self._buffer).amax(dim=0).to(model_device(self.model))  # (crops, t, n)
        out, self._state = self.model.step(clip, self._state)
        score, weighted, att = _mean_over_crops({k: out[k] for k in ("score", "weighted", "clip_attention")})
        result = ClipResult(
            index=self._clips,
            start_frame=self._last_end,
            end_frame=self._buffer_end,
            score=float(score),
            weighted=float(weighted),
            clip_attention=None if att is None else float(att),
        )
        self._clips += 1
        self._buffer = []
        self._last_end = self._buffer_end
        return result
