"""Alert threshold calibration: the score that a requested fraction of normal frames reaches.

Only video-level labels are needed (normal videos). By default the normal videos the training run
held out are used, since scores on videos the model was trained on are optimistic (too low).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from damvad.contract import check_contract, contract_of_records
from damvad.datasets import get_dataset
from damvad.evaluate import score_split
from damvad.metrics import false_alarm_rate, threshold_for_far
from damvad.modelfile import CalibrationFeatures, ModelCard, Threshold, load_model, update_model_file
from damvad.stages import CalibrateConfig
from damvad.store import FeatureStore

FAR_DEFINITION = "share of frames of normal videos with score >= threshold (per frame, as evaluate)"


def calibrate(cfg: CalibrateConfig, *, write: bool = True) -> Threshold:
    """Set the model file's threshold so that ``cfg.far`` of normal *frames* (online protocol, score D) reach it.

    Per frame, as :mod:`damvad.evaluate` measures false alarms (a clip covering more frames weighs more).
    Defaults come from the model file: ``features`` and ``dataset`` those it was trained on (its held-out
    normal videos are there), ``snippets_per_clip`` the one it was calibrated for before (else 1). The
    features must keep the model's feature contract (:mod:`damvad.contract`); the threshold records theirs.
    ``cfg.model_file`` may be a run folder with one seed. ``write``: store it in the model file."""
    if not cfg.model_file:
        raise ValueError("calibrate needs a model file (argument or `model_file` in the config)")
    model, card = load_model(cfg.model_file, cfg.device)  # None: auto, a CUDA device when torch sees one
    prov = card.provenance
    features = cfg.features if cfg.features is not None else (prov.features if prov else None)
    dataset = cfg.dataset if cfg.dataset is not None else ((prov.dataset_source or prov.dataset) if prov else None)
    if not features:
        raise ValueError(f"{card.path}: no features folder recorded; give --features")
    snippets_per_clip = cfg.snippets_per_clip if cfg.snippets_per_clip is not None else card.snippets_per_clip
    store = FeatureStore(features)
    normal, source = _normal_videos(card, store, dataset, cfg.split, cfg.held_out_only)
    used = contract_of_records((store.record(n) for n in normal), f"{store.root} (calibration videos)")
    warnings = check_contract(card.features, used, "the model's training features", f"features in {store.root}") \
        if card.features is not None else []
    scored = score_split(model, store, normal, "online", snippets_per_clip=snippets_per_clip)
    flat = np.concatenate([vs.per_frame("D") for vs in scored.values()])
    value = threshold_for_far(flat, cfg.far)
    threshold = Threshold(
        value=float(value), far_target=float(cfg.far), far_on_calibration_frames=false_alarm_rate(flat, value),
        far_definition=FAR_DEFINITION, score="D", protocol="online", snippets_per_clip=snippets_per_clip,
        calibrated_on=source, num_videos=len(normal), num_frames=int(flat.size),
        features=CalibrationFeatures(str(store.root), store.manifest_hash(), used), warnings=tuple(warnings),
        device=str(next(model.parameters()).device),
    )
    if write:
        update_model_file(card.path, threshold=threshold)
    return threshold


def _normal_videos(card: ModelCard, store: FeatureStore, dataset: str | None, split: str,
                   held_out_only: bool) -> tuple[list[str], str]:
    """(the normal videos to calibrate on, where they come from): the dataset's normal videos of ``split``,
    only those the training run held out when it held out some (``held_out_only``)."""
    normal = [it.name for it in get_dataset(dataset).videos(split) if it.label == 0] if dataset is not None else []
    source = f"{dataset}:{split}" if dataset else str(store.root)
    held = set(card.held_out_videos)
    if held_out_only and held and normal:
        chosen = [n for n in normal if n in held]
        if chosen:
            normal, source = chosen, f"{source} (normal videos held out from training)"
    if not normal:
        raise ValueError("no normal videos to calibrate on: give --dataset (its normal videos of --split)")
    missing = [n for n in normal if n not in store]
    if missing:
        raise ValueError(f"{store.root}: no features for {len(missing)} normal video(s): {', '.join(missing[:10])}")
    return normal, source


def calibrate_model(model_file: str | Path, features: str | Path | None = None, *, write: bool = True,
                    **settings: Any) -> dict[str, Any]:
    """:func:`calibrate` with keyword settings (:class:`~damvad.stages.CalibrateConfig`'s fields); the
    threshold as stored in the model file (a dict)."""
    if settings.get("device") is not None:
        settings["device"] = str(settings["device"])  # a torch.device too
    cfg = CalibrateConfig(model_file=str(model_file), features=None if features is None else str(features),
                          **settings)
    return calibrate(cfg, write=write).to_dict()
