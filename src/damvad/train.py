"""Weakly-supervised training of a DAM head from video-level labels (MIL ranking loss).

Honest model selection: a stratified fraction of the *training* videos is held out and the model is
selected on their video-level ROC AUC (max clip score vs the video label), or a fixed budget is trained
(``selection: last``). Test labels are never looked at. Every run folder holds the config, provenance
(damvad version, features manifest hash, I3D weights sha256), the history, an atomic checkpoint that
``--resume`` continues from (to the same result as an uninterrupted run), and ``model.pt``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import yaml

from damvad.choices import CROP_SAMPLING, NUM_CLIPS
from damvad.config import check_fields, dump_config, renamed_keys
from damvad.contract import FeatureContract
from damvad.datasets import get_dataset
from damvad.device import device_info, resolve_device
from damvad.diagnostics import grad_norms, head_stats
from damvad.losses import logit_wall, ranking_loss, regularization
from damvad.model import DAMConfig, DAMModel, HeadEnsemble, count_parameters
from damvad.modelfile import ClipProtocol, ModelCard, Provenance, TrainResult, load_model, save_model_file
from damvad.store import FeatureStore
from damvad.traindata import (  # noqa: F401  (re-exported: where callers have always found them)
    TrainData,
    dnt_scale_for,
    held_out_auc,
    holdout_split,
    load_train_data,
    stratified_subset,
    training_meta,
)
from damvad.utils import (
    LoadError,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    load_torch_file,
)

log = logging.getLogger(__name__)

Monitor = Callable[[DAMModel, int], dict[str, Any]]  # (model, iteration) -> extra history fields

# How the kept model is chosen. average: a fixed budget, keeping the mean of the weights of every step in
# its last (1 - average_from) share (Polyak / SWA averaging): no held-out set needed, and no untrained
# checkpoint can win. last: the last step's weights. val_auc: the checkpoint with the best video-level AUC
# of held-out training videos (the released code selected on the test set; this is its honest form, and
# noise below MIN_VAL_PER_CLASS held-out videos of each class -- see benchmarks/README.md).
SELECTIONS = ("average", "last", "val_auc")
HEAD_SEED_STRIDE = 1000  # head k of seed s trains with seed s + 1000 k (head_seed)
MIN_VAL_PER_CLASS = 25
# A batch whose every clip scores within this of one another: the head has collapsed to a constant (a saturated
# sigmoid passes no gradient, and such a run never recovers; seen in an `lstm` seed at ~1,600 iterations,
# benchmarks/lstm-seed-study.md). Healthy batches of anomalous and normal videos span far more.
COLLAPSED_SCORE_RANGE = 1e-4


@dataclass
class TrainConfig:
    dataset: str = ""  # a benchmark name (ucf-crime, shanghaitech, xd-violence) or a folder / CSV
    features: str = ""  # the features folder written by `damvad extract`
    out: str = "runs/dam"
    variant: str = "dist"  # mlp | lstm | dist-channel | dist | cov-channel | cov
    model: dict[str, Any] = field(default_factory=dict)  # extra DAMConfig fields, e.g. cov_norm
    num_clips: int = NUM_CLIPS  # C, the paper's value (the released code uses 32)
    batch_anomalous: int = 10
    batch_normal: int = 10
    iterations: int = 3000
    lr: float = 1e-4
    lambda_smooth: float = 8e-5
    lambda_sparse: float = 8e-5
    pairing: str = "all_pairs"  # all_pairs (released code) | paired (Sultani)
    reduction: str = "mean"  # mean over pairs / videos | released: the released code's sums
    regularize: bool = False  # the released code's L2 on MLP weights and activity L2 (not in the paper)
    weight_l2: float = 1e-3
    activity_l2: float = 0.01
    logit_penalty: float = 0.0  # > 0: a soft wall on the head's logits at +-logit_bound (losses.logit_wall;
    #                              logged in the history's regularization column; cost lstm 7 dev points at 1.0)
    logit_bound: float = 6.0
    crop_sampling: str = "center"  # center: crop 0 (the paper trains on it) | each: a random crop per sampled video
    val_fraction: float = 0.1  # held-out training videos (threshold calibration; selection with val_auc)
    selection: str = "average"  # average (weights averaged over the budget's tail) | last | val_auc
    average_from: float = 0.5  # selection=average: average the weights of every step after this fraction
    eval_every: int = 100
    checkpoint_every: int = 100
    seeds: list[int] = field(default_factory=lambda: [0])
    split_seed: int = 0  # the held-out split is the same for every training seed
    max_train_videos: int = 0  # > 0: a stratified subset of this many training videos (learning curves)
    calibrate_dnt: bool = False  # declared departure: model.dnt_scale = 1 / median |D_nt| of the training pairs
    diagnostics: bool = False  # record attention, gate saturation and gradient norms at each evaluation
    threads: int = 0  # torch threads; 0 keeps torch's default
    device: str | None = None  # auto | cpu | cuda[:N]; None: auto. Saved, not compared on resume (any device)
    heads: int = 1  # > 1: that many heads trained apart (seeds: head_seed) and scored by their mean (HeadEnsemble)

    # ranges and choices checked (with the types above) by damvad.config before anything is written
    limits: ClassVar[dict[str, str | tuple]] = {
        "num_clips": "[1, inf)", "batch_anomalous": "[1, inf)", "batch_normal": "[1, inf)",
        "iterations": "[1, inf)", "lr": "(0, inf)", "lambda_smooth": "[0, inf)", "lambda_sparse": "[0, inf)",
        "weight_l2": "[0, inf)", "activity_l2": "[0, inf)",
        "logit_penalty": "[0, inf)", "logit_bound": "(0, inf)", "val_fraction": "[0, 1)", "eval_every": "[1, inf)",
        "checkpoint_every": "[1, inf)", "split_seed": "[0, inf)", "seeds": "[0, inf)", "threads": "[0, inf)",
        "pairing": ("all_pairs", "paired"), "crop_sampling": CROP_SAMPLING, "selection": SELECTIONS,
        "average_from": "[0, 1)",
        "reduction": ("mean", "released"), "max_train_videos": "[0, inf)", "heads": "[1, inf)",
    }
    renamed: ClassVar[dict[str, str]] = {"crops": "crop_sampling"}  # crops is extract's crop set (center|5|10)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.crop_sampling not in CROP_SAMPLING:
            raise ValueError(f"crop_sampling must be one of {', '.join(CROP_SAMPLING)}, got {self.crop_sampling!r}")
        if self.reduction not in ("mean", "released"):
            raise ValueError(f"reduction must be 'mean' or 'released', got {self.reduction!r}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {', '.join(SELECTIONS)}, got {self.selection!r}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if isinstance(self.seeds, int):
            self.seeds = [self.seeds]
        DAMConfig(variant=self.variant, **self.model)  # fail early on a bad variant/model field

    def model_config(self, feature_dim: int, temporal: int) -> DAMConfig:
        extra = {"feature_dim": feature_dim, "temporal": temporal, **self.model}
        return DAMConfig(variant=self.variant, **extra)

    def holdout(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(training, held-out) video indices of this config's runs: the one split a run trains on, an ensemble's
        held-out AUC reads and a benchmark calibrates its threshold on."""
        return holdout_split(labels, self.val_fraction, self.split_seed)


