"""UCSD Ped2 under the weakly-supervised protocol of Zhong et al. (CVPR 2019): real footage, as one command.

``damvad benchmark ped2`` extracts the 28 videos' I3D features once (folders of frames, 10 frames/s, cached
under a key of everything that changes them), then for every random split (:func:`damvad.datasets.ucsd_ped2.
weak_split`: 6 anomalous + 4 normal videos train with video labels only, the other 18 are scored) trains
each variant (mlp, lstm, dist, cov: Table 1's rows, with the training settings of the config's ``train:``
section over ``damvad train``'s defaults, model selection included) for each training seed, and scores the
split's test videos under both protocols; the training-free change detector is scored on every split too.

Output in ``out``: ``results.json`` (every run, per-split and summary numbers, the split seeds under
``splits``, timing, config and provenance) and ``table.md`` (frame AUC mean +- std over splits per row,
GCN-Anomaly's published 93.2 beside them). Each finished run is kept (``<row>/split<k>/seed<s>/ped2.json``)
and a killed run resumes from its training checkpoint: rerunning the command finishes what is missing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from damvad.benchmark.table1 import CHANGE, PROTOCOLS, TABLE1_ROWS, _score_frames, _train_config, mean_std
from damvad.choices import BACKENDS, CROPS, PRECISIONS, VARIANTS
from damvad.config import check_fields
from damvad.datasets.ucsd_ped2 import FPS, PROTOCOL, UCSD_PED2, ucsd_ped2, weak_split
from damvad.snippets import SNIPPET_LEN
from damvad.stages import STRIDES

ANCHOR = {"row": "GCN-Anomaly (Zhong et al., CVPR 2019), published", "frame_auc": 0.932}
FEATURE_FORMAT = 1  # bump when extraction changes what it writes for the same frames
METRICS = ("frame_auc", "frame_ap", "video_auc")


@dataclass
class Ped2Config:
    root: str = ""  # the UCSD Ped2 frames; default $DAMVAD_UCSD_PED2, else a checkout's ../shared/media/ucsd-ped2
    features: str = ""  # default <damvad cache>/benchmarks/ucsd-ped2/features-<key>
    out: str = ""  # default runs/ped2-stride<stride>
    crops: str = "center"
    backend: str | None = None  # I3D backend of the extraction (None: the default, damvad.backends)
    precision: str = "bf16"
    stride: int = SNIPPET_LEN  # frames between snippet starts (damvad.snippets)
    variants: list[str] = field(default_factory=lambda: ["mlp", "lstm", "dist", "cov"])
    splits: list[int] = field(default_factory=lambda: list(range(10)))  # split seeds (the protocol: 10)
    seeds: list[int] = field(default_factory=lambda: [0])  # training seeds per split
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields shared by every row
    change_detector: bool = True

    limits: ClassVar[dict[str, str | tuple]] = {
        "crops": CROPS, "precision": PRECISIONS, "backend": BACKENDS,
        "stride": STRIDES, "variants": VARIANTS, "splits": "[0, inf)", "seeds": "[0, inf)",
    }

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.splits or not self.seeds:
            raise ValueError("splits and seeds: at least one each")


def prepare_features(cfg: Ped2Config, dataset: Any, progress: bool = True, feature_fn: Any = None,
                     weights_sha256: str | None = None) -> Path:
    """The 28 videos' features (extracted once, resumed, cached under a key of their settings): their folder.
    ``feature_fn`` / ``weights_sha256`` replace I3D (tests use a cheap stand-in; the key records it)."""
    from damvad.extract import extract
    from damvad.utils import atomic_write_json, cache_dir
    from damvad.weights import CKPT_SHA256

    missing = [it.name for it in dataset.items if it.path is None]
    if missing:
        raise ValueError(f"{UCSD_PED2}: the frames were not found: give `root` (the folder holding training/ and "
                         "testing/), or set $DAMVAD_UCSD_PED2")
    sha = weights_sha256 or CKPT_SHA256
    fields = {"dataset": UCSD_PED2, "weights_sha256": sha, "crops": cfg.crops, "precision": cfg.precision,
              "stride": cfg.stride, "snippet_len": SNIPPET_LEN, "feature_format": FEATURE_FORMAT}
    key = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]
    features = Path(cfg.features) if cfg.features else cache_dir() / "benchmarks" / UCSD_PED2 / f"features-{key}"
    report = extract({it.name: it.path for it in dataset.items}, features, crops=cfg.crops, precision=cfg.precision,
                     backend=cfg.backend, progress=progress, feature_fn=feature_fn, weights_sha256=sha,
                     stride=cfg.stride, fps=FPS)
    if not report.ok:
        raise RuntimeError(f"{UCSD_PED2}: feature extraction failed for {len(report.failed)} video(s):\n"
                           + report.summary())
    used = (cfg.backend or "default") if feature_fn is None else "stand-in"
    atomic_write_json(features / "key.json", {"key": key, **fields, "backend": used})
    return features


def evaluate_split(model: Any, store: Any, split: Any, num_clips: int) -> dict[str, dict[str, float | None]]:
    """Frame AUC / AP and video AUC of a split's test videos, per protocol (score D)."""
    from damvad.metrics import evaluate_scores

    items = split.videos("test")
    names = [it.name for it in items]
    gt = split.ground_truths("test", store)
    labels = {it.name: it.label for it in items}
    out = {}
    for protocol in PROTOCOLS:
        m = evaluate_scores(_score_frames(model, store, names, protocol, num_clips, "D"), gt, labels, far_rates=())
        out[protocol] = {k: m[k] for k in METRICS}
    return out


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _run_split(cfg: Ped2Config, out: Path, store: Any, split: Any, k: int, bar: Any) -> dict[str, dict[int, Any]]:
    """Every row's runs on split ``k`` (finished ones read back): {row: {seed: record}}."""
    from damvad.benchmark.changedet import ChangeDetector
    from damvad.modelfile import load_model
    from damvad.train import Trainer, load_train_data, training_meta
    from damvad.utils import atomic_write_json

    runs: dict[str, dict[int, Any]] = {}
    probe = _train_config(cfg, {"variant": "mlp"}, Path(split.name), store.root, out, 0)
    data = meta = None
    if cfg.change_detector:
        path = out / CHANGE / f"split{k}.json"
        record = _load(path)
        if record is None:
            t0 = time.perf_counter()
            metrics = evaluate_split(ChangeDetector(), store, split, probe.num_clips)
            record = {"row": CHANGE, "split": k, "seed": None, "metrics": metrics,
                      "seconds": time.perf_counter() - t0}
            atomic_write_json(path, record)
        runs[CHANGE] = {0: record}
    for variant in cfg.variants:
        for seed in cfg.seeds:
            run_dir = out / variant / f"split{k}" / f"seed{seed}"
            record = _load(run_dir / "ped2.json")
            if record is None:
                if data is None:  # pooled once per split, only when something is left to train
                    data = load_train_data(split, store, probe.num_clips, progress=False)
                    meta = training_meta(split, store, data)
                t0 = time.perf_counter()
                tcfg = _train_config(cfg, {"variant": variant}, Path(split.name), store.root, run_dir.parent, seed)
                trained = Trainer(tcfg, data, run_dir, seed, meta).run(progress=False)
                model, _ = load_model(run_dir / "model.pt")
                record = {"row": variant, "split": k, "seed": seed, "train": trained,
                          "metrics": evaluate_split(model, store, split, tcfg.num_clips),
                          "train_videos": [it.name for it in split.videos("train")],
                          "seconds": time.perf_counter() - t0, "config": dataclasses.asdict(tcfg)}
                atomic_write_json(run_dir / "ped2.json", record)
            runs.setdefault(variant, {})[seed] = record
            bar.update(1)
            bar.set_postfix_str(f"{variant} split {k}: online AUC {100 * record['metrics']['online']['frame_auc']:.1f}")
    return runs


