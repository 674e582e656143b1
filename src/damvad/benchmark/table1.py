"""The paper's Table 1 as one command: every variant over seeds on a synthetic benchmark, with intervals.

One config for all variants except the variant (``train``: shared TrainConfig fields); model selection on
held-out *training* videos (video-level AUC); the alert threshold calibrated on the held-out *normal*
training videos (the score of ``far`` of their frames); the evaluation split (``dev`` while deciding,
``test`` once the settings are written down) scored under both protocols. Besides the six Table 1
variants, ``rows`` adds declared departures (e.g. a fixed D_nt scale) as rows of their own, and a
training-free change detector is the reference for "something changed".

Output in ``out``: ``results.json`` (every run's numbers, the summaries, the paired differences, config
and provenance), ``table.md`` (the Markdown table), and one folder per row and seed (the runs; a rerun
skips finished ones, so adding seeds only trains the new ones).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from damvad.evaluate import score_split
from damvad.metrics import evaluate_scores, false_alarm_rate, threshold_for_far
from damvad.model import VARIANTS

log = logging.getLogger(__name__)

PROTOCOLS = ("offline", "online")
TABLE1_ROWS = {
    "mlp": "l1: I3D + MLP (MIL baseline)",
    "lstm": "l2: + LSTM",
    "dist-channel": "Dist-DAM: + Channel_A",
    "dist": "Dist-DAM: + Channel_A + Clip_A",
    "cov-channel": "Cov-DAM: + Channel_A",
    "cov": "Cov-DAM: + Channel_A + Clip_A",
}
CHANGE = "change"


@dataclass
class Table1Config:
    benchmark: str = "synth-ucf-v1"
    root: str = ""  # benchmark cache folder; default <damvad cache>/benchmarks/<benchmark>
    out: str = ""  # default runs/table1-<benchmark>-<split>
    split: str = "test"  # dev while deciding; test once the settings are written down
    crops: str = "center"
    precision: str = "bf16"
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> {variant, model, ...} (declared)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields shared by every row
    far: float = 0.05  # calibrated false-alarm rate (fraction of held-out normal training frames)
    baseline: str = "mlp"  # paired differences are taken against this row
    change_detector: bool = True
    weighted_rows: bool = True  # also score full-DAM runs on wD (the score training ranks), as rows "<row>@wD"

    def __post_init__(self) -> None:
        if self.split not in ("dev", "test"):
            raise ValueError(f"split must be dev or test, got {self.split!r}")
        for v in self.variants:
            if v not in VARIANTS:
                raise ValueError(f"unknown variant {v!r}; expected some of {VARIANTS}")
        for label, row in self.rows.items():
            if row.get("variant") not in VARIANTS:
                raise ValueError(f"row {label!r}: needs a 'variant' among {VARIANTS}")
        if not 0 < self.far < 1:
            raise ValueError(f"far must be a fraction in (0, 1), got {self.far}")
        if not self.seeds:
            raise ValueError("seeds: at least one")

    def row_specs(self) -> dict[str, dict[str, Any]]:
        """label -> TrainConfig overrides of that row (the variant plus any declared departure)."""
        specs = {v: {"variant": v} for v in self.variants}
        specs.update({label: dict(row) for label, row in self.rows.items()})
        return specs


def _train_config(cfg: Table1Config, row: dict[str, Any], data: Path, features: Path, out: Path, seed: int):
    from damvad.train import TrainConfig

    shared = dict(cfg.train)
    model = {**shared.pop("model", {}), **row.get("model", {})}
    extra = {k: v for k, v in row.items() if k not in ("model", "score")}
    return TrainConfig(**{**shared, **extra, "model": model, "dataset": str(data), "features": str(features),
                          "out": str(out), "seeds": [seed]})


def _score_frames(model, store, names, protocol, num_clips, which) -> dict[str, np.ndarray]:
    return {name: vs.per_frame(which) for name, vs in score_split(model, store, names, protocol, num_clips).items()}


def evaluate_run(model, store, dataset, split: str, calib_normals: list[str], num_clips: int, far: float,
                 which: str = "D") -> dict[str, Any]:
    """Frame AUC / AP of ``split`` and the false-alarm rate there at a threshold calibrated on
    ``calib_normals`` (held-out normal training videos), per protocol."""
    items = dataset.videos(split)
    names = [it.name for it in items]
    labels = {it.name: it.label for it in items}
    gt = dataset.ground_truths(split, store)
    result = {}
    for protocol in PROTOCOLS:
        scores = _score_frames(model, store, names, protocol, num_clips, which)
        m = evaluate_scores(scores, gt, labels, far_rates=())
        calib = _score_frames(model, store, calib_normals, protocol, num_clips, which)
        threshold = threshold_for_far(calib, far)
        normal = {n: s for n, s in scores.items() if labels[n] == 0}
        anomalous = np.concatenate([scores[n][gt[n]] for n in names if gt[n].any()])
        result[protocol] = {
            "frame_auc": m["frame_auc"], "frame_ap": m["frame_ap"], "video_auc": m["video_auc"],
            "threshold": threshold, "far_target": far, "far": false_alarm_rate(normal, threshold),
            "tpr": float(np.mean(anomalous >= threshold)),
            "far_on_calibration": false_alarm_rate(calib, threshold),
        }
    return result


def mean_std(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0, "n": int(v.size)}


def paired_interval(a: list[float], b: list[float], level: float = 0.95) -> dict[str, float]:
    """Mean of the per-seed differences a - b with a Student-t interval (``level``)."""
    from scipy import stats

    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    n = d.size
    mean = float(d.mean())
    if n < 2:
        return {"mean": mean, "low": math.nan, "high": math.nan, "half_width": math.nan, "n": n, "std": 0.0}
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n))
    return {"mean": mean, "low": mean - half, "high": mean + half, "half_width": half, "n": n, "std": sd}


def summarize(runs: dict[str, dict[int, dict[str, Any]]], baseline: str) -> tuple[dict, dict]:
    """Per row and protocol mean +- std of each metric; per row the paired AUC differences to ``baseline``."""
    summary: dict[str, Any] = {}
    for label, by_seed in runs.items():
        summary[label] = {}
        for protocol in PROTOCOLS:
            summary[label][protocol] = {
                metric: mean_std([r["metrics"][protocol][metric] for r in by_seed.values()])
                for metric in ("frame_auc", "frame_ap", "far", "tpr")
            }
    diffs: dict[str, Any] = {}
    base = runs.get(baseline, {})
    for label, by_seed in runs.items():
        if label in (baseline, CHANGE) or not base:
            continue
        seeds = sorted(set(by_seed) & set(base))
        diffs[label] = {
            protocol: paired_interval([by_seed[s]["metrics"][protocol]["frame_auc"] for s in seeds],
                                      [base[s]["metrics"][protocol]["frame_auc"] for s in seeds])
            for protocol in PROTOCOLS
        }
        diffs[label]["seeds"] = seeds
    return summary, diffs


def _pct(stat: dict[str, float], spread: bool = True) -> str:
    if stat["n"] > 1 and spread:
        return f"{100 * stat['mean']:.1f} ± {100 * stat['std']:.1f}"
    return f"{100 * stat['mean']:.1f}"


def markdown(results: dict[str, Any]) -> str:
    """The results as Markdown: the table (mean ± std over seeds) and the paired differences."""
    cfg, summary, diffs = results["config"], results["summary"], results["differences"]
    n_seeds = len(cfg["seeds"])
    lines = [
        f"{results['benchmark']}, {cfg['split']} split ({results['data']['videos']} videos, "
        f"{results['data']['frames']:,} frames, {results['data']['anomalous_frames']:,} anomalous); "
        f"mean ± std over {n_seeds} seeds; FAR and TPR at the threshold calibrated to {100 * cfg['far']:.0f} % "
        "of held-out normal training frames.",
        "",
        "| Table 1 row | variant | AUC offline | AUC online | AP offline | AP online | FAR offline | FAR online "
        "| TPR online |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, stats in summary.items():
        desc = results["rows"].get(label, {}).get("description", label)
        o, n = stats["offline"], stats["online"]
        lines.append(f"| {desc} | `{label}` | {_pct(o['frame_auc'])} | {_pct(n['frame_auc'])} | "
                     f"{_pct(o['frame_ap'])} | {_pct(n['frame_ap'])} | {_pct(o['far'])} | {_pct(n['far'])} | "
                     f"{_pct(n['tpr'])} |")
    if diffs:
        lines += ["", f"Paired per-seed difference in frame AUC (points) against `{cfg['baseline']}`, "
                      "mean [95 % t-interval]:", "",
                  "| row | offline | online |", "|---|---:|---:|"]
        for label, d in diffs.items():
            cells = []
            for protocol in PROTOCOLS:
                x = d[protocol]
                cells.append(f"{100 * x['mean']:+.1f} [{100 * x['low']:+.1f}, {100 * x['high']:+.1f}]")
            lines.append(f"| `{label}` | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def prepare_training(cfg: Table1Config, out: Path, seed: int, progress: bool) -> tuple:
    """What every run of a benchmark experiment shares, loaded once: (prepared benchmark, dataset, feature
    store, a probe TrainConfig, the pooled training data, the training metadata)."""
    from damvad.benchmark.prepare import prepare
    from damvad.datasets import get_dataset
    from damvad.store import FeatureStore
    from damvad.train import load_train_data, training_meta

    prepared = prepare(cfg.benchmark, cfg.root or None, cfg.crops, cfg.precision, progress)
    out.mkdir(parents=True, exist_ok=True)
    dataset = get_dataset(prepared.data)
    store = FeatureStore(prepared.features)
    probe = _train_config(cfg, {"variant": "mlp"}, prepared.data, prepared.features, out, seed)
    data = load_train_data(dataset, store, probe.num_clips, progress)
    return prepared, dataset, store, probe, data, training_meta(dataset, store, data)


def run_table1(cfg: Table1Config, progress: bool = True) -> dict[str, Any]:
    """Prepare the benchmark (cached), train every row x seed that is not done yet, evaluate, summarise."""
    from tqdm import tqdm

    from damvad.benchmark.changedet import ChangeDetector
    from damvad.modelfile import load_model
    from damvad.train import Trainer
    from damvad.utils import atomic_write_json, atomic_write_text, provenance

    out = Path(cfg.out or f"runs/table1-{cfg.benchmark}-{cfg.split}")
    prepared, dataset, store, probe, data, meta = prepare_training(cfg, out, 0, progress)
    specs = cfg.row_specs()
    runs: dict[str, dict[int, dict[str, Any]]] = {}
    rows_info: dict[str, Any] = {}
    jobs = [(label, seed) for label in specs for seed in cfg.seeds]
    bar = tqdm(total=len(jobs), desc="table 1 runs", unit="run", disable=not progress)
    calib_normals: list[str] = []
    for label, seed in jobs:
        spec = specs[label]
        tcfg = _train_config(cfg, spec, prepared.data, prepared.features, out / label, seed)
        trainer = Trainer(tcfg, data, out / label / f"seed{seed}", seed, meta)
        calib_normals = [data.names[i] for i in trainer.val_idx if data.labels[i] == 0]
        if not calib_normals:
            raise ValueError("no held-out normal training videos to calibrate on: raise train.val_fraction")
        result_path = out / label / f"seed{seed}" / "table1.json"
        if result_path.exists():
            import json

            runs.setdefault(label, {})[seed] = json.loads(result_path.read_text())
            bar.update(1)
            continue
        train_result = trainer.run(progress=False)
        model, _ = load_model(out / label / f"seed{seed}" / "model.pt")
        metrics = evaluate_run(model, store, dataset, cfg.split, calib_normals, tcfg.num_clips, cfg.far)
        record = {"row": label, "seed": seed, "train": train_result, "metrics": metrics,
                  "config": dataclasses.asdict(tcfg)}
        if model.config.uses_clip_attention:
            record["metrics_wD"] = evaluate_run(model, store, dataset, cfg.split, calib_normals, tcfg.num_clips,
                                                cfg.far, "wD")
        atomic_write_json(result_path, record)
        runs.setdefault(label, {})[seed] = record
        bar.update(1)
        bar.set_postfix_str(f"{label} seed {seed}: online AUC {100 * metrics['online']['frame_auc']:.1f}")
    bar.close()
    for label, spec in specs.items():
        desc = TABLE1_ROWS.get(label, f"declared: {label}")
        rows_info[label] = {"description": desc, **spec}
    if cfg.weighted_rows:
        for label in list(runs):
            with_wd = {s: {**r, "metrics": r["metrics_wD"]} for s, r in runs[label].items() if "metrics_wD" in r}
            if with_wd:
                runs[f"{label}@wD"] = with_wd
                rows_info[f"{label}@wD"] = {"description": f"declared: {label} scored on wD = D (1 + Clip_A)",
                                            "same_runs_as": label, "score": "wD"}
    if cfg.change_detector:
        metrics = evaluate_run(ChangeDetector(), store, dataset, cfg.split, calib_normals, probe.num_clips, cfg.far)
        runs = {CHANGE: {0: {"row": CHANGE, "seed": None, "metrics": metrics}}, **runs}
        rows_info[CHANGE] = {"description": "change detector (L1 between consecutive maps, no training)"}
    summary, diffs = summarize(runs, cfg.baseline)
    items = dataset.videos(cfg.split)
    gt = dataset.ground_truths(cfg.split, store)
    results = {
        "benchmark": cfg.benchmark,
        "config": dataclasses.asdict(cfg),
        "provenance": {**provenance(), "features": str(prepared.features), "feature_key": prepared.key,
                       "features_manifest_sha256": store.manifest_hash(), "torch_threads": torch.get_num_threads()},
        "data": {"split": cfg.split, "videos": len(items), "frames": int(sum(len(g) for g in gt.values())),
                 "anomalous_frames": int(sum(g.sum() for g in gt.values())),
                 "train_videos": len(data.names), "calibration_videos": calib_normals},
        "rows": rows_info,
        "summary": summary,
        "differences": diffs,
        "runs": {label: {str(s): r for s, r in by_seed.items()} for label, by_seed in runs.items()},
    }
    atomic_write_json(out / "results.json", results)
    atomic_write_text(out / "table.md", markdown(results))
    results["paths"] = {"results": str(out / "results.json"), "table": str(out / "table.md")}
    return results
