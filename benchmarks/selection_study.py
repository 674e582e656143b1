"""Which checkpoint to keep, and after how many steps: candidate rules compared on a benchmark's *dev* split.

One long run per (row, seed) gives every candidate at once:

* ``last@B``: the raw weights after B steps;
* ``average@B``: the mean of the weights of steps B/2+1..B (damvad's ``selection: average``);
* ``val_auc@B``: the checkpoint (every ``--eval-every`` steps up to B) with the best video AUC of the held-out
  training videos, ties to the later one (damvad's former default).

Each is scored on the dev split (frame AUC, online and offline; never used to train or to select inside a
run). ``--train-sizes`` repeats the ``mlp`` and ``dist`` rows with fewer training videos (how the best
budget moves with the data). Output: a JSON record and a plot of dev AUC against steps.

    python benchmarks/selection_study.py --out benchmarks/results/selection-synth-ucf-v2-dev
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from damvad.benchmark.table1 import Table1Config, _score_frames, _train_config, prepare_training
from damvad.metrics import frame_auc
from damvad.train import Trainer
from damvad.utils import atomic_write_json, provenance


def dev_auc(model, store, names: list[str], gt: dict[str, np.ndarray], num_clips: int) -> dict[str, float]:
    model.eval()
    return {p: frame_auc(_score_frames(model, store, names, p, num_clips, "D"), gt) for p in ("online", "offline")}


def study_run(trainer: Trainer, budgets: list[int], eval_every: int, dev: tuple) -> dict[str, Any]:
    """Train ``trainer`` to max(budgets) steps; every ``eval_every`` steps the raw weights' dev AUC and held-out
    video AUC; at each budget B the dev AUC of the weights averaged over steps B/2+1..B."""
    store, names, gt, num_clips = dev
    sums: dict[int, dict[str, torch.Tensor]] = {}
    counts = dict.fromkeys(budgets, 0)
    history, averaged = [], {}
    for it in range(1, max(budgets) + 1):
        terms = trainer.train_step()
        state = trainer.model.state_dict()
        for b in budgets:
            if b // 2 < it <= b:
                counts[b] += 1
                if b not in sums:
                    sums[b] = {k: v.detach().double().clone() for k, v in state.items()}
                else:
                    for k, v in state.items():
                        sums[b][k] += v.detach().double()
            if it == b:
                avg = copy.deepcopy(trainer.model)
                avg.load_state_dict({k: (v / counts[b]).float() for k, v in sums.pop(b).items()})
                averaged[b] = dev_auc(avg, store, names, gt, num_clips)
        if it % eval_every == 0 or it in counts:  # every eval_every steps and at each budget
            row = {"iteration": it, "hinge": terms["hinge"], "val_video_auc": trainer.validate(),
                   **{f"dev_{k}": v for k, v in dev_auc(trainer.model, store, names, gt, num_clips).items()}}
            history.append(row)
            trainer.model.train()
    rules: dict[str, dict[str, float]] = {}
    for b in budgets:
        upto = [r for r in history if r["iteration"] <= b]
        best = max(range(len(upto)), key=lambda i: (upto[i]["val_video_auc"], i))  # ties: the later one
        last = next(r for r in history if r["iteration"] == b)
        rules[f"last@{b}"] = {"online": last["dev_online"], "offline": last["dev_offline"]}
        rules[f"average@{b}"] = averaged[b]
        rules[f"val_auc@{b}"] = {"online": upto[best]["dev_online"], "offline": upto[best]["dev_offline"],
                                 "iteration": upto[best]["iteration"]}
    return {"history": history, "rules": rules}


def summarize(record: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """Per row and rule: mean and std over seeds of the dev online / offline AUC."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for key, run in record["runs"].items():
        row = key.rsplit("/", 1)[0]
        for rule, v in run["rules"].items():
            for p in ("online", "offline"):
                out.setdefault(row, {}).setdefault(rule, {}).setdefault(p, []).append(v[p])  # type: ignore[arg-type]
    return {row: {rule: {p: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                             "n": len(v)} for p, v in by_p.items()} for rule, by_p in rules.items()}
            for row, rules in out.items()}