def summarize(runs: dict[str, dict[int, dict[int, Any]]]) -> dict[str, Any]:
    """Per row and protocol: each split's metrics (mean over its seeds), then mean +- std over splits."""
    out: dict[str, Any] = {}
    for row, by_split in runs.items():
        out[row] = {}
        for protocol in PROTOCOLS:
            per_split = {k: {m: float(np.mean([r["metrics"][protocol][m] for r in by_seed.values()]))
                             for m in METRICS if all(r["metrics"][protocol][m] is not None for r in by_seed.values())}
                         for k, by_seed in by_split.items()}
            out[row][protocol] = {m: {**mean_std([v[m] for v in per_split.values() if m in v]),
                                      "per_split": {str(k): v.get(m) for k, v in per_split.items()}}
                                  for m in METRICS if any(m in v for v in per_split.values())}
    return out


ONE_SEED = ("One training seed per split: enough to see the rows learn, not to rank them (Dist-DAM's training seeds "
            "differ by 3-5 points within a split on Ped2; benchmarks/README.md): seeds=[0,1,2] for differences "
            "between rows.")


def _pct(stat: dict[str, float] | None) -> str:
    if not stat:
        return "-"
    return f"{100 * stat['mean']:.1f} ± {100 * stat['std']:.1f}" if stat["n"] > 1 else f"{100 * stat['mean']:.1f}"


