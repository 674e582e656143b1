"""Batch I3D feature extraction: videos in, one ``.npy`` + manifest row per video out.

Idempotent and resumable: a video whose row exists with the same settings is skipped; each file is
written atomically (features first, then the row that marks the video done), so a killed run loses
at most the video in flight. One broken video is reported and skipped, never fatal for the batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from damvad import __version__
from damvad.store import FeatureStore, FeatureStoreError
from damvad.utils import atomic_save_npy, atomic_write_json
from damvad.video import (
    CROP_NAMES,
    SNIPPET_LEN,
    VideoError,
    VideoInfo,
    find_videos,
    normalize_crops,
    preprocessed_snippets,
    probe,
)

log = logging.getLogger(__name__)

FeatureFn = Callable[[Any], Any]  # (N, 3, 64, 224, 224) float in [-1, 1] -> (N, 7, 1024)


@dataclass
class ExtractorSpec:
    """What identifies a set of features: a rerun with a different spec redoes the video."""

    crops: str = "center"
    precision: str = "fp32"
    dtype: str = "float32"
    weights_sha256: str = ""
    snippet_len: int = SNIPPET_LEN


@dataclass
class ExtractReport:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    frames: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        fps = self.frames / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"extracted {len(self.done)} video(s), skipped {len(self.skipped)} already done, "
            f"failed {len(self.failed)}; {self.frames} frames in {self.seconds:.1f} s ({fps:.1f} frames/s)"
        ]
        for name, why in self.failed.items():
            lines.append(f"  FAILED {name}: {why}")
        return "\n".join(lines)


def video_name(path: Path) -> str:
    return path.stem


def build_feature_fn(
    precision: str = "fp32",
    compile: bool = True,
    batch_size: int = 1,
    checkpoint: str | Path | None = None,
) -> tuple[FeatureFn, str]:
    """The fast I3D path and its weights' sha256 (compiled once per process and cached)."""
    from damvad.i3d import FastI3D, load_i3d

    model = load_i3d(checkpoint)
    fast = FastI3D(model, precision=precision, compile=compile, batch_size=batch_size)
    return fast, str(getattr(model, "weights_sha256", ""))


def _is_done(store: FeatureStore, name: str, spec: ExtractorSpec) -> bool:
    if name not in store:
        return False
    try:
        meta = store.meta(name)
        arr = store.load(name)
    except FeatureStoreError:
        return False
    same = (
        meta.get("crops") == len(CROP_NAMES[spec.crops])
        and meta.get("precision") == spec.precision
        and meta.get("dtype") == spec.dtype
        and meta.get("snippet_len") == spec.snippet_len
        and (not spec.weights_sha256 or meta.get("weights_sha256") == spec.weights_sha256)
    )
    return same and arr.shape[0] == meta.get("num_snippets")


