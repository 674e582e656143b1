"""int8 settings compared in one run: accuracy against OpenVINO fp32 on real snippets and speed vs eager.

Each candidate is a :class:`damvad.backends.openvino.QuantizationSettings` (quantized once, then cached on
disk under its own key, so a rerun only measures). Accuracy, against OpenVINO fp32 (equal to eager fp32 to
~1e-6):

* ``min cos`` / ``mean cos``: feature cosine on 12 real centre crops (4 snippets each of vtest.avi and the
  two UCF-Crime clips in ../shared/media/ucf-crime; the UCF-Crime clips are in no calibration set);
* ``top-1``: how many of vtest.avi's 12 snippets keep fp32's class (top-1 of the 5-crop-averaged logits);
* ``gate``: the test's top-1 gate (tests/test_backends.py: snippets 0 and 6 keep their class and every
  crop's fp32 class is in int8's top 3).

Speed: frames/s of one 64-frame centre crop per call (uint8 input, as extraction runs), all candidates,
OpenVINO bf16 and eager fp32 timed round-robin, medians; ratios to eager in the same run.

    python benchmarks/sweep_int8.py --reps 5 [--candidates current ofdis ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    MEDIA,
    OtherLoad,
    closing_line,
    cosine,
    eager_i3d,
    full_snippets,
    real_snippets,
    round_robin,
)
from damvad.backends.openvino import OpenVINOBackend, QuantizationSettings  # noqa: E402
from damvad.video import snippet_to_input  # noqa: E402

BASE = QuantizationSettings(preset="performance", keep_first_conv=True, fast_bias_correction=True,
                            bias_correction=True, overflow_fix="first_layer", input_range="calibrated")
OFF = replace(BASE, overflow_fix="disable")
LATE_BLOCKS = ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f", "Mixed_5b", "Mixed_5c", "Logits")
CANDIDATES: dict[str, QuantizationSettings] = {
    "current": BASE,  # what shipped before this sweep (NNCF defaults, first conv bf16)
    "ofdis": OFF,  # overflow fix off (VNNI: no saturation, 8-bit weights everywhere)
    "ofdis_logits": replace(OFF, bf16_blocks=("Logits",)),
    "ofdis_5c": replace(OFF, bf16_blocks=("Mixed_5c", "Logits")),
    "ofdis_5bc": replace(OFF, bf16_blocks=("Mixed_5b", "Mixed_5c", "Logits")),
    "ofdis_4ef5": replace(OFF, bf16_blocks=("Mixed_4e", "Mixed_4f", "Mixed_5b", "Mixed_5c", "Logits")),
    "ofdis_4_5": replace(OFF, bf16_blocks=("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f", "Mixed_5b",
                                           "Mixed_5c", "Logits")),  # 18 % of the FLOPs in bf16
    "ofdis_fullbc": replace(OFF, fast_bias_correction=False),
    "ofdis_sq": replace(OFF, smooth_quant_conv=0.15),
    "ofdis_calib": replace(OFF, synthetic=32, per_video=12),
    "ofdis_nofirst": replace(OFF, keep_first_conv=False),
    "nobc": replace(BASE, bias_correction=False),  # no bias correction
    "ofdis_nobc": replace(OFF, bias_correction=False),  # shipped since (QuantizationSettings() on VNNI)
    # the early, costly layers in bf16 on top of the shipped settings (Conv3d_2c 30 % of the FLOPs, Mixed_3b/3c 28 %)
    "ofdis_nobc_2c": replace(OFF, bias_correction=False, bf16_blocks=("Conv3d_2c_3x3",)),
    "ofdis_nobc_early": replace(OFF, bias_correction=False,
                                bf16_blocks=("Conv3d_2b_1x1", "Conv3d_2c_3x3", "Mixed_3b", "Mixed_3c")),
    "ofdis_nobc_4_5": replace(OFF, bias_correction=False, bf16_blocks=LATE_BLOCKS),  # the late 18 %
    # the shipped settings plus one untried knob each
    "ofdis_nobc_sq": replace(OFF, bias_correction=False, smooth_quant_conv=0.15),
    "ofdis_nobc_calib": replace(OFF, bias_correction=False, synthetic=32, per_video=12),
    "ofdis_nobc_nofirst": replace(OFF, bias_correction=False, keep_first_conv=False),  # NNCF's input range
    # the first convolution in int8, its input quantizer pinned to the uint8 pixel grid (shipped since)
    "ofdis_nobc_first8": replace(OFF, bias_correction=False, keep_first_conv=False, input_range="pixels"),
    # the shipped settings with another, larger calibration set: a second draw of the quantization error
    "ofdis_nobc_first8_calib": replace(OFF, bias_correction=False, keep_first_conv=False, input_range="pixels",
                                       synthetic=32, per_video=12),
    "minmax": replace(BASE, activation_range="minmax"),  # global ranges: no clipping of busy snippets
    "ofdis_minmax": replace(OFF, activation_range="minmax"),
    "ofdis_hist": replace(OFF, activation_range="histogram"),
    "ofdis_minmax_5c": replace(OFF, activation_range="minmax", bf16_blocks=("Mixed_5c", "Logits")),
}


def centre_crops() -> list[np.ndarray]:
    """The feature-cosine gate's inputs (tests/test_backends.py::_real_snippets): 4 per shared clip."""
    if not (MEDIA / "vtest.avi").is_file() or not list((MEDIA / "ucf-crime").glob("*.mp4")):
        raise SystemExit(f"needs {MEDIA / 'vtest.avi'} and {MEDIA / 'ucf-crime'}/*.mp4")
    return real_snippets(4)[0]


