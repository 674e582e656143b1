"""Decoding, snippet cutting, cropping and bad-input handling."""

from __future__ import annotations

import numpy as np
import pytest

from damvad.snippets import snippet_ranges
from damvad.video import (
    BackgroundIterator,
    VideoError,
    crop_offsets,
    iter_frames,
    iter_snippets,
    probe,
    resized_size,
    snippet_to_input,
)
from videotools import write_video


def test_resized_size_keeps_aspect_and_short_side():
    assert resized_size(768, 576) == (341, 256)
    assert resized_size(61, 97) == (256, 407)
    assert resized_size(320, 240) == (341, 256)
    assert resized_size(256, 256) == (256, 256)


def test_snippets_cover_frames_and_pad_with_last_frame():
    frames = [np.full((4, 4, 3), i, np.uint8) for i in range(130)]
    snips = list(iter_snippets(frames, 64))
    assert [(s.start, s.end) for s in snips] == [(0, 64), (64, 128), (128, 130)]
    last = snips[-1].frames
    assert last.shape == (64, 4, 4, 3)
    assert last[0, 0, 0, 0] == 128 and last[1, 0, 0, 0] == 129
    assert (last[2:, 0, 0, 0] == 129).all()  # padded by repeating the last true frame


def test_short_video_gives_one_padded_snippet_and_empty_is_an_error():
    snips = list(iter_snippets([np.zeros((2, 2, 3), np.uint8)], 64))
    assert len(snips) == 1 and (snips[0].start, snips[0].end) == (0, 1)
    with pytest.raises(VideoError, match="no frames"):
        list(iter_snippets([], 64, source="empty.mp4"))


@pytest.mark.parametrize("frames", [30, 64, 150, 200])
@pytest.mark.parametrize("stride", [16, 40, 64])
def test_snippets_at_a_stride_follow_the_one_layout_as_frames_arrive(frames, stride):
    arrived = []

    def source():
        for i in range(frames):
            arrived.append(i)
            yield np.full((2, 2, 3), i, np.uint8)

    snips = []
    for snip in iter_snippets(source(), 64, stride=stride):
        snips.append(snip)
        if snip.end - snip.start == 64 and len(arrived) < frames:  # a full snippet comes out at its last frame
            assert len(arrived) == snip.end
    assert [[s.start, s.end] for s in snips] == snippet_ranges(frames, 64, stride).tolist()
    for s in snips:  # each holds its own frames, the last one repeated where the video has too few
        true = np.arange(s.start, s.end)
        assert s.frames[: len(true), 0, 0, 0].tolist() == true.tolist()
        assert (s.frames[len(true):, 0, 0, 0] == s.end - 1).all()


