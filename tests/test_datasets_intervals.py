"""The interval convention's helpers: masks from intervals and back, validation of intervals and masks."""

from __future__ import annotations

import numpy as np
import pytest

from damvad.datasets import AnnotationError
from damvad.datasets.intervals import check_intervals, intervals_to_mask, mask_to_intervals, validate_mask


def test_mask_interval_roundtrip_and_clipping():
    rng = np.random.default_rng(0)
    mask = rng.random(200) < 0.3
    assert np.array_equal(intervals_to_mask(mask_to_intervals(mask), 200), mask)
    ref = np.zeros(10, dtype=bool)
    ref[8:10] = True  # [8, 15) clipped to 10 frames
    assert np.array_equal(intervals_to_mask([(8, 15)], 10), ref)
    assert mask_to_intervals(np.array([1, 1, 0, 1], dtype=bool)) == [(0, 2), (3, 4)]


def test_check_intervals_sorts_and_refuses_bad_ones():
    assert check_intervals([(10, 20), (0, 5)], "f") == ((0, 5), (10, 20))
    assert check_intervals([(0, 5), (5, 9)], "f") == ((0, 5), (5, 9))  # touching is not overlapping
    with pytest.raises(AnnotationError, match=r"^f:3: interval \[4, 4\) is empty"):
        check_intervals([(4, 4)], "f", ":3")
    with pytest.raises(AnnotationError, match=r"interval \[-1, 4\)"):
        check_intervals([(-1, 4)], "f")
    with pytest.raises(AnnotationError, match=r"intervals \[0, 5\) and \[4, 8\) overlap"):
        check_intervals([(4, 8), (0, 5)], "f")


def test_validate_mask():
    assert validate_mask(np.array([0, 1, 1], dtype=np.uint8), "m").tolist() == [False, True, True]
    for bad, match in ((np.array([0, 2]), "only 0 and 1"), (np.zeros((2, 2)), "1-D"), (np.zeros(0), "non-empty"),
                       (np.array(["0", "1"]), "only 0 and 1")):
        with pytest.raises(AnnotationError, match=rf"^m: frame mask .*{match}"):
            validate_mask(bad, "m")
