"""Live detection: equals the online protocol, hysteresis alerts, partial snippets, constant memory."""

from __future__ import annotations

import io
import itertools
import json
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from damvad import detect as detect_mod
from damvad.calibrate import calibrate_model
from damvad.contract import ContractError, FeatureContract
from damvad.detect import Detector, ReconnectPolicy, reconnecting_frames
from damvad.detections import AlertTracker, RowWriter, write_report
from damvad.extract import extract
from damvad.model import build_model
from damvad.modelfile import ModelCard, load_model, save_model_file
from damvad.scoring import ClipResult, score_video
from damvad.store import FeatureStore
from damvad.video import VideoError
from featuretools import make_feature_dataset
from videotools import VFR_TIMES, fake_features, write_frame_folder, write_vfr_video, write_video


@pytest.fixture()
def model_file(tmp_path):
    torch.manual_seed(0)
    model = build_model("dist", hidden=32, mlp_hidden=8)
    return save_model_file(tmp_path / "model.pt", model)


def test_live_scores_equal_online_protocol(tmp_path, model_file):
    video = write_video(tmp_path / "cam.mp4", 64 * 4 + 37, seed=5)  # ends mid-snippet
    extract([video], tmp_path / "feats", feature_fn=fake_features, progress=False)
    store = FeatureStore(tmp_path / "feats")
    model, _ = load_model(model_file)
    feats = store.load("cam")
    offline_online = score_video(model, feats.maps, feats.frames, "online")

    det = Detector(model_file, i3d=fake_features, threshold=0.5)
    out = io.StringIO()
    result = det.run(video, writer=RowWriter(out, "csv"), progress=False)
    assert result.frames == 64 * 4 + 37 and len(result.rows) == 5
    np.testing.assert_allclose([r.score for r in result.rows], offline_online.score, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose([r.clip_attention for r in result.rows], offline_online.clip_attention, rtol=1e-6)
    assert [[r.start_frame, r.end_frame] for r in result.rows] == offline_online.frame_ranges.tolist()
    assert [list(r) for r in feats.record.frame_ranges] == offline_online.frame_ranges.tolist()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("source,clip,start_frame") and len(lines) == 6


def test_online_groups_of_several_snippets_match(tmp_path, model_file):
    video = write_video(tmp_path / "cam.mp4", 64 * 5, seed=6)
    extract([video], tmp_path / "feats", feature_fn=fake_features, progress=False)
    store = FeatureStore(tmp_path / "feats")
    model, _ = load_model(model_file)
    feats = store.load("cam")
    ref = score_video(model, feats.maps, feats.frames, "online", snippets_per_clip=2)
    result = Detector(model_file, i3d=fake_features, snippets_per_clip=2).run(video, progress=False)
    np.testing.assert_allclose([r.score for r in result.rows], ref.score, rtol=1e-6)
    assert len(result.rows) == 3  # 2 + 2 + the partial last group


def test_a_folder_of_frames_is_scored_live_at_the_models_stride_as_online(tmp_path):
    folder = write_frame_folder(tmp_path / "cam", 150, seed=2)
    extract([folder], tmp_path / "feats", feature_fn=fake_features, stride=16, fps=10, progress=False)
    feats = FeatureStore(tmp_path / "feats").load("cam")
    torch.manual_seed(0)
    model = build_model("dist", hidden=32, mlp_hidden=8)
    path = save_model_file(tmp_path / "m16.pt", model, ModelCard(features=FeatureContract(crops="center", stride=16)))
    det = Detector(path, i3d=fake_features, threshold=0.5)
    assert det.stride == 16
    result = det.run(folder, fps=10, progress=False)
    ref = score_video(load_model(path)[0], feats.maps, feats.frames, "online", stride=16)
    assert result.frames == 150 and result.fps == 10 and len(result.rows) == 7
    np.testing.assert_allclose([r.score for r in result.rows], ref.score, rtol=1e-6, atol=1e-7)
    assert [[r.start_frame, r.end_frame] for r in result.rows] == ref.frame_ranges.tolist()
    assert ref.frame_ranges.tolist() == [[0, 64], [64, 80], [80, 96], [96, 112], [112, 128], [128, 144], [144, 150]]
    np.testing.assert_allclose([(r.start_time, r.end_time) for r in result.rows[:2]], [(0.0, 6.4), (6.4, 8.0)])
    with pytest.raises(ContractError, match=r"stride: 16 \(the model's training features\) vs 64 \(detect\)"):
        Detector(path, i3d=fake_features, stride=64)


def _clip(i, score):
    return ClipResult(i, i * 64, (i + 1) * 64, score, score, None)


def test_hysteresis_opens_above_and_closes_after_staying_below():
    tracker = AlertTracker(threshold=0.5, fps=32.0, close_after=4.0)  # 4 s = 128 frames = 2 clips
    seq = [0.1, 0.7, 0.9, 0.2, 0.6, 0.3, 0.2, 0.1, 0.8]
    active, closed = [], []
    for i, s in enumerate(seq):
        a, c = tracker.update(_clip(i, s), s)
        active.append(a)
        if c:
            closed.append(c)
    # the dip at clip 3 is shorter than 4 s: one event from clip 1 to clip 4, closed after clips 5-6
    assert active == [False, True, True, True, True, True, False, False, True]
    assert len(closed) == 1 and (closed[0].start_frame, closed[0].end_frame) == (64, 320)
    assert closed[0].peak_score == pytest.approx(0.9)
    last = tracker.finish()
    assert last.start_frame == 8 * 64 and last.peak_score == pytest.approx(0.8)


def _held_by_damvad() -> int:
    """Bytes allocated by damvad's own code (its serving app aside) and still held: a server or cluster thread
    left by an earlier test allocates in its own files, so it cannot move this."""
    package = Path(detect_mod.__file__).parent
    only = [tracemalloc.Filter(True, str(package / "*")), tracemalloc.Filter(False, str(package / "serve" / "*"))]
    return sum(stat.size for stat in tracemalloc.take_snapshot().filter_traces(only).statistics("filename"))


def _constant_frames(n: int, samples: list[int] | None = None, every: int = 64 * 20):
    frame = np.full((224, 224, 3), 90, np.uint8)
    for i in range(n):
        if samples is not None and i and i % every == 0:
            samples.append(_held_by_damvad())
        frame[0, 0, 0] = i % 255
        yield frame


def _held_during_a_long_run(model_file, keep_rows: bool):
    """(result, bytes held by damvad sampled five times inside one run of 120 snippets, after a warm-up run)."""
    det = Detector(model_file, i3d=fake_features)
    det.run(_constant_frames(64 * 10), fps=25, progress=False, keep_rows=False)  # warm-up allocations
    held: list[int] = []
    tracemalloc.start()
    try:
        result = det.run(_constant_frames(64 * 120, held), fps=25, progress=False, keep_rows=keep_rows)
    finally:
        tracemalloc.stop()
    assert result.frames == 64 * 120 and len(held) == 5
    return result, held


# 80 snippets between the first and the last sample: kept rows add ~70 KiB, a run that keeps nothing < 4 KiB
GROWTH_LIMIT = 32 << 10


def test_long_stream_memory_stays_constant(model_file):
    """What a run holds does not grow with the stream (sampled inside one long run; other threads' allocations,
    which made a peak-memory check flaky in a full run, are not counted)."""
    result, held = _held_during_a_long_run(model_file, keep_rows=False)
    assert max(held[1:]) - held[0] < GROWTH_LIMIT, f"memory held by damvad grew during the run: {held}"
    assert not result.rows


def test_memory_check_sees_kept_rows(model_file):
    """The check above is not blind: keeping every row (the offline report's choice) grows past its limit."""
    result, held = _held_during_a_long_run(model_file, keep_rows=True)
    assert len(result.rows) == 120 and max(held[1:]) - held[0] >= GROWTH_LIMIT, held


def test_reconnect_then_clear_error(monkeypatch):
    calls = {"n": 0}

    def flaky(source, *a, **k):
        calls["n"] += 1
        if calls["n"] == 1:
            yield np.zeros((2, 2, 3), np.uint8)
            raise VideoError(source, "connection reset")
        if calls["n"] == 2:
            yield np.ones((2, 2, 3), np.uint8)
            return

    policy = ReconnectPolicy(attempts=2, wait=0)
    monkeypatch.setattr(detect_mod, "iter_frames", flaky)
    frames = list(reconnecting_frames("rtsp://camera/x", policy))
    assert len(frames) == 2 and calls["n"] == 2

    def dead(source, *a, **k):
        raise VideoError(source, "connection refused")
        yield  # pragma: no cover

    monkeypatch.setattr(detect_mod, "iter_frames", dead)
    with pytest.raises(VideoError, match="given up after 2 reconnect"):
        list(reconnecting_frames("rtsp://camera/x", policy))


def test_failures_count_across_the_source_and_are_forgotten_after_the_window(monkeypatch):
    """A live feed that delivers a frame and then fails, every time: the count does not reset on each frame."""
    calls = {"n": 0}

    def blip(source, *a, **k):
        calls["n"] += 1
        yield np.zeros((2, 2, 3), np.uint8)
        raise VideoError(source, "connection reset")

    monkeypatch.setattr(detect_mod, "iter_frames", blip)
    with pytest.raises(VideoError, match="given up after 3 reconnect"):
        list(reconnecting_frames("rtsp://camera/x", ReconnectPolicy(attempts=3, wait=0)))
    assert calls["n"] == 4
    clock = iter(range(0, 100_000, 100))  # 100 s between failures, a 150 s window: never 2 in a window
    monkeypatch.setattr(detect_mod, "time", SimpleNamespace(monotonic=lambda: next(clock), sleep=lambda s: None))
    frames = reconnecting_frames("rtsp://camera/x", ReconnectPolicy(attempts=1, window=150, max_outage=1e9))
    assert len(list(itertools.islice(frames, 20))) == 20  # still reconnecting after 20 failures


def test_calibrated_threshold_is_stored_and_used(tmp_path):
    data, feats = make_feature_dataset(tmp_path / "ds", n_train=8, n_test=2)
    torch.manual_seed(0)
    path = save_model_file(tmp_path / "m.pt", build_model("dist", hidden=16, mlp_hidden=8))
    th = calibrate_model(path, feats, dataset=str(data), split="train", far=0.05)
    assert th["far_on_calibration_frames"] <= 0.05 and th["num_videos"] == 4
    _, card = load_model(path)
    assert card.threshold.value == pytest.approx(th["value"])
    det = Detector(path, i3d=fake_features)
    assert det.threshold == pytest.approx(th["value"]) and det.threshold_source == "calibrated"
    assert Detector(path, i3d=fake_features, threshold=0.9).threshold == 0.9


def test_report_has_plot_events_and_annotated_video(tmp_path, model_file):
    import av

    video = write_video(tmp_path / "cam.mp4", 150, width=128, height=96, seed=7)
    det = Detector(model_file, i3d=fake_features, threshold=0.0)  # everything alerts
    out = io.StringIO()
    result = det.run(video, writer=RowWriter(out, "jsonl"), progress=False)
    paths = write_report(result, tmp_path / "report", det.threshold, video)
    events = json.loads(open(paths["events"]).read())["events"]
    assert len(events) == 1 and events[0]["start_frame"] == 0 and events[0]["end_frame"] == 150
    assert json.loads(out.getvalue().splitlines()[-1])["type"] == "event"
    with av.open(paths["video"]) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 150 and frames[0].shape == (96, 128, 3)
    assert frames[10][1, 64, 0] > 180 and frames[10][1, 64, 1] < 90  # red alert border



def test_report_of_a_variable_frame_rate_video_keeps_its_times(tmp_path, model_file):
    import av

    video = write_vfr_video(tmp_path / "vfr.mp4")
    det = Detector(model_file, i3d=fake_features, threshold=0.0)  # one event over the whole video
    result = det.run(video, progress=False)
    assert [(r.start_frame, r.start_time) for r in result.rows] == [
        (0, 0.0), (64, pytest.approx(VFR_TIMES[64])), (128, pytest.approx(VFR_TIMES[128]))]
    assert result.variable_frame_rate and result.events[0].end_time == pytest.approx(VFR_TIMES[-1] + 1 / 30)
    paths = write_report(result, tmp_path / "report", det.threshold, video)
    assert json.loads(open(paths["events"]).read())["variable_frame_rate"] is True
    with av.open(paths["video"]) as c:
        times = [f.time for f in c.decode(video=0)]
    np.testing.assert_allclose(times, VFR_TIMES, atol=1e-4)  # the annotated copy shows each frame when the source does


def _frames_on_a_clock(n: int, clock: list[float], wall_per_frame: float):
    """``_constant_frames`` whose every frame moves ``clock[0]``, the wall time detect reads, by ``wall_per_frame``."""
    for frame in _constant_frames(n):
        clock[0] += wall_per_frame
        yield frame


@pytest.mark.parametrize(("live", "pace", "warned"), [(True, 0.5, True), (True, 1.0, False), (False, 0.5, False)])
def test_a_live_source_scored_slower_than_it_arrives_is_reported(tmp_path, model_file, monkeypatch, caplog, live, pace,
                                                                  warned):
    """A camera scored at half its frame rate falls 60 s further behind every minute: said once, with what to do,
    and recorded in the result; a camera kept up with, or a file scored slowly, is not (wall time is a fake clock
    that the frames move: 25 frames/s of stream cost 1 / pace s each)."""
    clock = [0.0]
    monkeypatch.setattr(detect_mod, "time", SimpleNamespace(perf_counter=lambda: clock[0], sleep=lambda s: None,
                                                            monotonic=lambda: clock[0]))
    det = Detector(model_file, i3d=fake_features)
    frames = _frames_on_a_clock(64 * 60, clock, 1.0 / (25.0 * pace))  # 154 s of stream: two windows, said once
    with caplog.at_level("WARNING", logger="damvad.detect"):
        result = det.run(frames, fps=25, progress=False, keep_rows=False, live=live)
    said = [r.getMessage() for r in caplog.records if "real time" in r.getMessage()]
    if warned:
        assert result.behind_real_time == pytest.approx(0.5, abs=0.05) and len(said) == 1
        lag = 60 * (1 / result.behind_real_time - 1)  # ~60 s a minute at half speed
        assert f"falls {lag:.0f} s further behind" in said[0] and 55 < lag < 65 and "--crops center" in said[0]
        report = write_report(result, tmp_path / "report", det.threshold)
        assert json.loads(Path(report["events"]).read_text())["behind_real_time"] == result.behind_real_time
    else:
        assert result.behind_real_time is None and not said
