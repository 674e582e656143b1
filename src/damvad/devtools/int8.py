"""The int8 experiments' shared parts: the quantization settings tried (:data:`CANDIDATES`), the accuracy gates
of ``tests/test_backends_openvino.py`` as measures (:func:`gate_inputs`, :func:`references`, :func:`evaluate`),
and the frame-AUC comparison of int8 and fp32 features on a benchmark (:func:`int8_auc_main`). Used by
``benchmarks/sweep_int8.py``, ``bench_int8_auc.py`` and ``int8_accuracy_control.py``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from damvad.backends.openvino_ir import QuantizationSettings
from damvad.devtools.bench import MEDIA, cosine, full_snippets, real_snippets
from damvad.video import snippet_to_input

AUC_DOC = """Does int8 I3D change what DAM detects? Frame AUC on synth-ucf-v1's test split from int8 vs fp32 features.

The test videos are extracted twice with the OpenVINO backend (fp32 and int8, centre crop); the heads of a
finished Table 1 run (trained on the benchmark's bf16 training features) score both, and the frame AUC
difference int8 - fp32 is reported per run (the gate: within 0.5 points). Last line: name=value pairs.
The int8 features go to a folder named by the int8 model's cache digest (``test-openvino-int8-<digest>``),
so another quantization setting (``--int8-variant``, a ``sweep_int8.py`` candidate) is extracted afresh
while the fp32 features are reused.

    python benchmarks/bench_int8_auc.py --runs runs/table1-synth-ucf-v1-test --rows mlp dist cov
"""

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
    """The feature-cosine gate's inputs (tests/backendtools.py: real_snippets): 4 per shared clip."""
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


TOP1_MARGIN = 0.5  # logits: fp32's top-2 gap below which a snippet's class is a tie, not a gate


def _lead(logits) -> float:
    top2 = logits.topk(2).values
    return float(top2[0] - top2[1])


def top1_gate(logits: list, ref_logits: list, margin: float = TOP1_MARGIN) -> dict:
    """The int8 top-1 gate: on every snippet whose fp32 class (top-1 of the crop-averaged logits) leads its
    runner-up by more than ``margin`` logits, the candidate gives the same class, and each crop whose own fp32
    class leads by more than ``margin`` has it in the candidate's top 3. Near-ties are listed, not gated: a
    flip among classes fp32 itself hardly tells apart (vtest's pedestrians are no Kinetics class) says
    nothing. ``logits``, ``ref_logits``: per snippet, (crops, 400) logits of the candidate and fp32."""
    gated, ties, failed = [], [], []
    for i, (lg, rl) in enumerate(zip(logits, ref_logits, strict=True)):
        if _lead(rl.mean(0)) <= margin:
            ties.append(i)
            continue
        gated.append(i)
        same = int(lg.mean(0).argmax()) == int(rl.mean(0).argmax())
        crops = [c for c in range(lg.shape[0]) if _lead(rl[c]) > margin]
        if not same or not all(int(rl[c].argmax()) in lg[c].topk(3).indices.tolist() for c in crops):
            failed.append(i)
    return {"passed": bool(gated) and not failed, "gated": gated, "ties": ties, "failed": failed}


def evaluate(backend, ref: dict, crops: list[np.ndarray], five: list[np.ndarray]) -> dict:
    coss = [cosine(backend(x), f) for x, f in zip(crops, ref["features"], strict=True)]
    logits = [backend.logits(x) for x in five]
    top1 = sum(int(lg.mean(0).argmax()) == int(rl.mean(0).argmax()) for lg, rl in zip(logits, ref["logits"],
                                                                                         strict=True))
    gate = top1_gate(logits, ref["logits"])
    flips = [f"{i}:{int(rl.mean(0).argmax())}->{int(lg.mean(0).argmax())}"
             for i, (lg, rl) in enumerate(zip(logits, ref["logits"], strict=True))
             if int(lg.mean(0).argmax()) != int(rl.mean(0).argmax())]
    return {"min_cos": min(coss), "mean_cos": float(np.mean(coss)), "top1": top1, "gate": gate["passed"],
            "gate_snippets": len(gate["gated"]), "ties": gate["ties"], "flips": flips}


def int8_auc_main(argv: list[str] | None = None, candidate=None) -> None:
    """``candidate``: an int8 backend to compare in place of the one ``--int8-variant`` names (e.g. the
    accuracy-controlled model of ``int8_accuracy_control.py``)."""
    from damvad.backends.openvino import OpenVINOBackend
    from damvad.backends.openvino_ir import QuantizationSettings
    from damvad.benchmark.prepare import benchmark_root
    from damvad.datasets import get_dataset
    from damvad.evaluate import score_split
    from damvad.extract import extract
    from damvad.extraction.calibration import VIDEO_CALIBRATION
    from damvad.metrics import frame_auc
    from damvad.modelfile import load_model
    from damvad.store import FeatureStore

    ap = argparse.ArgumentParser(description=AUC_DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--benchmark", default="synth-ucf-v1")
    ap.add_argument("--runs", required=True, help="a finished `damvad benchmark table1` output folder")
    ap.add_argument("--rows", nargs="+", default=["mlp", "dist", "cov"])
    ap.add_argument("--out", default=None, help="where the two feature folders go (default: the benchmark's)")
    ap.add_argument("--per-class", type=int, default=None,
                    help="only the first K normal and K anomalous test videos (by name); default: all")
    ap.add_argument("--int8-variant", default=None,
                    help="a sweep_int8.py candidate name (default: the shipped QuantizationSettings)")
    ap.add_argument("--candidate", choices=["int8", "bf16"], default="int8",
                    help="the precision compared with fp32; bf16: what a rounding-level change alone does")
    args = ap.parse_args(argv)
    models = {row: sorted(Path(args.runs, row).glob("seed*/model.pt")) for row in args.rows}
    empty = [row for row, paths in models.items() if not paths]
    if empty:  # checked before minutes of extraction
        raise SystemExit(f"no {args.runs}/<row>/seed*/model.pt for row(s) {empty}: --runs takes a finished "
                         "`damvad benchmark table1` output folder")
    if args.int8_variant:
        settings = CANDIDATES[args.int8_variant]
    else:
        settings = QuantizationSettings()
    cand = args.candidate
    int8 = candidate if candidate is not None else OpenVINOBackend(cand, settings=settings, progress=True,
                                                                   calibration_data=VIDEO_CALIBRATION)
    int8_name = (f"test-openvino-int8-{int8.folder.name.rsplit('-', 1)[-1]}" if cand == "int8"
                 else "test-openvino-bf16")

    root = benchmark_root(args.benchmark)
    data = root / "data"
    videos = []
    for kind in ("normal", "anomalous"):
        videos += sorted((data / "test" / kind).glob("*.mp4"))[: args.per_class]
    out = Path(args.out) if args.out else root
    stores, seconds = {}, {}
    for precision, folder in (("fp32", "test-openvino-fp32"), (cand, int8_name)):
        t = time.perf_counter()
        fn = {"feature_fn": int8, "weights_sha256": int8.weights_sha256} if precision == cand else {}
        report = extract(videos, out / folder, backend="openvino", precision=precision, **fn)
        seconds[precision] = time.perf_counter() - t
        if not report.ok:
            raise SystemExit(report.summary())
        stores[precision] = FeatureStore(out / folder)
    dataset = get_dataset(data)
    present = {v.stem for v in videos}
    names = [it.name for it in dataset.videos("test") if it.name in present]
    gt = {n: dataset.ground_truth(n, stores["fp32"].frames(n)) for n in names}
    rows = []
    for row in args.rows:
        for path in models[row]:
            model, card = load_model(path)
            num_clips = card.clips.num_clips
            aucs = {}
            for precision, store in stores.items():
                for protocol in ("offline", "online"):
                    scored = score_split(model, store, names, protocol, num_clips)
                    scores = {name: vs.per_frame("D") for name, vs in scored.items()}
                    aucs[(precision, protocol)] = frame_auc(scores, gt)
            rows.append({"row": row, "seed": path.parent.name, **{f"{p}_{q}": v for (p, q), v in aucs.items()}})
    head = ["fp32 off", f"{cand} off", "diff", "fp32 on", f"{cand} on", "diff"]
    print(f"{'row':<14} {'seed':<6} " + " ".join(f"{h:>9}" for h in head))
    diffs = []
    for r in rows:
        d_off = 100 * (r[f"{cand}_offline"] - r["fp32_offline"])
        d_on = 100 * (r[f"{cand}_online"] - r["fp32_online"])
        diffs += [d_off, d_on]
        print(f"{r['row']:<14} {r['seed']:<6} {100 * r['fp32_offline']:9.2f} {100 * r[f'{cand}_offline']:9.2f} "
              f"{d_off:+7.2f} {100 * r['fp32_online']:9.2f} {100 * r[f'{cand}_online']:9.2f} {d_on:+7.2f}")
    signed = np.array(diffs)
    diffs_arr = np.abs(signed)
    record = {"videos": names, "runs": rows, "extract_seconds": seconds, "int8_model": int8.info(),
              "int8_features": int8_name}
    (out / f"{cand}_auc-{len(names)}videos-{int8_name}.json").write_text(json.dumps(record, indent=1))
    print(f"{cand} model {int8.folder.name}, settings {int8.meta.get('quantization')}")
    print(f"videos={len(names)} frames={sum(len(g) for g in gt.values())} max_abs_diff_points={diffs_arr.max():.3f} "
          f"mean_abs_diff_points={diffs_arr.mean():.3f} mean_diff_points={signed.mean():+.3f} "
          f"lower={int((signed < 0).sum())}/{signed.size} "
          f"runs={len(rows)} within_0.5={int((diffs_arr <= 0.5).all())} fp32_extract_s={seconds['fp32']:.0f} "
          f"{cand}_extract_s={seconds[cand]:.0f}")
