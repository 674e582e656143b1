"""Metrics against hand computations and independent loops on small examples."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from damvad.clips import clip_scores_to_frames
from damvad.metrics import (
    average_precision,
    average_precision_trapezoid,
    evaluate_scores,
    false_alarm_rate,
    frame_auc,
    mean_per_video_auc,
    per_video_auc,
    roc_curve_points,
    threshold_for_far,
    video_level_auc,
)


def _pairwise_auc(scores, labels) -> float:
    """Probability a positive outranks a negative, ties counting one half (Mann-Whitney), by loops."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    total = 0.0
    for p in pos:
        for n in neg:
            total += 1.0 if p > n else 0.5 if p == n else 0.0
    return total / (len(pos) * len(neg))


def _videos(seed: int = 0):
    rng = np.random.default_rng(seed)
    scores, labels, vlabels = {}, {}, {}
    for i, n in enumerate((17, 9, 23, 5, 12)):
        s = np.round(rng.random(n), 1)  # rounding forces ties
        y = np.zeros(n, dtype=bool)
        if i % 2:  # anomalous videos
            y[n // 3 : n // 3 + max(2, n // 3)] = True
            s[y] = np.minimum(s[y] + 0.3, 1.0)
        scores[f"v{i}"], labels[f"v{i}"], vlabels[f"v{i}"] = s, y, int(i % 2)
    return scores, labels, vlabels


# ----------------------------------------------------------------------------------- clip scores onto frames


def test_clip_scores_to_frames_maps_each_frame_to_its_range():
    values = [0.5, 0.1, 0.9]
    ranges = [[0, 64], [64, 128], [128, 150]]
    out = clip_scores_to_frames(np.array(values), np.array(ranges), 150)
    ref = np.empty(150)
    for f in range(150):
        for v, (s, e) in zip(values, ranges, strict=True):
            if s <= f < e:
                ref[f] = v
    np.testing.assert_array_equal(out, ref)
    assert out[63] == 0.5 and out[64] == 0.1 and out[149] == 0.9


@pytest.mark.parametrize(
    "values, ranges, n, match",
    [
        ([1, 2], [[0, 10], [12, 20]], 20, r"do not cover all 20 frames"),
        ([1, 2], [[0, 10], [8, 20]], 20, r"overlap"),
        ([1, 2], [[0, 10], [10, 25]], 20, r"out of \[0, 20\]"),
        ([1, 2], [[0, 10], [10, 15]], 20, r"do not cover all 20 frames"),
        ([1, 2], [[3, 10], [10, 20]], 20, r"do not cover all 20 frames"),
        ([1, 2], [[0, 10], [10, 10]], 10, r"or empty"),
        ([1, float("nan")], [[0, 10], [10, 20]], 20, r"NaN"),
        ([1, 2, 3], [[0, 10], [10, 20]], 20, r"expected scores \(C,\) and frame ranges \(C, 2\)"),
    ],
)
def test_clip_scores_to_frames_errors(values, ranges, n, match):
    with pytest.raises(ValueError, match=match):
        clip_scores_to_frames(np.array(values, dtype=float), np.array(ranges), n)


# ----------------------------------------------------------------------------------- AUC


def test_frame_auc_equals_pairwise_count_over_concatenated_frames():
    scores, labels, _ = _videos()
    all_s = np.concatenate([scores[k] for k in scores])
    all_y = np.concatenate([labels[k] for k in scores])
    assert frame_auc(scores, labels) == pytest.approx(_pairwise_auc(all_s, all_y), abs=1e-12)
    fpr, tpr, thr = roc_curve_points(scores, labels)
    assert fpr[0] == 0 and tpr[-1] == 1 and np.all(np.diff(fpr) >= 0)
    assert np.trapezoid(tpr, fpr) == pytest.approx(_pairwise_auc(all_s, all_y), abs=1e-12)


def test_auc_small_hand_example():
    # positives 0.8, 0.4; negatives 0.4, 0.1, 0.6.
    # 0.8 beats all three (3); 0.4 ties 0.4 (0.5) and beats 0.1 (1): 4.5 of 6 pairs
    scores = {"a": np.array([0.8, 0.4, 0.1]), "b": np.array([0.4, 0.6])}
    labels = {"a": np.array([1, 0, 0]), "b": np.array([1, 0])}
    assert frame_auc(scores, labels) == pytest.approx(4.5 / 6)


def test_per_video_auc_nan_for_one_class_and_mean_ignores_it():
    scores, labels, _ = _videos(1)
    pv = per_video_auc(scores, labels)
    for name in scores:
        if labels[name].any():
            assert pv[name] == pytest.approx(_pairwise_auc(scores[name], labels[name]))
        else:
            assert math.isnan(pv[name])
    mean, count = mean_per_video_auc(pv)
    defined = [_pairwise_auc(scores[k], labels[k]) for k in scores if labels[k].any()]
    assert count == len(defined) == 2 and mean == pytest.approx(sum(defined) / len(defined))
    assert math.isnan(mean_per_video_auc({"x": float("nan")})[0]) and mean_per_video_auc({})[1] == 0


def test_video_level_auc_uses_max_score():
    scores = {"n1": [0.1, 0.7], "n2": [0.2, 0.3], "a1": [0.05, 0.9], "a2": [0.6, 0.5]}
    vl = {"n1": 0, "n2": 0, "a1": 1, "a2": 1}
    # maxima: n1 .7, n2 .3, a1 .9, a2 .6 -> a1 beats both, a2 beats n2 only: 3/4
    assert video_level_auc(scores, vl) == pytest.approx(0.75)
    assert video_level_auc({"n": 0.2, "a": 0.3}, {"n": 0, "a": 1}) == 1.0  # scalars work too
    with pytest.raises(ValueError, match="undefined"):
        video_level_auc(scores, {"n1": 0, "n2": 0})


# ----------------------------------------------------------------------------------- AP


def test_average_precision_by_hand():
    # ranked: 0.9(+) 0.8(-) 0.7(+) 0.6(-) 0.5(-): precision at the two hits 1/1 and 2/3
    scores = {"x": np.array([0.9, 0.8, 0.7]), "y": np.array([0.6, 0.5])}
    labels = {"x": np.array([1, 0, 1]), "y": np.array([0, 0])}
    assert average_precision(scores, labels) == pytest.approx((1 + 2 / 3) / 2)
    # PR points (recall, precision) down to full recall: (0,1) (.5,1) (.5,.5) (1,2/3);
    # trapezoids: 0.5 * 1 + 0 + 0.5 * (0.5 + 2/3) / 2 = 19/24
    assert average_precision_trapezoid(scores, labels) == pytest.approx(19 / 24)


def test_average_precision_matches_definition_on_random_data():
    scores, labels, _ = _videos(2)
    s = np.concatenate([scores[k] for k in sorted(scores)])
    y = np.concatenate([labels[k] for k in sorted(scores)])
    # AP = sum over distinct thresholds t (descending) of (R(t) - R(prev)) * P(t)
    ap, prev_r = 0.0, 0.0
    for t in sorted(set(s), reverse=True):
        sel = s >= t
        r, p = (sel & y).sum() / y.sum(), (sel & y).sum() / sel.sum()
        ap += (r - prev_r) * p
        prev_r = r
    assert average_precision(scores, labels) == pytest.approx(ap, abs=1e-12)


# ----------------------------------------------------------------------------------- FAR


def test_false_alarm_rate_by_hand():
    normal = {"n1": np.array([0.1, 0.5, 0.7]), "n2": np.array([0.2, 0.49])}
    assert false_alarm_rate(normal) == pytest.approx(2 / 5)  # 0.5 counts (>=), 0.49 does not
    assert false_alarm_rate(normal, threshold=0.75) == 0.0
    assert false_alarm_rate([0.3, 0.9], threshold=0.3) == 1.0


def test_threshold_for_far_by_hand():
    s = np.arange(10) / 10.0  # 0.0 .. 0.9
    t = threshold_for_far(s, 0.2)  # 2 of 10 frames may alarm: 0.9, 0.8; 0.7 must not
    assert t == pytest.approx(0.75) and false_alarm_rate(s, t) == pytest.approx(0.2)
    assert false_alarm_rate(s, threshold_for_far(s, 0.0)) == 0.0  # just above the max
    assert threshold_for_far(s, 1.0) == 0.0
    tied = np.array([0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    t = threshold_for_far(tied, 0.2)  # cannot let 2 of 3 tied frames through: none may alarm
    assert t > 0.9 and false_alarm_rate(tied, t) == 0.0
    with pytest.raises(ValueError, match="fraction"):
        threshold_for_far(s, 5)


def test_threshold_for_far_is_the_lowest_that_keeps_the_rate():
    rng = np.random.default_rng(3)
    s = np.round(rng.random(400), 2)
    distinct = np.unique(s)
    for rate in (0.0, 0.01, 0.05, 0.1, 0.333, 0.9):
        t = threshold_for_far(s, rate)
        assert false_alarm_rate(s, t) <= rate
        lower = distinct[distinct < t]
        if lower.size:  # lowering it to the next score below would break the rate
            assert false_alarm_rate(s, lower[-1]) > rate


# ----------------------------------------------------------------------------------- everything


def test_evaluate_scores_agrees_with_the_parts_and_is_json():
    scores, labels, vl = _videos(4)
    out = evaluate_scores(scores, labels, vl, far_rates=(0.05, 0.2))
    json.dumps(out, allow_nan=False)
    all_s = np.concatenate([scores[k] for k in scores])
    all_y = np.concatenate([labels[k] for k in scores])
    assert out["num_frames"] == all_s.size and out["num_anomalous_frames"] == int(all_y.sum())
    assert out["frame_auc"] == pytest.approx(_pairwise_auc(all_s, all_y))
    assert out["frame_ap"] == pytest.approx(average_precision(scores, labels))
    assert out["frame_ap_trapezoid"] == pytest.approx(average_precision_trapezoid(scores, labels))
    normal = np.concatenate([scores[k] for k in scores if vl[k] == 0])
    assert out["num_normal_videos"] == 3
    assert out["far_at_threshold"]["far"] == pytest.approx(np.mean(normal >= 0.5))
    for target in out["far_targets"]:
        assert target["far"] <= target["rate"]
        assert target["tpr"] == pytest.approx(np.mean(all_s[all_y] >= target["threshold"]))
    assert out["per_video_auc_count"] == 2
    assert out["per_video_auc"]["v0"] is None
    maxima = {k: scores[k].max() for k in scores}
    assert out["video_auc"] == pytest.approx(
        _pairwise_auc([maxima[k] for k in scores], [vl[k] for k in scores])
    )


def test_validation_names_the_video():
    scores = {"good": np.array([0.1, 0.9]), "bad": np.array([0.2, np.nan, 0.3])}
    labels = {"good": np.array([0, 1]), "bad": np.array([0, 0, 0])}
    with pytest.raises(
        ValueError, match=r"video 'bad': 1 score\(s\) are NaN or infinite \(first at frame 1\)"
    ):
        frame_auc(scores, labels)
    scores["bad"] = np.array([0.2, 0.3])
    with pytest.raises(ValueError, match=r"video 'bad': 2 scores but 3 frame labels"):
        evaluate_scores(scores, labels, {"good": 1, "bad": 0})
    with pytest.raises(ValueError, match=r"no scores for 1 labelled video\(s\): bad"):
        frame_auc({"good": scores["good"]}, labels)
    with pytest.raises(ValueError, match=r"video 'good' is labelled normal but has 1 anomalous frames"):
        evaluate_scores({"good": scores["good"]}, {"good": labels["good"]}, {"good": 0})
    with pytest.raises(ValueError, match="undefined: all 3 frames are normal"):
        frame_auc({"bad": np.array([0.2, 0.3, 0.4])}, {"bad": labels["bad"]})
