"""Ground truth built from the shipped annotations, checked against hand counts and independent code."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest

from damvad.annotations import (
    AnnotationError,
    intervals_to_mask,
    mask_to_intervals,
    parse_interval_csv,
    parse_shanghaitech_test,
    parse_shanghaitech_train,
    parse_ucf_test,
    parse_ucf_train,
    parse_xd_list,
    parse_xd_test_annotations,
    read_resource_text,
)
from damvad.datasets import FRAME_TOLERANCE, DatasetError, get_dataset


def _ucf_lines() -> dict[str, list[str]]:
    text = read_resource_text("ucf-crime", "test_annotations.txt")
    return {line.split()[0][: -len(".mp4")]: line.split() for line in text.splitlines() if line.strip()}


# ----------------------------------------------------------------------------------- UCF-Crime


def test_ucf_test_split_counts_and_total_frames():
    ds = get_dataset("ucf-crime")
    test = ds.videos("test")
    assert len(test) == 290
    assert sum(v.label == 0 for v in test) == 150 and sum(v.label == 1 for v in test) == 140
    assert sum(v.num_frames for v in test) == 1_111_808
    # ground truth at the annotation's own length reproduces that total frame for frame
    assert sum(ds.ground_truth(v.name).size for v in test) == 1_111_808
    assert ds.has_frame_labels("test") and not ds.has_frame_labels("train")


@pytest.mark.parametrize(
    "name, line, count, first, last",
    [
        # 1-based inclusive 165..240 -> 240 - 165 + 1 = 76 frames, 0-based indices 164..239
        ("Abuse028_x264", "Abuse028_x264.mp4 Abuse 165 240 -1 -1 1412", 76, 164, 239),
        # 150..420 -> 271 frames; 680..1267 clipped to the 1266 frames -> 1266 - 680 + 1 = 587; 858 in all
        ("Arson011_x264", "Arson011_x264.mp4 Arson 150 420 680 1267 1266", 858, 149, 1265),
        # 970..1350 -> 381; 1550..3156 clipped to 3154 -> 1605; 1986 in all
        ("Explosion033_x264", "Explosion033_x264.mp4 Explosion 970 1350 1550 3156 3154", 1986, 969, 3153),
        ("Normal_Videos_003_x264", "Normal_Videos_003_x264.mp4 Normal -1 -1 -1 -1 2822", 0, None, None),
    ],
)
def test_ucf_per_video_counts_by_hand(name, line, count, first, last):
    assert _ucf_lines()[name] == line.split()  # the hand count below is worked from this line
    ds = get_dataset("ucf-crime")
    gt = ds.ground_truth(name)
    assert gt.dtype == bool and gt.size == int(line.split()[-1])
    assert int(gt.sum()) == count
    if first is not None:
        assert not gt[first - 1] and gt[first] and gt[last]
        assert np.flatnonzero(gt)[0] == first and np.flatnonzero(gt)[-1] == last


def test_ucf_all_videos_match_independent_frame_number_comparison():
    """Each frame numbered 1..N is anomalous iff start <= number <= end (no slicing involved)."""
    ds = get_dataset("ucf-crime")
    total_anomalous = 0
    for name, f in _ucf_lines().items():
        n = int(f[6])
        numbers = np.arange(1, n + 1)
        ref = np.zeros(n, dtype=bool)
        for s, e in ((int(f[2]), int(f[3])), (int(f[4]), int(f[5]))):
            if s != -1:
                ref |= (numbers >= s) & (numbers <= e)
        np.testing.assert_array_equal(ds.ground_truth(name), ref, err_msg=name)
        total_anomalous += int(ref.sum())
    assert total_anomalous == sum(int(ds.ground_truth(v.name).sum()) for v in ds.videos("test"))


def test_ucf_train_split():
    ds = get_dataset("ucf-crime")
    train = ds.videos("train")
    assert len(train) == 1610
    assert sum(v.label == 0 for v in train) == 800 and sum(v.label == 1 for v in train) == 810
    assert all(v.num_frames and v.num_frames > 0 for v in train)
    assert not {v.name for v in train} & {v.name for v in ds.videos("test")}
    item = ds.video("Vandalism048_x264")  # first line: Vandalism/Vandalism048_x264.mp4 7183
    assert (item.label, item.category, item.num_frames, item.split) == (1, "Vandalism", 7183, "train")
    with pytest.raises(DatasetError, match="no frame-level annotation"):
        ds.ground_truth("Vandalism048_x264")


def test_frame_count_tolerance():
    ds = get_dataset("ucf-crime")
    own = 1266  # Arson011: last interval 680..1267 (1-based) -> 0-based [679, 1267)
    longer = ds.ground_truth("Arson011_x264", own + FRAME_TOLERANCE)
    assert longer.size == own + FRAME_TOLERANCE
    assert longer[679:1267].all() and not longer[1267:].any()  # the annotation's end, not the video's
    shorter = ds.ground_truth("Arson011_x264", own - FRAME_TOLERANCE)
    assert shorter.size == own - FRAME_TOLERANCE and shorter[679:].all()
    for bad in (own + FRAME_TOLERANCE + 1, own - FRAME_TOLERANCE - 1):
        with pytest.raises(DatasetError, match=r"Arson011_x264.*1266 frames.*features cover"):
            ds.ground_truth("Arson011_x264", bad)
    assert ds.ground_truth("Arson011_x264", own + 100, tolerance=100).size == own + 100


# ----------------------------------------------------------------------------------- ShanghaiTech


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


# ----------------------------------------------------------------------------------- XD-Violence


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


# ----------------------------------------------------------------------------------- malformed files


@pytest.mark.parametrize(
    "text, match",
    [
        ("A_x264.mp4 Abuse 1 5 -1 -1 10\nB_x264.mp4 Abuse 1 5 -1 10\n", r"bad\.txt:2: expected 7 fields"),
        ("A_x264.mp4 Abuse one 5 -1 -1 10\n", r"bad\.txt:1: start1 'one' is not an integer"),
        ("A_x264.mp4 Normal 1 5 -1 -1 10\n", r"bad\.txt:1: normal video 'A_x264' has an anomalous"),
        ("A_x264.mp4 Abuse -1 -1 -1 -1 10\n", r"bad\.txt:1: anomalous video 'A_x264' has no interval"),
        ("A_x264.mp4 Abuse 9 5 -1 -1 10\n", r"bad\.txt:1: interval \[9, 5\]"),
        ("A_x264.mp4 Abuse 0 5 -1 -1 10\n", r"bad\.txt:1: interval \[0, 5\] is not a 1-based"),
        ("A_x264.mp4 Abuse 1 5 4 8 10\n", r"bad\.txt:1: intervals \[0, 5\) and \[3, 8\) overlap"),
        ("A_x264.mp4 Abuse 1 5 -1 -1 0\n", r"bad\.txt:1: frame count 0"),
        (
            "A_x264.mp4 Abuse 1 5 -1 -1 10\n\nA_x264.mp4 Abuse 1 5 -1 -1 10\n",
            r"bad\.txt:3: .*listed twice.*line 1",
        ),
    ],
)
def test_malformed_ucf_test_annotations(text, match):
    with pytest.raises(AnnotationError, match=match):
        parse_ucf_test(text, "bad.txt")


def test_parse_ucf_good_rows_and_train():
    rows = parse_ucf_test("X_x264.mp4 Arson 1 3 8 10 10\n", "t.txt")
    assert rows[0].intervals == ((0, 3), (7, 10)) and rows[0].frames == 10 and rows[0].label == 1
    assert intervals_to_mask(rows[0].intervals, 10).tolist() == [1, 1, 1, 0, 0, 0, 0, 1, 1, 1]
    train = parse_ucf_train("Training_Normal_Videos_Anomaly/N1.mp4 5\nArson/A1.mp4 7\n", "tr.txt")
    assert [(r.name, r.label, r.category, r.frames) for r in train] == [
        ("N1", 0, "Normal", 5),
        ("A1", 1, "Arson", 7),
    ]
    with pytest.raises(AnnotationError, match=r"tr\.txt:1: path 'A1\.mp4' has no class folder"):
        parse_ucf_train("A1.mp4 7\n", "tr.txt")


def test_malformed_shanghaitech_and_xd():
    with pytest.raises(AnnotationError, match=r"s\.csv:2: label '2'"):
        parse_shanghaitech_train("a,1\nb,2\n", "s.csv")
    with pytest.raises(AnnotationError, match=r"s\.csv:1: normal video 'a' needs a positive frame count"):
        parse_shanghaitech_test("a,0,-1\n", "s.csv")
    with pytest.raises(AnnotationError, match=r"x\.txt:1: expected a name then start/end pairs, got 3"):
        parse_xd_test_annotations("v_label_B1-0-0 1 5 9\n", "x.txt")
    with pytest.raises(AnnotationError, match=r"x\.txt:1: interval \[5, 5\)"):
        parse_xd_test_annotations("v_label_B1-0-0 5 5\n", "x.txt")
    with pytest.raises(AnnotationError, match=r"l\.txt:2: video name 'foo' has no '_label_'"):
        parse_xd_list("a_label_A\nfoo\n", "test", "l.txt")


def test_user_interval_csv():
    text = "name,start,end\nv1,10,20\nv1,0,5\nv2,3,4\n"
    assert parse_interval_csv(text, "a.csv") == {"v1": ((0, 5), (10, 20)), "v2": ((3, 4),)}
    with pytest.raises(AnnotationError, match=r"a\.csv:1: header must be 'name,start,end'"):
        parse_interval_csv("video,start,end\nv1,1,2\n", "a.csv")
    with pytest.raises(AnnotationError, match=r"a\.csv:3: interval \[7, 7\)"):
        parse_interval_csv("name,start,end\nv1,1,2\nv1,7,7\n", "a.csv")
    with pytest.raises(AnnotationError, match=r"a\.csv:2: end 'x' is not an integer"):
        parse_interval_csv("name,start,end\nv1,1,x\n", "a.csv")
    with pytest.raises(AnnotationError, match=r"a\.csv \(video 'v1'.*overlap"):
        parse_interval_csv("name,start,end\nv1,0,10\nv1,5,12\n", "a.csv")


def test_mask_interval_roundtrip_and_clipping():
    rng = np.random.default_rng(0)
    mask = rng.random(200) < 0.3
    assert np.array_equal(intervals_to_mask(mask_to_intervals(mask), 200), mask)
    ref = np.zeros(10, dtype=bool)
    ref[8:10] = True  # [8, 15) clipped to 10 frames
    assert np.array_equal(intervals_to_mask([(8, 15)], 10), ref)
    assert mask_to_intervals(np.array([1, 1, 0, 1], dtype=bool)) == [(0, 2), (3, 4)]
