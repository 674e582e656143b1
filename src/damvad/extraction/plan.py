"""Planning an extraction: which videos, which of them are done, and what identifies their features.

The resume check of every engine (local, batched, Ray): a video whose row exists with the same settings and
the same source (size, mtime, a hash of its first and last MiB; for a folder of frames, of every frame) is
skipped (:func:`video_status`); a source replaced since is extracted again, another file under the same name
is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from damvad.backends import I3DBackend
from damvad.snippets import SNIPPET_LEN
from damvad.store import FeatureRecord, FeatureStore, FeatureStoreError, SourceFile
from damvad.utils import hash_ends, remove_stale_temps
from damvad.video import CROP_NAMES, VideoError, VideoInfo, find_videos, probe, video_name


@dataclass
class ExtractorSpec:
    """What identifies a set of features (a rerun with a different spec redoes the video), and the one record
    of what produced them (:meth:`produced_by`)."""

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

    def produced_by(self, backend: I3DBackend) -> ExtractorSpec:
        """This spec stamped with what runs the I3D: the backend's name, precision, weights, device and
        provenance, read from the backend itself. Every engine stamps its rows here, so a row never names
        another backend than the one that made it (a GPU Ray worker runs torch whatever the driver planned)."""
        return dataclasses.replace(self, precision=backend.precision, weights_sha256=backend.weights_sha256,
                                   backend=backend.name, device=str(backend.device), backend_info=backend.info())


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

    def out_of_space(self, names: Iterable[str], root: Path) -> None:
        """Record ``names`` as not extracted because the disk filled up (a rerun resumes them)."""
        for name in names:
            self.failed.setdefault(name, f"not extracted: no space left in {root}; free some and rerun to resume")


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


def read_source_fingerprint(path: Path) -> SourceFile:
    """:func:`source_fingerprint` before decoding; an unreadable file is the video's error."""
    try:
        return source_fingerprint(path)
    except OSError as exc:
        raise VideoError(path, f"cannot read the file ({exc.strerror or exc})") from exc


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
        report.redone.pop(name, None)  # planned again with what the backend runs: this plan's reason only
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
        except VideoError as exc:  # the extraction reports it with the batch's other failures
            if errors is not None:
                errors[name] = exc
    return infos


def write_manifest(store: FeatureStore, report: ExtractReport) -> None:
    """Rewrite ``manifest.csv`` from the per-video rows; a failure is a problem of the report, not fatal."""
    try:
        if store.names():
            store.write_manifest()
    except (OSError, FeatureStoreError) as exc:
        report.problems.append(f"manifest.csv not rewritten ({exc}); the per-video .json rows are complete, "
                               "a rerun rewrites it")
