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
# A feature_fn with ``accepts_uint8 = True`` (every damvad.backends backend) gets uint8 crops in [0, 255]
# instead and scales them inside its graph: no float copy of the frames is made on the decoding thread.


@dataclass
class ExtractorSpec:
    """What identifies a set of features: a rerun with a different spec redoes the video."""

    crops: str = "center"
    precision: str = "fp32"
    dtype: str = "float32"
    weights_sha256: str = ""
    snippet_len: int = SNIPPET_LEN
    backend: str = ""  # recorded, not compared: torch and OpenVINO fp32 features agree to ~1e-6
    backend_info: dict[str, Any] = field(default_factory=dict)  # provenance (versions, int8 calibration)


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
    precision: str | None = None,
    compile: bool = True,
    batch_size: int = 1,
    checkpoint: str | Path | None = None,
    backend: str | None = None,
    calibration: Any = None,
) -> tuple[FeatureFn, str]:
    """An I3D backend (:mod:`damvad.backends`; ``None``: the defaults) and its weights' sha256.

    Cached per process (torch: compiled once) or on disk (OpenVINO: converted once).
    """
    from damvad.backends import build_backend

    fn = build_backend(backend, precision, checkpoint=checkpoint, compile=compile, calibration=calibration,
                       progress=True)
    return fn, fn.weights_sha256
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
    dtype = "uint8" if getattr(feature_fn, "accepts_uint8", False) else "float32"
    for snip, x in preprocessed_snippets(path, spec.crops, spec.snippet_len, dtype=dtype):
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
        "backend": spec.backend,
        "shape": list(arr.shape),
        "snippet_ranges": ranges,
        "weights_sha256": spec.weights_sha256,
        "damvad_version": __version__,
    }
    if spec.backend_info:
        row["backend_info"] = spec.backend_info
    if info.declared_frames and info.declared_frames != frames:
        row["warning"] = f"container declares {info.declared_frames} frames, {frames} decoded"
        log.warning("%s: %s", path, row["warning"])
    return arr, row


def extract(
    inputs: Sequence[str | Path] | Iterable[str | Path],
    out_dir: str | Path,
    crops: str = "center",
    precision: str | None = None,
    dtype: str = "float32",
    compile: bool = True,
    checkpoint: str | Path | None = None,
    feature_fn: FeatureFn | None = None,
    weights_sha256: str = "",
    overwrite: bool = False,
    progress: bool = True,
    backend: str | None = None,
    calibration: Any = None,
) -> ExtractReport:
    """Extract features for every video in ``inputs`` (files, folders, ``.txt`` lists) into ``out_dir``.

    ``backend`` / ``precision`` (``None``: the fastest measured, see :mod:`damvad.backends`) choose the I3D
    implementation; ``calibration`` (videos) is the int8 calibration set (default: built in).
    """
    from tqdm import tqdm

    from damvad.backends import resolve

    crops = normalize_crops(crops)
    if dtype not in ("float32", "float16"):
        raise ValueError(f"dtype must be float32 or float16, got {dtype!r}")
    if feature_fn is not None and precision is None:
        precision = getattr(feature_fn, "precision", "fp32")
    else:
        backend, precision = resolve(backend, precision)
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

    store = FeatureStore(out_dir)
    store.root.mkdir(parents=True, exist_ok=True)
    for stale in store.root.glob(".*.tmp"):  # left by a killed run; never a finished file
        stale.unlink(missing_ok=True)
    report = ExtractReport()
    spec = ExtractorSpec(crops=crops, precision=str(precision), dtype=dtype, weights_sha256=weights_sha256,
                         backend=str(getattr(feature_fn, "name", backend or "")))

    todo: list[tuple[str, Path]] = []
    for name, path in names.items():
        if not overwrite and _is_done(store, name, spec):
            report.skipped.append(name)
        else:
            todo.append((name, path))

    if todo and feature_fn is None:
        feature_fn, spec.weights_sha256 = build_feature_fn(
            precision, compile, batch_size=1, checkpoint=checkpoint, backend=backend, calibration=calibration
        )
        spec.backend = str(getattr(feature_fn, "name", backend))
        # the sha is known only now: a video done with other weights is redone
        redo = [(n, p) for n, p in names.items() if n in report.skipped and not _is_done(store, n, spec)]
        report.skipped = [n for n in report.skipped if n not in dict(redo)]
        todo.extend(redo)

    if feature_fn is not None and hasattr(feature_fn, "info"):
        spec.backend_info = feature_fn.info()
    infos: dict[str, VideoInfo] = {}  # probed once: for the progress total and the manifest rows
    for name, path in todo:
        try:
            infos[name] = probe(path)
        except VideoError:
            pass  # extract_video reports it with the batch's other failures
    total = sum(info.declared_frames for info in infos.values())
    start = time.perf_counter()
    bar = tqdm(total=total or None, unit="frame", disable=not progress, dynamic_ncols=True, desc="extract")
    try:
        for i, (name, path) in enumerate(todo):
            bar.set_postfix_str(f"video {i + 1}/{len(todo)} {name}")
            try:
                arr, row = extract_video(path, feature_fn, spec, on_frames=bar.update, info=infos.get(name))
            except VideoError as exc:
                report.failed[name] = exc.cause
                bar.write(f"error: {exc}")
                continue
            atomic_save_npy(store.npy_path(name), arr)
            atomic_write_json(store.json_path(name), row)
            report.done.append(name)
            report.frames += row["frames"]
    finally:
        bar.close()
        report.seconds = time.perf_counter() - start
        if store.names():
            store.write_manifest()
    return report