class Trainer:
    """One seed's run in ``run_dir``; :meth:`run` resumes from ``checkpoint.pt`` when present."""

    def __init__(self, cfg: TrainConfig, data: TrainData, run_dir: Path, seed: int, meta: dict[str, Any],
                 monitor: Monitor | None = None, device: Any = "cpu"):
        """``device`` (``auto | cpu | cuda[:N]``): where the model and its batches are; the clips stay in
        CPU memory, a batch moves per step. A run resumes on any device (:func:`same_run`); the devices it
        ran on are recorded in order (``self.devices``)."""
        self.cfg, self.data, self.run_dir, self.seed, self.meta = cfg, data, Path(run_dir), seed, meta
        self.device = resolve_device(device)
        self.devices = [str(self.device)]
        self.monitor = monitor
        self._grads: dict[str, float] = {}
        t, n = data.clips.shape[-2:]
        self.train_idx, self.val_idx = cfg.holdout(data.labels)
        if cfg.max_train_videos:
            self.train_idx = stratified_subset(self.train_idx, data.labels, cfg.max_train_videos, cfg.split_seed)
        model_config = cfg.model_config(int(n), int(t))
        if cfg.calibrate_dnt and model_config.dissimilarity_kind is not None:
            model_config = dataclasses.replace(model_config, dnt_scale=dnt_scale_for(
                data.clips[torch.as_tensor(self.train_idx), :, 0].float(), model_config))
        torch.manual_seed(seed)
        self.model = DAMModel(model_config).to(self.device)  # initialised on the CPU: the same weights anywhere
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.rng = np.random.default_rng(seed)
        self.iteration = 0
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"metric": -math.inf, "iteration": 0}
        self.best_state: dict[str, torch.Tensor] | None = None
        self.average: dict[str, torch.Tensor] | None = None  # selection=average: the running mean of the weights
        self.averaged = 0  # steps in it
        self.collapsed_at = 0  # the first step whose batch scored one constant (0: never)
        val_labels = data.labels[self.val_idx]
        self.selection = cfg.selection
        self.has_val = len(self.val_idx) > 0 and val_labels.min() != val_labels.max()
        if self.selection == "val_auc" and not self.has_val:
            log.warning("held-out set has no videos of both classes: keeping the weights averaged over the budget's "
                        "tail instead (selection=average)")
            self.selection = "average"
        self.selection_warning = ""
        if self.selection == "val_auc" and min(np.bincount(val_labels, minlength=2)) < MIN_VAL_PER_CLASS:
            counts = np.bincount(val_labels, minlength=2)
            self.selection_warning = (
                f"selection=val_auc on {counts[0]} normal + {counts[1]} anomalous held-out videos is unreliable "
                f"(fewer than {MIN_VAL_PER_CLASS} of each class: its AUC moves in steps of "
                f"{1 / max(counts[0] * counts[1], 1):.3f}, and a chance peak keeps an early, untrained checkpoint): "
                "consider selection=average")
            log.warning(self.selection_warning)
        self.anom = self.train_idx[data.labels[self.train_idx] == 1]
        self.norm = self.train_idx[data.labels[self.train_idx] == 0]

    def provenance(self) -> dict[str, Any]:
        """The run's provenance: the training data's, the seed, and the device it trained on."""
        return {**self.meta, "seed": self.seed, **device_info(self.device)}

    # ------------------------------------------------------------ checkpoints
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoint.pt"

    def state(self) -> dict[str, Any]:
        return {
            "iteration": self.iteration,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            **({"cuda_rng": torch.cuda.get_rng_state(self.device)} if self.device.type == "cuda" else {}),
            "numpy_rng": self.rng.bit_generator.state,
            "history": self.history,
            "best": self.best,
            "best_state": self.best_state,
            "average": self.average,
            "averaged": self.averaged,
            "collapsed_at": self.collapsed_at,
            "config_yaml": dump_config(self.cfg),
            "devices": self.devices,
        }

    def save_checkpoint(self) -> None:
        buf = io.BytesIO()
        torch.save(self.state(), buf)
        atomic_write_bytes(self.checkpoint_path, buf.getvalue())
        atomic_write_json(self.run_dir / "history.json", self.history)

    def load_checkpoint(self) -> bool:
        if not self.checkpoint_path.exists():
            return False
        ckpt = load_torch_file(self.checkpoint_path, "a training checkpoint")
        if not isinstance(ckpt, dict) or "config_yaml" not in ckpt:
            raise LoadError(f"{self.checkpoint_path}: not a damvad training checkpoint")
        if not same_run(ckpt.get("config_yaml"), self.cfg):
            raise ValueError(
                f"{self.checkpoint_path}: the run was started with another config; use a new --out "
                "or delete the folder to start again"
            )
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            torch.set_rng_state(ckpt["torch_rng"])
            if self.device.type == "cuda" and "cuda_rng" in ckpt:
                torch.cuda.set_rng_state(ckpt["cuda_rng"], self.device)
            self.rng.bit_generator.state = ckpt["numpy_rng"]
            self.iteration = int(ckpt["iteration"])
            self.history = list(ckpt["history"])
            self.best = dict(ckpt["best"])
            self.best_state = ckpt["best_state"]
            average = ckpt.get("average")  # checkpoints from before averaging have none
            self.average = None if average is None else {k: v.to(self.device) for k, v in average.items()}
            self.averaged = int(ckpt.get("averaged", 0))
            self.collapsed_at = int(ckpt.get("collapsed_at", 0))
            before = [str(d) for d in ckpt.get("devices") or []]
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise LoadError(f"{self.checkpoint_path}: damaged training checkpoint ({type(exc).__name__}: {exc}); "
                            "delete it to restart this seed") from exc
        self.devices = before or self.devices  # checkpoints written before devices were recorded have none
        if self.devices[-1] != str(self.device):
            log.info("%s: resuming on %s (the checkpoint was written on %s)", self.run_dir, self.device,
                     self.devices[-1])
            self.devices = [*self.devices, str(self.device)]
        return True

    # ------------------------------------------------------------ training
    def _sample(self, pool: np.ndarray, k: int) -> np.ndarray:
        return self.rng.choice(pool, size=k, replace=len(pool) < k)

    def _bags(self, idx: np.ndarray) -> torch.Tensor:
        clips = self.data.clips[torch.as_tensor(idx)]  # (k, C, crops, t, n)
        if self.cfg.crop_sampling == "each" and self.data.crops > 1:
            crop = torch.as_tensor(self.rng.integers(0, self.data.crops, size=len(idx)))
            picked = clips[torch.arange(len(idx)), :, crop]
        else:
            picked = clips[:, :, 0]
        return picked.float().to(self.device, non_blocking=True)

    def train_step(self) -> dict[str, float]:
        cfg = self.cfg
        a_idx = self._sample(self.anom, cfg.batch_anomalous)
        n_idx = self._sample(self.norm, cfg.batch_normal)
        batch = torch.cat([self._bags(a_idx), self._bags(n_idx)])
        self.model.train()
        out = self.model(batch)
        wd = out["weighted"]
        ka = len(a_idx)
        loss = ranking_loss(wd[:ka], wd[ka:], cfg.lambda_smooth, cfg.lambda_sparse, cfg.pairing, cfg.reduction)
        total = loss.total
        reg = torch.zeros((), device=self.device)
        if cfg.regularize:
            reg = regularization(self.model, out, cfg.weight_l2, cfg.activity_l2)
            total = total + reg
        if cfg.logit_penalty > 0:
            wall = cfg.logit_penalty * logit_wall(out["logit"], cfg.logit_bound)
            reg, total = reg + wall, total + wall
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if cfg.diagnostics and self.records(self.iteration + 1):  # only the steps whose row keeps them
            self._grads = grad_norms(self.model)
        self.optimizer.step()
        self.iteration += 1
        self._check_collapse(out["score"].detach())
        if self.selection == "average" and self.iteration > self.average_start:
            self._accumulate()
        return {**loss.as_floats(), "regularization": float(reg.detach()), "objective": float(total.detach())}

    def _check_collapse(self, scores: torch.Tensor) -> None:
        """Note (once) the first step at which every clip of the batch got the same score."""
        if not self.collapsed_at and float(scores.max() - scores.min()) < COLLAPSED_SCORE_RANGE:
            self.collapsed_at = self.iteration
            log.warning("seed %d: training collapsed at iteration %d: every clip of the batch scored %.3g (a "
                        "saturated sigmoid passes no gradient; the run will not recover)", self.seed,
                        self.iteration, float(scores.mean()))

    def collapse_warning(self) -> str:
        if not self.collapsed_at:
            return ""
        after = self.iteration - max(self.collapsed_at, self.average_start + 1) + 1
        kept = {"average": f"; the kept weights average {after} steps after it" if after > 0 else "",
                "last": "; the kept weights are the collapsed ones"}.get(self.selection, "")
        return (f"training collapsed at iteration {self.collapsed_at}: the head scored every clip of a batch the "
                f"same (a saturated sigmoid passes no gradient){kept}. Train again with another seed, a lower lr "
                "or fewer iterations")

    def records(self, iteration: int) -> bool:
        """Whether the history gets a row (evaluation, diagnostics) after this iteration."""
        return iteration % self.cfg.eval_every == 0 or iteration == self.cfg.iterations

    @property
    def average_start(self) -> int:
        """The last step left out of the average: every later step's weights are averaged."""
        return int(math.floor(self.cfg.average_from * self.cfg.iterations))

    @torch.no_grad()
    def _accumulate(self) -> None:
        state = self.model.state_dict()
        self.averaged += 1
        if self.average is None:
            self.average = {k: v.detach().float().clone() for k, v in state.items()}
            return
        for k, v in state.items():
            self.average[k] += (v.detach().float() - self.average[k]) / self.averaged

    def inspect(self) -> dict[str, float]:
        """:func:`damvad.diagnostics.head_stats` on the held-out videos (else the training videos), crop 0."""
        idx = self.val_idx if len(self.val_idx) else self.train_idx
        return head_stats(self.model, self.data.clips[torch.as_tensor(idx), :, 0].to(self.device))

    def validate(self) -> float:
        return held_out_auc(self.model, self.data, self.val_idx)

    def run(self, progress: bool = True) -> dict[str, Any]:
        from damvad.progress import progress_bar

        cfg = self.cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        resumed = self.load_checkpoint()
        if not resumed:
            atomic_write_text(self.run_dir / "config.yaml", dump_config(cfg))
            atomic_write_json(self.run_dir / "provenance.json", self.provenance())
        bar = progress_bar(total=cfg.iterations, initial=self.iteration, desc=f"train seed {self.seed}",
                   disable=not progress, unit="it", dynamic_ncols=True)
        running: list[float] = []
        start = time.perf_counter()
        while self.iteration < cfg.iterations:
            terms = self.train_step()
            running.append(terms["objective"])
            bar.update(1)
            it = self.iteration
            if self.records(it):
                row: dict[str, Any] = {"iteration": it, "loss": float(np.mean(running)), **terms}
                running = []
                if cfg.diagnostics:
                    row.update(self._grads)
                    row.update(self.inspect())
                if self.monitor is not None:
                    row.update(self.monitor(self.model, it))
                if self.has_val:  # recorded whatever the selection: a diagnostic of the run
                    row["val_video_auc"] = self.validate()
                if self.selection == "val_auc":
                    # ties go to the later, longer-trained model (a small held-out set saturates early)
                    if row["val_video_auc"] >= self.best["metric"]:
                        self.best = {"metric": row["val_video_auc"], "iteration": it}
                        self.best_state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
                    bar.set_postfix(loss=f"{row['loss']:.3f}", val_auc=f"{row['val_video_auc']:.3f}")
                else:
                    bar.set_postfix(loss=f"{row['loss']:.3f}")
                self.history.append(row)
            if it % cfg.checkpoint_every == 0 or it == cfg.iterations:
                self.save_checkpoint()
        bar.close()
        return self.finish(time.perf_counter() - start)

    def finish(self, seconds: float = 0.0) -> dict[str, Any]:
        """Load the kept weights (the rule's choice), write ``model.pt`` and ``result.json``; the rule and its
        inputs are recorded in both (``selection``, ``rule``)."""
        rule = {"selection": self.selection, "configured": self.cfg.selection, "iterations": self.cfg.iterations,
                "held_out_videos": int(len(self.val_idx)), "training_videos": int(len(self.train_idx))}
        if self.selection == "val_auc" and self.best_state is not None:
            self.model.load_state_dict(self.best_state)
            chosen = {"selection": "val_auc", "iteration": self.best["iteration"],
                      "val_video_auc": self.best["metric"], "held_out_videos": int(len(self.val_idx))}
        elif self.selection == "average" and self.average is not None:
            dtypes = {k: v.dtype for k, v in self.model.state_dict().items()}  # the average is kept in float32
            self.model.load_state_dict({k: v.to(dtypes[k]) for k, v in self.average.items()})
            chosen = {"selection": "average", "iteration": self.iteration,
                      "averaged_steps": self.averaged, "averaged_from": self.average_start + 1}
            rule["average_from"] = self.cfg.average_from
        else:
            chosen = {"selection": "last", "iteration": self.iteration,
                      "reason": "fixed budget" if self.cfg.selection == "last" else "no step to average"}
        if self.has_val and chosen["selection"] != "val_auc":
            chosen["val_video_auc"] = self.validate()  # of the kept model: a diagnostic, not a choice
        warnings = [w for w in (self.selection_warning, self.collapse_warning()) if w]
        if warnings:
            chosen["warning"] = "; ".join(warnings)
        if self.collapsed_at:
            chosen["collapsed_at"] = self.collapsed_at
        result = {
            "seed": self.seed,
            "variant": self.cfg.variant,
            "parameters": count_parameters(self.model),
            "iterations": self.iteration,
            "seconds": seconds,
            "device": str(self.device),
            "devices": self.devices,  # every device the run trained on, in order (a resumed run may move)
            **chosen,
            "rule": rule,
        }
        save_model_file(self.run_dir / "model.pt", self.model, ModelCard(
            features=FeatureContract.from_dict(self.meta["feature_contract"]),
            clips=ClipProtocol(num_clips=self.cfg.num_clips), train=TrainResult.from_dict(result),
            provenance=Provenance.from_dict(self.provenance()),
            held_out_videos=tuple(self.data.names[i] for i in self.val_idx)))
        atomic_write_json(self.run_dir / "result.json", result)
        return result


