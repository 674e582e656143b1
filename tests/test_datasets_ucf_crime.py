"""UCF-Crime: the shipped split and ground truth against hand counts and an independent frame-number
comparison; the parsers on malformed lines."""

from __future__ import annotations

import numpy as np
import pytest

from damvad.datasets import FRAME_TOLERANCE, AnnotationError, DatasetError, get_dataset
from damvad.datasets.intervals import intervals_to_mask
from damvad.datasets.resources import read_resource_text
from damvad.datasets.ucf_crime import parse_ucf_test, parse_ucf_train


def _ucf_lines() -> dict[str, list[str]]:
    text = read_resource_text("ucf-crime", "test_annotations.txt")
    return {line.split()[0][: -len(".mp4")]: line.split() for line in text.splitlines() if line.strip()}



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
