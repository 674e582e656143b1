"""The paper's Table 1 as one command: every variant over seeds on a synthetic benchmark, with intervals.

One config for all variants except the variant (``train``: shared TrainConfig fields); model selection on
held-out *training* videos (video-level AUC); the alert threshold calibrated on the held-out *normal*
training videos (the score of ``far`` of their frames); the evaluation split (``dev`` while deciding,
``test`` once the settings are written down) scored under both protocols. Besides the six Table 1
variants, ``rows`` adds declared departures (e.g. a fixed D_nt scale) as rows of their own, and a
training-free change detector is the reference for "something changed".

Beyond frame AUC and AP per protocol, each run reports what it learned (:mod:`damvad.benchmark.report`):
video AUC (ranking), the mean frame AUC inside anomalous videos (localisation), detection per event kind,
seen vs unseen cameras, and bootstrap intervals over the evaluated videos.

Output in ``out``: ``results.json`` (every run's numbers, the summaries, the paired differences, config
and provenance), ``table.md`` (the Markdown tables), and one folder per row and seed (the runs; a rerun
skips finished ones, so adding seeds only trains the new ones). ``test_seed`` scores the same trained runs
on another draw of the test split: ``results-test-seed<N>.json`` and ``table-test-seed<N>.md`` beside them.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from damvad.benchmark import report
from damvad.choices import PROTOCOLS, VARIANTS
from damvad.evaluate import score_split
from damvad.metrics import evaluate_scores, false_alarm_rate, threshold_for_far

log = logging.getLogger(__name__)

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
    backend: str = "torch"  # the I3D backend of a fresh extraction (synth-ucf-v1 was made with torch)
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> {variant, model, ...} (declared)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields shared by every row
    far: float = 0.05  # calibrated false-alarm rate (fraction of held-out normal training frames)
    baseline: str = "mlp"  # paired differences are taken against this row
    change_detector: bool = True
    weighted_rows: bool = True  # also score full-DAM runs on wD (the score training ranks), as rows "<row>@wD"
    test_seed: int | None = None  # score the trained runs on another draw of the test split
    bootstrap: int = 1000  # resamples of the evaluated videos for the intervals over videos (0: none)

    def __post_init__(self) -> None:
        if self.split not in ("dev", "test"):
            raise ValueError(f"split must be dev or test, got {self.split!r}")
        if self.test_seed is not None and self.split != "test":
            raise ValueError("test_seed draws another test split: it needs split=test")
        if self.bootstrap < 0:
            raise ValueError(f"bootstrap must be >= 0, got {self.bootstrap}")
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


@dataclass
class EvalTarget:
    """Where a table is scored: a split's videos and features, the facts of its videos (events per video,
    seen / unseen camera per video, from the generator's manifest), and the tag of its record files."""

    dataset: Any
    store: Any
    split: str
    tag: str
    events: dict[str, list[dict[str, Any]]]
    groups: dict[str, str]


def evaluate_run(model, target: EvalTarget, calib_store, calib_normals: list[str], num_clips: int, far: float,
                 which: str = "D") -> tuple[dict[str, Any], dict[str, report.Runs]]:
    """Per protocol: frame AUC / AP and video AUC of the target split, the false-alarm rate there at a
    threshold calibrated on ``calib_normals`` (held-out normal training videos), localisation, detection per
    event kind and AUC per camera group; and the frames as runs (for the bootstrap over videos)."""
    items = target.dataset.videos(target.split)
    names = [it.name for it in items]
    labels = {it.name: it.label for it in items}
    gt = target.dataset.ground_truths(target.split, target.store)
    result, frames = {}, {}
    for protocol in PROTOCOLS:
        scores = _score_frames(model, target.store, names, protocol, num_clips, which)
        m = evaluate_scores(scores, gt, labels, far_rates=())
        calib = _score_frames(model, calib_store, calib_normals, protocol, num_clips, which)
        threshold = threshold_for_far(calib, far)
        normal = {n: s for n, s in scores.items() if labels[n] == 0}
        anomalous = np.concatenate([scores[n][gt[n]] for n in names if gt[n].any()])
        runs = report.runs_of(scores, gt)
        per_video = {name: auc for name, auc in m["per_video_auc"].items() if auc is not None}
        detected = report.detections(scores, target.events, threshold)
        result[protocol] = {
            "frame_auc": m["frame_auc"], "frame_ap": m["frame_ap"], "video_auc": m["video_auc"],
            "threshold": threshold, "far_target": far, "far": false_alarm_rate(normal, threshold),
            "tpr": float(np.mean(anomalous >= threshold)),
            "far_on_calibration": false_alarm_rate(calib, threshold),
            "localisation": math.nan if m["per_video_auc_mean"] is None else m["per_video_auc_mean"],
            "per_video_auc": per_video,
            "detection": detected,
            "detection_rate": (sum(d["detected"] for d in detected.values())
                               / max(sum(d["events"] for d in detected.values()), 1)) if detected else math.nan,
            **{f"auc_{g}": report.auc_over(runs, [n for n in names if target.groups.get(n) == g])
               for g in ("seen", "unseen")},
        }
        frames[protocol] = runs
    return result, frames


