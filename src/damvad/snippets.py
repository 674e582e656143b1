"""Where a video's snippets lie, how frames are cut into them, and which frames each score is given to.

**Layout.** Snippets of ``snippet_len`` (64) frames start every ``stride`` frames (1 <= stride <= 64):
``[0, 64), [s, s + 64), [2s, 2s + 64) ...`` as long as they fit. Then the tail (:func:`tail_snippet`):

* ``stride == snippet_len`` (the default: the paper's non-overlapping snippets, unchanged): the frames
  left after the last full snippet form a last snippet of their own, padded by the extractor with copies
  of its last frame (``[128, 150)`` for a 150-frame video);
* ``stride < snippet_len`` (overlapping snippets): a last snippet that ends at the last frame,
  overlapping the one before (``[86, 150)``): every frame is covered and none is invented;
* a video shorter than one snippet gets one snippet ``[0, frames)``, padded, at any stride (the only
  case where overlapping snippets invent frames: the video holds no 64 real frames).

**Scores to frames.** Snippets overlap, so one frame lies in several; each frame takes its score from
exactly one scored unit (a snippet, or a clip of several): the first one that *ends* after it. A unit
whose last snippet ends at frame ``e`` owns the frames ``[e', e)``, ``e'`` being where the previous
unit's last snippet ends (0 for the first): the frames that arrived since the previous score. This is
the rule of every protocol: the paper's offline clips, online clips of k snippets, and live detection,
where a score is emitted when its unit's last frame arrives and covers exactly the frames seen since the
previous score: no look-ahead, a delay of at most one stride (64 frames for the first score). With
``stride == snippet_len`` the owned frames are the frames each unit covers, as before strides existed.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from damvad.frames import VideoError

SNIPPET_LEN = 64  # frames per I3D snippet: the one definition (damvad.video and damvad.clips re-export it)


def check_stride(stride: int | None, snippet_len: int) -> int:
    """``stride`` (``None``: ``snippet_len``, the paper's) as an int in [1, snippet_len], or ValueError:
    a larger stride would leave frames no snippet covers."""
    if stride is None:
        return int(snippet_len)
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)):
        raise TypeError(f"stride must be an int, got {type(stride).__name__}")
    if not 1 <= stride <= snippet_len:
        raise ValueError(f"stride must be in [1, {snippet_len}] (frames between snippet starts), got {stride}")
    return int(stride)


def tail_snippet(frames: int, snippet_len: int, stride: int, last_end: int) -> tuple[int, int] | None:
    """The ``[start, end)`` of the snippet that covers a video's last frames once it has ``frames`` frames
    and its full snippets end at ``last_end`` (0: none), or None when they already reach the end (see the
    module docstring); a snippet shorter than ``snippet_len`` is padded by the extractor."""
    if last_end >= frames:
        return None
    if last_end == 0 or stride == snippet_len:
        return last_end, frames
    return frames - snippet_len, frames


def snippet_ranges(frames: int, snippet_len: int, stride: int | None = None) -> np.ndarray:
    """(S, 2) int64 ``[start, end)`` frames of each snippet of a ``frames``-frame video (module docstring)."""
    if frames <= 0 or snippet_len <= 0:
        raise ValueError(f"need positive frames and snippet_len, got {frames} and {snippet_len}")
    step = check_stride(stride, snippet_len)
    full = (frames - snippet_len) // step + 1 if frames >= snippet_len else 0
    starts = np.arange(full, dtype=np.int64) * step
    out = [np.stack([starts, starts + snippet_len], axis=1)]
    tail = tail_snippet(frames, snippet_len, step, int(starts[-1]) + snippet_len if full else 0)
    if tail is not None:
        out.append(np.array([tail], dtype=np.int64))
    return np.concatenate(out).astype(np.int64)


def owned_frame_ranges(ranges: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """(K, 2) frames each unit's score is given to: the unit of snippets ``[a, b)`` (rows of ``bounds``,
    indices into ``ranges``) owns ``[end of snippet a-1, end of snippet b-1)`` (module docstring).

    Units that repeat the same snippets (short videos filling C clips) get the same frames."""
    ends = np.asarray(ranges, dtype=np.int64)[:, 1]
    owned_from = np.concatenate([[0], ends[:-1]])
    bounds = np.asarray(bounds, dtype=np.int64)
    return np.stack([owned_from[bounds[:, 0]], ends[bounds[:, 1] - 1]], axis=1)


@dataclass
class Snippet:
    """64 preprocessed frames and the true frame range [start, end) they come from."""

    index: int
    start: int
    end: int  # exclusive; end - start < 64 for a padded last snippet
    frames: np.ndarray  # (64, H, W, 3) uint8, resized; (64, 3, H, W) when planar
    planar: bool = False
    arrived: float = 0.0  # time.perf_counter() when its last frame arrived (detect's latency starts there)


def iter_snippets(
    frames: Iterable[np.ndarray], snippet_len: int = SNIPPET_LEN, source: Any = "<frames>", planar: bool = False,
    stride: int | None = None,
) -> Iterator[Snippet]:
    """Cut frames into snippets of ``snippet_len`` every ``stride`` frames (default ``snippet_len``:
    non-overlapping), each yielded as soon as its last frame arrives, then the tail snippet of
    :func:`tail_snippet` once the frames end: the layout of :func:`snippet_ranges`. A snippet shorter than
    ``snippet_len`` (the default stride's last one, or a video shorter than one snippet) is padded by
    repeating its last frame. Zero frames is an error. ``planar`` says the frames are (3, H, W) (from
    ``iter_frames(..., planar=True)``)."""
    step = check_stride(stride, snippet_len)
    recent: deque[np.ndarray] = deque(maxlen=snippet_len)  # the last snippet_len frames
    seen, next_start, index = 0, 0, 0
    for frame in frames:
        recent.append(frame)
        seen += 1
        if seen == next_start + snippet_len:
            yield Snippet(index, next_start, seen, np.stack(recent), planar, time.perf_counter())
            index += 1
            next_start += step
    if seen == 0:
        raise VideoError(source, "no frames could be decoded (empty or unreadable video)")
    tail = tail_snippet(seen, snippet_len, step, next_start - step + snippet_len if index else 0)
    if tail is not None:
        start, end = tail
        buf = list(recent)[len(recent) - (end - start):]
        buf.extend([buf[-1]] * (snippet_len - len(buf)))
        yield Snippet(index, start, end, np.stack(buf), planar, time.perf_counter())
