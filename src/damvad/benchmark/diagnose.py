"""Diagnose DAM's training on a benchmark's dev split, before any test number is looked at.

For each variant it trains with ``diagnostics`` on (attention entropy and spread, gate saturation of
both LSTMs, the D_nt scale, gradient norms per module, every loss term at each evaluation) and a monitor
that scores the *dev* split (frame labels, used here to understand, never to select a checkpoint); then it
repeats with fewer training videos for learning curves. Output in ``out``: ``diagnosis.json`` (every
history row) and plots: ``dev_auc.png``, ``attention.png``, ``gates.png``, ``losses.png``, ``grads.png``,
``learning_curve.png``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from damvad.choices import PROTOCOLS
from damvad.metrics import frame_auc


@dataclass
class DiagnoseConfig:
    benchmark: str = "synth-ucf-v1"
    root: str = ""
    out: str = ""  # default runs/diagnose-<benchmark>
    crops: str = "center"
    precision: str = "bf16"
    backend: str = "torch"
    variants: list[str] = field(default_factory=lambda: ["mlp", "lstm", "dist", "cov"])
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # declared rows as in table1 (+ train_sizes)
    train: dict[str, Any] = field(default_factory=dict)  # shared TrainConfig fields
    train_sizes: list[int] = field(default_factory=lambda: [24, 50])  # besides all training videos
    seed: int = 0


TABLE_SETTINGS = ("crops", "precision", "backend", "train")  # what a diagnosis takes from the benchmark's table


def load_diagnose_config(benchmark: str, config: str | None = None, overrides: list[str] | None = None,
                         root: str | None = None) -> DiagnoseConfig:
    """The diagnosis of ``benchmark``: without a ``config``, the features and training settings of the
    benchmark's shipped Table 1 config (``table1-<benchmark>``), so that it diagnoses the table's runs on
    the table's cached features (DiagnoseConfig's own defaults train the paper's 1024-unit head, ~10x
    slower here, on features of another precision); ``key=value`` overrides win either way."""
    from damvad.config import config_path, load_config, shipped_config

    explicit: dict[str, Any] = {}
    if config is None and shipped_config(f"table1-{benchmark}"):
        from damvad.benchmark.table1 import Table1Config

        table = load_config(Table1Config, config_path(f"table1-{benchmark}"), benchmark=benchmark)
        explicit = {key: getattr(table, key) for key in TABLE_SETTINGS}
    return load_config(DiagnoseConfig, config_path(config), overrides, benchmark=benchmark, root=root, **explicit)


def dev_monitor(store, dataset, num_clips: int):
    """(model, iteration) -> {dev_auc_offline, dev_auc_online}: dev frame AUC, for understanding only."""
    from damvad.benchmark.table1 import _score_frames

    items = dataset.videos("dev")
    names = [it.name for it in items]
    gt = dataset.ground_truths("dev", store)

    def monitor(model, iteration: int) -> dict[str, float]:
        out = {}
        for protocol in PROTOCOLS:
            scores = _score_frames(model, store, names, protocol, num_clips, "D")
            out[f"dev_auc_{protocol}"] = frame_auc(scores, gt)
        return out

    return monitor


def _plot(histories: dict[str, list[dict[str, Any]]], keys: list[str], path: Path, title: str) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in keys if any(k in r for h in histories.values() for r in h)]
    if not keys:
        return None
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        for label, hist in histories.items():
            pts = [(r["iteration"], r[key]) for r in hist if key in r]
            if pts:
                ax.plot(*zip(*pts, strict=True), label=label, lw=1.4)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("iteration", fontsize=8)
        ax.tick_params(labelsize=7)
        if key.startswith("grad_") or key.startswith("dnt"):
            ax.set_yscale("log")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def run_diagnosis(cfg: DiagnoseConfig, progress: bool = True) -> dict[str, Any]:
    from damvad.benchmark.table1 import Table1Config, _train_config, prepare_training
    from damvad.train import Trainer
    from damvad.utils import atomic_write_json

    out = Path(cfg.out or f"runs/diagnose-{cfg.benchmark}")
    t1 = Table1Config(benchmark=cfg.benchmark, root=cfg.root, split="dev", crops=cfg.crops, precision=cfg.precision,
                      backend=cfg.backend, variants=cfg.variants, rows=cfg.rows,
                      train={**cfg.train, "diagnostics": True}, seeds=[cfg.seed], change_detector=False)
    prepared, dataset, store, probe, data, meta = prepare_training(t1, out, cfg.seed, progress)
    specs = t1.row_specs()
    monitor = dev_monitor(store, dataset, probe.num_clips)
    histories: dict[str, list[dict[str, Any]]] = {}
    curve: dict[str, dict[int, dict[str, float]]] = {}
    for label, spec in specs.items():
        spec = dict(spec)
        sizes = spec.pop("train_sizes", cfg.train_sizes)  # a row may ask for fewer learning-curve points
        for size in [0, *sizes]:
            tcfg = _train_config(t1, {**spec, "max_train_videos": size}, prepared.data, prepared.features,
                                 out / label, cfg.seed)
            run_dir = out / label / (f"n{size}" if size else "all")
            trainer = Trainer(tcfg, data, run_dir, cfg.seed, meta, monitor)
            result = trainer.run(progress)
            n_train = len(trainer.train_idx)
            hist = trainer.history
            if not size:
                histories[label] = hist
            best_dev = max(r["dev_auc_online"] for r in hist)
            chosen = next((r for r in hist if r["iteration"] == result["iteration"]), hist[-1])
            curve.setdefault(label, {})[n_train] = {
                "dev_auc_online_selected": chosen["dev_auc_online"],
                "dev_auc_offline_selected": chosen["dev_auc_offline"],
                "dev_auc_online_best_seen": best_dev, "selected_iteration": result["iteration"]}
    plots = {
        "dev_auc": _plot(histories, ["dev_auc_offline", "dev_auc_online", "val_video_auc"], out / "dev_auc.png",
                         "dev frame AUC (understanding only) and held-out video AUC (selection)"),
        "attention": _plot(histories, ["channel_entropy", "channel_peak", "modulation", "clip_att_std",
                                       "clip_att_within"], out / "attention.png", "attention"),
        "gates": _plot(histories, ["encoder_saturated", "dam_saturated", "dnt_median", "dnt_p99"],
                       out / "gates.png", "LSTM gate saturation and the D_nt scale"),
        "losses": _plot(histories, ["hinge", "smooth", "sparse", "regularization", "objective"], out / "losses.png",
                        "loss terms (smooth and sparse before their lambdas)"),
        "grads": _plot(histories, ["grad_encoder", "grad_dam_lstm", "grad_clip_fc", "grad_mlp"], out / "grads.png",
                       "gradient norms per module"),
    }
    plots["learning_curve"] = _learning_plot(curve, out / "learning_curve.png")
    report = {"config": dataclasses.asdict(cfg), "features": str(prepared.features), "histories": histories,
              "learning_curve": {k: {str(n): v for n, v in c.items()} for k, c in curve.items()},
              "plots": {k: str(v) for k, v in plots.items() if v}}
    atomic_write_json(out / "diagnosis.json", report)
    report["summary_text"] = summary_text(histories, curve) + f"\nplots and diagnosis.json in {out}"
    return report


def _learning_plot(curve: dict[str, dict[int, dict[str, float]]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.4))
    for label, by_n in curve.items():
        ns = sorted(by_n)
        ax.plot(ns, [by_n[n]["dev_auc_online_selected"] for n in ns], marker="o", label=label)
    ax.set_xlabel("training videos (before hold-out)")
    ax.set_ylabel("dev frame AUC, online (selected model)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def summary_text(histories: dict[str, list[dict[str, Any]]], curve: dict) -> str:
    keys = ["dev_auc_online", "channel_entropy", "channel_peak", "modulation", "clip_att_within",
            "encoder_saturated", "dam_saturated", "dnt_median"]
    lines = ["last evaluation of each run on all training videos:",
             f"{'row':<16}" + "".join(f"{k:>18}" for k in keys)]
    for label, hist in histories.items():
        last = hist[-1]
        lines.append(f"{label:<16}" + "".join(f"{last[k]:>18.4g}" if k in last else f"{'-':>18}" for k in keys))
    lines.append("dev frame AUC (online) of the selected model by number of training videos:")
    for label, by_n in curve.items():
        lines.append(f"  {label:<16}" + "  ".join(f"{n}: {100 * v['dev_auc_online_selected']:.1f}"
                                                 for n, v in sorted(by_n.items())))
    return "\n".join(lines)