def save_frames(path: Path, frames: dict[str, dict[str, report.Runs]]) -> None:
    """``{which: {protocol: runs}}`` as one .npz (no pickles), written atomically."""
    from damvad.utils import atomic_write_bytes

    arrays = {f"{which}/{protocol}/{name}": rows for which, by_protocol in frames.items()
              for protocol, runs in by_protocol.items() for name, rows in runs.items()}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_frames(path: Path, which: str, protocol: str) -> report.Runs:
    prefix = f"{which}/{protocol}/"
    with np.load(path, allow_pickle=False) as z:
        return {k[len(prefix):]: z[k] for k in z.files if k.startswith(prefix)}


def mean_std(values: list[float]) -> dict[str, float | None]:
    """Mean and sample std of the finite values (NaN: a metric that does not apply, e.g. unseen cameras on
    dev); ``None`` when none is finite."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return {"mean": None, "std": None, "n": 0}
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
            stats = summary[label][protocol] = {
                metric: mean_std([r["metrics"][protocol].get(metric, math.nan) for r in by_seed.values()])
                for metric in SUMMARY_METRICS
            }
            kinds = sorted({k for r in by_seed.values() for k in r["metrics"][protocol].get("detection", {})})
            stats["detection_by_kind"] = {
                k: mean_std([r["metrics"][protocol]["detection"][k]["detected"]
                             / r["metrics"][protocol]["detection"][k]["events"]
                             for r in by_seed.values() if k in r["metrics"][protocol].get("detection", {})])
                for k in kinds}
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


SUMMARY_METRICS = ("frame_auc", "frame_ap", "video_auc", "localisation", "far", "tpr", "detection_rate", "auc_seen",
                   "auc_unseen")


def _pct(stat: dict[str, Any], spread: bool = True) -> str:
    if stat.get("mean") is None:
        return "-"
    if stat["n"] > 1 and spread:
        return f"{100 * stat['mean']:.1f} ± {100 * stat['std']:.1f}"
    return f"{100 * stat['mean']:.1f}"


def markdown(results: dict[str, Any]) -> str:
    """The results as Markdown: the table (mean ± std over seeds), what the rows learned, detection per event
    kind, and the paired differences (over seeds, and over videos when bootstrapped)."""
    cfg, summary, diffs = results["config"], results["summary"], results["differences"]
    n_seeds = len(cfg["seeds"])
    data = results["data"]
    draw = f" (test_seed {cfg['test_seed']})" if cfg.get("test_seed") is not None else ""
    lines = [
        f"{results['benchmark']}, {cfg['split']} split{draw} ({data['videos']} videos, "
        f"{data['frames']:,} frames, {data['anomalous_frames']:,} anomalous); "
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
    boot = results.get("bootstrap", {}).get("online", {})
    lines += ["", "What each row learned (online protocol): video AUC (ranking videos by their top score), "
                  "localisation (mean frame AUC inside anomalous videos), frame AUC over the videos of cameras "
                  "seen in training and of test-only cameras, the share of events detected at the calibrated "
                  "threshold, and the 95 % bootstrap interval of the seed-mean frame AUC over videos.", "",
              "| row | video AUC | localisation | AUC seen cameras | AUC unseen cameras | events detected "
              "| AUC online, 95 % over videos |", "|---|---:|---:|---:|---:|---:|---:|"]
    for label, stats in summary.items():
        n = stats["online"]
        b = boot.get("rows", {}).get(label)
        ci = f"[{100 * b['low']:.1f}, {100 * b['high']:.1f}]" if b else "-"
        lines.append(f"| `{label}` | {_pct(n['video_auc'])} | {_pct(n['localisation'])} | {_pct(n['auc_seen'])} | "
                     f"{_pct(n['auc_unseen'])} | {_pct(n['detection_rate'])} | {ci} |")
    kinds = sorted({k for stats in summary.values() for k in stats["online"].get("detection_by_kind", {})})
    if kinds:
        lines += ["", "Events detected per kind at the calibrated threshold (online, mean over seeds, %):", "",
                  "| row | " + " | ".join(kinds) + " |", "|---|" + "---:|" * len(kinds)]
        for label, stats in summary.items():
            by_kind = stats["online"].get("detection_by_kind", {})
            lines.append(f"| `{label}` | " + " | ".join(_pct(by_kind[k], False) if k in by_kind else "-"
                                                       for k in kinds) + " |")
    if diffs:
        lines += ["", f"Paired difference in frame AUC (points) against `{cfg['baseline']}`, mean [95 % t-interval "
                      "over seeds]" + (", and [95 % bootstrap interval over videos] of the seed means" if boot else "")
                  + ":", "", "| row | offline | online | online, over videos |", "|---|---:|---:|---:|"]
        for label, d in diffs.items():
            cells = []
            for protocol in PROTOCOLS:
                x = d[protocol]
                cells.append(f"{100 * x['mean']:+.1f} [{100 * x['low']:+.1f}, {100 * x['high']:+.1f}]")
            b = boot.get("differences", {}).get(label)
            cells.append(f"{100 * b['mean']:+.1f} [{100 * b['low']:+.1f}, {100 * b['high']:+.1f}]" if b else "-")
            lines.append(f"| `{label}` | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def prepare_training(cfg: Table1Config, out: Path, seed: int, progress: bool) -> tuple:
    """What every run of a benchmark experiment shares, loaded once: (prepared benchmark, dataset, feature
    store, a probe TrainConfig, the pooled training data, the training metadata). Only the training split
    and the split the experiment is scored on are made (a ``test_seed`` draw is made by :func:`eval_target`)."""
    from damvad.benchmark.prepare import prepare
    from damvad.datasets import get_dataset
    from damvad.store import FeatureStore
    from damvad.train import load_train_data, training_meta

    splits = ("train",) if cfg.test_seed is not None else ("train", cfg.split)
    prepared = prepare(cfg.benchmark, cfg.root or None, cfg.crops, cfg.precision, progress, backend=cfg.backend,
                       splits=splits)
    out.mkdir(parents=True, exist_ok=True)
    dataset = get_dataset(prepared.data)
    store = FeatureStore(prepared.features)
    probe = _train_config(cfg, {"variant": "mlp"}, prepared.data, prepared.features, out, seed)
    data = load_train_data(dataset, store, probe.num_clips, progress)
    return prepared, dataset, store, probe, data, training_meta(dataset, store, data)


def eval_target(cfg: Table1Config, prepared, dataset, store, progress: bool) -> EvalTarget:
    """The split a table is scored on: the benchmark's own, or (``test_seed``) another draw of its test split."""
    if cfg.test_seed is not None:
        from damvad.benchmark.prepare import prepare
        from damvad.datasets import get_dataset
        from damvad.store import FeatureStore

        prepared = prepare(cfg.benchmark, cfg.root or None, cfg.crops, cfg.precision, progress, backend=cfg.backend,
                           test_seed=cfg.test_seed)
        dataset, store = get_dataset(prepared.data), FeatureStore(prepared.features)
        tag = f"eval-test-seed{cfg.test_seed}"
    else:
        tag = f"eval-{cfg.split}"
    events, groups = report.video_facts(prepared.data, cfg.split)
    return EvalTarget(dataset, store, cfg.split, tag, events, groups)


