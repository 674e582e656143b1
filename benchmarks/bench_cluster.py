"""Extraction on Ray with 1 and 2 worker processes against local extraction, and what it means for a benchmark.

Each configuration extracts the same videos (``--copies`` copies of the shared clips, as separate files)
into a fresh folder on a Ray cluster started for it on loopback:

* ``local``: ``damvad.extraction.extract`` in this process (torch's threads, here 2), model compiled first;
* ``ray_1x1``: one node with 1 CPU: one worker process, 1 thread;
* ``ray_2x1``: a head and a worker node with 1 CPU each: two worker processes, 1 thread each;
* ``ray_1x2``: one node with 2 CPUs: one worker process, 2 threads (a 2-core node as Ray runs it).

Rates are frames / seconds, over the whole job and "steady" (from the first worker ready, so without
start-up and compilation). The load average is printed before and after each: the machine is shared.
Then the hours for UCF-Crime (each video's frame count from the shipped lists, longest first over N
workers: the job ends with its slowest worker) and XD-Violence (4,754 videos, ~217 h at 24 frames/s;
per-video lengths not shipped, so total / rate) on N nodes, from the measured per-node rate and from
assumed GPU rates.

Usage: python benchmarks/bench_cluster.py [--copies 2] [--rounds 1] [--precision bf16] [--configs local ...]
       python benchmarks/bench_cluster.py --estimate 66.9     # hours only, for a per-node rate you measured
"""

from __future__ import annotations

import argparse
import heapq
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from damvad.devtools.bench import REPO, closing_line

SHARED_MEDIA = REPO.parent / "shared" / "media"
CLIPS = ["vtest.avi", "ucf-crime/RoadAccidents002_x264.mp4", "ucf-crime/Normal_Videos_006_x264.mp4"]
NODES = {"ray_1x1": [1], "ray_2x1": [1, 1], "ray_1x2": [2]}  # CPUs of each node, head first
XD_FRAMES = 217 * 3600 * 24  # XD-Violence: ~217 h; its videos are distributed at 24 frames/s
# Assumed, not measured (no GPU here): the paper's I3D + DAM test speed (Table 3, hardware not stated), and
# 1,000 frames/s for a modern GPU fed by enough workers (see benchmarks/README.md).
GPU_RATES = {"gpu_paper": 282.0, "gpu_modern": 1000.0}
NODE_COUNTS = [1, 2, 4, 8, 16, 32, 64]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def make_videos(root: Path, copies: int) -> int:
    from damvad.video import iter_frames

    frames = 0
    for clip in CLIPS:
        src = SHARED_MEDIA / clip
        if not src.exists():
            raise SystemExit(f"{src} not found: the benchmark needs ../shared/media")
        n = sum(1 for _ in iter_frames(src, short_side=None))
        for i in range(copies):
            (root / f"{src.stem}_{i}{src.suffix}").symlink_to(src)
            frames += n
    return frames


def run_local(videos: Path, out: Path, precision: str) -> dict[str, float]:
    from damvad.extract import extract
    from damvad.extraction import open_backend

    fn = open_backend(precision=precision, compile=True)
    t0 = time.perf_counter()
    fn.warmup(64)
    startup = time.perf_counter() - t0
    report = extract([videos], out, precision=precision, feature_fn=fn, progress=False)
    assert report.ok, report.summary()
    return {"frames": report.frames, "seconds": report.seconds + startup, "startup": startup}


def run_ray(videos: Path, out: Path, precision: str, cpus: list[int], logs: Path) -> dict[str, float]:
    from damvad.devtools.raycluster import RAY_ENV, LoopbackCluster
    from damvad.extraction.ray_driver import extract_on_ray
    from damvad.stages import ExtractConfig

    os.environ.update(RAY_ENV)
    cluster = LoopbackCluster(logs)
    try:
        cluster.start_head(num_cpus=cpus[0])
        for i, n in enumerate(cpus[1:]):
            cluster.add_worker(f"worker{i}", num_cpus=n)
        cfg = ExtractConfig(inputs=[str(videos)], features=str(out), engine="ray", address=cluster.address,
                            precision=precision)
        report = extract_on_ray(cfg, progress=False)
        assert report.ok and report.workers == len(cpus), report.summary()
    finally:
        cluster.stop()
        left = cluster.leftovers()
        if left:
            print("warning: processes left:", *left, sep="\n  ")
    return {"frames": report.frames, "seconds": report.seconds, "startup": report.startup_seconds}


def lpt_hours(lengths: list[int], workers: int, rate: float) -> float:
    """Longest video first to the least loaded worker; the job ends with the busiest one."""
    loads = [0.0] * workers
    for frames in sorted(lengths, reverse=True):
        heapq.heappush(loads, heapq.heappop(loads) + frames)
    return max(loads) / rate / 3600


