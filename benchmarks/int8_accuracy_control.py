"""Experiment (not shipped): NNCF's accuracy-controlled quantization on top of the shipped int8 settings.

``nncf.quantize_with_accuracy_control`` quantizes like :func:`damvad.backends.openvino_ir.quantize_i3d`, then
reverts the layers that cost the most accuracy to bf16 until the validation metric is within ``--max-drop``
of fp32. Validation: 12 rendered scenes that are not in the calibration set (seeds 16-27 of
``calibration.synthetic_snippets``); metric: mean feature cosine to OpenVINO fp32. The model is written to
``--out``, then compared with the shipped int8 as ``sweep_int8.py`` does (min / mean cosine on the 12 real
crops, vtest 5-crop top-1) and timed round-robin against eager fp32 and the shipped int8. ``--auc RUNS``
also runs ``bench_int8_auc.py`` with this model in place of the shipped int8.

    python benchmarks/int8_accuracy_control.py --max-drop 0.0004 [--auc runs/table1-synth-ucf-v1-test]
        [--auc-per-class K] [--no-compare]
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import numpy as np

from damvad.backends import openvino_ir as ovb
from damvad.backends.openvino import OpenVINOBackend
from damvad.devtools.bench import cosine, eager_i3d, round_robin
from damvad.devtools.int8 import evaluate, gate_inputs, int8_auc_main, references
from damvad.extraction import calibration as calib
from damvad.utils import cache_dir


def build(out: Path, max_drop: float) -> None:
    os.environ.setdefault("NNCF_DISABLE_TELEMETRY", "1")
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    settings = ovb.QuantizationSettings()
    fp32 = OpenVINOBackend("fp32")
    model = ov.Core().read_model(str(fp32.folder / "model.xml"))
    snippets, _ = calib.calibration_snippets()
    validation = [(x, fp32(x).numpy()) for x in calib.synthetic_snippets(28)[16:]]

    def mean_cosine(compiled, data):
        per = [cosine(compiled({0: x})[compiled.outputs[0]], ref) for x, ref in data]
        return float(np.mean(per)), per

    quantized = nncf.quantize_with_accuracy_control(
        model, nncf.Dataset(snippets), nncf.Dataset(validation), mean_cosine, max_drop=max_drop,
        drop_type=nncf.DropType.ABSOLUTE, preset=nncf.QuantizationPreset.PERFORMANCE, subset_size=len(snippets),
        fast_bias_correction=settings.fast_bias_correction, ignored_scope=ovb.ignored_scope(model, settings),
        advanced_quantization_parameters=ovb.advanced_parameters(settings),
        advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(ranking_subset_size=6))
    try:  # NNCF evaluates its candidates without the pinned input, so it may revert the first convolution
        ovb.pin_input_quantizer(quantized)
    except RuntimeError as exc:
        print(f"input not pinned: {exc}")
    out.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(out / "model.xml"), compress_to_fp16=False)


def compare(out: Path, reps: int) -> None:
    shipped = OpenVINOBackend("int8", calibration_data=calib.VIDEO_CALIBRATION)
    controlled = OpenVINOBackend.from_ir(out, "int8")
    crops, five = gate_inputs()
    ref = references(OpenVINOBackend("fp32"), crops, five)
    for name, backend in (("shipped", shipped), ("controlled", controlled)):
        row = evaluate(backend, ref, crops, five)
        print(f"{name}: min cos {row['min_cos']:.5f} mean {row['mean_cos']:.5f} top-1 {row['top1']}/12", flush=True)
    shipped.warmup(64), controlled.warmup(64)
    times = round_robin({"eager": eager_i3d(), "shipped": shipped, "controlled": controlled}, crops[:1], reps)
    base = statistics.median(times["eager"])
    for name, ts in times.items():
        print(f"{name}: {64 / statistics.median(ts):.1f} frames/s, {base / statistics.median(ts):.2f}x eager")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-drop", type=float, default=0.0004, help="absolute drop of mean cosine allowed")
    ap.add_argument("--out", type=Path, default=cache_dir() / "experiments" / "int8-accuracy-control")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--auc", default=None, help="a Table 1 run folder: also run bench_int8_auc.py with it")
    ap.add_argument("--auc-per-class", type=int, default=None,
                    help="bench_int8_auc.py's --per-class (default: every test video)")
    ap.add_argument("--no-compare", action="store_true", help="skip the accuracy and speed comparison")
    args = ap.parse_args()
    if not (args.out / "model.xml").is_file():
        build(args.out, args.max_drop)
    if not args.no_compare:
        compare(args.out, args.reps)
    if args.auc:
        argv = ["--runs", args.auc, "--rows", "mlp", "dist", "cov"]
        if args.auc_per_class is not None:
            argv += ["--per-class", str(args.auc_per_class)]
        int8_auc_main(argv, candidate=OpenVINOBackend.from_ir(args.out, "int8"))


if __name__ == "__main__":
    main()
