"""int8 settings compared in one run: accuracy against OpenVINO fp32 on real snippets and speed vs eager.

Each candidate is a :class:`damvad.backends.openvino_ir.QuantizationSettings` (``damvad.devtools.int8.
CANDIDATES``; quantized once, then cached on disk under its own key, so a rerun only measures). Accuracy,
against OpenVINO fp32 (equal to eager fp32 to ~1e-6):

* ``min cos`` / ``mean cos``: feature cosine on 12 real centre crops (4 snippets each of vtest.avi and the
  two UCF-Crime clips in ../shared/media/ucf-crime; the UCF-Crime clips are in no calibration set);
* ``top-1``: how many of vtest.avi's 12 snippets keep fp32's class (top-1 of the 5-crop-averaged logits);
* ``gate``: the test's top-1 gate (:func:`damvad.devtools.int8.top1_gate`: every snippet whose fp32 class
  leads by more than 0.5 logits keeps it, and every crop's fp32 class is in int8's top 3; near-ties are
  not gated).

Speed: frames/s of one 64-frame centre crop per call (uint8 input, as extraction runs), all candidates,
OpenVINO bf16 and eager fp32 timed round-robin, medians; ratios to eager in the same run.

    python benchmarks/sweep_int8.py --reps 5 [--candidates current ofdis ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import asdict

from damvad.backends.openvino import OpenVINOBackend
from damvad.devtools.bench import OtherLoad, closing_line, eager_i3d, round_robin
from damvad.devtools.int8 import CANDIDATES, evaluate, gate_inputs, references
from damvad.extraction.calibration import VIDEO_CALIBRATION


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--no-accuracy", action="store_true", help="speed only (candidates built or cached)")
    args = ap.parse_args()

    load0 = os.getloadavg()[0]
    crops, five = gate_inputs()
    print(f"{len(crops)} centre crops, {len(five)} vtest snippets x 5 crops; load average {load0:.2f}", flush=True)

    nan = {"min_cos": float("nan"), "mean_cos": float("nan"), "top1": -1, "gate": False, "gate_snippets": 0, "ties": [],
           "flips": []}
    if not args.no_accuracy:
        ref = references(OpenVINOBackend("fp32"), crops, five)
    backends = {"ov_bf16": OpenVINOBackend("bf16")}
    rows: dict[str, dict] = {"ov_bf16": nan if args.no_accuracy else evaluate(backends["ov_bf16"], ref, crops, five)}
    print(f"ov_bf16: {rows['ov_bf16']}", flush=True)
    for name in args.candidates:
        t0 = time.perf_counter()
        b = OpenVINOBackend("int8", settings=CANDIDATES[name], calibration_data=VIDEO_CALIBRATION, progress=True)
        built = time.perf_counter() - t0
        b.warmup(64)
        backends[name] = b
        acc = nan if args.no_accuracy else evaluate(b, ref, crops, five)
        rows[name] = {**acc, "quantize_s": b.meta.get("quantize_seconds"),
                      "built_now_s": round(built, 1), "load": round(os.getloadavg()[0], 2)}
        print(f"{name}: {rows[name]}  settings={asdict(CANDIDATES[name])}", flush=True)

    fps: dict[str, float] = {}
    others = float("nan")
    if not args.no_speed:
        eager = eager_i3d()
        fns = {"eager": eager, **{n: b.features_and_logits for n, b in backends.items()}}
        eager(crops[0])
        load = OtherLoad()
        times = round_robin(fns, crops, args.reps)
        others = load.cores()
        fps = {n: 64 / statistics.median(ts) for n, ts in times.items()}

    load1 = os.getloadavg()[0]
    base = fps.get("eager")
    print(f"{'setting':<15}{'frames/s':>9}{'vs eager':>9}{'min cos':>9}{'mean cos':>9}{'top-1':>7}{'gate':>6}"
          f"{'quant s':>8}  flips")
    if base:
        print(f"{'eager':<15}{base:>9.1f}{'1.00x':>9}")
    line: dict[str, object] = {"eager_fps": round(base, 1) if base else "nan"}
    for n, r in rows.items():
        f = fps.get(n)
        ratio = f"{f / base:.2f}x" if f and base else "-"
        print(f"{n:<15}{(f or float('nan')):>9.1f}{ratio:>9}{r['min_cos']:>9.5f}{r['mean_cos']:>9.5f}"
              f"{r['top1']:>4}/12{'yes' if r['gate'] else 'no':>6}{str(r.get('quantize_s', '-')):>8}  "
              f"{' '.join(r['flips'])}")
        if f and base:
            line[f"{n}_ratio"] = round(f / base, 2)
        line[f"{n}_cos"] = f"{r['min_cos']:.5f}"
        line[f"{n}_top1"] = r["top1"]
    print(f"load average before {load0:.2f} / after {load1:.2f}; other processes used {others:.2f} cores "
          "during the timed reps")
    line["load_avg"] = round(load1, 2)
    line["other_load_cores"] = round(others, 2)
    print(closing_line(line))


if __name__ == "__main__":
    main()
