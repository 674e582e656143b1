"""End-to-end live detection: frames/s from decoding to score, per-snippet latency, the head's share.

* file: vtest.avi decoded as fast as possible (frames/s, and x real time for its frame rate);
* stream: a generated camera paced at 25 fps (latency = last frame of a snippet arriving -> its score).
* 5-crop: the same file with --crops 5 (five I3D passes per snippet).
Usage: python benchmarks/bench_detect.py [--video PATH] [--variants ov_int8 ov_bf16] [--stream-seconds 20]
Targets: >= 5x real time at 25 fps with int8 on 2 cores; snippet-end-to-score latency <= 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from damvad.contract import FeatureContract
from damvad.detect import Detector
from damvad.devtools.bench import closing_line, default_video
from damvad.model import build_model
from damvad.modelfile import ModelCard, save_model_file
from damvad.scoring import StreamScorer
from damvad.synth import synthetic_stream
from damvad.video import probe


def paced(frames, fps: float):
    start = time.perf_counter()
    for i, frame in enumerate(frames):
        delay = start + i / fps - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        yield frame


def head_ms(model_path: Path, reps: int = 200) -> float:
    from damvad.modelfile import load_model

    model, _ = load_model(model_path)
    scorer = StreamScorer(model)
    maps = np.random.default_rng(0).random((1, 7, 1024), dtype=np.float32)
    for _ in range(10):
        scorer.push(maps, 0, 64)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        scorer.push(maps, 0, 64)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--video", type=Path, default=None)
    ap.add_argument("--variants", nargs="+", default=["ov_int8", "ov_bf16"],
                    choices=["ov_int8", "ov_bf16", "ov_fp32", "torch_bf16", "torch_fp32"])
    ap.add_argument("--no-five-crop", action="store_true", help="skip the 5-crop run")
    ap.add_argument("--stream-seconds", type=float, default=20.0)
    args = ap.parse_args()
    video = args.video or default_video()
    info = probe(video)
    tmp = Path(tempfile.mkdtemp())
    torch.manual_seed(0)
    # a random head has no training features: its contract records only the crop mode (weights, precision and
    # backend "not recorded", so every variant runs without a contract warning); the same head for 5 crops
    head_model = build_model("dist")
    model_path, five_path = (save_model_file(tmp / f"dist-{crops}.pt", head_model,
                                             ModelCard(features=FeatureContract(crops=crops)))
                             for crops in ("center", "5"))
    head = head_ms(model_path)
    print(f"DAM head (dist, one clip, crops=1): {head:.2f} ms")
    results: dict[str, float] = {"head_ms": head}
    for variant in args.variants:
        backend, precision = variant.split("_")
        backend = {"ov": "openvino"}.get(backend, backend)
        det = Detector(model_path, backend=backend, precision=precision)
        det.run(video, progress=False)  # warm-up: compilation is paid once per process
        t = time.perf_counter()
        res = det.run(video, progress=False)
        secs = time.perf_counter() - t
        fps = res.frames / secs
        per_snippet_ms = secs / max(1, len(res.rows)) * 1000
        n = int(args.stream_seconds * 25)
        live = det.run(paced(synthetic_stream(n, seed=1), 25.0), fps=25.0, progress=False)
        lat = [r.latency_ms for r in live.rows]
        print(f"{variant}: {video.name} {fps:.1f} frames/s ({fps / info.fps:.1f}x its {info.fps:g} fps, "
              f"{fps / 25:.1f}x real time at 25 fps); 25 fps stream latency median {statistics.median(lat):.0f} ms "
              f"max {max(lat):.0f} ms; head share {head / per_snippet_ms:.2%}; load {os.getloadavg()[0]:.2f}",
              flush=True)
        results[f"{variant}_fps"] = fps
        results[f"{variant}_x_realtime_25fps"] = fps / 25
        results[f"{variant}_latency_ms"] = statistics.median(lat)
        results[f"{variant}_head_share"] = head / per_snippet_ms
        if not args.no_five_crop:
            five = Detector(five_path, backend=backend, precision=precision, crops="5", i3d=det.backend)
            t = time.perf_counter()
            res5 = five.run(video, progress=False)
            fps5 = res5.frames / (time.perf_counter() - t)
            print(f"{variant} 5-crop: {fps5:.1f} frames/s ({fps5 / 25:.2f}x real time at 25 fps)", flush=True)
            results[f"{variant}_5crop_x_realtime_25fps"] = fps5 / 25
    results["load_avg"] = os.getloadavg()[0]
    print(closing_line(results))


if __name__ == "__main__":
    main()
