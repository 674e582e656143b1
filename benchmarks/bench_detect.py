"""End-to-end live detection: frames/s from decoding to score, per-snippet latency, the head's share.

* file: vtest.avi decoded as fast as possible (frames/s, and x real time for its frame rate);
* stream: a generated camera paced at 25 fps (latency = last frame of a snippet arriving -> its score).
Usage: python benchmarks/bench_detect.py [--video PATH] [--precision fp32 bf16] [--stream-seconds 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from _common import closing_line, default_video  # noqa: E402
from damvad.detect import Detector  # noqa: E402
from damvad.model import build_model  # noqa: E402
from damvad.modelfile import save_model_file  # noqa: E402
from damvad.scoring import StreamScorer  # noqa: E402
from damvad.synth import synthetic_stream  # noqa: E402
from damvad.video import probe  # noqa: E402


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
    ap.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    ap.add_argument("--stream-seconds", type=float, default=20.0)
    args = ap.parse_args()
    video = args.video or default_video()
    info = probe(video)
    tmp = Path(tempfile.mkdtemp())
    torch.manual_seed(0)
    model_path = save_model_file(tmp / "dist.pt", build_model("dist"), {"num_clips": 16, "threshold": None})
    head = head_ms(model_path)
    print(f"DAM head (dist, one clip, crops=1): {head:.2f} ms")
    results: dict[str, float] = {"head_ms": head}
    for precision in args.precision:
        det = Detector(model_path, precision=precision)
        det.run(video, progress=False)  # warm-up: compilation is paid once per process
        t = time.perf_counter()
        res = det.run(video, progress=False)
        secs = time.perf_counter() - t
        fps = res.frames / secs
        per_snippet_ms = secs / max(1, len(res.rows)) * 1000
        n = int(args.stream_seconds * 25)
        live = det.run(paced(synthetic_stream(n, seed=1), 25.0), fps=25.0, progress=False)
        lat = [r.latency_ms for r in live.rows]
        print(f"{precision}: {video.name} {fps:.1f} frames/s ({fps / info.fps:.1f}x its {info.fps:g} fps, "
              f"{fps / 25:.1f}x real time at 25 fps); 25 fps stream latency median {statistics.median(lat):.0f} ms "
              f"max {max(lat):.0f} ms; head share {head / per_snippet_ms:.2%}")
        results[f"{precision}_fps"] = fps
        results[f"{precision}_x_realtime_25fps"] = fps / 25
        results[f"{precision}_latency_ms"] = statistics.median(lat)
        results[f"{precision}_head_share"] = head / per_snippet_ms
    print(closing_line(results))


if __name__ == "__main__":
    main()
