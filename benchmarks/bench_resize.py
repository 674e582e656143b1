"""Cheaper resizes than today's, and what they would change: the alternatives issue 24 left to measure.

Today (:class:`damvad.frames.FrameConverter`) swscale scales the whole decoded frame, bilinear, to 256 short
side and the centre crop's 224 x 224 window is copied out. Its cost is most of what decoding + preprocessing
costs beyond a bare decode. Cheaper ways, each changing pixels:

* ``full_area``, ``full_fast_bilinear``: the whole frame with swscale's AREA / FAST_BILINEAR filter;
* ``window_bilinear``, ``window_fast_bilinear``: only the source window that becomes the centre crop (its
  edges rounded to even pixels, for 4:2:0 chroma) copied into a new frame and scaled straight to 224 x 224;
  the crop lands up to half a source pixel off and the scale differs by the rounding;
* ``graph_bilinear``: the same window through FFmpeg's crop filter (no copy) and scale filter;
* ``openvino_graph``: swscale skipped: the decoded 4:2:0 planes copied as they are (64 frames a batch) into an
  OpenVINO graph that scales each plane to the 256-short-side size (``Interpolate``, linear, half-pixel, the
  same geometry as swscale's), crops the centre and converts BT.601 YUV to RGB -- moving the conversion into
  the model's graph, as issue 24 suggested, with the model's two threads (CPU time of the whole process);
* ``yuv_then_rgb24``: swscale scales in 4:2:0 YUV (bilinear, today's geometry), then converts the small frame to
  packed RGB unscaled (swscale's SIMD ``yuv2rgb`` path: chroma not interpolated), the centre window copied out;
* ``floor_yuv420p`` (timed only, its frames unusable as they are): swscale's bilinear scale of the whole frame to
  4:2:0 YUV, no colour conversion at all -- the least any swscale conversion with today's geometry can cost;
* ``floor_gray`` (timed only): the luma plane alone scaled (grayscale out): the least any resize of this
  geometry costs with swscale, whatever happens to colour.

Beside them, per file and in the same run, what decoding itself costs (streamed, frames not kept): ``bare``, a
bare PyAV decode (one decoder thread, as damvad's rule gives 2 cores), the budget the issue allows beyond it
(0.3 x bare: decode + preprocessing <= 1.3 x bare), and ``lowres``: the same decode at half resolution
(FFmpeg's ``lowres=1``; only MPEG-4-class and MJPEG decoders offer it, h264 ignores it) -- decoding fewer pixels
as the way to a cheaper resize.

Per file (vtest.avi; the 720p h264 clip of ``bench_extract.py``): CPU ms per frame of each conversion on frames
decoded beforehand (round-robin, medians of ``--reps``), the pixel difference from today's (mean, 99th
percentile, max over every pixel), and with ``--features`` the I3D maps' change (OpenVINO fp32) beside the
change int8 makes to today's maps (the precision every default already accepts): cosine (min over snippets)
and relative L2 (median).

Usage: python benchmarks/bench_resize.py [--reps 5] [--frames 300] [--features] [--heights 720]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from damvad.devtools.bench import camera_clip, closing_line, cpu_name, default_video
from damvad.frames import CROP, FrameConverter, _rgb_planes, crop_offsets, resized_size


def decode(video: Path, limit: int | None = None) -> list:
    import av

    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        frames = []
        for frame in container.decode(stream):
            frames.append(frame)
            if limit and len(frames) >= limit:
                break
    return frames


def _planes(frame, top: int = 0, left: int = 0) -> np.ndarray:
    """(3, 224, 224) RGB from a gbrp frame's window (FrameConverter's copy)."""
    return _rgb_planes(frame, top, left, CROP, CROP)


def _lines(plane) -> np.ndarray:
    """A decoded plane as (rows, line_size) uint8, padding included (slice off what the frame's width uses)."""
    return np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)


