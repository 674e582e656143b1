"""Frame-level evaluation of trained runs on a test split, under both protocols.

``offline`` is the paper's protocol (C clips spanning the whole video); ``online`` is what a live
camera gets (causal clips of k snippets, each scored from itself and its predecessor). Scores of
every crop are averaged; clip scores are mapped to the exact frames each clip covers. The model was
selected without test labels (see :mod:`damvad.train`); this module only reports.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from damvad.choices import NUM_CLIPS, PROTOCOLS, SCORES
from damvad.contract import check_contract, contract_of_records
from damvad.datasets import check_features, get_dataset
from damvad.metrics import evaluate_scores, false_alarm_rate, roc_curve_points
from damvad.modelfile import load_model, read_model_card, run_model_files
from damvad.scoring import VideoScores, score_video
from damvad.store import FeatureStore
from damvad.utils import atomic_write_json, provenance

log = logging.getLogger(__name__)

SUMMARY_KEYS = ("frame_auc", "frame_ap", "far_calibrated", "per_video_auc_mean", "video_auc")


@dataclass
class EvalConfig:
    dataset: str = ""
    features: str = ""
    runs: list[str] = field(default_factory=list)  # run folders (every seed*/model.pt) or model files
    out: str = ""  # report folder; default: <first run>/eval
    protocols: list[str] = field(default_factory=lambda: ["offline", "online"])
    score: str = "D"  # D (what the released code evaluates) or wD
    snippets_per_clip: int | None = None  # online protocol; default: what each model was calibrated for, else 1
    far_rates: list[float] = field(default_factory=lambda: [0.01, 0.05])
    split: str = "test"
    timelines: int = 6  # per-video timeline plots (anomalous videos first)
    allow_missing: bool = False  # evaluate the videos that have features; the others are listed in the report
    device: str | None = None  # auto | cpu | cuda[:N]: where the heads run

    # ranges and choices checked (with the types above) by damvad.config before anything is written
    limits: ClassVar[dict[str, str | tuple]] = {
        "protocols": PROTOCOLS, "score": SCORES, "snippets_per_clip": "[1, inf)",
        "far_rates": "(0, 1)", "timelines": "[0, inf)",
    }


def find_model_files(runs: list[str]) -> list[Path]:
    """Every model of ``runs`` (files, seed folders, run folders: every seed)."""
    return [path for item in runs for path in run_model_files(item)]


def run_label(path: Path) -> str:
    return f"{path.parent.parent.name}/{path.parent.name}" if path.name == "model.pt" else path.stem


def score_split(model, store: FeatureStore, names: list[str], protocol: str, num_clips: int = NUM_CLIPS,
                snippets_per_clip: int = 1) -> dict[str, VideoScores]:
    """Each video's scores (``VideoScores.per_frame`` for frame views): the one scoring loop over stored
    features that evaluate, calibrate, the Table 1 benchmark and the benchmark scripts share."""
    out = {}
    for name in names:
        video = store.load(name)  # the one read of a video: its record and its maps
        out[name] = score_video(model, video.maps, video.frames, protocol, num_clips, snippets_per_clip,
                                video.snippet_len, video.stride)
    return out


def evaluate(cfg: EvalConfig, progress: bool = True, device: Any = None) -> dict[str, Any]:
    """Evaluate every model of ``cfg.runs`` on ``device`` (default ``cfg.device``; ``None`` / ``auto``: a CUDA
    device when torch sees one); writes metrics.json, roc.png and timelines; returns the report."""
    from damvad.device import device_info, resolve_device
    from damvad.plots import roc_plot, timeline_plot
    from damvad.progress import progress_bar

    if cfg.score not in SCORES:
        raise ValueError(f"score must be {' or '.join(SCORES)}, got {cfg.score!r}")
    dev = resolve_device(device if device is not None else cfg.device)
    models = find_model_files(cfg.runs)
    if not models:
        raise ValueError("no runs to evaluate")
    if not cfg.dataset or not cfg.features:  # defaults: what the (first) model was trained on
        prov = read_model_card(models[0]).provenance
        recorded = (prov.dataset_source or prov.dataset) if prov else ""
        cfg = dataclasses.replace(cfg, dataset=cfg.dataset or recorded,
                                  features=cfg.features or (prov.features if prov else ""))
    if not cfg.dataset or not cfg.features:
        raise ValueError("evaluate needs `dataset` and `features` (none recorded in the model file)")
    dataset = get_dataset(cfg.dataset)
    store = FeatureStore(cfg.features)
    missing = set(check_features(dataset, store, cfg.split, allow_missing=cfg.allow_missing))
    if not dataset.has_frame_labels(cfg.split):
        raise ValueError(f"{dataset.name}: the {cfg.split} split has no frame-level ground truth")
    every = dataset.videos(cfg.split)
    items = [it for it in every if it.name not in missing]
    names = [it.name for it in items]
    video_labels = {it.name: it.label for it in items}
    gt = dataset.ground_truths(cfg.split, store, names=set(names))
    coverage = {"videos": len(items), "of": len(every), "frames": int(sum(len(g) for g in gt.values())),
                "anomalous_frames": int(sum(int(g.sum()) for g in gt.values())),
                "anomalous_videos": int(sum(video_labels.values())), "missing": sorted(missing)}
    if missing:
        log.warning("%s: evaluating %d of %d %s videos; %d have no features (listed in metrics.json)",
                    dataset.name, len(items), len(every), cfg.split, len(missing))
    evaluated = contract_of_records((store.record(n) for n in names), f"{store.root} ({cfg.split} videos)")
    out_dir = Path(cfg.out) if cfg.out else models[0].parent.parent / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)

    report: dict[str, Any] = {
        "provenance": {**provenance(), "features": str(store.root),
                       "features_manifest_sha256": store.manifest_hash(), **device_info(dev)},
        "config": cfg.__dict__,
        "dataset": dataset.name,
        "split": cfg.split,
        "features_contract": evaluated.to_dict(),
        "coverage": coverage,
        "runs": {},
    }
    curves: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
    jobs = [(m, p) for m in models for p in cfg.protocols]
    bar = progress_bar(total=len(jobs) * len(names), desc="evaluate", unit="video", disable=not progress)
    timeline_data: dict[str, Any] = {}
    for path in models:
        model, card = load_model(path, dev)
        label = run_label(path)
        warnings = check_contract(card.features, evaluated, "its training features", f"features in {store.root}") \
            if card.features is not None else []
        k = cfg.snippets_per_clip or card.snippets_per_clip
        run_report: dict[str, Any] = {
            "model": str(path), "variant": model.config.variant,
            "train": card.train.to_dict() if card.train is not None else None,
            "provenance": card.provenance.to_dict() if card.provenance is not None else None,
            "snippets_per_clip": k, "contract_warnings": warnings, "protocols": {}}
        for protocol in cfg.protocols:
            scored = score_split(model, store, names, protocol, card.clips.num_clips, k)
            bar.update(len(names))
            frames = {n: v.per_frame(cfg.score) for n, v in scored.items()}
            metrics = evaluate_scores(frames, gt, video_labels, far_rates=cfg.far_rates)
            if cfg.score != "D":  # 0.5 is a threshold for D in [0, 1]; wD spans [0, 2]
                metrics.pop("far_at_threshold", None)
            normal = {n: s for n, s in frames.items() if video_labels[n] == 0}
            calibrated = card.threshold
            # only for the score and clips the threshold was calibrated on (detect alerts on online D)
            if (calibrated is not None and normal and calibrated.score == cfg.score
                    and protocol == calibrated.protocol and k == calibrated.snippets_per_clip):
                metrics["far_at_calibrated_threshold"] = {
                    "threshold": calibrated.value, "far": false_alarm_rate(normal, calibrated.value),
                    "far_target": calibrated.far_target}
            run_report["protocols"][protocol] = metrics
            if metrics.get("frame_auc") is not None:
                fpr, tpr = roc_curve_points(frames, gt)[:2]
                curves[f"{label} {protocol}"] = (fpr, tpr, metrics["frame_auc"])
            if path == models[0]:
                timeline_data[protocol] = (scored, frames)
        report["runs"][label] = run_report
    bar.close()

    report["summary"] = summarize(report["runs"], cfg.protocols)
    if curves:
        report["roc_plot"] = str(roc_plot(curves, out_dir / "roc.png", title=f"{dataset.name} {cfg.split}"))
    report["timelines"] = _timelines(timeline_data, gt, video_labels, items, out_dir, cfg, timeline_plot)
    atomic_write_json(out_dir / "metrics.json", report)
    report["metrics_json"] = str(out_dir / "metrics.json")
    return report


def _timelines(timeline_data, gt, video_labels, items, out_dir: Path, cfg: EvalConfig, plot) -> list[str]:
    if not timeline_data or cfg.timelines <= 0:
        return []
    protocol = "online" if "online" in timeline_data else next(iter(timeline_data))
    scored, frames = timeline_data[protocol]
    order = [it.name for it in items if video_labels[it.name] == 1] + [
        it.name for it in items if video_labels[it.name] == 0]
    paths = []
    for name in order[: cfg.timelines]:
        v = scored[name]
        att = None
        if v.clip_attention is not None:
            att = v.per_frame("attention")
        paths.append(str(plot(frames[name], out_dir / "timelines" / f"{name}.png",
                              title=f"{name} ({protocol})", ground_truth=gt[name], clip_attention=att)))
    return paths


def summarize(runs: dict[str, Any], protocols: list[str]) -> dict[str, Any]:
    """Per variant (never across variants) and protocol: mean and std over its runs (seeds)."""
    out: dict[str, Any] = {}
    variants = sorted({run.get("variant", "?") for run in runs.values()})
    for variant in variants:
        members = [run for run in runs.values() if run.get("variant", "?") == variant]
        out[variant] = {"runs": len(members)}
        for protocol in protocols:
            rows: dict[str, list[float]] = {k: [] for k in SUMMARY_KEYS}
            for run in members:
                m = run["protocols"][protocol]
                values = {
                    "frame_auc": m.get("frame_auc"),
                    "frame_ap": m.get("frame_ap"),
                    "far_calibrated": (m.get("far_at_calibrated_threshold") or {}).get("far"),
                    "per_video_auc_mean": m.get("per_video_auc_mean"),
                    "video_auc": m.get("video_auc"),
                }
                for k, v in values.items():
                    if v is not None and not (isinstance(v, float) and math.isnan(v)):
                        rows[k].append(float(v))
            out[variant][protocol] = {
                k: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, "n": len(v)}
                for k, v in rows.items() if v
            }
    return out


def format_table(report: dict[str, Any]) -> str:
    """A readable summary: one line per run and protocol, then mean +- std over runs."""
    header = f"{'run':<28} {'protocol':<8} {'AUC%':>7} {'AP%':>7} {'FAR@cal%':>9} {'vidAUC%':>8}"
    cov = report.get("coverage")
    lines = []
    if cov:
        lines.append(f"{report['dataset']} {report['split']}: {cov['videos']} of {cov['of']} videos evaluated "
                     f"({cov['frames']:,} frames, {cov['anomalous_frames']:,} anomalous)"
                     + (f"; {len(cov['missing'])} missing: PARTIAL, not comparable with full-split results"
                        if cov["missing"] else ""))
    lines += [header, "-" * len(header)]

    def pct(x: Any) -> str:
        return "   -" if x is None else f"{100 * x:7.2f}"

    for label, run in report["runs"].items():
        for protocol, m in run["protocols"].items():
            far = (m.get("far_at_calibrated_threshold") or {}).get("far")
            lines.append(f"{label:<28} {protocol:<8} {pct(m.get('frame_auc'))} {pct(m.get('frame_ap'))} "
                         f"{pct(far):>9} {pct(m.get('video_auc')):>8}")
    for variant, by_protocol in report["summary"].items():
        if by_protocol["runs"] < 2:
            continue
        for protocol in report["config"]["protocols"]:
            stats = by_protocol[protocol]
            parts = [f"{k} {100 * s['mean']:.2f} +- {100 * s['std']:.2f}" for k, s in stats.items()]
            lines.append(f"{variant}: mean over {by_protocol['runs']} runs, {protocol}: " + "; ".join(parts))
    lines.append("FAR@cal: false alarms (share of normal test frames) at the model's calibrated threshold, "
                 "when it was calibrated on this score")
    return "\n".join(lines)
