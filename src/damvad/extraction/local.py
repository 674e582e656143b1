"""Local extraction, one video at a time: decode, run I3D snippet by snippet, write.

Each file is written atomically (features first, then the row that marks the video done), so a killed run
loses at most the video in flight. One broken video, or one that cannot be written, is reported and
skipped, never fatal for the batch; a full disk stops the batch with every video not extracted listed, and
a rerun resumes. The decoding and preprocessing are :mod:`damvad.video`'s (:func:`~damvad.video.
preprocessed_snippets`, two snippets ahead in a background thread).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from damvad import __version__
from damvad.backends import I3DBackend, run_batch
from damvad.extraction.plan import ExtractorSpec, ExtractReport, read_source_fingerprint, source_fingerprint
from damvad.store import FeatureRecord, FeatureStore, SourceFile
from damvad.video import CROP_NAMES, VideoError, VideoInfo, preprocessed_snippets, probe, video_name

log = logging.getLogger(__name__)


def extract_video(
    path: Path,
    backend: I3DBackend,
    spec: ExtractorSpec,
    on_frames: Callable[[int], None] | None = None,
    info: VideoInfo | None = None,
    name: str | None = None,
) -> tuple[np.ndarray, FeatureRecord]:
    """Features (S, crops, 7, 1024) and the record for one video (``name``: default its file's); raises
    VideoError."""
    info = info or probe(path, spec.fps)
    source = read_source_fingerprint(path)
    maps: list[np.ndarray] = []
    ranges: list[list[int]] = []
    frames = 0
    dtype = "uint8" if backend.accepts_uint8 else "float32"
    for snip, x in preprocessed_snippets(path, spec.crops, spec.snippet_len, dtype=dtype, stride=spec.stride):
        feats, finite = run_batch(backend, x)
        if not finite.all():
            raise VideoError(path, f"I3D produced non-finite features at snippet {snip.index}")
        maps.append(feats.astype(spec.dtype))
        ranges.append([snip.start, snip.end])
        if on_frames is not None:
            on_frames(snip.end - frames)  # the frames this snippet added (snippets may overlap)
        frames = snip.end
    return finish_video(path, info, source, spec, maps, ranges, frames, name)


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


def extract_to_store(
    store: FeatureStore,
    name: str,
    path: Path,
    backend: I3DBackend,
    spec: ExtractorSpec,
    on_frames: Callable[[int], None] | None = None,
    info: VideoInfo | None = None,
) -> FeatureRecord:
    """Extract one video and write it: features first, then the row that marks it done (both atomic)."""
    arr, record = extract_video(path, backend, spec, on_frames=on_frames, info=info, name=name)
    store.save(arr, record)
    return record


def extract_one_by_one(todo: list[tuple[str, Path]], backend: I3DBackend, spec: ExtractorSpec,
                       infos: dict[str, VideoInfo], store: FeatureStore, report: ExtractReport, bar: Any) -> None:
    """The per-video loop of a local extraction (batch 1 on the CPU), into ``report``; ``bar``: a tqdm bar."""
    for i, (name, path) in enumerate(todo):
        bar.set_postfix_str(f"video {i + 1}/{len(todo)} {name}")
        try:
            record = extract_to_store(store, name, path, backend, spec, on_frames=bar.update, info=infos.get(name))
        except VideoError as exc:
            report.failed[name] = exc.cause
            bar.write(f"error: {exc}")
            continue
        except OSError as exc:  # the features could not be written
            report.failed[name] = f"cannot write its features: {exc}"
            bar.write(f"error: {name}: {report.failed[name]}")
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                report.out_of_space((rest for rest, _ in todo[i + 1 :]), store.root)
                break
            continue
        report.done.append(name)
        report.frames += record.frames