def source_window(width: int, height: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the decoded frame that the 256-short-side resize turns into the centre crop, even-rounded."""
    out_w, out_h = resized_size(width, height)
    (top, left, _), = crop_offsets(out_h, out_w, "center")
    sx, sy = width / out_w, height / out_h
    even = lambda v: int(round(v / 2)) * 2  # noqa: E731
    return even(left * sx), even(top * sy), even(CROP * sx), even(CROP * sy)


def today(frames: list) -> Iterator[np.ndarray]:
    convert = FrameConverter(planar=True, crops="center")
    return (convert(f) for f in frames)


def full(interpolation: str) -> Callable[[list], Iterator[np.ndarray]]:
    def run(frames: list) -> Iterator[np.ndarray]:
        from av.video.reformatter import VideoReformatter

        reformatter = VideoReformatter()
        w, h = resized_size(frames[0].width, frames[0].height)  # one size per file, as FrameConverter caches it
        (top, left, _), = crop_offsets(h, w, "center")
        for f in frames:
            yield _planes(reformatter.reformat(f, width=w, height=h, format="gbrp", interpolation=interpolation,
                                               threads=1), top, left)
    return run


def window(interpolation: str) -> Callable[[list], Iterator[np.ndarray]]:
    def run(frames: list) -> Iterator[np.ndarray]:
        import av
        from av.video.reformatter import VideoReformatter

        reformatter = VideoReformatter()
        x, y, w, h = source_window(frames[0].width, frames[0].height)
        for f in frames:
            p = [_lines(q) for q in f.planes]
            yuv = np.concatenate([p[0][y : y + h, x : x + w].ravel(),
                                  p[1][y // 2 : (y + h) // 2, x // 2 : (x + w) // 2].ravel(),
                                  p[2][y // 2 : (y + h) // 2, x // 2 : (x + w) // 2].ravel()]).reshape(-1, w)
            small = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            yield _planes(reformatter.reformat(small, width=CROP, height=CROP, format="gbrp",
                                               interpolation=interpolation, threads=1))
    return run


def graph(frames: list) -> Iterator[np.ndarray]:
    import av

    f0 = frames[0]
    x, y, w, h = source_window(f0.width, f0.height)
    g = av.filter.Graph()
    chain = [g.add_buffer(width=f0.width, height=f0.height, format=f0.format.name, time_base=f0.time_base),
             g.add("crop", f"{w}:{h}:{x}:{y}:exact=1"), g.add("scale", f"{CROP}:{CROP}:flags=bilinear"),
             g.add("format", "gbrp"), g.add("buffersink")]
    for a, b in zip(chain, chain[1:], strict=False):
        a.link_to(b)
    g.configure()
    for f in frames:
        g.push(f)
        yield _planes(g.pull())


GRAPH_BATCH = 64  # frames per call of the graph: one snippet, as the model takes them
_graphs: dict[tuple[int, int], object] = {}


def _conversion_graph(width: int, height: int):
    """The compiled OpenVINO graph: (T, H, W) Y, (T, H/2, W/2) U and V, uint8 -> (3, T, 224, 224) RGB, float."""
    if (width, height) not in _graphs:
        import openvino as ov
        import openvino.opset11 as ops

        out_w, out_h = resized_size(width, height)
        (top, left, _), = crop_offsets(out_h, out_w, "center")
        shapes = [(GRAPH_BATCH, height, width)] + [(GRAPH_BATCH, height // 2, width // 2)] * 2
        inputs = [ops.parameter(s, ov.Type.u8, name=n) for s, n in zip(shapes, "yuv", strict=True)]

        def plane(x):
            scaled = ops.interpolate(ops.convert(x, ov.Type.f32), np.array([out_h, out_w], np.int64), mode="linear",
                                     shape_calculation_mode="sizes", axes=np.array([1, 2], np.int64),
                                     coordinate_transformation_mode="half_pixel", antialias=True)
            return ops.slice(scaled, np.array([top, left]), np.array([top + CROP, left + CROP]), np.array([1, 1]),
                             np.array([1, 2]))

        y, u, v = (plane(x) for x in inputs)
        y = ops.multiply(ops.subtract(y, np.float32(16)), np.float32(255 / 219))  # BT.601, limited range
        u, v = (ops.multiply(ops.subtract(c, np.float32(128)), np.float32(255 / 224)) for c in (u, v))
        r = ops.add(y, ops.multiply(v, np.float32(1.402)))
        g = ops.subtract(ops.subtract(y, ops.multiply(u, np.float32(0.344136))), ops.multiply(v, np.float32(0.714136)))
        b = ops.add(y, ops.multiply(u, np.float32(1.772)))
        rgb = ops.clamp(ops.concat([ops.unsqueeze(c, np.int64(0)) for c in (r, g, b)], 0), 0.0, 255.0)
        _graphs[width, height] = ov.Core().compile_model(ov.Model([rgb], inputs), "CPU",
                                                         {"INFERENCE_NUM_THREADS": os.cpu_count() or 1})
    return _graphs[width, height]


def openvino_graph(frames: list) -> Iterator[np.ndarray]:
    f0 = frames[0]
    if f0.format.name not in ("yuv420p", "yuvj420p"):
        raise ValueError(f"openvino_graph takes 4:2:0 frames, got {f0.format.name}")
    request = _conversion_graph(f0.width, f0.height).create_infer_request()
    sizes = [(f0.height, f0.width)] + [(f0.height // 2, f0.width // 2)] * 2
    for start in range(0, len(frames), GRAPH_BATCH):
        batch = frames[start : start + GRAPH_BATCH]
        planes = [np.empty((GRAPH_BATCH, h, w), np.uint8) for h, w in sizes]
        for i in range(GRAPH_BATCH):
            f = batch[min(i, len(batch) - 1)]  # a short last batch repeats its last frame
            for out, q, (h, w) in zip(planes, f.planes, sizes, strict=True):
                out[i] = _lines(q)[:h, :w]
        request.infer(planes)
        rgb = np.rint(request.get_output_tensor(0).data).astype(np.uint8)  # (3, T, 224, 224)
        yield from rgb.transpose(1, 0, 2, 3)[: len(batch)]


def floor(pix_fmt: str) -> Callable[[list], Iterator[None]]:
    """swscale's bilinear scale of the whole frame to ``pix_fmt`` with today's geometry, the frames dropped."""
    def run(frames: list) -> Iterator[None]:
        from av.video.reformatter import VideoReformatter

        reformatter = VideoReformatter()
        w, h = resized_size(frames[0].width, frames[0].height)
        for f in frames:
            reformatter.reformat(f, width=w, height=h, format=pix_fmt, interpolation="BILINEAR", threads=1)
            yield None
    return run


def yuv_then_rgb24(frames: list) -> Iterator[np.ndarray]:
    from av.video.reformatter import VideoReformatter

    scaler, colour = VideoReformatter(), VideoReformatter()
    w, h = resized_size(frames[0].width, frames[0].height)
    (top, left, _), = crop_offsets(h, w, "center")
    for f in frames:
        small = scaler.reformat(f, width=w, height=h, format="yuv420p", interpolation="BILINEAR", threads=1)
        rgb = colour.reformat(small, format="rgb24", threads=1).to_ndarray()
        yield np.ascontiguousarray(rgb[top : top + CROP, left : left + CROP].transpose(2, 0, 1))


def decode_ms(video: Path, lowres: bool = False) -> tuple[float, tuple[int, int]]:
    """CPU ms per frame of a streamed decode (frames dropped as they come, one decoder thread), and the decoded
    size (smaller than the file's when ``lowres`` took)."""
    import av

    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        if lowres:
            stream.codec_context.options = {"lowres": "1"}
        n, size, c0 = 0, (0, 0), time.process_time()
        for frame in container.decode(stream):
            n, size = n + 1, (frame.width, frame.height)
        return 1000 * (time.process_time() - c0) / max(n, 1), size


FLOORS = {"floor_yuv420p": floor("yuv420p"), "floor_gray": floor("gray")}  # timed, no pixels to compare
CONVERSIONS = {"today": today, "full_area": full("AREA"), "full_fast_bilinear": full("FAST_BILINEAR"),
               "window_bilinear": window("BILINEAR"), "window_fast_bilinear": window("FAST_BILINEAR"),
               "graph_bilinear": graph, "openvino_graph": openvino_graph,
               "yuv_then_rgb24": yuv_then_rgb24}


def costs(frames: list, reps: int) -> tuple[dict[str, float], dict[str, tuple[float, float, float]]]:
    """Median CPU ms per frame of each conversion (and floor), and its pixel difference from today's (mean, p99,
    max; none for a floor)."""
    timed = {**CONVERSIONS, **FLOORS}
    times: dict[str, list[float]] = {k: [] for k in timed}
    diffs = {}
    reference = np.stack(list(today(frames))).astype(np.int16)
    for rep in range(reps):
        for name, fn in timed.items():
            c0 = time.process_time()
            out = list(fn(frames))
            times[name].append(1000 * (time.process_time() - c0) / len(frames))
            if rep == 0 and name in CONVERSIONS:
                d = np.abs(np.stack(out).astype(np.int16) - reference)
                diffs[name] = (float(d.mean()), float(np.percentile(d, 99)), float(d.max()))
    return {k: statistics.median(v) for k, v in times.items()}, diffs


def feature_change(video: Path, names: list[str]) -> dict[str, tuple[float, float]]:
    """(min cosine, median relative L2) of each conversion's I3D maps (OpenVINO fp32) against today's, and of
    today's int8 maps (key ``int8``)."""
    from damvad.extraction import open_backend
    from damvad.video import iter_snippets, snippet_to_input

    frames = decode(video)
    fp32 = open_backend(backend="openvino", precision="fp32", progress=False)
    int8 = open_backend(backend="openvino", precision="int8", progress=False)

    def maps(fn: Callable[[list], Iterator[np.ndarray]], backend) -> np.ndarray:
        return np.stack([np.asarray(backend(snippet_to_input(s.frames, planar=True, dtype="uint8"))).ravel()
                         for s in iter_snippets(fn(frames), planar=True)])

    def change(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
        cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        return float(cos.min()), float(np.median(np.linalg.norm(a - b, axis=1) / np.linalg.norm(a, axis=1)))

    ref = maps(today, fp32)
    out = {"int8": change(ref, maps(today, int8))}
    for name in names:
        out[name] = change(ref, maps(CONVERSIONS[name], fp32))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--frames", type=int, default=300, help="frames per file timed (decoded beforehand)")
    ap.add_argument("--heights", type=int, nargs="*", default=[720])
    ap.add_argument("--features", action="store_true", help="also the I3D maps' change (whole files, fp32 + int8)")
    args = ap.parse_args()
    first = default_video()
    videos = {"": first, **{f"{h}p_": camera_clip(h, first) for h in args.heights}}
    print(f"{cpu_name()}; load average {os.getloadavg()[0]:.2f}", flush=True)
    results: dict[str, float] = {}
    for key, video in videos.items():
        frames = decode(video, args.frames)
        ms, diffs = costs(frames, args.reps)
        decoded = {mode: [decode_ms(video, lowres) for _ in range(args.reps)] for mode, lowres in
                   (("bare", False), ("lowres", True))}
        bare = statistics.median(t for t, _ in decoded["bare"])
        lowres, lowres_size = statistics.median(t for t, _ in decoded["lowres"]), decoded["lowres"][0][1]
        smaller = lowres_size[0] < frames[0].width
        print(f"{video.name}: bare decode {bare:.3f} CPU ms/frame (streamed), so <= {0.3 * bare:.3f} beyond it for "
              f"1.3x; lowres=1 decode " + (f"{lowres:.3f} ({lowres / bare:.2f}x bare, frames "
              f"{lowres_size[0]}x{lowres_size[1]})" if smaller else "not offered by this codec"), flush=True)
        results[f"{key}bare_decode_ms"] = bare
        if smaller:
            results[f"{key}lowres_decode_ms"] = lowres
        x, y, w, h = source_window(frames[0].width, frames[0].height)
        print(f"{video.name} ({frames[0].width}x{frames[0].height}; window {w}x{h} at {x},{y}): CPU ms/frame "
              "beyond decoding, and pixel difference from today's (mean / p99 / max)", flush=True)
        for name in ms:
            pixels = " / ".join(f"{v:.{n}f}" for v, n in zip(diffs[name], (2, 0, 0), strict=True)) if name in diffs \
                else "(timed only)"
            print(f"  {name:21s} {ms[name]:.3f} ({ms[name] / ms['today']:.2f}x today)   {pixels}", flush=True)
            results[f"{key}{name}_ms"] = ms[name]
        results[f"{key}floor_gray_of_budget"] = ms["floor_gray"] / (0.3 * bare)
        if args.features:
            change = feature_change(video, ["full_area", "window_bilinear", "openvino_graph", "yuv_then_rgb24"])
            for name, (cos, rel) in change.items():
                print(f"  I3D maps, {name:16s} against today's fp32: min cosine {cos:.4f}, median relative L2 "
                      f"{rel:.4f}", flush=True)
                results[f"{key}{name}_rel_l2"] = rel
    results["load_avg"] = os.getloadavg()[0]
    print(closing_line(results))


if __name__ == "__main__":
    main()
