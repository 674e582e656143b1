"""Times from the frames' timestamps (damvad.frametimes): variable rates, missing timestamps, reconnects."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from damvad import detect as detect_mod
from damvad.detect import ReconnectPolicy, reconnecting_frames
from damvad.frametimes import FrameClock, timed_frames
from damvad.video import VideoError, iter_frames
from videotools import VFR_TIMES, write_vfr_video, write_video


def _ticks(clock: FrameClock, stamps: list) -> list[float]:
    out = []
    for stamp in stamps:
        if stamp != "none":
            clock.stamp(stamp)
        out.append(clock.tick())
    return out


def test_decoded_timestamps_give_the_times_and_a_variable_rate_is_said_once(tmp_path, caplog):
    video = write_vfr_video(tmp_path / "vfr.mp4")
    clock = FrameClock(8.57, str(video))
    with caplog.at_level(logging.WARNING):
        frames = list(timed_frames(iter_frames(video, clock=clock), clock))
    times, end = clock.take(len(frames))
    np.testing.assert_allclose(times, VFR_TIMES, atol=1e-9)
    assert end == pytest.approx(VFR_TIMES[-1] + 1 / 30)  # the container's duration of the last frame
    assert clock.variable and clock.timing == "pts"
    assert sum("variable frame rate" in r.getMessage() for r in caplog.records) == 1
    assert "variable frame rate (frames 33 to 200 ms apart" in caplog.text


def test_a_constant_rate_is_not_flagged_and_starts_at_zero(tmp_path, caplog):
    video = write_video(tmp_path / "cfr.mp4", 30, fps=25)
    clock = FrameClock(25.0, str(video))
    with caplog.at_level(logging.WARNING):
        list(timed_frames(iter_frames(video, clock=clock), clock))
    times, end = clock.take(30)
    np.testing.assert_allclose(times, np.arange(30) / 25, atol=1e-9)
    assert end == pytest.approx(30 / 25) and not clock.variable and not caplog.records


def test_frames_without_timestamps_use_the_declared_rate_said_once(caplog):
    clock = FrameClock(10.0, "cam")
    with caplog.at_level(logging.WARNING):
        times = _ticks(clock, [None, None, None])  # decoded, no pts
    assert times == [0.0, 0.1, 0.2] and clock.timing == "declared rate"
    assert len(caplog.records) == 1 and "no timestamps; times come from the declared rate, 10 fps" in caplog.text
    raw = FrameClock(10.0)
    assert _ticks(raw, ["none"] * 3) == [0.0, 0.1, 0.2] and raw.timing == "pts"  # frames handed in: no stamps, no word


def test_timestamps_that_go_back_continue_from_the_latest_time():
    clock = FrameClock(10.0)
    times = _ticks(clock, [100.0, 100.1, 100.2, 0.0, 0.1])  # a live source reconnected: its clock restarted
    np.testing.assert_allclose(times, [0.0, 0.1, 0.2, 0.3, 0.4], atol=1e-9)


def test_a_reconnected_recording_counts_only_the_frames_passed_on(monkeypatch):
    """Reopened after 3 frames, the recording is decoded again from frame 0: the 3 replayed frames are
    dropped, so they must not move the clock."""
    calls = {"n": 0}

    def recording(source, *args, clock=None, **kwargs):
        calls["n"] += 1
        for i in range(3 if calls["n"] == 1 else 6):
            clock.stamp(0.5 + i / 4)
            yield np.full((2, 2, 3), i, np.uint8)
        if calls["n"] == 1:
            raise VideoError(source, "connection reset")

    monkeypatch.setattr(detect_mod, "iter_frames", recording)
    clock = FrameClock(4.0)
    frames = list(timed_frames(reconnecting_frames("http://x/a.mp4", ReconnectPolicy(wait=0), resume=True,
                                                   clock=clock), clock))
    assert [int(f[0, 0, 0]) for f in frames] == [0, 1, 2, 3, 4, 5]
    times, _ = clock.take(6)
    assert times == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]
