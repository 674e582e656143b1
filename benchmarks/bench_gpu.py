"""The GPU figure, in one short run: I3D frames/s at batch 1 / 8 / 32 in fp16 and bf16 (and fp32 batch 1,
the baseline every ratio is to), whole-video extraction of a long video, and DAM training iterations/s
(GPU against the CPU, same run). Exits with a clear message where torch sees no CUDA device.

I3D: FastI3D (BN folded, channels_last_3d, torch.compile) on random 64-frame clips already on the GPU
(the model alone); compilation timed apart, then --reps timed calls, medians; the cosine of each
variant's features to fp32's on the same clip. Extraction: `damvad.extract.extract` on --video (default:
the longest clip in ../shared/media) on the GPU, decoding included, twice (the first run compiles).
Training: Trainer.train_step on synthetic (V, 16, 1, 7, 1024) clips, the paper's batch (30 + 30 videos).

Usage: python benchmarks/bench_gpu.py [--device cuda:0] [--reps 5] [--batches 1 8 32] [--video PATH]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from damvad.devtools.bench import REPO, closing_line

FRAMES = 64


def longest_shared_video() -> Path | None:
    from damvad.video import probe

    media = REPO.parent / "shared" / "media"
    videos = sorted(media.rglob("*.mp4")) + sorted(media.rglob("*.avi")) if media.is_dir() else []
    return max(videos, key=lambda p: probe(p).declared_frames, default=None)


def timed(fn, reps: int, device: torch.device) -> float:
    times = []
    for _ in range(reps):
        torch.cuda.synchronize(device)
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_i3d(model, device: torch.device, batches: list[int], precisions: list[str], reps: int) -> dict:
    from damvad.backends.torch import FastI3D

    out: dict[str, float] = {}
    x = (torch.rand(max(batches), 3, FRAMES, 224, 224, generator=torch.Generator().manual_seed(0)) * 2 - 1).to(device)
    reference = None
    for precision, batch in [("fp32", 1)] + [(p, b) for p in precisions for b in batches]:
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            print(f"{precision}: not supported on {torch.cuda.get_device_name(device)}, skipped")
            continue
        fast = FastI3D(model, precision=precision, compile=True, batch_size=batch, device=device)
        clip = x[:batch]
        compile_s = fast.warmup(FRAMES)
        try:
            seconds = timed(lambda fast=fast, clip=clip: fast.features_and_logits(clip), reps, device)
        except RuntimeError as exc:  # out of memory even at batch 1
            print(f"{precision} batch {batch}: {exc}")
            continue
        feats = fast(x[:1]).float().cpu()
        if reference is None:
            reference = feats
        cos = float(torch.nn.functional.cosine_similarity(feats.flatten().double(), reference.flatten().double(), 0))
        fps = batch * FRAMES / seconds  # a batch that ran out of memory ran in halves: still batch clips a call
        key = f"i3d_{precision}_b{batch}_fps"
        out[key] = fps
        print(f"I3D {precision:>4} batch {batch:>2}: {fps:9.0f} frames/s ({1e3 * seconds:7.1f} ms a call, "
              f"compile {compile_s:5.1f} s, cosine to fp32 {cos:.6f}"
              f"{'' if fast.compiled.get(FRAMES, True) else ', UNCOMPILED (compile failed)'}"
              f"{'' if fast.batch_size == batch else f', out of memory: ran as batches of {fast.batch_size}'})")
    base = out.get("i3d_fp32_b1_fps")
    if base:
        for key in list(out):
            if key != "i3d_fp32_b1_fps":
                out[key.replace("_fps", "_x_fp32_b1")] = out[key] / base
    return out


def bench_extract(video: Path, device: torch.device, precision: str) -> dict:
    from damvad.extract import extract

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for run in ("first", "second"):  # the first run compiles; the second is the steady rate
            report = extract([video], Path(tmp) / run, precision=precision, device=device, progress=False)
            if not report.ok:
                raise SystemExit(f"extraction failed: {report.summary()}")
            out[f"extract_{run}_fps"] = report.frames / report.seconds
            print(f"whole-video extraction ({run} run, {precision}): {report.frames} frames of {video.name} in "
                  f"{report.seconds:.1f} s = {out[f'extract_{run}_fps']:.0f} frames/s")
    return out


def bench_train(device: torch.device, steps: int) -> dict:
    from damvad.train import TrainConfig, TrainData, Trainer

    rng = np.random.default_rng(0)
    videos = 200
    data = TrainData(names=[f"v{i}" for i in range(videos)], labels=np.arange(videos) % 2,
                     clips=torch.from_numpy(rng.normal(size=(videos, 16, 1, 7, 1024)).astype(np.float32)))
    cfg = TrainConfig(dataset="synthetic", features="synthetic", batch_anomalous=30, batch_normal=30,
                      val_fraction=0.0, iterations=steps)
    out: dict[str, float] = {}
    for where in ("cpu", device):
        with tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(cfg, data, Path(tmp), 0, {}, device=where)
            for _ in range(3):
                trainer.train_step()  # warm-up (cuDNN / allocator)
            t = time.perf_counter()
            for _ in range(steps):
                trainer.train_step()
            if torch.device(where).type == "cuda":
                torch.cuda.synchronize(where)
            rate = steps / (time.perf_counter() - t)
        key = "train_cpu_its" if where == "cpu" else "train_gpu_its"
        out[key] = rate
        print(f"DAM training on {where}: {rate:.1f} iterations/s (30 + 30 videos a batch)")
    out["train_gpu_x_cpu"] = out["train_gpu_its"] / out["train_cpu_its"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--precisions", nargs="+", default=["fp16", "bf16"], choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--video", type=Path, default=None, help="a long video (default: the longest shared one)")
    parser.add_argument("--train-steps", type=int, default=50)
    args = parser.parse_args()

    if not torch.cuda.is_available():
        print(f"bench_gpu.py: no CUDA device: torch {torch.__version__} "
              f"({'a CPU-only build' if not torch.backends.cuda.is_built() else 'sees no GPU'}); "
              "run it on a machine with an NVIDIA GPU and a CUDA build of torch", file=sys.stderr)
        return 2
    from damvad.device import device_info, resolve_device
    from damvad.i3d import load_i3d

    device = resolve_device(args.device)
    print(device_info(device), f"torch {torch.__version__}")
    t0 = time.perf_counter()
    model = load_i3d(device=device)
    results = bench_i3d(model, device, args.batches, args.precisions, args.reps)
    video = args.video or longest_shared_video()
    if video is None:
        print("no long video: pass --video PATH; extraction not measured")
    else:
        results.update(bench_extract(video, device, args.precisions[0]))
    results.update(bench_train(device, args.train_steps))
    results["total_s"] = time.perf_counter() - t0
    print(closing_line(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
