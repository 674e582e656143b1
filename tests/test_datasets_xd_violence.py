"""XD-Violence: video lists, classes from names, 0-based end-exclusive intervals, the parsers."""

from __future__ import annotations

import pytest

from damvad.datasets import FRAME_TOLERANCE, AnnotationError, DatasetError, get_dataset
from damvad.datasets.xd_violence import parse_xd_list, parse_xd_test_annotations, xd_category


def test_xd_violence_lists_and_intervals():
    ds = get_dataset("xd-violence")
    test = ds.videos("test")
    assert len(test) == 800 and sum(v.label == 0 for v in test) == 300
    assert len(ds.videos("train")) == 3954
    assert all(("label_A" in v.name) == (v.label == 0) for v in ds.videos())
    name = "v=u5SF4SlqNDQ__#00-02-39_00-03-41_label_G-0-0"  # line: NAME 77 1430 (0-based, end exclusive)
    assert ds.video(name).category == "Explosion"
    gt = ds.ground_truth(name, 2000)
    assert gt.size == 2000 and int(gt.sum()) == 1430 - 77
    assert not gt[76] and gt[77] and gt[1429] and not gt[1430]
    # two intervals from frame 0: "v=S-7rRLrxnVQ__#1_label_B4-0-0 0 1517 1970 3038"
    gt2 = ds.ground_truth("v=S-7rRLrxnVQ__#1_label_B4-0-0", 3100)
    assert int(gt2.sum()) == 1517 + (3038 - 1970) and gt2[0] and not gt2[1517] and gt2[1970]
    with pytest.raises(DatasetError, match="num_frames"):
        ds.ground_truth(name)  # no frame count in the annotations: it must come from the features
    with pytest.raises(DatasetError, match="ends at frame 1430"):
        ds.ground_truth(name, 1430 - FRAME_TOLERANCE - 1)
    assert ds.ground_truth(name, 1430 - FRAME_TOLERANCE).sum() == 1430 - FRAME_TOLERANCE - 77


def test_malformed_xd():
    with pytest.raises(AnnotationError, match=r"x\.txt:1: expected a name then start/end pairs, got 3"):
        parse_xd_test_annotations("v_label_B1-0-0 1 5 9\n", "x.txt")
    with pytest.raises(AnnotationError, match=r"x\.txt:1: interval \[5, 5\)"):
        parse_xd_test_annotations("v_label_B1-0-0 5 5\n", "x.txt")
    with pytest.raises(AnnotationError, match=r"l\.txt:2: video name 'foo' has no '_label_'"):
        parse_xd_list("a_label_A\nfoo\n", "test", "l.txt")


def test_xd_category_from_name():
    assert xd_category("v=x__#1_label_B2-0-0") == "Shooting"  # the first code names the class
    assert xd_category("v=x__#1_label_B6-B1-0") == "Car accident"
    assert xd_category("v=x__#1_label_Z9-0-0") == "Z9" and xd_category("no_code") == "Unknown"