def gate_inputs() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(the 12 centre crops of the cosine gate, vtest's 12 snippets as 5 crops each for the top-1 count)."""
    five = [snippet_to_input(s.frames, "5", planar=True, dtype="uint8") for s in full_snippets(MEDIA / "vtest.avi")]
    return centre_crops(), five


def references(fp32, crops: list[np.ndarray], five: list[np.ndarray]) -> dict:
    """fp32's features on the crops and logits on the 5-crop snippets: what ``evaluate`` compares with."""
    return {"features": [fp32(x) for x in crops], "logits": [fp32.logits(x) for x in five]}


def evaluate(backend, ref: dict, crops: list[np.ndarray], five: list[np.ndarray]) -> dict:
    coss = [cosine(backend(x), f) for x, f in zip(crops, ref["features"], strict=True)]
    logits = [backend.logits(x) for x in five]
    top1 = sum(int(lg.mean(0).argmax()) == int(rl.mean(0).argmax()) for lg, rl in zip(logits, ref["logits"],
                                                                                         strict=True))
    gate = True
    for index in (0, 6):
        lg, rl = logits[index], ref["logits"][index]
        gate &= int(lg.mean(0).argmax()) == int(rl.mean(0).argmax())
        gate &= all(int(rl[c].argmax()) in lg[c].topk(3).indices.tolist() for c in range(lg.shape[0]))
    flips = [f"{i}:{int(rl.mean(0).argmax())}->{int(lg.mean(0).argmax())}"
             for i, (lg, rl) in enumerate(zip(logits, ref["logits"], strict=True))
             if int(lg.mean(0).argmax()) != int(rl.mean(0).argmax())]
    return {"min_cos": min(coss), "mean_cos": float(np.mean(coss)), "top1": top1, "gate": bool(gate),
            "flips": flips}


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

    nan = {"min_cos": float("nan"), "mean_cos": float("nan"), "top1": -1, "gate": False, "flips": []}
    if not args.no_accuracy:
        ref = references(OpenVINOBackend("fp32"), crops, five)
    backends = {"ov_bf16": OpenVINOBackend("bf16")}
    rows: dict[str, dict] = {"ov_bf16": nan if args.no_accuracy else evaluate(backends["ov_bf16"], ref, crops, five)}
    print(f"ov_bf16: {rows['ov_bf16']}", flush=True)
    for name in args.candidates:
        t0 = time.perf_counter()
        b = OpenVINOBackend("int8", settings=CANDIDATES[name], progress=True)
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