def log_split(trainer: Trainer, what: str) -> None:
    """One log line per trained model: its videos and selection rule."""
    log.info("%s: %d training videos (%d anomalous), %d held out; selection: %s", what, len(trainer.train_idx),
             len(trainer.anom), len(trainer.val_idx), trainer.selection)


def head_seed(seed: int, head: int) -> int:
    """The training seed of head ``head`` of seed ``seed``'s ensemble: head 0 is the seed's own single-head run, and
    the heads of seeds 0-999 never share a seed."""
    return seed + HEAD_SEED_STRIDE * head


def _finished(run_dir: Path) -> dict[str, Any] | None:
    """The result of a run that wrote its model file and result, else None."""
    done = run_dir / "result.json"
    return json.loads(done.read_text()) if done.is_file() and (run_dir / "model.pt").is_file() else None


def train_seed(cfg: TrainConfig, data: TrainData, run_dir: Path, seed: int, meta: dict[str, Any],
               monitor: Monitor | None = None, device: Any = "cpu", progress: bool = True) -> dict[str, Any]:
    """One seed's model in ``run_dir/model.pt`` and its ``result.json``; a finished seed is read back, a started one
    resumed. With ``cfg.heads`` > 1, head k trains as a run of its own in ``run_dir/head{k}`` with seed
    ``head_seed(seed, k)``, and the model file holds every head (:class:`damvad.model.HeadEnsemble`)."""
    run_dir = Path(run_dir)
    if (done := _finished(run_dir)) is not None:
        return done
    if cfg.heads == 1:
        return Trainer(cfg, data, run_dir, seed, meta, monitor, device=device).run(progress)
    heads = []
    for k in range(cfg.heads):
        head_dir = run_dir / f"head{k}"
        if (done := _finished(head_dir)) is None:
            trainer = Trainer(cfg, data, head_dir, head_seed(seed, k), meta, monitor, device=device)
            log_split(trainer, f"seed {seed} head {k} (training seed {trainer.seed})")
            done = trainer.run(progress)
        heads.append(done)
    models, cards = zip(*(load_model(run_dir / f"head{k}" / "model.pt") for k in range(cfg.heads)), strict=True)
    ensemble = HeadEnsemble(list(models))
    first = heads[0]
    warnings = [f"head {k}: {r['warning']}" for k, r in enumerate(heads) if r.get("warning")]
    result = {
        "seed": seed, "variant": cfg.variant, "parameters": count_parameters(ensemble),
        "iterations": first["iterations"], "seconds": float(sum(r["seconds"] for r in heads)),
        "device": first["device"], "devices": first["devices"], "selection": first["selection"],
        "iteration": first["iteration"], "rule": first["rule"],
        "heads": [{"seed": r["seed"], **{k: r[k] for k in ("val_video_auc", "collapsed_at", "warning") if k in r}}
                  for r in heads],
        **({"warning": "; ".join(warnings)} if warnings else {}),
    }
    val_idx = cfg.holdout(data.labels)[1]  # every head's held-out videos
    if len(set(data.labels[val_idx])) == 2:  # a diagnostic, as for one head
        result["val_video_auc"] = held_out_auc(ensemble.to(resolve_device(device)), data, val_idx)
    provenance_ = {**cards[0].provenance.to_dict(), "seed": seed, "head_seeds": [r["seed"] for r in heads]} \
        if cards[0].provenance is not None else None
    save_model_file(run_dir / "model.pt", ensemble, dataclasses.replace(
        cards[0], train=TrainResult.from_dict(result),
        provenance=Provenance.from_dict(provenance_) if provenance_ else None))
    atomic_write_json(run_dir / "result.json", result)
    return result


