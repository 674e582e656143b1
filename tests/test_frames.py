"""damvad.frames: the one conversion of decoded pixels (FrameConverter) and the crops' windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backendtools import MEDIA
from damvad.frames import CROP, FrameConverter, crop_offsets, resized_size
from damvad.video import decoder_threads, iter_frames, iter_snippets, snippet_to_input
from videotools import write_video

VTEST = MEDIA / "vtest.avi"


def _decoded(path: Path) -> list:
    import av

    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def _fresh_context_planes(frame, size: tuple[int, int]) -> np.ndarray:
    """The conversion before FrameConverter: a new swscale context per frame, swscale's own threads."""
    rgb = frame.reformat(width=size[0], height=size[1], format="gbrp", interpolation="BILINEAR")
    out = np.empty((3, size[1], size[0]), np.uint8)
    for channel, plane in zip((1, 2, 0), rgb.planes, strict=True):
        out[channel] = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[: size[1], : size[0]]
    return out


def _check_same_as_fresh_contexts(frames: list) -> None:
    convert = FrameConverter(planar=True)
    for frame in frames:
        size = resized_size(frame.width, frame.height)
        np.testing.assert_array_equal(convert(frame), _fresh_context_planes(frame, size))


@pytest.mark.parametrize("size", [(200, 150), (455, 256 + 2), (97, 61)])
def test_one_context_per_stream_gives_the_pixels_of_a_context_per_frame(tmp_path, size):
    path = write_video(tmp_path / "v.mkv", 6, width=size[0], height=size[1], codec="ffv1", pix_fmt="yuv420p"
                       if size[0] % 2 == 0 and size[1] % 2 == 0 else "bgr0", seed=2)
    _check_same_as_fresh_contexts(_decoded(path))


@pytest.mark.skipif(not VTEST.exists(), reason="needs ../shared/media/vtest.avi (the real surveillance clip)")
def test_one_context_per_stream_on_real_footage():
    _check_same_as_fresh_contexts(_decoded(VTEST)[:40])


def test_a_stream_that_changes_size_is_converted_at_each_size(tmp_path):
    small = _decoded(write_video(tmp_path / "a.mp4", 2, width=320, height=240, seed=1))
    wide = _decoded(write_video(tmp_path / "b.mp4", 2, width=640, height=360, seed=5))
    convert = FrameConverter(planar=True)
    shapes = [convert(f).shape for f in small + wide + small]
    assert shapes == [(3, 256, 341)] * 2 + [(3, 256, 455)] * 2 + [(3, 256, 341)] * 2
    np.testing.assert_array_equal(convert(wide[1]), _fresh_context_planes(wide[1], (455, 256)))


@pytest.mark.parametrize("planar", [True, False])
@pytest.mark.parametrize("size", [(320, 240), (360, 256), (256, 400)])  # scaled; already at size; portrait
def test_centre_window_is_the_centre_crop_of_the_whole_frame(tmp_path, planar, size):
    frames = _decoded(write_video(tmp_path / "v.mp4", 3, width=size[0], height=size[1], seed=9))
    whole, window = FrameConverter(planar=planar), FrameConverter(planar=planar, crops="center")
    for frame in frames:
        full, part = whole(frame), window(frame)
        h, w = full.shape[1:] if planar else full.shape[:2]
        ((top, left, _),) = crop_offsets(h, w, "center")
        expected = (full[:, top : top + CROP, left : left + CROP] if planar
                    else full[top : top + CROP, left : left + CROP])
        assert part.flags.c_contiguous
        np.testing.assert_array_equal(part, expected)


@pytest.mark.parametrize("crops", ["5", "10", None])
def test_other_crop_settings_keep_the_whole_frame(tmp_path, crops):
    frame = _decoded(write_video(tmp_path / "v.mp4", 1, width=320, height=240))[0]
    assert FrameConverter(planar=True, crops=crops)(frame).shape == (3, 256, 341)


def test_snippet_inputs_from_centre_windows_equal_those_from_whole_frames(tmp_path):
    path = write_video(tmp_path / "v.mp4", 64 + 5, width=400, height=300, seed=3)
    whole = [snippet_to_input(s.frames, "center", planar=True, dtype="uint8")
             for s in iter_snippets(iter_frames(path, planar=True), planar=True)]
    window = [snippet_to_input(s.frames, "center", planar=True, dtype="uint8")
              for s in iter_snippets(iter_frames(path, planar=True, crops="center"), planar=True)]
    assert len(whole) == len(window) == 2
    for a, b in zip(whole, window, strict=True):
        np.testing.assert_array_equal(a, b)


def test_decoder_threads_follow_the_cores_and_the_override(monkeypatch):
    import os

    monkeypatch.delenv("DAMVAD_DECODER_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(2)), raising=False)
    assert decoder_threads() == 1  # 2 cores: both for the model, the decoder unthreaded
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert decoder_threads() == 8
    monkeypatch.setenv("DAMVAD_DECODER_THREADS", "3")
    assert decoder_threads() == 3
    monkeypatch.setenv("DAMVAD_DECODER_THREADS", "many")
    with pytest.raises(ValueError, match="DAMVAD_DECODER_THREADS"):
        decoder_threads()
