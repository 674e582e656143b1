"""Batch I3D feature extraction: videos in, one ``.npy`` + manifest row per video out.

A video is a file or a folder of frames (:mod:`damvad.framefolder`). Idempotent and resumable: a video
whose row exists with the same settings and the same source (size, mtime, a hash of its first and last
MiB; for a folder of frames, of every frame) is skipped (:func:`video_status`); a source replaced since is
extracted again, another file under the same name is refused. Each file is written atomically (features
first, then the row that marks the video done), so a killed run loses at most the video in flight. One
broken video, or one that cannot be written, is reported and skipped, never fatal for the batch; a full
disk stops the batch with every video not extracted listed, and a rerun resumes.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from damvad import __version__
from damvad.framefolder import frame_rate
from damvad.snippets import check_stride
from damvad.store import FeatureRecord, FeatureStore, FeatureStoreError, SourceFile
from damvad.utils import hash_ends, remove_stale_temps
from damvad.video import (
    CROP_NAMES,
    SNIPPET_LEN,
    VideoError,
    VideoInfo,
    find_videos,
    normalize_crops,
    preprocessed_snippets,
    probe,
    video_name,
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
    stride: int = SNIPPET_LEN  # frames between snippet starts (damvad.snippets)
    fps: float | None = None  # recorded, not compared: the frame rate given to folders of frames
    backend: str = ""  # recorded, not compared: torch and OpenVINO fp32 features agree to ~1e-6
    device: str = ""  # recorded, not compared: "cpu", "cuda:0" (fp32 on a GPU agrees with the CPU to ~1e-6)
    backend_info: dict[str, Any] = field(default_factory=dict)  # provenance (versions, int8 calibration)


@dataclass
class ExtractReport:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    redone: dict[str, str] = field(default_factory=dict)  # extracted again, and why (a changed source...)
    problems: list[str] = field(default_factory=list)  # not tied to one video (the manifest could not be written)
    frames: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.problems

    def summary(self) -> str:
        fps = self.frames / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"extracted {len(self.done)} video(s), skipped {len(self.skipped)} already done, "
            f"failed {len(self.failed)}; {self.frames} frames in {self.seconds:.1f} s ({fps:.1f} frames/s)"
        ]
        for name, why in self.redone.items():
            if name in self.done:
                lines.append(f"  REDONE {name}: {why}")
        for name, why in self.failed.items():
            lines.append(f"  FAILED {name}: {why}")
        lines.extend(f"  PROBLEM: {p}" for p in self.problems)
        return "\n".join(lines)


@dataclass
class VideoStatus:
    """What to do with one video of a batch: skip it (done), extract it, or refuse it; and why."""

    action: Literal["skip", "extract", "refuse"]
    reason: str


SAMPLE = 1 << 20  # bytes hashed at each end of a source video


def source_fingerprint(path: str | Path, sample: bool = True) -> SourceFile:
    """What identifies a source video's content: its resolved path, size, mtime and (``sample``) a sha256 of
    its size and its first and last MiB, where a re-encoded, completed or other file differs. Cheap enough
    to check on every rerun (whole-file hashes would read the whole dataset again). A folder of frames:
    :func:`damvad.framefolder.folder_fingerprint`."""
    path = Path(path)
    if path.is_dir():
        from damvad.framefolder import folder_fingerprint

        return folder_fingerprint(path, sample)
    st = path.stat()
    sample_sha256 = None
    if sample:
        digest = hashlib.sha256(str(st.st_size).encode())
        hash_ends(digest, path, st.st_size, SAMPLE)
        sample_sha256 = digest.hexdigest()
    return SourceFile(str(path.resolve()), st.st_size, st.st_mtime_ns, sample_sha256)


def _same_source(recorded: SourceFile, path: Path) -> tuple[bool, str]:
    """(same content, what differs): size first, then mtime (unchanged: same), then the sampled hash."""
    try:
        now = source_fingerprint(path, sample=False)
    except OSError as exc:  # a folder that is no longer a folder of frames: extracting it says why
        return False, str(exc)
    if now.size != recorded.size:
        return False, f"size {recorded.size} -> {now.size} bytes"
    if now.mtime_ns == recorded.mtime_ns:
        return True, ""
    if source_fingerprint(path).sample_sha256 == recorded.sample_sha256:
        return True, ""  # copied or touched: same bytes
    return False, "same size, different content"


def _same_settings(record: FeatureRecord, spec: ExtractorSpec) -> bool:
    return (
        record.crops == len(CROP_NAMES[spec.crops])
        and record.precision == spec.precision
        and record.dtype == spec.dtype
        and record.snippet_len == spec.snippet_len
        and record.stride == spec.stride
        and (not spec.weights_sha256 or record.weights_sha256 == spec.weights_sha256)
    )


def video_status(store: FeatureStore, name: str, path: str | Path, spec: ExtractorSpec,
                 overwrite: bool = False) -> VideoStatus:
    """Whether ``path`` is already extracted in ``store`` as ``name``: the one check behind resuming.

    skip: features exist, readable and consistent, made with ``spec`` from this source's content (or the
    source is gone: its features are all there is). extract: new, unreadable, other settings, or the same
    path whose content changed (replaced, a download completed). refuse: the features were made from another
    file with other content under the same name; ``overwrite`` extracts anyway.
    """
    path = Path(path)
    if overwrite:
        return VideoStatus("extract", "--overwrite")
    if name not in store:
        return VideoStatus("extract", "new")
    try:
        record = store.load(name, raw=True).record
    except FeatureStoreError as exc:
        return VideoStatus("extract", f"its features were unusable ({exc})")
    if not _same_settings(record, spec):
        return VideoStatus("extract", "extracted with other settings or weights")
    if not (path.is_file() or path.is_dir()):
        return VideoStatus("skip", "done (its source is no longer there)")
    recorded = record.source
    if recorded is None:  # a row written before sources were recorded: its path is all there is
        if os.path.abspath(record.path) in (str(path.resolve()), os.path.abspath(path)):
            return VideoStatus("skip", "done")
        return VideoStatus("refuse", f"{store.json_path(name)} was extracted from {record.path}, not {path}; "
                                     "use another --out, or --overwrite to replace it")
    same, change = _same_source(recorded, path)
    if same:
        return VideoStatus("skip", "done")
    if recorded.path == str(path.resolve()):
        return VideoStatus("extract", f"its source changed since it was extracted ({change})")
    return VideoStatus("refuse", f"{store.json_path(name)} holds the features of {recorded.path}, another "
                                 f"file than {path} ({change}); use another --out, or --overwrite to replace them")


def build_feature_fn(
    precision: str | None = None,
    compile: bool = True,
    batch_size: int | None = 1,
    checkpoint: str | Path | None = None,
    backend: str | None = None,
    calibration: Any = None,
    device: Any = None,
) -> tuple[FeatureFn, str]:
    """An I3D backend (:mod:`damvad.backends`; ``None``: the defaults for ``device``) and its weights' sha256.

    Cached per process (torch: compiled once) or on disk (OpenVINO: converted once). ``batch_size``
    ``None``: 1 on the CPU, from the free memory on a GPU.
    """
    from damvad.backends import build_backend

    fn = build_backend(backend, precision, checkpoint=checkpoint, compile=compile, calibration=calibration,
                       progress=True, device=device, batch_size=batch_size)
    return fn, fn.weights_sha256


def extract_video(
    path: Path,
    feature_fn: FeatureFn,
    spec: ExtractorSpec,
    on_frames: Callable[[int], None] | None = None,
    info: VideoInfo | None = None,
    name: str | None = None,
) -> tuple[np.ndarray, FeatureRecord]:
    """Features (S, crops, 7, 1024) and the record for one video (``name``: default its file's); raises
    VideoError."""
    import torch

    info = info or probe(path, spec.fps)
    source = read_source_fingerprint(path)
    maps: list[np.ndarray] = []
    ranges: list[list[int]] = []
    frames = 0
    dtype = "uint8" if getattr(feature_fn, "accepts_uint8", False) else "float32"
    for snip, x in preprocessed_snippets(path, spec.crops, spec.snippet_len, dtype=dtype, stride=spec.stride):
        with torch.inference_mode():
            feats = feature_fn(torch.from_numpy(x))
        feats = feats.float().cpu().numpy() if hasattr(feats, "cpu") else np.asarray(feats, np.float32)
        if not np.isfinite(feats).all():
            raise VideoError(path, f"I3D produced non-finite features at snippet {snip.index}")
        maps.append(feats.astype(spec.dtype))
        ranges.append([snip.start, snip.end])
        if on_frames is not None:
            on_frames(snip.end - frames)  # the frames this snippet added (snippets may overlap)
        frames = snip.end
    return finish_video(path, info, source, spec, maps, ranges, frames, name)


def read_source_fingerprint(path: Path) -> SourceFile:
    """:func:`source_fingerprint` before decoding; an unreadable file is the video's error."""
    try:
        return source_fingerprint(path)
    except OSError as exc:
        raise VideoError(path, f"cannot read the file ({exc.strerror or exc})") from exc


def finish_video(path: Path, info: VideoInfo, source: SourceFile, spec: ExtractorSpec, maps: list[np.ndarray],
                 ranges: list[list[int]], frames: int, name: str | None = None) -> tuple[np.ndarray, FeatureRecord]:
    """(features (S, crops, 7, 1024), record) from one video's snippet maps, once it is decoded;
    a VideoError if the file changed while it was read. Shared by the per-video and the batched paths."""
    arr = np.stack(maps)
    try:
        after = source_fingerprint(path, sample=False)
        changed = (after.size, after.mtime_ns) != (source.size, source.mtime_ns)
    except OSError:
        changed = True
    if changed:
        raise VideoError(path, "the file changed while it was being read (still being written or downloaded?); "
                               "rerun once it is complete")
    warning = info.frame_count_warning(frames)
    if warning:
        log.warning("%s: %s", path, warning)
    record = FeatureRecord(
        name=name or video_name(path), path=str(path), source=source, frames=frames, fps=info.fps, width=info.width,
        height=info.height, declared_frames=info.declared_frames, snippet_len=spec.snippet_len, stride=spec.stride,
        num_snippets=int(arr.shape[0]), crops=int(arr.shape[1]), crop_names=tuple(CROP_NAMES[spec.crops]),
        dtype=spec.dtype, precision=spec.precision, backend=spec.backend, device=spec.device or None,
        shape=tuple(int(d) for d in arr.shape), snippet_ranges=tuple((int(a), int(b)) for a, b in ranges),
        weights_sha256=spec.weights_sha256, damvad_version=__version__, backend_info=spec.backend_info or None,
        warning=warning or None,
    )
    return arr, record


def check_options(crops: str, precision: str | None, dtype: str, backend: str | None = None,
                  feature_fn: FeatureFn | None = None, device: Any = "cpu") -> tuple[str, str | None, str]:
    """(crops, backend, precision) normalised: ``None`` backend/precision resolve to the fastest measured
    on ``device`` (:func:`damvad.backends.resolve`); a ValueError for anything extraction does not know."""
    from damvad.backends import resolve

    crops = normalize_crops(crops)
    if dtype not in ("float32", "float16"):
        raise ValueError(f"dtype must be float32 or float16, got {dtype!r}")
    if feature_fn is not None and precision is None:
        precision = getattr(feature_fn, "precision", "fp32")
    elif feature_fn is None:
        backend, precision = resolve(backend, precision, device)
    return crops, backend, str(precision)


def collect_videos(inputs: Sequence[str | Path] | Iterable[str | Path] | Mapping[str, str | Path]) -> dict[str, Path]:
    """Video name -> path for every video in ``inputs``; two videos with one name are refused. A mapping
    names its videos itself (a dataset's names, e.g. UCSD Ped2's, whose folders repeat across splits)."""
    if isinstance(inputs, Mapping):
        if not inputs:
            raise ValueError("no videos given")
        return {str(name): Path(path) for name, path in inputs.items()}
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
    """The features folder, created, without the temporary files killed runs left (a write in progress
    in another process is kept)."""
    store = FeatureStore(out_dir)
    store.root.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(store.root)
    return store


def plan_videos(store: FeatureStore, names: dict[str, Path], spec: ExtractorSpec, report: ExtractReport,
                overwrite: bool = False) -> list[tuple[str, Path]]:
    """The videos to extract, by :func:`video_status`; fills ``report`` (skipped, refused as failed, redone):
    the resume check of every engine."""
    todo: list[tuple[str, Path]] = []
    report.skipped = []
    for name, path in names.items():
        if name in report.failed:
            continue
        status = video_status(store, name, path, spec, overwrite)
        if status.action == "skip":
            report.skipped.append(name)
        elif status.action == "refuse":
            report.failed[name] = status.reason
        else:
            todo.append((name, path))
            if status.reason not in ("new", "--overwrite"):
                report.redone[name] = status.reason
    return todo


def probe_all(
    todo: Sequence[tuple[str, Path]], errors: dict[str, VideoError] | None = None, fps: float | None = None
) -> dict[str, VideoInfo]:
    """Each video probed once (progress totals, manifest rows); unreadable ones are left out (and put in
    ``errors`` when given). ``fps``: the frame rate of folders of frames."""
    infos: dict[str, VideoInfo] = {}
    for name, path in todo:
        try:
            infos[name] = probe(path, fps)
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
) -> FeatureRecord:
    """Extract one video and write it: features first, then the row that marks it done (both atomic)."""
    arr, record = extract_video(path, feature_fn, spec, on_frames=on_frames, info=info, name=name)
    store.save(arr, record)
    return record


