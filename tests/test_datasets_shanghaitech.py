"""ShanghaiTech (Zhong et al. split): split sizes, masks as ground truth and frame counts, the parsers."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest

from damvad.datasets import AnnotationError, DatasetError, get_dataset
from damvad.datasets.shanghaitech import load_shanghaitech_mask, parse_shanghaitech_test, parse_shanghaitech_train


def _mask_file(name: str) -> np.ndarray:
    res = (
        resources.files("damvad")
        / "data"
        / "annotations"
        / "shanghaitech"
        / "test_frame_mask"
        / f"{name}.npy"
    )
    with res.open("rb") as fh:
        return np.load(fh)


def test_shanghaitech_split_and_mask_lengths():
    ds = get_dataset("shanghaitech")
    train, test = ds.videos("train"), ds.videos("test")
    assert len(train) == 238 and sum(v.label for v in train) == 63  # 175 normal / 63 anomalous
    assert len(test) == 199 and sum(v.label for v in test) == 44  # 155 normal / 44 anomalous
    for v in test:
        if v.label == 1:
            mask = _mask_file(v.name)
            assert v.num_frames == mask.size
            np.testing.assert_array_equal(ds.ground_truth(v.name), mask.astype(bool))
        else:
            assert v.num_frames > 0 and not ds.ground_truth(v.name).any()
    assert ds.video("01_0015").num_frames == 433 and int(ds.ground_truth("01_0015").sum()) == 288
    assert ds.video("01_001").num_frames == 764  # test.csv line 1: 01_001,0,764
    # masks of anomalous training videos ship too, but training must not see frame labels
    assert not ds.has_frame_labels("train") and ds.has_frame_labels("test")
    with pytest.raises(DatasetError, match="no frame-level annotation"):
        ds.ground_truth("01_0014")


def test_shanghaitech_mask_extended_with_last_label_and_truncated():
    ds = get_dataset("shanghaitech")
    mask = _mask_file("01_0055").astype(bool)  # 313 frames, last frame anomalous
    assert mask.size == 313 and mask[-1]
    longer = ds.ground_truth("01_0055", 316)
    np.testing.assert_array_equal(longer[:313], mask)
    assert longer[313:].all()
    np.testing.assert_array_equal(ds.ground_truth("01_0055", 300), mask[:300])


def test_malformed_shanghaitech():
    with pytest.raises(AnnotationError, match=r"s\.csv:2: label '2'"):
        parse_shanghaitech_train("a,1\nb,2\n", "s.csv")
    with pytest.raises(AnnotationError, match=r"s\.csv:1: normal video 'a' needs a positive frame count"):
        parse_shanghaitech_test("a,0,-1\n", "s.csv")
    with pytest.raises(AnnotationError, match=r"s\.csv:1: expected 3 fields \(name,label,frames\), got 2"):
        parse_shanghaitech_test("a,1\n", "s.csv")
    with pytest.raises(DatasetError, match=r"test_frame_mask/nope\.npy: no frame mask for ShanghaiTech video 'nope'"):
        load_shanghaitech_mask("nope")
