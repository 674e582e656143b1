"""The demo's dev study (issue 19): the current plan and candidates on draws of the demo's recipe that are not
the shipped draw. See demo-dev-study.md for the candidates, the rule and the results.

    PYTHONPATH=src python benchmarks/demo_dev_study.py --out /work/runs/demo-dev-study --seeds 101 102 103

Candidates that share a draw's data reuse it: the 24 + 24 candidates reuse the current plan's test videos and
their features (the test split comes from its own random stream, so it is the same whatever the training size),
candidates C and D reuse B's data and features, G reuses F's. Timings are what each run measured;
``est_full_demo_s`` adds back what a fresh demo would also spend on reused videos (the per-video generate +
extract time of the run that made the draw's data: A, or F for the half-length videos). Candidates are spelled
out as the runs used them: they do not follow damvad.demo.FULL, which each adopted round changed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

from damvad.demo import DemoPlan, demo_params, run_demo
from damvad.synth import generate_dataset
from damvad.synth.benchmark import benchmark_params

TRAIN24 = (("n_train_normal", 24), ("n_train_anomalous", 24))
TRAIN40 = (("n_train_normal", 40), ("n_train_anomalous", 40))
# fourth round: half-length videos (8-10 snippets), so that 90 + 90 training videos fit the demo's time
SHORT = (("num_frames", (512, 640)), ("n_train_normal", 90), ("n_train_anomalous", 90),
         ("n_test_normal", 8), ("n_test_anomalous", 8))
# fifth round: quarter-length videos (4-5 snippets), sized for ~12 min on an AVX2-only CPU (slow int8 I3D)
QUARTER = (("num_frames", (256, 320)), ("n_train_normal", 36), ("n_train_anomalous", 36),
           ("n_test_normal", 8), ("n_test_anomalous", 8))
QUARTER64 = (("n_train_normal", 64), ("n_train_anomalous", 64))  # sixth round: K's videos and test split, more training
# The plans the runs used, spelled out (not derived from damvad.demo.FULL, which each adopted round changed).
# Before the study: 12 + 12 training videos of synth-demo-v2, 1,000 iterations, val_fraction 0.25, DAMConfig's dropout.
BEFORE = DemoPlan(benchmark="synth-demo-v2", val_fraction=0.25, dropout=None, iterations=1000, hidden=256, batch=10)
ROUND1 = replace(BEFORE, benchmark="synth-demo-v3")  # the plan after round 1 (v3 = v2 with 24 + 24 training videos)
CANDIDATES = {
    "A": BEFORE,
    "B": replace(BEFORE, overrides=TRAIN24),  # 24 + 24 training videos, the same test split
    "C": replace(ROUND1, overrides=TRAIN24, iterations=2000),  # B with twice the budget
    "D": replace(ROUND1, overrides=TRAIN24, dropout=0.5),  # B with the heads' dropout 0.5 (was 0.2)
    "E": replace(ROUND1, overrides=TRAIN40, dropout=0.5),  # D with 40 + 40 training videos (third round)
    "F": replace(ROUND1, overrides=SHORT, dropout=0.5),  # D on 512-640-frame videos, 90 + 90 training, 8 + 8 test
    "G": replace(ROUND1, overrides=SHORT, dropout=0.5, val_fraction=0.1),  # F holding out 9 + 9: FULL since 12-03
    "K": replace(ROUND1, overrides=QUARTER, dropout=0.5, val_fraction=0.1),  # G on 256-320 frames, 36 + 36 training
    "L": replace(ROUND1, overrides=QUARTER, dropout=0.5, val_fraction=0.1, iterations=500),  # K's data, 500 iterations
    "M": replace(ROUND1, overrides=QUARTER + QUARTER64, dropout=0.5, val_fraction=0.1, iterations=500),  # 64 + 64
    "N": replace(ROUND1, overrides=QUARTER + QUARTER64, dropout=0.5, val_fraction=0.1, iterations=500,
                 mlp_iterations=1000),  # M's data, the MLP at 1,000 iterations
}
# candidate -> the run whose data it reuses
SHARES = {"B": "A", "C": "B", "D": "B", "E": "B", "G": "F", "L": "K", "M": "K", "N": "M"}
TEST_ONLY = {"B", "E", "M"}  # candidates that reuse only the test split (their training split is their own)


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
    if name in TEST_ONLY:  # only the test split is shared: make the training split, then link the test videos
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
            "threshold": summary["threshold"], "live_alerts": _live_alerts(summary),
            "timings": summary["timings"], "wall_s": wall, "est_full_demo_s": est_full}


def _live_alerts(summary: dict) -> int:
    """Alert events of the live run (summary["live"]["events"] is the events file's path)."""
    return len(json.loads(Path(summary["live"]["events"]).read_text())["events"])


def _videos(name: str, splits: tuple[str, ...] = ("train", "test")) -> int:
    """Videos a fresh demo of a candidate makes in those splits (from its plan's generator parameters)."""
    params = demo_params(CANDIDATES[name])
    return sum(params[f"n_{split}_{label}"] for split in splits for label in ("normal", "anomalous"))


VIDEOS = {name: _videos(name) for name in CANDIDATES}  # A 36, B-D 60, E 92, F-G 196, K-L 88, M-N 144


def _data_maker(name: str) -> str:
    """The candidate whose run made (and extracted) the data that ``name``'s run reuses, or ``name`` itself."""
    while name in SHARES:
        name = SHARES[name]
    return name


def _fresh_estimate(r: dict, runs: list[dict]) -> float:
    """Seconds a fresh demo of ``r``'s candidate would take on its draw: the generate + extract seconds per video of
    the run that made the draw's data, x the candidate's videos, + ``r``'s own training, calibration and evaluation."""
    maker = _data_maker(r["candidate"])
    m = next(x for x in runs if x["candidate"] == maker and x["draw_seed"] == r["draw_seed"])
    per_video = (m["timings"]["generate_s"] + m["timings"]["extract_s"]) / VIDEOS[maker]
    t = r["timings"]
    return per_video * VIDEOS[r["candidate"]] + sum(
        t[k] for k in t if k.startswith("train_") or k in ("calibrate_s", "evaluate_live_s"))


def tabulate(results_path: Path, out: Path) -> str:
    """Recompute the record from the run folders (live alerts from the events files; the fresh-demo time as
    A's generate + extract seconds per video x the candidate's videos + its own train, calibrate and evaluate
    seconds) and return the markdown table with the means and the rule's score."""
    doc = json.loads(results_path.read_text())
    runs = doc["runs"]
    for r in runs:
        summary = json.loads((out / f"draw{r['draw_seed']}" / r["candidate"] / "summary.json").read_text())
        r["live_alerts"] = _live_alerts(summary)
        r["est_full_demo_s"] = _fresh_estimate(r, runs)
    doc["est_full_demo_s_definition"] = ("generate_s + extract_s per video of the run that made the draw's data (A, "
                                         "or F for the half-length videos) x the candidate's videos + its own "
                                         "train_*, calibrate and evaluate_live seconds")
    results_path.write_text(json.dumps(doc, indent=1))
    pct = lambda v: f"{100 * v:.1f}"  # noqa: E731
    lines = ["| draw | cand. | change online | dist online | mlp online | change offline | dist offline | "
             "mlp offline | dist FAR on test at calibrated thr. (held-out normals) | live clip alerts | "
             "est. fresh demo min (measured run min) |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(runs, key=lambda r: (r["draw_seed"], r["candidate"])):
        w = r["rows"]
        lines.append(
            f"| {r['draw_seed']} | {r['candidate']} | {pct(w['change']['online']['frame_auc'])} | "
            f"{pct(w['dist']['online']['frame_auc'])} | {pct(w['mlp']['online']['frame_auc'])} | "
            f"{pct(w['change']['offline']['frame_auc'])} | {pct(w['dist']['offline']['frame_auc'])} | "
            f"{pct(w['mlp']['offline']['frame_auc'])} | {pct(w['dist']['online']['far_at_calibrated_threshold'])} % "
            f"({r['threshold']['num_videos']}) | {r['live_alerts']} | {r['est_full_demo_s'] / 60:.1f} "
            f"({r['wall_s'] / 60:.1f}) |")
    seeds_of = {c: {r["draw_seed"] for r in runs if r["candidate"] == c} for c in VIDEOS}
    common = sorted(set.intersection(*(s for s in seeds_of.values() if s)))
    lines += ["", f"Means over the draws every run candidate finished ({', '.join(map(str, common))}):", "",
              "| cand. | change online | dist online | mlp online | score = min(dist, mlp) | est. fresh demo min |",
              "|---|---:|---:|---:|---:|---:|"]
    for c in VIDEOS:
        rs = [r for r in runs if r["candidate"] == c and r["draw_seed"] in common]
        if not rs:
            continue
        mean = {row: sum(r["rows"][row]["online"]["frame_auc"] for r in rs) / len(rs)
                for row in ("change", "dist", "mlp")}
        est = sum(r["est_full_demo_s"] for r in rs) / len(rs)
        lines.append(f"| {c} | {pct(mean['change'])} | {pct(mean['dist'])} | {pct(mean['mlp'])} | "
                     f"{pct(min(mean['dist'], mean['mlp']))} | {est / 60:.1f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/work/runs/demo-dev-study")
    ap.add_argument("--seeds", type=int, nargs="+", default=[101, 102, 103])
    ap.add_argument("--candidates", nargs="+", default=["A", "B"])
    ap.add_argument("--results", default="benchmarks/results/demo-dev-study/results.json")
    ap.add_argument("--tabulate", action="store_true", help="only recompute the record and print the table")
    args = ap.parse_args()
    results_path = Path(args.results)
    if args.tabulate:
        print(tabulate(results_path, Path(args.out)))
        return
    results_path.parent.mkdir(parents=True, exist_ok=True)
    records = json.loads(results_path.read_text())["runs"] if results_path.exists() else []
    done = {(r["candidate"], r["draw_seed"]) for r in records}
    for seed in args.seeds:
        for name in args.candidates:
            out = Path(args.out) / f"draw{seed}" / name
            if (name, seed) in done:
                continue
            if name in SHARES:
                _prepare_from(name, CANDIDATES[name], seed, out, Path(args.out) / f"draw{seed}" / SHARES[name])
            t = time.perf_counter()
            summary = run_demo(out, progress=False, draw_seed=seed, plan=CANDIDATES[name])
            wall = time.perf_counter() - t
            records.append(_record(name, seed, summary, wall, 0.0))
            records[-1]["est_full_demo_s"] = _fresh_estimate(records[-1], records)
            results_path.write_text(json.dumps({"study": "demo-dev-study (issue 19)", "runs": records}, indent=1))
            r, est = records[-1]["rows"], records[-1]["est_full_demo_s"]
            print(f"[study] draw {seed} {name}: online AUC change {100 * r['change']['online']['frame_auc']:.1f} "
                  f"dist {100 * r['dist']['online']['frame_auc']:.1f} mlp {100 * r['mlp']['online']['frame_auc']:.1f}"
                  f"; live alerts {records[-1]['live_alerts']}; {wall / 60:.1f} min (est. fresh {est / 60:.1f})",
                  flush=True)


if __name__ == "__main__":
    main()
