"""Clip generation: boundaries, max pooling (numpy and torch) and frame mapping, against plain loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from damvad.clips import (
    clip_boundaries,
    clip_frame_ranges,
    clip_scores_to_frames,
    online_clip_boundaries,
    online_clip_frame_ranges,
    online_clips,
    pool_clips,
    snippet_frame_ranges,
)


def _loop_pool(features: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """Reference: element-wise max over explicit snippet index lists, one python loop per element."""
    out = np.empty((len(groups),) + features.shape[1:], dtype=features.dtype)
    for c, idx in enumerate(groups):
        acc = features[idx[0]].copy()
        for s in idx[1:]:
            acc = np.maximum(acc, features[s])
        out[c] = acc
    return out


def _reference_groups(s: int, c: int) -> list[list[int]]:
    """The brief's rule written independently: edges (i*S)//C, or repeat the last snippet when S < C."""
    if s < c:
        return [[min(i, s - 1)] for i in range(c)]
    edges = [i * s // c for i in range(c + 1)]
    return [list(range(edges[i], edges[i + 1])) for i in range(c)]


@pytest.mark.parametrize("s", [1, 2, 5, 15, 16, 17, 31, 32, 33, 100, 1001])
@pytest.mark.parametrize("c", [1, 16, 32])
def test_clip_boundaries_partition(s: int, c: int) -> None:
    b = clip_boundaries(s, c)
    assert b.shape == (c, 2) and b.dtype == np.int64
    assert np.all(b[:, 1] > b[:, 0]), "every clip must be non-empty"
    if s >= c:
        counts = np.zeros(s, dtype=int)
        for start, end in b:
            counts[start:end] += 1
        assert np.all(counts == 1), "every snippet in exactly one clip"
        sizes = b[:, 1] - b[:, 0]
        assert sizes.max() - sizes.min() <= 1
        assert b[0, 0] == 0 and b[-1, 1] == s
    else:
        np.testing.assert_array_equal(b[:, 0], [min(i, s - 1) for i in range(c)])
        np.testing.assert_array_equal(b[:, 1] - b[:, 0], 1)


def test_clip_boundaries_hand_examples() -> None:
    np.testing.assert_array_equal(clip_boundaries(10, 4), [[0, 2], [2, 5], [5, 7], [7, 10]])
    np.testing.assert_array_equal(clip_boundaries(3, 5), [[0, 1], [1, 2], [2, 3], [2, 3], [2, 3]])
    # The released loader's last segment for S=40, C=32 would be snippets 8..40; ours is the last one.
    np.testing.assert_array_equal(clip_boundaries(40, 32)[-1], [38, 40])


@pytest.mark.parametrize("bad", [(0, 4), (-1, 4), (5, 0)])
def test_clip_boundaries_rejects_bad_counts(bad: tuple[int, int]) -> None:
    with pytest.raises(ValueError):
        clip_boundaries(*bad)


@pytest.mark.parametrize("s,c", [(1, 4), (3, 8), (8, 8), (37, 8), (100, 32)])
def test_pool_clips_numpy_and_torch_match_loop(s: int, c: int) -> None:
    rng = np.random.default_rng(s * 100 + c)
    feats = rng.standard_normal((s, 2, 3, 5)).astype(np.float32)  # (S, crops, t, n)
    expected = _loop_pool(feats, _reference_groups(s, c))
    got_np = pool_clips(feats, c)
    assert isinstance(got_np, np.ndarray) and got_np.dtype == np.float32
    np.testing.assert_array_equal(got_np, expected)
    got_t = pool_clips(torch.from_numpy(feats), c)
    assert isinstance(got_t, torch.Tensor)
    np.testing.assert_array_equal(got_t.numpy(), expected)
    # Tensors that need gradients take the index_reduce path.
    got_g = pool_clips(torch.from_numpy(feats).requires_grad_(), c)
    assert got_g.requires_grad
    np.testing.assert_array_equal(got_g.detach().numpy(), expected)


def test_pool_clips_keeps_float16_and_carries_gradient() -> None:
    feats = np.random.default_rng(1).standard_normal((9, 3, 4)).astype(np.float16)
    assert pool_clips(feats, 4).dtype == np.float16
    x = torch.tensor(np.random.default_rng(2).permutation(9 * 3 * 4).reshape(9, 3, 4), dtype=torch.float32,
                     requires_grad=True)  # distinct values: one argmax per output element
    pool_clips(x, 4).sum().backward()
    groups = _reference_groups(9, 4)
    expected = np.zeros((9, 3, 4))
    xv = x.detach().numpy()
    for idx in groups:
        winner = np.asarray(idx)[xv[idx].argmax(axis=0)]  # (3, 4) snippet index of each max
        for i in range(3):
            for j in range(4):
                expected[winner[i, j], i, j] += 1
    np.testing.assert_array_equal(x.grad.numpy(), expected)


def test_pool_clips_rejects_empty_and_non_arrays() -> None:
    with pytest.raises(ValueError, match="at least one snippet"):
        pool_clips(np.zeros((0, 7, 8)), 4)
    with pytest.raises(TypeError):
        pool_clips([[1.0]], 1)  # type: ignore[arg-type]


@pytest.mark.parametrize("s,k", [(1, 1), (7, 1), (7, 3), (9, 3), (5, 8)])
def test_online_clips_match_loop_and_are_causal(s: int, k: int) -> None:
    rng = np.random.default_rng(7)
    feats = rng.standard_normal((s, 3, 4)).astype(np.float32)
    groups = [list(range(i, min(i + k, s))) for i in range(0, s, k)]
    expected = _loop_pool(feats, groups)
    np.testing.assert_array_equal(online_clips(feats, k), expected)
    np.testing.assert_array_equal(online_clips(torch.from_numpy(feats), k).numpy(), expected)
    assert len(groups[-1]) == s - k * (len(groups) - 1)  # the last group may be shorter
    # Causality: clips computed from a prefix of the snippets equal those of the full video.
    for prefix in range(1, s + 1):
        n_full = prefix // k
        if n_full:
            np.testing.assert_array_equal(online_clips(feats[:prefix], k)[:n_full], expected[:n_full])
    np.testing.assert_array_equal(online_clip_boundaries(s, k), [[g[0], g[-1] + 1] for g in groups])


def test_snippet_frame_ranges_hand_examples() -> None:
    np.testing.assert_array_equal(snippet_frame_ranges(130), [[0, 64], [64, 128], [128, 130]])
    np.testing.assert_array_equal(snippet_frame_ranges(128), [[0, 64], [64, 128]])
    np.testing.assert_array_equal(snippet_frame_ranges(5), [[0, 5]])
    np.testing.assert_array_equal(snippet_frame_ranges(10, snippet_len=4), [[0, 4], [4, 8], [8, 10]])
    with pytest.raises(ValueError):
        snippet_frame_ranges(0)


@pytest.mark.parametrize("frames,c", [(795, 4), (795, 16), (64 * 33 + 5, 32), (64 * 32, 32), (1000, 3)])
def test_clip_frame_ranges_cover_every_frame_once(frames: int, c: int) -> None:
    r = clip_frame_ranges(frames, c)
    s = -(-frames // 64)
    groups = _reference_groups(s, c)
    for (start, end), idx in zip(r, groups, strict=True):
        assert start == idx[0] * 64 and end == min((idx[-1] + 1) * 64, frames)
    if s >= c:
        counts = np.zeros(frames, dtype=int)
        for start, end in r:
            counts[start:end] += 1
        assert np.all(counts == 1)


def test_clip_frame_ranges_short_video_repeat_last() -> None:
    r = clip_frame_ranges(150, 5)  # 3 snippets: [0,64) [64,128) [128,150)
    np.testing.assert_array_equal(r, [[0, 64], [64, 128], [128, 150], [128, 150], [128, 150]])


def test_clip_scores_to_frames_per_frame_reference() -> None:
    frames, c = 1000, 6
    r = clip_frame_ranges(frames, c)
    scores = np.arange(c, dtype=np.float32) + 0.5
    got = clip_scores_to_frames(scores, r, frames)
    expected = np.full(frames, np.nan, dtype=np.float32)
    for f in range(frames):
        for i, (start, end) in enumerate(r):
            if start <= f < end:
                expected[f] = scores[i]
                break
    np.testing.assert_array_equal(got, expected)
    # Repeated clips of a short video: the frames take the first clip's score.
    short = clip_scores_to_frames(np.array([1.0, 2.0, 3.0, 4.0]), clip_frame_ranges(100, 4), 100)
    np.testing.assert_array_equal(short, np.r_[np.full(64, 1.0), np.full(36, 2.0)])
    online = online_clip_frame_ranges(300, 2)
    np.testing.assert_array_equal(online, [[0, 128], [128, 256], [256, 300]])
    np.testing.assert_array_equal(online_clips(np.arange(5.0)[:, None], 2), [[1.0], [3.0], [4.0]])
    with pytest.raises(ValueError, match="cover"):
        clip_scores_to_frames(np.array([1.0]), np.array([[0, 50]]), 100)