def plot(record: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted({k.rsplit("/", 1)[0] for k in record["runs"]})
    fig, axes = plt.subplots(1, len(rows), figsize=(3.6 * len(rows), 3.2), squeeze=False, sharey=True)
    for ax, row in zip(axes[0], rows, strict=True):
        for key, run in record["runs"].items():
            if key.rsplit("/", 1)[0] != row:
                continue
            h = run["history"]
            line, = ax.plot([r["iteration"] for r in h], [r["dev_online"] for r in h], lw=1.2,
                            label=key.rsplit("/")[-1])
            avg = sorted((int(k.split("@")[1]), v["online"]) for k, v in run["rules"].items()
                         if k.startswith("average"))
            ax.plot(*zip(*avg, strict=True), "o--", color=line.get_color(), ms=4)
        ax.set_title(row, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.axhline(0.5, color="grey", lw=0.6)
    axes[0][0].set_ylabel("dev frame AUC, online (lines: raw weights; dots: tail average)", fontsize=7)
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--benchmark", default="synth-ucf-v2")
    ap.add_argument("--config", default=None, help="a table1 config for the features and shared train settings")
    ap.add_argument("--rows", nargs="+", default=["mlp", "lstm", "dist", "cov"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--budgets", nargs="+", type=int, default=[250, 500, 1000, 2000])
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--train-sizes", nargs="*", type=int, default=[], help="also mlp and dist on this many videos")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    from damvad.config import config_path, load_config

    cfg = load_config(Table1Config, config_path(args.config or f"table1-{args.benchmark}"), ["split=dev"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    prepared, dataset, store, probe, data, meta = prepare_training(cfg, out / "runs", 0, True)
    names = [it.name for it in dataset.videos("dev")]
    dev = (store, names, dataset.ground_truths("dev", store), probe.num_clips)
    path = out / "study.json"
    record = json.loads(path.read_text()) if path.exists() else {"runs": {}}
    import sys

    record.setdefault("commands", []).append(" ".join(["python", *sys.argv]))
    jobs = [(row, seed, 0) for row in args.rows for seed in args.seeds]
    jobs += [(row, args.seeds[0], n) for n in args.train_sizes for row in ("mlp", "dist") if row in args.rows]
    for row, seed, size in jobs:
        key = f"{row}{f'-n{size}' if size else ''}/seed{seed}"
        if key in record["runs"]:
            continue
        tcfg = _train_config(cfg, {"variant": row, "iterations": max(args.budgets), "selection": "last",
                                   "max_train_videos": size}, prepared.data, prepared.features, out / "runs", seed)
        trainer = Trainer(tcfg, data, out / "runs" / key, seed, meta)
        t = time.perf_counter()
        record["runs"][key] = {**study_run(trainer, args.budgets, args.eval_every, dev),
                               "training_videos": int(len(trainer.train_idx)), "seconds": time.perf_counter() - t}
        record["runs"][key]["budgets"] = args.budgets
        record.update(table1_config=cfg.__dict__, provenance=provenance(),
                      features=str(prepared.features), summary=summarize(record))
        atomic_write_json(path, record)
        best = max(record["runs"][key]["rules"].items(), key=lambda kv: kv[1]["online"])
        print(f"{key}: {time.perf_counter() - t:.0f} s; best rule here {best[0]} (dev online "
              f"{100 * best[1]['online']:.1f})", flush=True)
    plot(record, out / "dev_auc.png")
    for row, rules in record["summary"].items():
        print(row)
        for rule, v in rules.items():
            print(f"  {rule:>14}: online {100 * v['online']['mean']:.1f} ± {100 * v['online']['std']:.1f}   "
                  f"offline {100 * v['offline']['mean']:.1f} ± {100 * v['offline']['std']:.1f}")


if __name__ == "__main__":
    main()
