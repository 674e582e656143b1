"""The demo's dev study (issue 19): the current plan and candidates on draws of the demo's recipe that are not
the shipped draw. See demo-dev-study.md for the candidates, the rule and the results.

    PYTHONPATH=src python benchmarks/demo_dev_study.py --out /work/runs/demo-dev-study --seeds 101 102 103

Candidates that share a draw's data reuse it: the 24 + 24 candidates reuse the current plan's test videos and
their features (the test split comes from its own random stream, so it is the same whatever the training size),
and candidate C reuses B's data and features. Timings are what each run measured; ``est_full_demo_s`` adds back
what a fresh demo would also spend on the reused test videos (A's per-video generate + extract time).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

from damvad.demo import FULL, run_demo
from damvad.synth import generate_dataset
from damvad.synth.benchmark import benchmark_params

TRAIN24 = (("n_train_normal", 24), ("n_train_anomalous", 24))
CANDIDATES = {
    "A": FULL,  # the current plan: 12 + 12 training videos, 1,000 iterations, val_fraction 0.25
    "B": replace(FULL, overrides=TRAIN24),  # 24 + 24 training videos, the same test split
    "C": replace(FULL, overrides=TRAIN24, iterations=2000),  # B with twice the budget
}
SHARES = {"B": "A", "C": "B"}  # candidate -> the run whose data it reuses


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link every file under src into dst (mtimes kept: extraction sees the same source)."""
    for path in src.rglob("*"):
        if path.is_file():
            target = dst / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.link(path, target)


def _prepare_from(name: str, plan, seed: int, out: Path, base: Path) -> None:
    """Put the reusable part of ``base`` (another candidate's run on this draw) into ``out`` before the demo runs."""
    if (out / "data" / "synth.json").exists():
        return
    if SHARES[name] == "A":  # only the test split is shared: make the training split, then link the test videos
        params = {**benchmark_params(plan.benchmark), **dict(plan.overrides), "seed": seed}
        generate_dataset(out / "data", progress=False, splits=("train",), **params)
        _link_tree(base / "data" / "test", out / "data" / "test")
        feats = out / "features"
        feats.mkdir(parents=True, exist_ok=True)
        for f in (base / "features").iterdir():
            if f.name.startswith("test_"):
                shutil.copy2(f, feats / f.name)
    else:  # the same data and features
        _link_tree(base / "data", out / "data")
        shutil.copytree(base / "features", out / "features", dirs_exist_ok=True)


def _record(name: str, seed: int, summary: dict, wall: float, est_full: float) -> dict:
    rows = {}
    for run, protocols in summary["test"].items():
        label = run.split("/")[0]
        rows[label] = {p: {"frame_auc": m["frame_auc"], "frame_ap": m["frame_ap"], "video_auc": m.get("video_auc"),
                           "far_at_calibrated_threshold": (m.get("far_at_calibrated_threshold") or {}).get("far")}
                       for p, m in protocols.items()}
    rows["change"] = summary["change_detector"]
    return {"candidate": name, "draw_seed": seed, "plan": summary["plan"], "rows": rows,
            "threshold": summary["threshold"], "live_alerts": len(summary["live"]["events"]),
            "timings": summary["timings"], "wall_s": wall, "est_full_demo_s": est_full}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/work/runs/demo-dev-study")
    ap.add_argument("--seeds", type=int, nargs="+", default=[101, 102, 103])
    ap.add_argument("--candidates", nargs="+", default=["A", "B"])
    ap.add_argument("--results", default="benchmarks/results/demo-dev-study/results.json")
    args = ap.parse_args()
    results_path = Path(args.results)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    records = json.loads(results_path.read_text())["runs"] if results_path.exists() else []
    done = {(r["candidate"], r["draw_seed"]) for r in records}
    for seed in args.seeds:
        per_test_video_s = None
        for name in args.candidates:
            out = Path(args.out) / f"draw{seed}" / name
            if (name, seed) in done:
                continue
            if name in SHARES:
                _prepare_from(name, CANDIDATES[name], seed, out, Path(args.out) / f"draw{seed}" / SHARES[name])
            t = time.perf_counter()
            summary = run_demo(out, progress=False, draw_seed=seed, plan=CANDIDATES[name])
            wall = time.perf_counter() - t
            tm = summary["timings"]
            if name == "A":  # generate + extract time per video of a fresh demo on this draw
                per_test_video_s = (tm["generate_s"] + tm["extract_s"]) / 36
            prior = next((r for r in records if r["candidate"] == "A" and r["draw_seed"] == seed), None)
            if per_test_video_s is None and prior:
                per_test_video_s = (prior["timings"]["generate_s"] + prior["timings"]["extract_s"]) / 36
            shared = {"A": 0, "B": 12, "C": 60}[name]  # videos a fresh demo would also make and extract
            est = tm["total_s"] + shared * (per_test_video_s or 0.0)
            records.append(_record(name, seed, summary, wall, est))
            results_path.write_text(json.dumps({"study": "demo-dev-study (issue 19)", "runs": records}, indent=1))
            r = records[-1]["rows"]
            print(f"[study] draw {seed} {name}: online AUC change {100 * r['change']['online']['frame_auc']:.1f} "
                  f"dist {100 * r['dist']['online']['frame_auc']:.1f} mlp {100 * r['mlp']['online']['frame_auc']:.1f}"
                  f"; live alerts {records[-1]['live_alerts']}; {wall / 60:.1f} min (est. fresh {est / 60:.1f})",
                  flush=True)


if __name__ == "__main__":
    main()
