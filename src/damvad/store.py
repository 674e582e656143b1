"""The feature store: one ``.npy`` of snippet maps and one ``.json`` manifest row per video.

Layout of a features folder::

    NAME.npy       (snippets, crops, 7, 1024) float32/float16 I3D maps
    NAME.json      the video's manifest row (written after the .npy: its presence marks "done")
    manifest.csv   every row, rebuilt from the .json files at the end of each extraction

The per-video JSON is the source of truth: a run killed between the two writes leaves a ``.npy``
without its ``.json``, which the next run redoes. Nothing here unpickles anything.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from damvad.utils import atomic_write_text

MANIFEST_COLUMNS = [
    "name",
    "path",
    "frames",
    "fps",
    "snippet_len",
    "num_snippets",
    "crops",
    "dtype",
    "precision",
    "weights_sha256",
    "damvad_version",
]


class FeatureStoreError(RuntimeError):
    """A feature folder or file that cannot be used as it is."""


class InconsistentRecordError(FeatureStoreError):
    """A video's row that contradicts itself or its feature file; ``problem`` says how."""

    def __init__(self, message: str, problem: str):
        super().__init__(message)
        self.problem = problem


def row_problem(row: dict[str, Any], num_snippets: int) -> str | None:
    """What is inconsistent in a video's row (frame count, snippet ranges, snippet count), or None.

    The snippet ranges must tile [0, frames) in order, each ``snippet_len`` long but the last, one per
    snippet of the feature file: an edited or mixed-up row would otherwise shift the ground truth."""
    try:
        frames = int(row["frames"])
        snippet_len = int(row.get("snippet_len", 64))
        declared = row.get("num_snippets")
        ranges = row.get("snippet_ranges")
    except (KeyError, TypeError, ValueError) as exc:
        return f"unreadable frame count ({type(exc).__name__}: {exc})"
    if declared is not None and declared != num_snippets:
        return f"num_snippets {declared} but the feature file has {num_snippets} snippets"
    if frames <= 0 or snippet_len <= 0:
        return f"manifest says {frames} frames, snippet_len {snippet_len}"
    expected = -(-frames // snippet_len)
    if num_snippets != expected:
        return f"{num_snippets} snippets, but {frames} frames make {expected} snippets of {snippet_len}"
    if ranges is None:
        return None  # rows written before ranges were recorded: the shape checks are all there is
    try:
        pairs = [(int(a), int(b)) for a, b in ranges]
    except (TypeError, ValueError):
        return "snippet_ranges is not a list of [start, end) pairs"
    if len(pairs) != num_snippets:
        return f"{len(pairs)} snippet_ranges for {num_snippets} snippets"
    for k, (a, b) in enumerate(pairs):
        last = k == len(pairs) - 1
        if a != k * snippet_len or not (b - a == snippet_len or (last and 0 < b - a <= snippet_len)):
            return f"snippet_ranges[{k}] is [{a}, {b}), expected [{k * snippet_len}, ...) of {snippet_len} frames"
    if pairs[-1][1] != frames:
        return f"frames {frames} but snippet_ranges end at frame {pairs[-1][1]}"
    return None


class FeatureStore:
    """Read access (and row writing) for a folder of extracted features."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.root)!r})"

    def npy_path(self, name: str) -> Path:
        return self.root / f"{name}.npy"

    def json_path(self, name: str) -> Path:
        return self.root / f"{name}.json"

    def names(self) -> list[str]:
        """Names of the finished videos (those with both files), sorted."""
        if not self.root.is_dir():
            return []
        out = []
        for meta in self.root.glob("*.json"):
            if meta.name.startswith(".") or meta.name == "manifest.json":
                continue
            if meta.with_suffix(".npy").exists():
                out.append(meta.stem)
        return sorted(out)

    def __contains__(self, name: str) -> bool:
        return self.json_path(name).exists() and self.npy_path(name).exists()

    def __len__(self) -> int:
        return len(self.names())

    def meta(self, name: str) -> dict[str, Any]:
        path = self.json_path(name)
        if not path.exists():
            raise FeatureStoreError(f"{path}: no manifest row for video {name!r} (not extracted yet?)")
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise FeatureStoreError(f"{path}: manifest row is not valid JSON ({exc})") from exc

    def frames(self, name: str) -> int:
        return int(self.meta(name)["frames"])

    def load(self, name: str, mmap: bool = True) -> np.ndarray:
        """The (S, crops, 7, 1024) maps; checked against the manifest row, never unpickled."""
        path = self.npy_path(name)
        if not path.exists():
            raise FeatureStoreError(f"{path}: feature file for video {name!r} is missing")
        try:
            arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise FeatureStoreError(f"{path}: unreadable feature file ({exc})") from exc
        meta = self.meta(name)
        expected = tuple(meta.get("shape", arr.shape))
        if arr.shape != expected or arr.ndim != 4:
            raise FeatureStoreError(
                f"{path}: shape {arr.shape} does not match its manifest row {expected} "
                "(expected (snippets, crops, 7, 1024))"
            )
        problem = row_problem(meta, arr.shape[0])
        if problem:
            raise InconsistentRecordError(f"{self.json_path(name)}: the record of video {name!r} contradicts "
                                          f"itself: {problem}; extract it again (damvad extract --overwrite)", problem)
        return arr

    def features(self, name: str) -> np.ndarray:
        """The maps in memory as float32, refused when any value is NaN/inf: what scoring and training read."""
        arr = np.asarray(self.load(name), dtype=np.float32)
        bad = np.flatnonzero(~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1))
        if bad.size:
            shown = ", ".join(map(str, bad[:10])) + (f" ... ({bad.size} in all)" if bad.size > 10 else "")
            raise FeatureStoreError(f"{self.npy_path(name)}: non-finite values (NaN/inf) in the features of video "
                                    f"{name!r}, snippet(s) {shown} of {arr.shape[0]}; extract it again "
                                    "(damvad extract --overwrite)")
        return arr

    def write_manifest(self) -> Path:
        """Rebuild manifest.csv from the per-video rows (atomic)."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=MANIFEST_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for name in self.names():
            writer.writerow(self.meta(name))
        path = self.root / "manifest.csv"
        atomic_write_text(path, buf.getvalue())
        return path

    def manifest_hash(self) -> str:
        """A hash of every row (sorted by name): training runs record it to pin their inputs."""
        digest = hashlib.sha256()
        for name in self.names():
            meta = self.meta(name)
            digest.update(json.dumps(meta, sort_keys=True).encode())
        return digest.hexdigest()
