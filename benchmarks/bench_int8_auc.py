"""Does int8 I3D change what DAM detects? Frame AUC on synth-ucf-v1's test split from int8 vs fp32 features.

The test videos are extracted twice with the OpenVINO backend (fp32 and int8, centre crop); the heads of a
finished Table 1 run (trained on the benchmark's bf16 training features) score both, and the frame AUC
difference int8 - fp32 is reported per run (the gate: within 0.5 points). Last line: name=value pairs.
The int8 features go to a folder named by the int8 model's cache digest (``test-openvino-int8-<digest>``),
so another quantization setting (``--int8-variant``, a ``sweep_int8.py`` candidate) is extracted afresh
while the fp32 features are reused.

    python benchmarks/bench_int8_auc.py --runs runs/table1-synth-ucf-v1-test --rows mlp dist cov
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None, candidate=None) -> None:
    """``candidate``: an int8 backend to compare in place of the one ``--int8-variant`` names (e.g. the
    accuracy-controlled model of ``int8_accuracy_control.py``)."""
    from damvad.backends.openvino import OpenVINOBackend, QuantizationSettings
    from damvad.benchmark.prepare import benchmark_root
    from damvad.datasets import get_dataset
    from damvad.evaluate import score_split
    from damvad.extract import extract
    from damvad.metrics import frame_auc
    from damvad.modelfile import load_model
    from damvad.store import FeatureStore

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
        from sweep_int8 import CANDIDATES

        settings = CANDIDATES[args.int8_variant]
    else:
        settings = QuantizationSettings()
    cand = args.candidate
    int8 = candidate if candidate is not None else OpenVINOBackend(cand, settings=settings, progress=True)
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


if __name__ == "__main__":
    main()