def extract_video(
    path: Path,
    feature_fn: FeatureFn,
    spec: ExtractorSpec,
    on_frames: Callable[[int], None] | None = None,
    info: VideoInfo | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Features (S, crops, 7, 1024) and the manifest row for one video; raises VideoError."""
    import torch

    info = info or probe(path)
    maps: list[np.ndarray] = []
    ranges: list[list[int]] = []
    frames = 0
    for snip, x in preprocessed_snippets(path, spec.crops, spec.snippet_len):
        with torch.inference_mode():
            feats = feature_fn(torch.from_numpy(x))
        feats = feats.float().cpu().numpy() if hasattr(feats, "cpu") else np.asarray(feats, np.float32)
        if not np.isfinite(feats).all():
            raise VideoError(path, f"I3D produced non-finite features at snippet {snip.index}")
        maps.append(feats.astype(spec.dtype))
        ranges.append([snip.start, snip.end])
        frames = snip.end
        if on_frames is not None:
            on_frames(snip.end - snip.start)
    arr = np.stack(maps)
    row = {
        "name": video_name(path),
        "path": str(path),
        "frames": frames,
        "fps": info.fps,
        "width": info.width,
        "height": info.height,
        "declared_frames": info.declared_frames,
        "snippet_len": spec.snippet_len,
        "num_snippets": int(arr.shape[0]),
        "crops": int(arr.shape[1]),
        "crop_names": CROP_NAMES[spec.crops],
        "dtype": spec.dtype,
        "precision": spec.precision,
        "shape": list(arr.shape),
        "snippet_ranges": ranges,
        "weights_sha256": spec.weights_sha256,
        "damvad_version": __version__,
    }
    if info.declared_frames and info.declared_frames != frames:
        row["warning"] = f"container declares {info.declared_frames} frames, {frames} decoded"
        log.warning("%s: %s", path, row["warning"])
    return arr, row


def check_options(crops: str, precision: str, dtype: str) -> str:
    """The normalised crop mode; a ValueError for a precision or dtype that extraction does not know."""
    crops = normalize_crops(crops)
    if dtype not in ("float32", "float16"):
        raise ValueError(f"dtype must be float32 or float16, got {dtype!r}")
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be fp32 or bf16, got {precision!r}")
    return crops


def collect_videos(inputs: Sequence[str | Path] | Iterable[str | Path]) -> dict[str, Path]:
    """Video name -> path for every video in ``inputs``; two videos with one name are refused."""
    inputs = list(inputs)
    paths = find_videos(inputs)
    if not paths:
        raise ValueError(f"no videos found in {list(map(str, inputs))}")
    names: dict[str, Path] = {}
    for path in paths:
        name = video_name(path)
        if name in names and names[name] != path:
            raise ValueError(
                f"two videos share the name {name!r}: {names[name]} and {path}; "
                "feature files are named after the video, rename one"
            )
        names[name] = path
    return names


def open_store(out_dir: str | Path) -> FeatureStore:
    """The features folder, created, without the temporary files a killed run may have left."""
    store = FeatureStore(out_dir)
    store.root.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(store)
    return store


def remove_stale_temporaries(store: FeatureStore) -> None:
    """Delete the ``.*.tmp`` files of writers that are gone (call only when no writer is running)."""
    for stale in store.root.glob(".*.tmp"):  # never a finished file
        stale.unlink(missing_ok=True)


def split_done(
    store: FeatureStore, names: dict[str, Path], spec: ExtractorSpec, overwrite: bool = False
) -> tuple[list[tuple[str, Path]], list[str]]:
    """(videos to extract, names already done with this spec): the resume check of every engine."""
    todo: list[tuple[str, Path]] = []
    skipped: list[str] = []
    for name, path in names.items():
        if not overwrite and _is_done(store, name, spec):
            skipped.append(name)
        else:
            todo.append((name, path))
    return todo, skipped


def probe_all(
    todo: Sequence[tuple[str, Path]], errors: dict[str, VideoError] | None = None
) -> dict[str, VideoInfo]:
    """Each video probed once (progress totals, manifest rows); unreadable ones are left out (and put in
    ``errors`` when given)."""
    infos: dict[str, VideoInfo] = {}
    for name, path in todo:
        try:
            infos[name] = probe(path)
        except VideoError as exc:  # extract_video reports it with the batch's other failures
            if errors is not None:
                errors[name] = exc
    return infos


def extract_to_store(
    store: FeatureStore,
    name: str,
    path: Path,
    feature_fn: FeatureFn,
    spec: ExtractorSpec,
    on_frames: Callable[[int], None] | None = None,
    info: VideoInfo | None = None,
) -> dict[str, Any]:
    """Extract one video and write it: features first, then the row that marks it done (both atomic)."""
    arr, row = extract_video(path, feature_fn, spec, on_frames=on_frames, info=info)
    atomic_save_npy(store.npy_path(name), arr)
    atomic_write_json(store.json_path(name), row)
    return row


def extract(
    inputs: Sequence[str | Path] | Iterable[str | Path],
    out_dir: str | Path,
    crops: str = "center",
    precision: str = "fp32",
    dtype: str = "float32",
    compile: bool = True,
    checkpoint: str | Path | None = None,
    feature_fn: FeatureFn | None = None,
    weights_sha256: str = "",
    overwrite: bool = False,
    progress: bool = True,
) -> ExtractReport:
    """Extract features for every video in ``inputs`` (files, folders, ``.txt`` lists) into ``out_dir``."""
    from tqdm import tqdm

    crops = check_options(crops, precision, dtype)
    names = collect_videos(inputs)
    store = open_store(out_dir)
    report = ExtractReport()
    spec = ExtractorSpec(crops=crops, precision=precision, dtype=dtype, weights_sha256=weights_sha256)
    todo, report.skipped = split_done(store, names, spec, overwrite)

    if todo and feature_fn is None:
        feature_fn, spec.weights_sha256 = build_feature_fn(
            precision, compile, batch_size=1, checkpoint=checkpoint
        )
        # the sha is known only now: a video done with other weights is redone
        redo = [(n, p) for n, p in names.items() if n in report.skipped and not _is_done(store, n, spec)]
        report.skipped = [n for n in report.skipped if n not in dict(redo)]
        todo.extend(redo)

    infos = probe_all(todo)  # probed once: for the progress total and the manifest rows
    total = sum(info.declared_frames for info in infos.values())
    start = time.perf_counter()
    bar = tqdm(total=total or None, unit="frame", disable=not progress, dynamic_ncols=True, desc="extract")
    try:
        for i, (name, path) in enumerate(todo):
            bar.set_postfix_str(f"video {i + 1}/{len(todo)} {name}")
            try:
                row = extract_to_store(store, name, path, feature_fn, spec, on_frames=bar.update, info=infos.get(name))
            except VideoError as exc:
                report.failed[name] = exc.cause
                bar.write(f"error: {exc}")
                continue
            report.done.append(name)
            report.frames += row["frames"]
    finally:
        bar.close()
        report.seconds = time.perf_counter() - start
        if store.names():
            store.write_manifest()
    return report
