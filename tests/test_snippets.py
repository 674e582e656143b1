"""The snippet layout at any stride, its tail rule, and the one score-to-frame rule (damvad.snippets)."""

from __future__ import annotations

import numpy as np
import pytest

from damvad.clips import clip_frame_ranges, online_clip_frame_ranges
from damvad.snippets import check_stride, owned_frame_ranges, snippet_ranges, tail_snippet


def test_default_stride_is_the_papers_layout():
    assert snippet_ranges(150, 64).tolist() == [[0, 64], [64, 128], [128, 150]]  # last one padded
    assert snippet_ranges(128, 64).tolist() == [[0, 64], [64, 128]]
    assert snippet_ranges(150, 64, 64).tolist() == snippet_ranges(150, 64).tolist()


def test_overlapping_snippets_end_with_one_at_the_last_frame():
    assert snippet_ranges(150, 64, 32).tolist() == [[0, 64], [32, 96], [64, 128], [86, 150]]
    assert snippet_ranges(180, 64, 16).tolist() == [[0, 64], [16, 80], [32, 96], [48, 112], [64, 128],
                                                   [80, 144], [96, 160], [112, 176], [116, 180]]
    assert snippet_ranges(128, 64, 32).tolist() == [[0, 64], [32, 96], [64, 128]]  # ends exactly: no tail
    assert snippet_ranges(64, 64, 16).tolist() == [[0, 64]]


@pytest.mark.parametrize("stride", [1, 16, 64])
def test_a_video_shorter_than_a_snippet_gets_one_padded_snippet(stride):
    assert snippet_ranges(5, 64, stride).tolist() == [[0, 5]]


@pytest.mark.parametrize("frames", [1, 63, 64, 65, 100, 127, 128, 129, 180, 1000])
@pytest.mark.parametrize("stride", [1, 7, 16, 32, 63, 64])
def test_layout_covers_every_frame_in_order_without_invented_ones_where_it_can(frames, stride):
    r = snippet_ranges(frames, 64, stride)
    assert r[0, 0] == 0 and r[-1, 1] == frames
    assert np.all(np.diff(r[:, 1]) > 0) and np.all(np.diff(r[:, 0]) > 0)  # each snippet ends later
    assert np.all(r[1:, 0] <= r[:-1, 1])  # no gap
    lengths = r[:, 1] - r[:, 0]
    if frames >= 64 and stride < 64:
        assert np.all(lengths == 64)  # nothing padded
    assert np.all(lengths[:-1] == 64)
    assert np.all(np.diff(r[:-1, 0]) == stride)  # full snippets every stride frames (the tail may not be)


def test_stride_bounds_and_the_tail_rule():
    assert check_stride(None, 64) == 64
    for bad in (0, 65, -1):
        with pytest.raises(ValueError, match="stride must be in"):
            check_stride(bad, 64)
    with pytest.raises(TypeError):
        check_stride(1.5, 64)
    assert tail_snippet(150, 64, 16, 144) == (86, 150)
    assert tail_snippet(150, 64, 64, 128) == (128, 150)
    assert tail_snippet(50, 64, 16, 0) == (0, 50)
    assert tail_snippet(150, 64, 16, 150) is None


def test_each_score_goes_to_the_frames_since_the_previous_unit_ended():
    ranges = snippet_ranges(150, 64, 32)  # ends 64, 96, 128, 150
    single = owned_frame_ranges(ranges, np.array([[0, 1], [1, 2], [2, 3], [3, 4]]))
    assert single.tolist() == [[0, 64], [64, 96], [96, 128], [128, 150]]
    pairs = owned_frame_ranges(ranges, np.array([[0, 2], [2, 4]]))
    assert pairs.tolist() == [[0, 96], [96, 150]]
    # at the default stride, the frames a unit covers (as before strides existed)
    assert owned_frame_ranges(snippet_ranges(150, 64), np.array([[0, 1], [1, 3]])).tolist() == [[0, 64], [64, 150]]


@pytest.mark.parametrize("stride", [16, 64])
def test_offline_and_online_ranges_partition_the_frames(stride):
    for frames in (50, 150, 700):
        for ranges in (clip_frame_ranges(frames, 16, stride=stride), online_clip_frame_ranges(frames, 1, stride=stride),
                       online_clip_frame_ranges(frames, 3, stride=stride)):
            kept = np.unique(ranges, axis=0)  # short videos repeat their last clip: same frames
            assert kept[0, 0] == 0 and kept[-1, 1] == frames and np.all(kept[1:, 0] == kept[:-1, 1])
