"""Whole-video extraction (decode + preprocess + I3D) against the model alone, on the same clip.

For each backend/precision: the model alone on the pre-decoded snippets (the exact uint8 inputs the
extractor hands it), then ``extract_video`` on the file (decoding in a background thread), all variants
round-robin --reps times so they see the same machine load; medians. Target: end-to-end >= 90 % of model-only.
Also times the decoder alone (decode + swscale to 256 + crops, one thread).
``--pinned`` adds, per OpenVINO variant, the same model with its inference threads pinned to cores
(``ENABLE_CPU_PINNING``, OpenVINO's default; damvad leaves them unpinned), timed round-robin with it.

Usage: python benchmarks/bench_extract.py [--video PATH] [--variants ov_int8 ov_bf16 torch_bf16] [--reps 3] [--pinned]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from damvad.devtools.bench import closing_line, default_video
from damvad.extract import ExtractorSpec, extract_video
from damvad.extraction import open_backend
from damvad.video import iter_frames, iter_snippets, snippet_to_input


def decode_rate(video: Path) -> tuple[float, float]:
    """(frames/s wall, CPU ms per frame) of decode + resize + centre crop to uint8, in this thread."""
    t0, c0, n = time.perf_counter(), time.process_time(), 0
    for s in iter_snippets(iter_frames(video, planar=True), planar=True):
        snippet_to_input(s.frames, planar=True, dtype="uint8")
        n += s.end - s.start
    return n / (time.perf_counter() - t0), 1000 * (time.process_time() - c0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--video", type=Path, default=None)
    ap.add_argument("--variants", nargs="+", default=["ov_int8", "ov_bf16"],
                    choices=["ov_int8", "ov_bf16", "ov_fp32", "torch_bf16", "torch_fp32"])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--pinned", action="store_true",
                    help="also time each OpenVINO variant with pinned inference threads (round-robin, one run)")
    args = ap.parse_args()
    video = args.video or default_video()

    inputs = [snippet_to_input(s.frames, planar=True, dtype="uint8")
              for s in iter_snippets(iter_frames(video, planar=True), planar=True)]
    frames = sum(1 for _ in iter_frames(video))
    dec_fps, dec_ms = decode_rate(video)
    print(f"{video.name}: {frames} frames, {len(inputs)} snippets; decoder alone {dec_fps:.0f} frames/s "
          f"({dec_ms:.2f} CPU ms/frame); load average {os.getloadavg()[0]:.2f}", flush=True)
    results: dict[str, float] = {"decode_fps": dec_fps, "decode_cpu_ms": dec_ms}
    runs = [(v, False) for v in args.variants]
    if args.pinned:
        runs = [r for v in args.variants for r in ((v, False), (v, True)) if not r[1] or v.startswith("ov_")]
    fns = {}
    for variant, pinned in runs:
        backend, precision = variant.split("_")
        fn = open_backend(backend={"ov": "openvino"}.get(backend, backend), precision=precision, progress=False)
        if pinned:
            fn.config["ENABLE_CPU_PINNING"] = True  # compiled on first use, so this takes effect
        fn.warmup(64)
        fns[f"{variant}_pinned" if pinned else variant] = (fn, ExtractorSpec(precision=precision, backend=fn.name))
    t_model: dict[str, list[float]] = {name: [] for name in fns}
    t_whole: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(args.reps):  # round-robin: every variant sees the same machine load
        for name, (fn, spec) in fns.items():
            t0 = time.perf_counter()
            for x in inputs:
                fn(x)
            t_model[name].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            extract_video(video, fn, spec)
            t_whole[name].append(time.perf_counter() - t0)
    for name in fns:
        m_fps, w_fps = frames / statistics.median(t_model[name]), frames / statistics.median(t_whole[name])
        print(f"{name}: model only {m_fps:.1f} frames/s; decode+preprocess+model {w_fps:.1f} frames/s; "
              f"end-to-end / model = {w_fps / m_fps:.3f}", flush=True)
        results[f"{name}_model_fps"] = m_fps
        results[f"{name}_e2e_fps"] = w_fps
        results[f"{name}_e2e_ratio"] = w_fps / m_fps
    results["load_avg"] = os.getloadavg()[0]
    print(closing_line(results))


if __name__ == "__main__":
    main()