def run_table1(cfg: Table1Config, progress: bool = True) -> dict[str, Any]:
    """Prepare the benchmark (cached), train every row x seed that is not done yet, evaluate, summarise."""
    from damvad.benchmark.changedet import ChangeDetector
    from damvad.modelfile import load_model
    from damvad.progress import progress_bar
    from damvad.train import train_seed
    from damvad.utils import atomic_write_json, atomic_write_text, provenance

    out = Path(cfg.out or f"runs/table1-{cfg.benchmark}-{cfg.split}")
    prepared, dataset, store, probe, data, meta = prepare_training(cfg, out, 0, progress)
    target = eval_target(cfg, prepared, dataset, store, progress)
    specs = cfg.row_specs()
    runs: dict[str, dict[int, dict[str, Any]]] = {}
    frames_at: dict[str, dict[int, tuple[Path, str]]] = {}  # row -> seed -> (frames file, score)
    rows_info: dict[str, Any] = {}
    jobs = [(label, seed) for label in specs for seed in cfg.seeds]
    bar = progress_bar(total=len(jobs), desc="table 1 runs", unit="run", disable=not progress)
    calib_normals: list[str] = []
    for label, seed in jobs:
        spec = specs[label]
        run_dir = out / label / f"seed{seed}"
        tcfg = _train_config(cfg, spec, prepared.data, prepared.features, out / label, seed)
        calib_normals = [data.names[i] for i in tcfg.holdout(data.labels)[1] if data.labels[i] == 0]
        if not calib_normals:
            raise ValueError("no held-out normal training videos to calibrate on: raise train.val_fraction")
        result_path, frames_path = run_dir / f"{target.tag}.json", run_dir / f"{target.tag}-frames.npz"
        frames_at.setdefault(label, {})[seed] = (frames_path, "D")
        if result_path.exists() and frames_path.exists():
            runs.setdefault(label, {})[seed] = json.loads(result_path.read_text())
            bar.update(1)
            continue
        train_result = train_seed(tcfg, data, run_dir, seed, meta, progress=False)  # a finished one is kept
        model, _ = load_model(run_dir / "model.pt")
        metrics, frames = evaluate_run(model, target, store, calib_normals, tcfg.num_clips, cfg.far)
        record = {"row": label, "seed": seed, "train": train_result, "metrics": metrics,
                  "config": dataclasses.asdict(tcfg)}
        all_frames = {"D": frames}
        if model.config.uses_clip_attention:
            record["metrics_wD"], all_frames["wD"] = evaluate_run(model, target, store, calib_normals,
                                                                  tcfg.num_clips, cfg.far, "wD")
        save_frames(frames_path, all_frames)
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
                frames_at[f"{label}@wD"] = {s: (frames_at[label][s][0], "wD") for s in with_wd}
                rows_info[f"{label}@wD"] = {"description": f"declared: {label} scored on wD = D (1 + Clip_A)",
                                            "same_runs_as": label, "score": "wD"}
    change_frames: dict[str, report.Runs] = {}
    if cfg.change_detector:
        metrics, change_frames = evaluate_run(ChangeDetector(), target, store, calib_normals, probe.num_clips,
                                              cfg.far)
        runs = {CHANGE: {0: {"row": CHANGE, "seed": None, "metrics": metrics}}, **runs}
        rows_info[CHANGE] = {"description": "change detector (L1 between consecutive maps, no training)"}
    summary, diffs = summarize(runs, cfg.baseline)
    items = target.dataset.videos(cfg.split)
    gt = target.dataset.ground_truths(cfg.split, target.store)
    results = {
        "benchmark": cfg.benchmark,
        "config": dataclasses.asdict(cfg),
        "provenance": {**provenance(), "features": str(prepared.features), "feature_key": prepared.key,
                       "features_manifest_sha256": store.manifest_hash(),
                       "eval_features_manifest_sha256": target.store.manifest_hash(),
                       "torch_threads": torch.get_num_threads()},
        "data": {"split": cfg.split, "test_seed": cfg.test_seed, "videos": len(items),
                 "frames": int(sum(len(g) for g in gt.values())),
                 "anomalous_frames": int(sum(g.sum() for g in gt.values())),
                 "train_videos": len(data.names), "calibration_videos": calib_normals,
                 "camera_groups": {g: sum(1 for v in target.groups.values() if v == g) for g in ("seen", "unseen")}},
        "rows": rows_info,
        "summary": summary,
        "differences": diffs,
        "bootstrap": _bootstrap(cfg, items, frames_at, change_frames),
        "runs": {label: {str(s): r for s, r in by_seed.items()} for label, by_seed in runs.items()},
    }
    suffix = f"-test-seed{cfg.test_seed}" if cfg.test_seed is not None else ""
    atomic_write_json(out / f"results{suffix}.json", _finite(results))
    atomic_write_text(out / f"table{suffix}.md", markdown(results))
    results["paths"] = {"results": str(out / f"results{suffix}.json"), "table": str(out / f"table{suffix}.md")}
    return results


def _bootstrap(cfg: Table1Config, items, frames_at: dict[str, dict[int, tuple[Path, str]]],
               change_frames: dict[str, report.Runs]) -> dict[str, Any]:
    """Per protocol: 95 % intervals over video resamples of each row's seed-mean frame AUC and of its paired
    difference to the baseline (:func:`damvad.benchmark.report.bootstrap_rows`)."""
    if not cfg.bootstrap:
        return {}
    resamples = report.bootstrap_resamples({it.name: it.label for it in items}, cfg.bootstrap)
    out = {}
    for protocol in PROTOCOLS:
        row_runs = {label: [load_frames(path, which, protocol) for path, which in by_seed.values()]
                    for label, by_seed in frames_at.items()}
        if change_frames:
            row_runs = {CHANGE: [change_frames[protocol]], **row_runs}
        rows, diffs = report.bootstrap_rows(row_runs, resamples, cfg.baseline)
        out[protocol] = {"resamples": cfg.bootstrap, "rows": rows, "differences": diffs}
    return out


def _finite(obj: Any) -> Any:
    """NaN -> None, so that results.json is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj
