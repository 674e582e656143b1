"""Decoding + preprocessing against a bare decode, and whole-video extraction against the model alone.

Per file (vtest.avi, 768x576 MS-MPEG4; the same clip as 720p and 1080p h264, made here by
:func:`damvad.devtools.bench.camera_clip`, no download), in this thread, round-robin over ``--reps``, medians:

* bare: PyAV decodes every frame and nothing else (the decoder's threads as damvad sets them);
* luma floor: + swscale of the luma plane alone to 256 short side (grayscale out): the least any swscale
  conversion can cost, so ``luma_floor_vs_bare`` is the lowest ``path_vs_bare`` a conversion could reach;
* scaled, planes: + swscale to 256 short side (planar RGB), + the centre window's planes copied out;
* path: what extraction does before the model -- decode, swscale to 256 short side, RGB planes, the centre
  crop's window, 64-frame snippets, the uint8 model input (:func:`damvad.video.iter_frames` ...);
* before: the same with the conversion this replaced (a swscale context per frame, swscale's own threads,
  the whole frame copied on), for the record of what changed.

All in CPU ms per frame (every thread of this process; the machine's other load is printed beside them).
Then per variant (backend_precision) and file: the model alone on the file's pre-decoded snippets, and
``extract_video`` on the file (decoding in a background thread beside the model); end-to-end / model, beside
its ceiling (:func:`overlap_ceiling`: perfect overlap of the path's CPU time with a model that keeps every
core busy). Target: vtest.avi's int8 end-to-end >= 85 % of model-only.

Usage: python benchmarks/bench_extract.py [--video PATH] [--heights 720 1080] [--variants ov_int8 ov_bf16]
                                          [--reps 3] [--pinned]
The last line: ``key=value`` pairs; the first file's keys are unprefixed (``decode_cpu_ms`` -- the path's --,
``bare_decode_cpu_ms``, ``path_vs_bare``, ``<variant>_e2e_ratio``), the others prefixed ``720p_`` ...
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from damvad.devtools.bench import OtherLoad, camera_clip, closing_line, cpu_name, default_video
from damvad.extract import ExtractorSpec, extract_video
from damvad.extraction import open_backend
from damvad.frames import resized_size
from damvad.video import decoder_threads, iter_frames, iter_snippets, snippet_to_input


def _open(video: Path):
    import av

    container = av.open(str(video))
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    stream.codec_context.thread_count = decoder_threads()
    return container, stream


def bare(video: Path) -> int:
    container, stream = _open(video)
    with container:
        return sum(1 for _ in container.decode(stream))


def _scaled(video: Path, pix_fmt: str) -> int:
    """Decode + swscale to ``pix_fmt`` at 256 short side (FrameConverter's context and settings), nothing
    copied out."""
    from av.video.reformatter import VideoReformatter

    container, stream = _open(video)
    reformatter, n = VideoReformatter(), 0
    with container:
        for frame in container.decode(stream):
            w, h = resized_size(frame.width, frame.height)
            reformatter.reformat(frame, width=w, height=h, format=pix_fmt, interpolation="BILINEAR", threads=1)
            n += 1
    return n


def scaled(video: Path) -> int:
    """Decode + swscale only, to planar RGB as FrameConverter does."""
    return _scaled(video, "gbrp")


def luma_floor(video: Path) -> int:
    """Decode + swscale of the luma plane alone (grayscale out, today's geometry): the least any swscale resize
    costs, colour ignored -- the floor under every conversion (issue 24)."""
    return _scaled(video, "gray")


def planes(video: Path) -> int:
    """Decode + swscale + the centre window's RGB planes (iter_frames), no snippets."""
    return sum(1 for _ in iter_frames(video, planar=True, crops="center"))


def path(video: Path) -> int:
    n = 0
    for s in iter_snippets(iter_frames(video, planar=True, crops="center"), planar=True):
        snippet_to_input(s.frames, planar=True, dtype="uint8")
        n += s.end - s.start
    return n


def before(video: Path) -> int:
    """The conversion before damvad.frames.FrameConverter: a new swscale context per frame, swscale's automatic
    threads, whole (3, H, W) frames."""

    def frames():
        container, stream = _open(video)
        with container:
            for frame in container.decode(stream):
                w, h = resized_size(frame.width, frame.height)
                rgb = frame.reformat(width=w, height=h, format="gbrp", interpolation="BILINEAR")
                out = np.empty((3, h, w), np.uint8)
                for channel, plane in zip((1, 2, 0), rgb.planes, strict=True):
                    out[channel] = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:h, :w]
                yield out

    n = 0
    for s in iter_snippets(frames(), planar=True):
        snippet_to_input(s.frames, planar=True, dtype="uint8")
        n += s.end - s.start
    return n


def cpu_ms(fn: Callable[[Path], int], video: Path) -> float:
    c0 = time.process_time()
    n = fn(video)
    return 1000 * (time.process_time() - c0) / n


def decoding(videos: dict[str, Path], reps: int) -> dict[str, dict[str, float]]:
    """Median CPU ms per frame of each step per file, round-robin: bare, + swscale, + the RGB window's copy,
    + snippets and the model input (the path), and the path before."""
    steps = {"bare": bare, "luma": luma_floor, "scaled": scaled, "planes": planes, "path": path, "before": before}
    times: dict[str, dict[str, list[float]]] = {k: {s: [] for s in steps} for k in videos}
    for _ in range(reps):
        for key, video in videos.items():
            for step, fn in steps.items():
                times[key][step].append(cpu_ms(fn, video))
    return {k: {s: statistics.median(v) for s, v in t.items()} for k, t in times.items()}


def open_variants(variants: list[str], pinned: bool) -> dict[str, tuple]:
    runs = [(v, False) for v in variants]
    if pinned:
        runs = [r for v in variants for r in ((v, False), (v, True)) if not r[1] or v.startswith("ov_")]
    fns = {}
    for variant, pin in runs:
        backend, precision = variant.split("_")
        fn = open_backend(backend={"ov": "openvino"}.get(backend, backend), precision=precision, progress=False)
        if pin:
            fn.config["ENABLE_CPU_PINNING"] = True  # compiled on first use, so this takes effect
        fn.warmup(64)
        fns[f"{variant}_pinned" if pin else variant] = (fn, ExtractorSpec(precision=precision, backend=fn.name))
    return fns


def whole_video(videos: dict[str, Path], fns: dict[str, tuple], reps: int) -> dict[str, dict[str, float]]:
    """frames/s of the model alone and of extract_video, per variant and file (medians, round-robin)."""
    inputs: dict[str, list[np.ndarray]] = {}
    frames: dict[str, int] = {}
    for key, video in videos.items():  # decoded once: the model's inputs and the frame count
        snippets = list(iter_snippets(iter_frames(video, planar=True, crops="center"), planar=True))
        inputs[key] = [snippet_to_input(s.frames, planar=True, dtype="uint8") for s in snippets]
        frames[key] = snippets[-1].end
    t_model = {(n, k): [] for n in fns for k in videos}
    t_whole = {(n, k): [] for n in fns for k in videos}
    for _ in range(reps):
        for key, video in videos.items():
            for name, (fn, spec) in fns.items():
                t0 = time.perf_counter()
                for x in inputs[key]:
                    fn(x)
                t_model[name, key].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                extract_video(video, fn, spec)
                t_whole[name, key].append(time.perf_counter() - t0)
    out: dict[str, dict[str, float]] = {}
    for (name, key), times in t_model.items():
        m_fps = frames[key] / statistics.median(times)
        w_fps = frames[key] / statistics.median(t_whole[name, key])
        out.setdefault(key, {}).update({f"{name}_model_fps": m_fps, f"{name}_e2e_fps": w_fps,
                                        f"{name}_e2e_ratio": w_fps / m_fps})
    return out


def overlap_ceiling(model_fps: float, decode_cpu_ms: float, cores: int | None = None) -> float:
    """End-to-end / model-only with perfect overlap: the model keeps every core busy, so each frame's
    decoding CPU time is taken from it: cores / (cores / model_fps + decode_cpu_ms / 1000), over model_fps."""
    cores = cores or len(os.sched_getaffinity(0))
    return cores / (cores / model_fps + decode_cpu_ms / 1000) / model_fps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", type=Path, default=None, help="the first file (default: the shared vtest.avi)")
    ap.add_argument("--heights", type=int, nargs="*", default=[720, 1080],
                    help="also the first file scaled to these heights as h264 (none: --heights)")
    ap.add_argument("--variants", nargs="*", default=["ov_int8", "ov_bf16"],
                    choices=["ov_int8", "ov_bf16", "ov_fp32", "torch_bf16", "torch_fp32"])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--pinned", action="store_true",
                    help="also time each OpenVINO variant with pinned inference threads (round-robin, one run)")
    args = ap.parse_args()
    first = args.video or default_video()
    videos = {"": first, **{f"{h}p_": camera_clip(h, first) for h in args.heights}}
    print(f"{cpu_name()}; decoder threads {decoder_threads()}; load average {os.getloadavg()[0]:.2f}", flush=True)

    load = OtherLoad()
    dec = decoding(videos, args.reps)
    results: dict[str, float] = {}
    for key, ms in dec.items():
        name = videos[key].name
        print(f"{name}: bare decode {ms['bare']:.3f} CPU ms/frame; decode+preprocess {ms['path']:.3f} "
              f"({ms['path'] / ms['bare']:.2f}x bare; before {ms['before']:.3f} = {ms['before'] / ms['bare']:.2f}x)",
              flush=True)
        print(f"  floor: decode + the luma plane alone scaled {ms['luma']:.3f} = {ms['luma'] / ms['bare']:.2f}x bare "
              f"(no conversion can cost less)", flush=True)
        print(f"  where it goes: swscale {ms['scaled'] - ms['bare']:.3f}, "
              f"RGB window {ms['planes'] - ms['scaled']:.3f}, "
              f"snippets + model input {ms['path'] - ms['planes']:.3f} CPU ms/frame", flush=True)
        results.update({f"{key}bare_decode_cpu_ms": ms["bare"], f"{key}decode_cpu_ms": ms["path"],
                        f"{key}path_vs_bare": ms["path"] / ms["bare"], f"{key}before_cpu_ms": ms["before"],
                        f"{key}luma_floor_vs_bare": ms["luma"] / ms["bare"]})
    results["other_load_cores_decoding"] = load.cores()

    if args.variants:
        load = OtherLoad()
        whole = whole_video(videos, open_variants(args.variants, args.pinned), args.reps)
        for key, values in whole.items():
            for name in sorted({k.rsplit("_", 2)[0] for k in values}):
                ceiling = overlap_ceiling(values[f"{name}_model_fps"], dec[key]["path"])
                values[f"{name}_ceiling_ratio"] = ceiling
                print(f"{videos[key].name} {name}: model only {values[f'{name}_model_fps']:.1f} frames/s; "
                      f"decode+preprocess+model {values[f'{name}_e2e_fps']:.1f}; end-to-end / model = "
                      f"{values[f'{name}_e2e_ratio']:.3f} (ceiling {ceiling:.3f}: "
                      f"{values[f'{name}_e2e_ratio'] / ceiling:.0%} of it)", flush=True)
            results.update({f"{key}{k}": v for k, v in values.items()})
        results["other_load_cores_whole"] = load.cores()
    results["load_avg"] = os.getloadavg()[0]
    print(closing_line(results))


if __name__ == "__main__":
    main()