def test_crops_positions_flip_and_scaling():
    h, w = 256, 250
    frames = np.zeros((64, h, w, 3), np.uint8)
    frames[:, :, :, 0] = np.arange(w, dtype=np.uint8)[None, None, :]  # red = column index
    frames[:, :, :, 1] = 255
    x = snippet_to_input(frames, "10")
    assert x.shape == (10, 3, 64, 224, 224) and x.dtype == np.float32
    offsets = crop_offsets(h, w, "10")
    assert offsets[0] == ((h - 224) // 2, (w - 224) // 2, False)
    assert offsets[4] == (h - 224, w - 224, False) and offsets[9] == (h - 224, w - 224, True)
    np.testing.assert_allclose(x[:, 1], 1.0)  # 255 -> +1
    for i, (_, left, flip) in enumerate(offsets):
        cols = np.arange(left, left + 224)[::-1] if flip else np.arange(left, left + 224)
        np.testing.assert_allclose(x[i, 0, 5, 7], cols / 127.5 - 1.0, rtol=0, atol=1e-6)


def test_decode_real_sizes_and_formats(tmp_path):
    odd = write_video(tmp_path / "odd.mkv", 10, width=97, height=61, codec="ffv1", pix_fmt="bgr0")
    gray = write_video(tmp_path / "gray.mkv", 5, width=80, height=64, codec="ffv1", pix_fmt="gray", gray=True)
    f_odd = list(iter_frames(odd))
    assert len(f_odd) == 10 and f_odd[0].shape == (256, 407, 3)  # 97 wide x 61 high
    f_gray = list(iter_frames(gray))
    assert len(f_gray) == 5 and f_gray[0].shape == (256, 320, 3)  # 80 x 64 -> 320 x 256
    assert (f_gray[0][..., 0] == f_gray[0][..., 2]).all()  # grey expanded to RGB
    assert probe(odd).width == 97


@pytest.mark.parametrize(
    "make, cause",
    [
        (lambda p: p / "missing.mp4", "does not exist"),
        (lambda p: (p / "empty.mp4").write_bytes(b"") or p / "empty.mp4", "empty"),
        (
            lambda p: (p / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(5000)) or p / "noise.mp4",
            "cannot open",
        ),
    ],
)
def test_bad_files_get_clear_errors(tmp_path, make, cause):
    path = make(tmp_path)
    with pytest.raises(VideoError, match=cause) as info:
        list(iter_frames(path))
    assert str(path) in str(info.value)


def test_zero_frame_and_truncated_videos(tmp_path):
    zero = write_video(tmp_path / "zero.avi", 0)
    with pytest.raises(VideoError, match="no frames") as info:
        list(iter_snippets(iter_frames(zero), source=zero))
    assert "zero.avi" in str(info.value)
    full = write_video(tmp_path / "full.mp4", 80)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(VideoError) as info:
        list(iter_snippets(iter_frames(cut), source=cut))
    assert "cut.mp4" in str(info.value)


def test_a_file_cut_inside_its_last_packet_keeps_the_frames_before_the_cut(tmp_path):
    """MPEG-4 part 2 in AVI, cut at a third: the demuxer flags the last packet corrupt and the decoder rejects it
    (whether it does depends on how the file was encoded: here one encoder thread). A local file ends there with
    every whole frame kept; the same bytes as a live source (a URL) still raise, so a cut stream is resumed."""
    import av

    full = write_video(tmp_path / "full.avi", 200, seed=2)
    cut = tmp_path / "cut.avi"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    with av.open(str(cut)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
        assert packets[-1].is_corrupt
        with pytest.raises(av.error.FFmpegError):  # the case this test is about: the decoder refuses it
            for p in packets:
                p.decode()
    kept = list(iter_frames(cut))
    whole = list(iter_frames(full))
    assert 0 < len(kept) < len(packets) < 200
    assert all(np.array_equal(a, b) for a, b in zip(kept, whole[: len(kept)], strict=True))
    with pytest.raises(VideoError, match=f"decoding failed after {len(kept)} frames"):
        list(iter_frames(f"file://{cut}"))


def test_only_an_end_of_stream_packet_may_follow_a_cut():
    from types import SimpleNamespace

    from damvad.video import _nothing_after

    assert _nothing_after(iter([])) and _nothing_after(iter([SimpleNamespace(size=0)]))
    assert not _nothing_after(iter([SimpleNamespace(size=0), SimpleNamespace(size=7)]))


def test_background_iterator_propagates_errors_and_order():
    def gen():
        yield from range(5)
        raise OSError("disk gone")

    out = []
    with pytest.raises(OSError, match="disk gone"):
        for item in BackgroundIterator(gen(), maxsize=2):
            out.append(item)
    assert out == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("size", [(200, 150), (768, 576)])
def test_planar_decoding_matches_packed_rgb(tmp_path, size):
    """The fast path (swscale to planar gbrp) gives swscale's packed rgb24 pixels, in both layouts: within
    one level on < 1 % of the values (rounding inside swscale differs slightly between its two paths)."""
    import av

    path = write_video(tmp_path / "v.mp4", 12, width=size[0], height=size[1], seed=4)
    hwc = list(iter_frames(path))
    chw = list(iter_frames(path, planar=True))
    with av.open(str(path)) as container:
        packed = [f.reformat(width=341, height=256, format="rgb24", interpolation="BILINEAR").to_ndarray()
                  for f in container.decode(video=0)]
    assert len(hwc) == len(chw) == len(packed) == 12
    for a, b, ref in zip(hwc, chw, packed, strict=True):
        assert a.shape == (256, 341, 3) and b.shape == (3, 256, 341)
        np.testing.assert_array_equal(a, b.transpose(1, 2, 0))
        diff = np.abs(a.astype(np.int16) - ref)
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_frames_already_at_size_decode_right_to_the_last_column(tmp_path):
    """A video whose short side is already 256 is not resized: swscale's unscaled YUV -> planar RGB garbles
    the last width % 16 columns (here 360 % 16 = 8), so those frames take its packed RGB output."""
    import av

    path = write_video(tmp_path / "v.mp4", 3, width=360, height=256, seed=7)
    with av.open(str(path)) as container:
        packed = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    for _ in range(2):  # the same pixels every time (garbled columns were whatever memory held)
        chw = list(iter_frames(path, planar=True))
        assert [f.shape for f in chw] == [(3, 256, 360)] * 3
        np.testing.assert_array_equal(np.stack(chw).transpose(0, 2, 3, 1), np.stack(packed))


def test_uint8_and_planar_inputs_match_the_float_input():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(16, 256, 300, 3), dtype=np.uint8)
    ref = snippet_to_input(frames, "10")
    planar = np.ascontiguousarray(frames.transpose(0, 3, 1, 2))
    for x in (snippet_to_input(frames, "10", dtype="uint8"), snippet_to_input(planar, "10", planar=True,
                                                                                dtype="uint8")):
        assert x.shape == ref.shape and x.dtype == np.uint8 and x.flags.c_contiguous
        np.testing.assert_allclose(x / 127.5 - 1, ref, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(snippet_to_input(planar, "5", planar=True), snippet_to_input(frames, "5"))
    with pytest.raises(ValueError, match=r"\(T, 3, H, W\)"):
        snippet_to_input(frames, planar=True)


def test_one_path_from_frames_to_inputs_for_files_streams_and_packed_frames(tmp_path):
    """Extraction (a file, decoded planar in the background) and detection (frames handed over, packed or
    planar) get bit-identical inputs from :func:`snippet_inputs`, equal to cutting and cropping by hand."""
    from damvad.video import preprocessed_snippets, snippet_inputs

    path = write_video(tmp_path / "v.mp4", 64 + 9, width=240, height=180, seed=3)
    by_hand = [(s.start, s.end, snippet_to_input(s.frames, "5", dtype="uint8"))
               for s in iter_snippets(iter_frames(path))]
    runs = {
        "file": list(preprocessed_snippets(path, "5", dtype="uint8")),
        "packed": list(preprocessed_snippets("cam", "5", dtype="uint8", frames=iter_frames(path), planar=False)),
        "planar": list(preprocessed_snippets("cam", "5", dtype="uint8", frames=iter_frames(path, planar=True))),
        "inline": list(snippet_inputs(iter_frames(path), "5", dtype="uint8")),
    }
    assert [(a, b) for a, b, _ in by_hand] == [(0, 64), (64, 73)]
    for name, got in runs.items():
        assert [(s.start, s.end) for s, _ in got] == [(a, b) for a, b, _ in by_hand], name
        for (_, x), (_, _, ref) in zip(got, by_hand, strict=True):
            assert x.shape == (5, 3, 64, 224, 224) and x.dtype == np.uint8
            np.testing.assert_array_equal(x, ref)
        arrived = [s.arrived for s, _ in got]
        assert 0 < arrived[0] <= arrived[1]  # when each snippet's last frame came (detect's latency)
    with pytest.raises(ValueError, match="crops must be"):
        preprocessed_snippets(path, "7")  # refused at the call, not later in the background thread