def extract(
    inputs: Sequence[str | Path] | Iterable[str | Path] | Mapping[str, str | Path],
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
    device: Any = None,
    batch_size: int | None = None,
    decoders: int | None = None,
    stride: int = SNIPPET_LEN,
    fps: float | None = None,
) -> ExtractReport:
    """Extract features for every video in ``inputs`` (files, folders, ``.txt`` lists; or a mapping name ->
    video) into ``out_dir``: a video is a file or a folder of frames (:mod:`damvad.framefolder`).

    ``backend`` / ``precision`` (``None``: the fastest measured on ``device``, see :mod:`damvad.backends`)
    choose the I3D implementation; ``calibration`` (videos) is the int8 calibration set (default: built in).
    ``device``: ``None`` / ``"auto"`` (a CUDA device when torch sees one), ``"cpu"``, ``"cuda[:N]"``.
    ``batch_size`` clips per I3D call (``None``: 1 on the CPU, from the free memory on a GPU): above 1, or on
    a GPU, videos are decoded by ``decoders`` threads at once and their snippets packed into full batches
    (:mod:`damvad.batched`); batch 1 on the CPU is the per-video path. ``stride``: frames between snippet
    starts (:mod:`damvad.snippets`; 64, the paper's, by default). ``fps``: the frame rate of folders of frames
    (their files have none; None: 25, warned); recorded in their rows.
    """
    from tqdm import tqdm

    from damvad.device import resolve_device

    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    dev = resolve_device(getattr(feature_fn, "device", "cpu") if feature_fn is not None else device)
    crops, backend, precision = check_options(crops, precision, dtype, backend, feature_fn, device=dev)
    stride = check_stride(stride, SNIPPET_LEN)
    names = collect_videos(inputs)
    store = open_store(out_dir)
    report = ExtractReport()
    spec = ExtractorSpec(crops=crops, precision=str(precision), dtype=dtype, weights_sha256=weights_sha256,
                         backend=str(getattr(feature_fn, "name", backend or "")), device=str(dev), stride=stride)
    todo = plan_videos(store, names, spec, report, overwrite)
    if todo and feature_fn is None:
        feature_fn, spec.weights_sha256 = build_feature_fn(
            precision, compile, batch_size=batch_size, checkpoint=checkpoint, backend=backend,
            calibration=calibration, device=dev,
        )
        spec.backend = str(getattr(feature_fn, "name", backend))
        todo = plan_videos(store, names, spec, report, overwrite)  # the sha is known only now
    if feature_fn is not None and hasattr(feature_fn, "info"):
        spec.backend_info = feature_fn.info()
    spec.fps = frame_rate(fps, (path for _, path in todo))  # warned once for the batch when assumed
    infos = probe_all(todo, fps=spec.fps)  # probed once: for the progress total and the manifest rows
    total = sum(info.declared_frames for info in infos.values())
    start = time.perf_counter()
    bar = tqdm(total=total or None, unit="frame", disable=not progress, dynamic_ncols=True, desc="extract")
    batch = int(batch_size or getattr(feature_fn, "batch_size", 1) or 1)
    try:
        if todo and (batch > 1 or dev.type == "cuda"):
            extract_batched_to_store(todo, feature_fn, spec, infos, store, report, bar, batch, decoders)
            return report
        for i, (name, path) in enumerate(todo):
            bar.set_postfix_str(f"video {i + 1}/{len(todo)} {name}")
            try:
                record = extract_to_store(store, name, path, feature_fn, spec, on_frames=bar.update,
                                          info=infos.get(name))
            except VideoError as exc:
                report.failed[name] = exc.cause
                bar.write(f"error: {exc}")
                continue
            except OSError as exc:  # the features could not be written
                report.failed[name] = f"cannot write its features: {exc}"
                bar.write(f"error: {name}: {report.failed[name]}")
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    for rest, _ in todo[i + 1 :]:
                        report.failed[rest] = (f"not extracted: no space left in {store.root}; free some and rerun "
                                               "to resume")
                    break
                continue
            report.done.append(name)
            report.frames += record.frames
    finally:
        bar.close()
        report.seconds = time.perf_counter() - start
        try:
            if store.names():
                store.write_manifest()
        except (OSError, FeatureStoreError) as exc:
            report.problems.append(f"manifest.csv not rewritten ({exc}); the per-video .json rows are complete, "
                                   "a rerun rewrites it")
    return report