def estimates(node_rate: float) -> tuple[list[str], dict[str, float]]:
    from damvad.datasets import get_dataset

    ucf = [int(item.num_frames) for item in get_dataset("ucf-crime").items]
    rates = {"cpu_node": node_rate, **GPU_RATES}
    lines = [f"UCF-Crime: {len(ucf)} videos, {sum(ucf):,} frames, longest {max(ucf):,}; "
             f"XD-Violence: {XD_FRAMES:,} frames (217 h at 24 frames/s)",
             f"{'nodes':>5} " + " ".join(f"{k + ' UCF':>16} {k + ' XD':>15}" for k in rates)]
    values: dict[str, float] = {}
    for n in NODE_COUNTS:
        cells = []
        for key, rate in rates.items():
            ucf_h = lpt_hours(ucf, n, rate)
            xd_h = XD_FRAMES / (n * rate) / 3600
            cells.append(f"{ucf_h:>14.2f} h {xd_h:>13.2f} h")
            if n in (1, 8, 32):
                values[f"ucf_{key}_{n}_h"] = round(ucf_h, 2)
                values[f"xd_{key}_{n}_h"] = round(xd_h, 2)
        lines.append(f"{n:>5} " + " ".join(cells))
    floor = max(ucf) / node_rate / 3600
    lines.append(f"UCF-Crime floor on CPU nodes: its longest video alone takes {floor:.2f} h on one node")
    return lines, values


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--copies", type=int, default=2, help="copies of each shared clip in the job")
    ap.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    ap.add_argument("--rounds", type=int, default=1, help="times each configuration runs (medians)")
    ap.add_argument("--configs", nargs="+", default=["local", "ray_1x1", "ray_2x1", "ray_1x2"],
                    choices=["local", *NODES])
    ap.add_argument("--estimate", type=float, default=None, metavar="FPS",
                    help="print only the hours for a per-node rate of FPS frames/s (no measurement)")
    args = ap.parse_args()
    if args.estimate:
        lines, est = estimates(args.estimate)
        print("\n".join(lines))
        print(closing_line({"node_fps": args.estimate, **est}))
        return

    import torch

    root = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    try:
        videos = root / "videos"
        videos.mkdir()
        frames = make_videos(videos, args.copies)
        print(f"{len(list(videos.iterdir()))} videos, {frames} frames, {args.precision}; "
              f"torch {torch.__version__}, {os.cpu_count()} CPUs; load average {load()}")
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in args.configs}
        for round_ in range(args.rounds):  # configurations in turn, so that a change of load hits each
            for name in args.configs:
                before = load()
                out = root / f"out-{name}"
                if name == "local":
                    r = run_local(videos, out, args.precision)
                else:
                    r = run_ray(videos, out, args.precision, NODES[name], root)
                r["fps"] = r["frames"] / r["seconds"]
                r["steady_fps"] = r["frames"] / (r["seconds"] - r["startup"])
                runs[name].append(r)
                print(f"{round_ + 1}/{args.rounds} {name:>8}: {r['frames']:.0f} frames in {r['seconds']:.1f} s "
                      f"(start-up {r['startup']:.1f} s): {r['fps']:.1f} frames/s, steady {r['steady_fps']:.1f} "
                      f"frames/s; load {before} -> {load()}")
                shutil.rmtree(out, ignore_errors=True)
        results = {name: {"steady_fps": statistics.median(r["steady_fps"] for r in rs)} for name, rs in runs.items()}
        print("medians (steady frames/s): " + ", ".join(f"{k} {v['steady_fps']:.1f}" for k, v in results.items()))
        values: dict[str, float] = {f"{k}_fps": round(v["steady_fps"], 1) for k, v in results.items()}
        if "ray_1x1" in results and "ray_2x1" in results:
            values["two_vs_one_worker"] = round(results["ray_2x1"]["steady_fps"] / results["ray_1x1"]["steady_fps"], 3)
        if "local" in results and "ray_1x2" in results:
            values["ray_1x2_vs_local"] = round(results["ray_1x2"]["steady_fps"] / results["local"]["steady_fps"], 3)
        node = max((results[k]["steady_fps"] for k in ("ray_1x2", "ray_2x1") if k in results), default=0.0)
        if node:
            lines, est = estimates(node)
            print(f"\nhours from a measured node rate of {node:.1f} frames/s (this 2-core machine) and assumed "
                  f"GPU rates {GPU_RATES} frames/s per GPU node:")
            print("\n".join(lines))
            values.update(node_fps=round(node, 1), **est)
        values["load1"] = round(os.getloadavg()[0], 2)
        print(closing_line(values))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
