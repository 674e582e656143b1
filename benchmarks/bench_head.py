"""Speed of the DAM head alone (no I3D): live per-clip latency, training throughput, clip pooling.

    python benchmarks/bench_head.py [--reps 50] [--train-iters 5] [--threads N]

Last line: ``name=value`` pairs (``*_clip_ms`` median latency of one step, batch 1; ``*_train_it_s``
forward + backward + Adam iterations per second for 10 + 10 bags of 16 clips; ``pool_speedup``
pool_clips vs a snippet-by-snippet python loop on numpy, ``pool_torch_speedup`` pool_clips vs per-clip
``amax`` on a torch tensor). Pooling is memory-bound: expect small ratios against loops whose every step
is already vectorised over the 7 x 1024 map.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from damvad.clips import clip_boundaries, pool_clips
from damvad.losses import ranking_loss, regularization
from damvad.model import build_model


def median_seconds(fn, reps: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_clip(variant: str, reps: int) -> float:
    """Median seconds to score one new clip of one stream through the step API."""
    torch.manual_seed(0)
    model = build_model(variant).eval()
    clips = torch.rand(reps + 8, 1, 7, 1024)
    state = model.init_state(batch=1)
    counter = iter(range(10**9))

    def one() -> None:
        nonlocal state
        _, state = model.step(clips[next(counter) % len(clips)], state)

    with torch.inference_mode():
        return median_seconds(one, reps)


def bench_train(variant: str, iters: int, n_bags: int = 10, num_clips: int = 16) -> float:
    """Median seconds of one training iteration on n_bags anomalous + n_bags normal videos."""
    torch.manual_seed(0)
    model = build_model(variant).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    anom = torch.rand(n_bags, num_clips, 7, 1024) * 2
    norm = torch.rand(n_bags, num_clips, 7, 1024) * 2

    def one() -> None:
        out = model(torch.cat([anom, norm]))  # one flattened batch, as training does
        w = out["weighted"]
        loss = ranking_loss(w[:n_bags], w[n_bags:]).total + regularization(model, out)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return median_seconds(one, iters, warmup=1)


def bench_pool(reps: int, snippets: int = 1000, num_clips: int = 32) -> dict[str, float]:
    """Seconds to pool one long video's snippet maps, by pool_clips and by the loops one would write."""
    rng = np.random.default_rng(0)
    feats = rng.random((snippets, 7, 1024), dtype=np.float32)
    feats_t = torch.from_numpy(feats)
    bounds = clip_boundaries(snippets, num_clips)

    def loop_snippets() -> np.ndarray:  # the naive loop: accumulate snippet by snippet
        out = []
        for start, end in bounds:
            acc = feats[start].copy()
            for s in range(start + 1, end):
                acc = np.maximum(acc, feats[s])
            out.append(acc)
        return np.stack(out)

    def loop_torch() -> torch.Tensor:  # per-clip amax, as a torch user would write it
        return torch.stack([feats_t[s:e].amax(dim=0) for s, e in bounds])

    expected = pool_clips(feats, num_clips)
    assert np.array_equal(loop_snippets(), expected) and np.array_equal(loop_torch().numpy(), expected)
    return {
        "pool_clips": median_seconds(lambda: pool_clips(feats, num_clips), reps),
        "pool_clips_torch": median_seconds(lambda: pool_clips(feats_t, num_clips), reps),
        "loop_snippets": median_seconds(loop_snippets, reps),
        "loop_torch_amax": median_seconds(loop_torch, reps),
        "reduceat": median_seconds(lambda: np.maximum.reduceat(feats, bounds[:, 0], axis=0), reps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=50, help="repetitions for the latency medians")
    parser.add_argument("--train-iters", type=int, default=5, help="timed training iterations")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cpus, "
          f"load average {os.getloadavg()[0]:.2f}")
    results: dict[str, float] = {}
    for variant in ("dist", "cov", "mlp"):
        sec = bench_clip(variant, args.reps)
        print(f"{variant:5s} one clip (step, batch 1): {sec * 1e6:10.0f} us")
        results[f"{variant}_clip_ms"] = sec * 1e3
    for variant in ("dist", "cov"):
        sec = bench_train(variant, args.train_iters)
        print(f"{variant:5s} train iteration, 10+10 bags x 16 clips: {sec * 1e3:8.0f} ms ({1 / sec:.2f} it/s)")
        results[f"{variant}_train_it_s"] = 1.0 / sec
    pool = bench_pool(max(5, args.reps // 5))
    print("pooling 1000 snippet maps into 32 clips: "
          + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in pool.items()))
    results["pool_speedup"] = pool["loop_snippets"] / pool["pool_clips"]
    results["pool_torch_speedup"] = pool["loop_torch_amax"] / pool["pool_clips_torch"]
    print(" ".join(f"{k}={v:.3g}" for k, v in results.items()))


if __name__ == "__main__":
    main()
