"""Whole-video extraction (decode + preprocess + I3D) against the model alone, on the same clip.

Decoding runs in a background thread, so the end-to-end rate should stay within ~10 % of the
model-only rate. Usage: python benchmarks/bench_extract.py [--video PATH] [--precision fp32 bf16] [--reps 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from _common import closing_line, default_video, median_time  # noqa: E402
from damvad.extract import ExtractorSpec, extract_video  # noqa: E402
from damvad.i3d import FastI3D, load_i3d  # noqa: E402
from damvad.video import iter_frames, iter_snippets, snippet_to_input  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--video", type=Path, default=None)
    ap.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    video = args.video or default_video()

    inputs = [torch.from_numpy(snippet_to_input(s.frames)) for s in iter_snippets(iter_frames(video))]
    frames = sum(1 for _ in iter_frames(video))
    print(f"{video.name}: {frames} frames, {len(inputs)} snippets; torch threads {torch.get_num_threads()}")
    model = load_i3d()
    results: dict[str, float] = {}
    for precision in args.precision:
        fast = FastI3D(model, precision=precision, compile=True, batch_size=1)
        warm = fast.warmup(64)
        spec = ExtractorSpec(precision=precision)

        def model_only(fast=fast) -> None:
            with torch.inference_mode():
                for x in inputs:
                    fast(x)

        def whole(fast=fast, spec=spec) -> None:
            extract_video(video, fast, spec)

        t_model, _ = median_time(model_only, args.reps)
        t_whole, _ = median_time(whole, args.reps)
        m_fps, w_fps = frames / t_model, frames / t_whole
        print(f"{precision}: warm-up {warm:.1f} s; model only {m_fps:.1f} frames/s; "
              f"decode+preprocess+model {w_fps:.1f} frames/s; end-to-end / model = {w_fps / m_fps:.3f}")
        results[f"{precision}_model_fps"] = m_fps
        results[f"{precision}_e2e_fps"] = w_fps
        results[f"{precision}_e2e_ratio"] = w_fps / m_fps
    print(closing_line(results))


if __name__ == "__main__":
    main()
