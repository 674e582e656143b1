"""Alert threshold calibration: the score that a requested fraction of normal frames reaches.

Only video-level labels are needed (normal videos). By default the normal videos the training run
held out are used, since scores on videos the model was trained on are optimistic (too low).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from damvad.contract import check_contract, contract_of_records, model_contract, model_snippets_per_clip
from damvad.datasets import get_dataset
from damvad.evaluate import score_split
from damvad.metrics import false_alarm_rate, threshold_for_far
from damvad.modelfile import load_model, update_model_file
from damvad.store import FeatureStore

FAR_DEFINITION = "share of frames of normal videos with score >= threshold (per frame, as evaluate)"


def calibrate(
    model_path: str | Path,
    features: str | Path | None = None,
    dataset: str | None = None,
    split: str = "train",
    far: float = 0.01,
    snippets_per_clip: int | None = None,
    held_out_only: bool = True,
    write: bool = True,
    device: Any = None,
) -> dict[str, Any]:
    """Set the model file's threshold so that ``far`` of normal *frames* (online protocol, score D) reach it.

    Per frame, as :mod:`damvad.evaluate` measures false alarms (a clip covering more frames weighs more).
    Defaults come from the model file: ``features`` and ``dataset`` those it was trained on (its held-out
    normal videos are there), ``snippets_per_clip`` the one it was calibrated for before (else 1). The
    features must keep the model's feature contract (:mod:`damvad.contract`); the threshold records theirs."""
    if not 0 < far < 1:
        raise ValueError(f"far must be a fraction in (0, 1), got {far}")
    model, meta = load_model(model_path, device)  # None: auto, a CUDA device when torch sees one
    prov = meta.get("provenance") or {}
    features = features if features is not None else prov.get("features")
    dataset = dataset if dataset is not None else (prov.get("dataset_source") or prov.get("dataset"))
    if not features:
        raise ValueError(f"{meta['path']}: no features folder recorded; give --features")
    if snippets_per_clip is None:
        snippets_per_clip = model_snippets_per_clip(meta)
    store = FeatureStore(features)
    if dataset is not None:
        normal = [it.name for it in get_dataset(dataset).videos(split) if it.label == 0]
    else:
        normal = []
    held = set(meta.get("held_out_videos") or [])
    source = f"{dataset}:{split}" if dataset else str(store.root)
    if held_out_only and held and normal:
        chosen = [n for n in normal if n in held]
        if chosen:
            normal, source = chosen, f"{source} (normal videos held out from training)"
    if not normal:
        raise ValueError("no normal videos to calibrate on: give --dataset (its normal videos of --split)")
    missing = [n for n in normal if n not in store]
    if missing:
        raise ValueError(f"{store.root}: no features for {len(missing)} normal video(s): {', '.join(missing[:10])}")
    expected = model_contract(meta)
    used = contract_of_records((store.record(n) for n in normal), f"{store.root} (calibration videos)")
    warnings = check_contract(expected, used, "the model's training features", f"features in {store.root}") \
        if expected is not None else []
    scored = score_split(model, store, normal, "online", snippets_per_clip=snippets_per_clip)
    flat = np.concatenate([vs.per_frame("D") for vs in scored.values()])
    value = threshold_for_far(flat, far)
    threshold = {
        "value": float(value),
        "far_target": float(far),
        "far_on_calibration_frames": false_alarm_rate(flat, value),
        "far_definition": FAR_DEFINITION,
        "score": "D",
        "protocol": "online",
        "snippets_per_clip": snippets_per_clip,
        "calibrated_on": source,
        "num_videos": len(normal),
        "num_frames": int(flat.size),
        "features": {"root": str(store.root), "manifest_sha256": store.manifest_hash(),
                     "contract": used.to_dict()},
        "warnings": warnings,
        "device": str(next(model.parameters()).device),
    }
    if write:
        update_model_file(meta["path"], threshold=threshold)
    return threshold