def markdown(results: dict[str, Any]) -> str:
    """The table: frame AUC (and AP) mean ± std over splits per row, the published anchor beside them."""
    cfg, summary = results["config"], results["summary"]
    made = results.get("features") or {"backend": "", "precision": cfg["precision"]}  # older records: the config's
    i3d = " ".join(v for v in (made["backend"], made["precision"]) if v)
    lines = [
        f"UCSD Ped2, weakly-supervised protocol ({PROTOCOL}); {len(results['splits'])} splits (seeds "
        f"{', '.join(map(str, results['splits']))}) x {len(cfg['seeds'])} training seed(s); I3D {i3d} "
        f"{cfg['crops']} crop, snippets every {cfg['stride']} frames; mean ± std over splits, each split's frame "
        "AUC over its 18 test videos' frames.",
        "",
        "| row | variant | frame AUC offline | frame AUC online | frame AP offline | frame AP online |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row, stats in summary.items():
        desc = "change detector (no training)" if row == CHANGE else TABLE1_ROWS.get(row, row)
        o, n = stats["offline"], stats["online"]
        lines.append(f"| {desc} | `{row}` | {_pct(o.get('frame_auc'))} | {_pct(n.get('frame_auc'))} | "
                     f"{_pct(o.get('frame_ap'))} | {_pct(n.get('frame_ap'))} |")
    lines.append(f"| {ANCHOR['row']} | | {100 * ANCHOR['frame_auc']:.1f} | | | |")
    if len(cfg["seeds"]) == 1:
        lines += ["", ONE_SEED]
    return "\n".join(lines) + "\n"


def _features_run(store: Any) -> dict[str, str]:
    """What the features were made with, read from their records (not the config: OpenVINO runs and records
    fp32 where bf16 was asked for on a CPU without bf16 units)."""
    from damvad.contract import contract_of_records

    contract = contract_of_records((store.record(n) for n in store.names()), f"{store.root} (UCSD Ped2)")
    return {"backend": contract.backend, "precision": contract.precision}


def run_ped2(cfg: Ped2Config, progress: bool = True, feature_fn: Any = None,
             weights_sha256: str | None = None) -> dict[str, Any]:
    """Extract (cached), train and score every row x split x seed not done yet, summarise; see the module
    docstring. ``feature_fn`` / ``weights_sha256``: a stand-in for I3D (tests)."""
    from damvad.progress import progress_bar
    from damvad.store import FeatureStore
    from damvad.utils import atomic_write_json, atomic_write_text, provenance

    start = time.perf_counter()
    dataset = ucsd_ped2(cfg.root or None)
    out = Path(cfg.out or f"runs/ped2-stride{cfg.stride}")
    out.mkdir(parents=True, exist_ok=True)
    features = prepare_features(cfg, dataset, progress, feature_fn, weights_sha256)
    prepared = time.perf_counter()
    store = FeatureStore(features)
    made = _features_run(store)
    runs: dict[str, dict[int, dict[int, Any]]] = {}
    bar = progress_bar(total=len(cfg.splits) * len(cfg.variants) * len(cfg.seeds), desc="ped2 runs", unit="run",
               disable=not progress)
    for k in cfg.splits:
        for row, by_seed in _run_split(cfg, out, store, weak_split(dataset, k), k, bar).items():
            runs.setdefault(row, {})[k] = by_seed
    bar.close()
    trained = [r["seconds"] for row, by_split in runs.items() if row != CHANGE
               for by_seed in by_split.values() for r in by_seed.values()]
    results = {
        "benchmark": UCSD_PED2,
        "protocol": PROTOCOL,
        "splits": list(cfg.splits),
        "config": dataclasses.asdict(cfg),
        "provenance": {**provenance(), "features": str(features), "features_key": _load(features / "key.json"),
                       "features_manifest_sha256": store.manifest_hash()},
        "features": made,
        "anchor": ANCHOR,
        "summary": summarize(runs),
        "timing": {"seconds_this_invocation": time.perf_counter() - start,
                   "features_seconds_this_invocation": prepared - start,
                   "run_seconds_mean": float(np.mean(trained)) if trained else None,
                   "run_seconds_total": float(np.sum(trained)) if trained else None},
        "runs": {row: {str(k): {str(s): r for s, r in by_seed.items()} for k, by_seed in by_split.items()}
                 for row, by_split in runs.items()},
    }
    atomic_write_json(out / "results.json", results)
    atomic_write_text(out / "table.md", markdown(results))
    results["paths"] = {"results": str(out / "results.json"), "table": str(out / "table.md")}
    return results


def command(args: Any) -> int:
    """``damvad benchmark ped2 [key=value ...] [--config F] [--root FRAMES]``: runs and prints the table. It
    takes no benchmark name: what stands in the name's place is an override."""
    from damvad.config import config_path, load_config

    overrides = [n for n in [args.name] if n] + list(args.overrides)
    cfg = load_config(Ped2Config, config_path(args.config or "benchmark-ped2"), overrides, root=args.root)
    results = run_ped2(cfg, progress=not args.quiet)
    print(open(results["paths"]["table"]).read())
    print(f"results: {results['paths']['results']}")
    return 0
