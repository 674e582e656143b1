"""Placeholder video files, dataset folders and feature files for the damvad.datasets tests."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from damvad.store import FeatureStore
from featuretools import synthetic_record


def touch(path: Path) -> Path:
    """A file with a video's name and no video inside (a dataset only lists names)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not really a video")
    return path


def fake_feature_files(
    root: Path,
    name: str,
    frames: int,
    crops: int = 1,
    snippets: int | None = None,
    tail: tuple[int, int] = (7, 1024),
    dtype=np.float16,
) -> None:
    """A feature file + manifest row as the extractor writes them (zeros; only shapes matter here)."""
    s = math.ceil(frames / 64) if snippets is None else snippets
    arr = np.zeros((s, crops, *tail), dtype=dtype)
    FeatureStore(root).save(arr, synthetic_record(name, f"/videos/{name}.mp4", arr, frames, fps=30.0))


def split_folder(tmp_path: Path) -> Path:
    """``mycams/{train,test}/{normal,anomalous}`` with a few placeholder videos (and one non-video)."""
    root = tmp_path / "mycams"
    touch(root / "train" / "normal" / "n1.mp4")
    touch(root / "train" / "normal" / "n2.avi")
    touch(root / "train" / "anomalous" / "fights" / "a1.mkv")
    touch(root / "train" / "anomalous" / "notes.txt")  # not a video: ignored
    touch(root / "test" / "normal" / "tn1.MP4")
    touch(root / "test" / "anomalous" / "ta1.webm")
    touch(root / "test" / "anomalous" / "ta2.ts")
    return root