def same_run(saved_yaml: str | None, cfg: TrainConfig) -> bool:
    """Whether a run started with the config ``saved_yaml`` may be resumed with ``cfg``: every key but
    ``device`` agrees. The device may differ (checkpoints load onto the CPU, then move to the run's device;
    results then match an uninterrupted run up to the devices' kernels, not bit for bit)."""
    def comparable(data: Any) -> dict[str, Any]:
        data = renamed_keys(TrainConfig, dict(data), "the run's config") if isinstance(data, dict) else {}
        data.pop("device", None)  # configs saved before device was a key have none
        return data

    if not saved_yaml:
        return False
    try:
        saved = yaml.safe_load(saved_yaml)
    except yaml.YAMLError:
        return False
    return isinstance(saved, dict) and comparable(saved) == comparable(dataclasses.asdict(cfg))


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True,
          monitor: Monitor | None = None, device: Any = None) -> dict[str, Any]:
    """Train every seed of ``cfg`` on ``device`` (default ``cfg.device``; ``None`` / ``auto``: a CUDA device
    when torch sees one); returns the summary (also written to ``out/summary.json``). A ``device`` given
    here is saved in the run's config like one from the config.

    ``monitor(model, iteration)`` adds fields to each evaluation row of the history (e.g. a dev-set AUC
    for a diagnosis; never used for selection)."""
    if not cfg.dataset or not cfg.features:
        raise ValueError("training needs `dataset` and `features` (set them in the config or on the command line)")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if device is not None:
        cfg = dataclasses.replace(cfg, device=str(device))
    dev = resolve_device(cfg.device)  # a bad or missing device fails before anything is written
    out = Path(cfg.out)
    if out.exists() and any(out.iterdir()) and not resume:
        raise FileExistsError(f"{out} already holds a run: pass --resume to continue it, or choose another --out")
    dataset = get_dataset(cfg.dataset)
    store = FeatureStore(cfg.features)
    data = load_train_data(dataset, store, cfg.num_clips, progress)
    meta = training_meta(dataset, store, data)
    # what get_dataset() was given: calibrate and evaluate default to it
    meta["dataset_source"] = str(Path(cfg.dataset).resolve()) if Path(cfg.dataset).exists() else cfg.dataset
    saved = out / "config.yaml"
    if resume and saved.is_file() and not same_run(saved.read_text(), cfg):
        raise ValueError(f"{saved}: the run in {out} was started with another config; resume it with the same "
                         "settings, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(saved, dump_config(cfg))
    results = []
    for seed in cfg.seeds:
        if cfg.heads == 1:
            trainer = Trainer(cfg, data, out / f"seed{seed}", seed, meta, monitor, device=dev)
            log_split(trainer, f"seed {seed}")
            results.append(trainer.run(progress))
        else:  # each head's Trainer logs its own split
            results.append(train_seed(cfg, data, out / f"seed{seed}", seed, meta, monitor, dev, progress))
    summary = summarize_seeds(results)
    summary["provenance"] = {**meta, **device_info(dev)}
    summary["config"] = dataclasses.asdict(cfg)
    atomic_write_json(out / "summary.json", summary)
    return summary


def summarize_seeds(results: list[dict[str, Any]]) -> dict[str, Any]:
    vals = [r["val_video_auc"] for r in results if "val_video_auc" in r]
    summary: dict[str, Any] = {"runs": results}
    if vals:
        summary["val_video_auc_mean"] = float(np.mean(vals))
        summary["val_video_auc_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
    return summary