def extract_batched_to_store(todo: list[tuple[str, Path]], feature_fn: FeatureFn, spec: ExtractorSpec,
                             infos: dict[str, VideoInfo], store: FeatureStore, report: ExtractReport, bar: Any = None,
                             batch: int | None = None, decoders: int | None = None,
                             on_frames: Callable[[int], None] | None = None) -> None:
    """:func:`damvad.batched.extract_batched` writing through ``store`` into ``report`` as the per-video loop
    does (the GPU path of :func:`extract` and of a GPU cluster worker). ``bar``: a tqdm bar or None."""
    from damvad.batched import extract_batched

    def say(message: str) -> None:
        if bar is not None:
            bar.write(message)
        else:
            log.error("%s", message)

    def done(name: str, arr: np.ndarray, record: FeatureRecord) -> bool:
        try:
            store.save(arr, record)
        except OSError as exc:  # the features could not be written
            report.failed[name] = f"cannot write its features: {exc}"
            say(f"error: {name}: {report.failed[name]}")
            return exc.errno not in (errno.ENOSPC, errno.EDQUOT)
        report.done.append(name)
        report.frames += record.frames
        if bar is not None:
            bar.set_postfix_str(f"{len(report.done)}/{len(todo)} videos done")
        return True

    def failed(name: str, cause: str) -> None:
        report.failed[name] = cause
        say(f"error: {name}: {cause}")

    if on_frames is None and bar is not None:
        on_frames = bar.update
    extract_batched(todo, feature_fn, spec, infos, done, failed, on_frames=on_frames, batch_size=batch,
                    decoders=decoders)
    finished = set(report.done) | set(report.failed)
    for name, _ in todo:  # stopped early (a full disk): the rest is not extracted
        if name not in finished:
            report.failed[name] = f"not extracted: no space left in {store.root}; free some and rerun to resume"
