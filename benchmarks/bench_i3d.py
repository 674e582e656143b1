"""I3D throughput: eager fp32 (the baseline) vs the fast fp32 and bf16 paths, with accuracy.

All variants run in one process on the same input (the golden clip, seed 0, plus more random clips when
--batch > 1). The first call (compilation) is timed and reported separately; then --reps timed calls,
medians. Accuracy: relative L2 / cosine of clip 0's features against the flax golden reference, and
whether the top-1 Kinetics class agrees. Ends with one line of name=value pairs.

Usage: python benchmarks/bench_i3d.py [--reps 5] [--batch 1] [--variants eager fp32 bf16 ...]

Extra variants (alternatives to the shipped choices, all BN-folded + channels_last_3d): folded_cl (eager),
fp32_nofreeze (inductor without freezing: aten convolutions, unfused ReLU), fp32_autotune and bf16_autotune
(freezing + max_autotune), bf16_autocast (autocast instead of bf16 weights), jit_fp32 (torch.jit trace +
freeze + optimize_for_inference), jit_onednn_fp32 (torch.jit trace + freeze with oneDNN Graph fusion).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from damvad.backends.torch import FastI3D, build_runner
from damvad.devtools.bench import closing_line
from damvad.i3d import InceptionI3d, load_i3d

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "data" / "i3d_golden_seed0_64f.npz"
Fn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def make_input(batch: int, frames: int) -> torch.Tensor:
    clips = [np.random.default_rng(seed).uniform(-1, 1, size=(frames, 224, 224, 3)) for seed in range(batch)]
    x = torch.from_numpy(np.stack(clips).astype(np.float32))
    return x.permute(0, 4, 1, 2, 3).contiguous()


def build(name: str, model: InceptionI3d, batch: int) -> Fn:
    """A (features, logits) callable for the variant; compilation happens on its first call."""
    cl = torch.channels_last_3d
    if name == "eager":
        return model
    if name in ("fp32", "bf16"):  # the shipped fast path, exactly as the extractor uses it
        return FastI3D(model, precision=name, compile=True, batch_size=batch).features_and_logits
    if name == "folded_cl":
        runner = build_runner(model, "fp32", compile=False)
    elif name == "fp32_nofreeze":
        runner = build_runner(model, "fp32", options={})
    elif name in ("fp32_autotune", "bf16_autotune"):
        prec = "fp32" if name.startswith("fp32") else "bf16"
        runner = build_runner(model, prec, options={"freezing": True, "max_autotune": True})
    elif name == "bf16_autocast":
        runner = build_runner(model, "bf16_autocast")
    elif name in ("jit_fp32", "jit_onednn_fp32"):
        module = build_runner(model, "fp32", compile=False)
        example = torch.zeros(batch, 3, 64, 224, 224).contiguous(memory_format=cl)
        if name == "jit_onednn_fp32":  # oneDNN Graph (LLGA) fusion; process-global switch
            torch.jit.enable_onednn_fusion(True)
        with torch.inference_mode():
            traced = torch.jit.freeze(torch.jit.trace(module, example, check_trace=False))
            if name == "jit_fp32":
                traced = torch.jit.optimize_for_inference(traced)
            else:
                traced(example)  # profiling runs: LLGA fuses on the second call
                traced(example)
            runner = traced
    else:
        raise SystemExit(f"unknown variant {name!r}")

    def call(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.inference_mode():
            return runner(x.contiguous(memory_format=cl))

    return call


def _busy_jiffies() -> float | None:
    """System-wide busy CPU time (s) from /proc/stat, to see how much other processes ran meanwhile."""
    try:
        with open("/proc/stat") as fh:
            fields = [float(v) for v in fh.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def run_all(fns: dict[str, Fn], x: torch.Tensor, reps: int) -> tuple[dict[str, dict], float | None]:
    """Warm every variant up first, then time them round-robin, so all see the same machine load."""
    res: dict[str, dict] = {}
    with torch.no_grad():
        for name, fn in fns.items():
            t0 = time.perf_counter()
            feats, logits = fn(x)
            res[name] = {"warm": time.perf_counter() - t0, "walls": [], "cpus": []}
            res[name]["feats"], res[name]["logits"] = feats[0].float().numpy(), logits[0].float().numpy()
            print(f"  {name}: first call (warm-up/compile) {res[name]['warm']:.1f} s", flush=True)
        busy0, own0, wall0 = _busy_jiffies(), _own_cpu(), time.perf_counter()
        for _ in range(reps):
            for name, fn in fns.items():
                t0, c0 = time.perf_counter(), time.process_time()
                fn(x)
                res[name]["walls"].append(time.perf_counter() - t0)
                res[name]["cpus"].append(time.process_time() - c0)
        busy1, own1, wall1 = _busy_jiffies(), _own_cpu(), time.perf_counter()
    others = None
    if busy0 is not None and busy1 is not None:
        others = max(busy1 - busy0 - (own1 - own0), 0.0) / (wall1 - wall0)
    for r in res.values():
        r["wall"], r["wall_min"] = statistics.median(r["walls"]), min(r["walls"])
        r["cpu"] = statistics.median(r["cpus"])
    return res, others


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5, help="timed repetitions per variant (median reported)")
    ap.add_argument("--batch", type=int, default=1, help="clips per call (64 frames each)")
    ap.add_argument("--variants", nargs="+", default=["eager", "fp32", "bf16"])
    ap.add_argument("--checkpoint", default=None, help="I3D weights (default: the Kinetics-400 checkpoint)")
    args = ap.parse_args()

    frames = 64
    x = make_input(args.batch, frames)
    with np.load(GOLDEN) as g:
        golden = {k: g[k] for k in g.files}
    model = load_i3d(args.checkpoint)
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpu capability "
        f"{torch.backends.cpu.get_cpu_capability()}, batch {args.batch} x {frames} frames, reps {args.reps}, "
        f"load average before {os.getloadavg()[0]:.2f}"
    )
    frames_per_call = args.batch * frames
    fns = {name: build(name, model, args.batch) for name in args.variants}
    res, others = run_all(fns, x, args.reps)
    header = f"{'variant':<14}{'warm-up s':>10}{'median s':>10}{'min s':>8}{'cpu s':>8}{'frames/s':>10}"
    header += f"{'best f/s':>10}{'rel_l2':>10}{'cosine':>10}{'top1':>6}"
    print(header)
    for name, r in res.items():
        r["fps"] = frames_per_call / r["wall"]
        r["best_fps"] = frames_per_call / r["wall_min"]
        r["rel"] = float(np.linalg.norm(r["feats"] - golden["feature"]) / np.linalg.norm(golden["feature"]))
        f, gf = r["feats"].ravel().astype(np.float64), golden["feature"].ravel().astype(np.float64)
        r["cos"] = float(f @ gf / (np.linalg.norm(f) * np.linalg.norm(gf)))
        r["top1"] = int(np.argmax(r["logits"])) == int(np.argmax(golden["logits"]))
        print(
            f"{name:<14}{r['warm']:>10.1f}{r['wall']:>10.3f}{r['wall_min']:>8.3f}{r['cpu']:>8.2f}"
            f"{r['fps']:>10.1f}{r['best_fps']:>10.1f}{r['rel']:>10.2e}{r['cos']:>10.6f}"
            f"{'yes' if r['top1'] else 'NO':>6}"
        )
    busy = "n/a" if others is None else f"{others:.2f} cores"
    print(f"load average after {os.getloadavg()[0]:.2f}; other processes used {busy} during the timed reps")
    line: dict[str, float | str] = {}
    for name in args.variants:
        line[f"{name}_fps"] = round(res[name]["fps"], 1)
    base = res.get("eager")
    for name in args.variants:
        if base is not None and name != "eager":
            line[f"{name}_ratio"] = round(res[name]["fps"] / base["fps"], 2)
    if "fp32" in res:
        line["fp32_rel_l2"] = f"{res['fp32']['rel']:.2g}"
    if "bf16" in res:
        line["bf16_cos"] = f"{res['bf16']['cos']:.6f}"
        if "fp32" in res:
            a, b = res["bf16"]["feats"].ravel(), res["fp32"]["feats"].ravel()
            line["bf16_cos_vs_fp32"] = f"{a @ b / (np.linalg.norm(a) * np.linalg.norm(b)):.6f}"
    if "eager" in res:
        line["eager_rel_l2"] = f"{res['eager']['rel']:.2g}"
    if others is not None:
        line["other_load_cores"] = round(others, 2)
    print(closing_line(line))


if __name__ == "__main__":
    main()
