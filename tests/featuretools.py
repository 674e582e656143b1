"""A synthetic feature-level dataset: a folder dataset (placeholder video files, test annotations) and
a feature store whose anomalous videos hold a run of shifted snippets. Trains in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from damvad.store import FeatureRecord, FeatureStore


def synthetic_record(name: str, path: Path | str, maps: np.ndarray, frames: int, **fields) -> FeatureRecord:
    """The record extract would write for ``maps`` covering ``frames`` frames (snippet count, shape, ranges
    from the array), with the provenance of test features (weights "synthetic", fp32; backend not recorded);
    ``fields`` override any field."""
    defaults = {"fps": 25.0, "precision": "fp32", "weights_sha256": "synthetic", "damvad_version": "test"}
    return FeatureRecord.for_maps(name, path, maps, frames, **{**defaults, **fields})


def make_feature_dataset(root: Path, n_train: int = 24, n_test: int = 12, crops: int = 1, seed: int = 0,
                         t: int = 7, n: int = 1024, shift: float = 1.5) -> tuple[Path, Path]:
    """Returns (dataset_root, features_dir). Anomalous snippets: +shift on channels 0..63."""
    rng = np.random.default_rng(seed)
    data, feats = root / "data", root / "features"
    rows = ["name,start,end"]
    for split, count in (("train", n_train), ("test", n_test)):
        for i in range(count):
            label = i % 2
            name = f"{split}_{'anom' if label else 'norm'}_{i:03d}"
            folder = data / split / ("anomalous" if label else "normal")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{name}.mp4").write_bytes(b"")  # the dataset only needs the names
            num_snippets = int(rng.integers(20, 40))
            frames = num_snippets * 64 - int(rng.integers(0, 63))
            x = rng.normal(0.4, 0.25, size=(num_snippets, crops, t, n)).astype(np.float32)
            if label:
                start = int(rng.integers(3, num_snippets - 8))
                length = int(rng.integers(2, 6))
                x[start : start + length, :, :, :64] += shift
                if split == "test":  # training videos keep only their video-level label
                    rows.append(f"{name},{start * 64},{min((start + length) * 64, frames)}")
            FeatureStore(feats).save(x, synthetic_record(name, folder / f"{name}.mp4", x, frames))
    (data / "test" / "annotations.csv").write_text("\n".join(rows) + "\n")
    FeatureStore(feats).write_manifest()
    return data, feats


def train_killed_after(cfg, steps: int, monkeypatch) -> None:
    """Start ``cfg``'s run and kill it (KeyboardInterrupt) before its step ``steps + 1``; its last checkpoint stays."""
    import pytest

    import damvad.train as tr

    original, calls = tr.Trainer.train_step, {"n": 0}

    def dying_step(self):
        calls["n"] += 1
        if calls["n"] > steps:
            raise KeyboardInterrupt
        return original(self)

    with monkeypatch.context() as patch:
        patch.setattr(tr.Trainer, "train_step", dying_step)
        with pytest.raises(KeyboardInterrupt):
            tr.train(cfg, progress=False)
