"""The feature store: one ``.npy`` of snippet maps and one ``.json`` manifest row per video.

Layout of a features folder::

    NAME.npy       (snippets, crops, 7, 1024) float32/float16 I3D maps
    NAME.json      the video's manifest row (written after the .npy: its presence marks "done")
    manifest.csv   every row, rebuilt from the .json files at the end of each extraction

The per-video JSON is the source of truth: a run killed between the two writes leaves a ``.npy``
without its ``.json``, which the next run redoes. Nothing here unpickles anything.

A row is read as a :class:`FeatureRecord` (typed fields, the defaults of older rows, derived facts such as
the snippet frame ranges), and a video as :class:`VideoFeatures` (record and maps, checked against each
other once) by :meth:`FeatureStore.load`; nothing outside this module reads a row's keys.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import types
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import numpy as np

from damvad.frames import normalize_crops
from damvad.snippets import SNIPPET_LEN, snippet_ranges
from damvad.utils import atomic_save_npy, atomic_write_json, atomic_write_text


class FeatureStoreError(RuntimeError):
    """A feature folder or file that cannot be used as it is."""


class InconsistentRecordError(FeatureStoreError):
    """A video's row that contradicts itself or its feature file; ``problem`` says how."""

    def __init__(self, message: str, problem: str):
        super().__init__(message)
        self.problem = problem


def _field(default: Any = MISSING, *, in_csv: bool = False) -> Any:
    """A record field; ``in_csv``: also a column of manifest.csv."""
    return field(default=default, metadata={"csv": in_csv})


@dataclass(frozen=True)
class SourceFile:
    """What identified the source video's content when it was extracted (see
    :func:`damvad.extract.source_fingerprint`): a rerun compares it to tell a changed file from the same one."""

    path: str
    size: int
    mtime_ns: int
    sample_sha256: str | None = None  # sha256 of its size and first and last MiB

    @classmethod
    def from_json(cls, data: Any, where: str = "source") -> SourceFile:
        return _from_json(cls, data, where)

    def to_json(self) -> dict[str, Any]:
        return _to_json(self)


@dataclass(frozen=True)
class FeatureRecord:
    """One video's manifest row (``NAME.json``), typed: the one definition of its fields and of the defaults
    that rows written by older versions get for the fields they lack.

    ``""`` in weights_sha256 / precision / backend and ``None`` elsewhere mean "not recorded"."""

    name: str = _field(in_csv=True)
    path: str = _field(in_csv=True)  # the video file as given to extract
    frames: int = _field(in_csv=True)  # decoded frames the features cover
    fps: float | None = _field(None, in_csv=True)
    width: int | None = _field(None)
    height: int | None = _field(None)
    declared_frames: int | None = _field(None)  # what the container said (0: nothing)
    snippet_len: int = _field(SNIPPET_LEN, in_csv=True)
    stride: int = _field(SNIPPET_LEN)  # frames between snippet starts (rows without one: 64); not in the CSV: its
    # columns are a format people parse
    num_snippets: int | None = _field(None, in_csv=True)
    crops: int = _field(1, in_csv=True)
    crop_names: tuple[str, ...] | None = _field(None)
    dtype: str = _field("float32", in_csv=True)  # of the .npy
    precision: str = _field("", in_csv=True)  # fp32 | bf16 | int8: what I3D ran in
    backend: str = _field("")  # torch | openvino
    device: str | None = _field(None)  # cpu | cuda:N
    shape: tuple[int, ...] | None = _field(None)  # of the .npy: (snippets, crops, 7, 1024)
    snippet_ranges: tuple[tuple[int, int], ...] | None = _field(None)  # [start, end) frames of each snippet
    weights_sha256: str = _field("", in_csv=True)  # of the I3D weights
    damvad_version: str = _field("", in_csv=True)
    source: SourceFile | None = _field(None)
    backend_info: dict[str, Any] | None = _field(None)  # the backend's own provenance (e.g. int8 calibration)
    warning: str | None = _field(None)  # e.g. frames the container declared but did not decode

    @classmethod
    def from_json(cls, data: Any, where: str = "manifest row") -> FeatureRecord:
        """The record of a parsed row; a :class:`FeatureStoreError` naming ``where`` and the field when a
        field is missing or of the wrong type. Keys this version does not know are ignored."""
        return _from_json(cls, data, where)

    def to_json(self) -> dict[str, Any]:
        """The row as written to ``NAME.json`` (fields not recorded are left out)."""
        return _to_json(self)

    @classmethod
    def for_maps(cls, name: str, path: str | Path, maps: np.ndarray, frames: int, **fields: Any) -> FeatureRecord:
        """The record of ``maps`` (S, crops, 7, 1024) covering ``frames`` frames: snippet count, crops, shape,
        dtype and the snippet ranges of the layout (:mod:`damvad.snippets`) from the array; ``fields`` set
        (or override) the rest."""
        snippet_len = int(fields.pop("snippet_len", SNIPPET_LEN))
        stride = int(fields.pop("stride", snippet_len))
        ranges = snippet_ranges(int(frames), snippet_len, stride)[: int(maps.shape[0])]
        derived: dict[str, Any] = {
            "num_snippets": int(maps.shape[0]), "crops": int(maps.shape[1]),
            "shape": tuple(int(d) for d in maps.shape), "dtype": np.dtype(maps.dtype).name,
            "snippet_ranges": tuple((int(a), int(b)) for a, b in ranges),
        }
        return cls(name=name, path=str(path), frames=int(frames), snippet_len=snippet_len, stride=stride,
                   **{**derived, **fields})

    @property
    def expected_snippets(self) -> int:
        """Snippets ``frames`` make: at the default stride one per ``snippet_len`` frames, the last shorter."""
        return len(self.expected_ranges)

    @property
    def expected_ranges(self) -> tuple[tuple[int, int], ...]:
        """The [start, end) frames of each snippet of a consistent record (:mod:`damvad.snippets`): at the
        default stride ``snippet_len`` each, the last cut at ``frames``."""
        return tuple((int(a), int(b)) for a, b in snippet_ranges(self.frames, self.snippet_len, self.stride))

    @property
    def frame_ranges(self) -> tuple[tuple[int, int], ...]:
        """The [start, end) frames of each snippet: the recorded ones, else the expected ones."""
        return self.snippet_ranges if self.snippet_ranges is not None else self.expected_ranges

    @property
    def crop_setting(self) -> str:
        """The crops as ``damvad extract --crops`` names them (center | 5 | 10)."""
        return normalize_crops(len(self.crop_names) if self.crop_names else self.crops)

    def problem(self, num_snippets: int) -> str | None:
        """What is inconsistent between this record and a feature file of ``num_snippets`` snippets, or None.

        The snippet ranges must be the layout of ``frames`` at ``snippet_len`` and ``stride``
        (:mod:`damvad.snippets`), one per snippet of the feature file: an edited or mixed-up row would
        otherwise shift the ground truth."""
        if self.num_snippets is not None and self.num_snippets != num_snippets:
            return f"num_snippets {self.num_snippets} but the feature file has {num_snippets} snippets"
        if self.frames <= 0 or self.snippet_len <= 0 or not 1 <= self.stride <= self.snippet_len:
            return f"manifest says {self.frames} frames, snippet_len {self.snippet_len}, stride {self.stride}"
        expected = self.expected_ranges
        if num_snippets != len(expected):
            every = "" if self.stride == self.snippet_len else f" every {self.stride} frames"
            return (f"{num_snippets} snippets, but {self.frames} frames make {len(expected)} snippets "
                    f"of {self.snippet_len}{every}")
        if self.snippet_ranges is None:
            return None  # rows written before ranges were recorded: the shape checks are all there is
        pairs = self.snippet_ranges
        if len(pairs) != num_snippets:
            return f"{len(pairs)} snippet_ranges for {num_snippets} snippets"
        if pairs[-1][1] != self.frames:
            return f"frames {self.frames} but snippet_ranges end at frame {pairs[-1][1]}"
        for k, (got, want) in enumerate(zip(pairs, expected, strict=True)):
            if tuple(got) != want:
                return f"snippet_ranges[{k}] is [{got[0]}, {got[1]}), expected [{want[0]}, {want[1]})"
        return None


MANIFEST_COLUMNS = [f.name for f in fields(FeatureRecord) if f.metadata["csv"]]


@dataclass(frozen=True)
class VideoFeatures:
    """One video's features as the store hands them out: its record and its (S, crops, 7, 1024) maps,
    checked against each other."""

    record: FeatureRecord
    maps: np.ndarray

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def frames(self) -> int:
        return self.record.frames

    @property
    def snippet_len(self) -> int:
        return self.record.snippet_len

    @property
    def stride(self) -> int:
        return self.record.stride


# ---------------------------------------------------------------------------- typed JSON


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    """A record class's field types, resolved once (resolving is most of a record's parse time)."""
    return get_type_hints(cls)


def _from_json(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise FeatureStoreError(f"{where}: expected a JSON object, got {type(data).__name__}")
    hints = _type_hints(cls)
    values = {}
    for f in fields(cls):
        if data.get(f.name) is None:  # absent or null: not recorded
            if f.default is MISSING:
                raise FeatureStoreError(f"{where}: the required field {f.name!r} is missing or null")
            continue
        values[f.name] = _parse(data[f.name], hints[f.name], f"{where}: field {f.name!r}")
    return cls(**values)


def _parse(value: Any, hint: Any, where: str) -> Any:
    """``value`` (parsed JSON) as ``hint`` says, lists as tuples; a FeatureStoreError naming ``where``."""
    args = get_args(hint)
    if isinstance(hint, types.UnionType):  # X | None
        if value is None:
            return None
        return _parse(value, next(a for a in args if a is not type(None)), where)
    origin = get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list | tuple) or (args[-1] is not Ellipsis and len(value) != len(args)):
            raise FeatureStoreError(f"{where} should be a list{_len_note(args)}, got {value!r}")
        items = args[:-1] * len(value) if args[-1] is Ellipsis else args
        return tuple(_parse(v, a, f"{where}[{i}]") for i, (a, v) in enumerate(zip(items, value, strict=True)))
    if origin is dict:
        if not isinstance(value, dict):
            raise FeatureStoreError(f"{where} should be a JSON object, got {value!r}")
        return value
    if isinstance(hint, type) and is_dataclass(hint):
        return hint.from_json(value, where)
    ok = {
        str: isinstance(value, str),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
    }[hint]
    if not ok:
        kind = {str: "a string", int: "an integer", float: "a number"}[hint]
        raise FeatureStoreError(f"{where} should be {kind}, got {value!r} ({type(value).__name__})")
    return float(value) if hint is float else value


def _len_note(args: tuple[Any, ...]) -> str:
    return "" if args[-1] is Ellipsis else f" of {len(args)}"


def _to_json(obj: Any) -> Any:
    if is_dataclass(obj):
        return {f.name: _to_json(v) for f in fields(obj) if (v := getattr(obj, f.name)) is not None}
    if isinstance(obj, tuple):
        return [_to_json(v) for v in obj]
    return obj


# ---------------------------------------------------------------------------- the store


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

    def _row(self, name: str) -> dict[str, Any]:
        """The row as stored (parsed JSON, untyped): what :meth:`manifest_hash` hashes."""
        path = self.json_path(name)
        if not path.exists():
            raise FeatureStoreError(f"{path}: no manifest row for video {name!r} (not extracted yet?)")
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise FeatureStoreError(f"{path}: manifest row is not valid JSON ({exc})") from exc

    def record(self, name: str) -> FeatureRecord:
        """The video's typed record; a FeatureStoreError naming the file and field when it is unusable."""
        return FeatureRecord.from_json(self._row(name), str(self.json_path(name)))

    def frames(self, name: str) -> int:
        return self.record(name).frames

    def load(self, name: str, raw: bool = False) -> VideoFeatures:
        """The video's record and its (S, crops, 7, 1024) maps, checked against each other (the one read of a
        video); never unpickled.

        The maps are float32 in memory and refused when any value is NaN/inf: what scoring and training read.
        ``raw``: as stored (float32/float16), memory-mapped, not scanned for NaN: for checking many videos
        without reading them."""
        record = self.record(name)
        path = self.npy_path(name)
        if not path.exists():
            raise FeatureStoreError(f"{path}: feature file for video {name!r} is missing")
        try:
            arr = np.load(path, mmap_mode="r" if raw else None, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise FeatureStoreError(f"{path}: unreadable feature file ({exc})") from exc
        expected = record.shape if record.shape is not None else arr.shape
        if arr.shape != expected or arr.ndim != 4:
            raise FeatureStoreError(
                f"{path}: shape {arr.shape} does not match its manifest row {expected} "
                "(expected (snippets, crops, 7, 1024))"
            )
        problem = record.problem(arr.shape[0])
        if record.name != name:
            problem = f"it is the row of video {record.name!r}"
        if problem:
            raise InconsistentRecordError(f"{self.json_path(name)}: the record of video {name!r} contradicts "
                                          f"itself: {problem}; extract it again (damvad extract --overwrite)", problem)
        if not raw:
            arr = arr.astype(np.float32, copy=False)
            bad = np.flatnonzero(~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1))
            if bad.size:
                shown = ", ".join(map(str, bad[:10])) + (f" ... ({bad.size} in all)" if bad.size > 10 else "")
                raise FeatureStoreError(f"{path}: non-finite values (NaN/inf) in the features of video {name!r}, "
                                        f"snippet(s) {shown} of {arr.shape[0]}; extract it again "
                                        "(damvad extract --overwrite)")
        return VideoFeatures(record, arr)

    def save(self, maps: np.ndarray, record: FeatureRecord) -> None:
        """Write a video: its maps first, then the row that marks it done (both atomic)."""
        atomic_save_npy(self.npy_path(record.name), maps)
        atomic_write_json(self.json_path(record.name), record.to_json())

    def write_manifest(self) -> Path:
        """Rebuild manifest.csv from the per-video rows (atomic)."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=MANIFEST_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for name in self.names():
            writer.writerow(self.record(name).to_json())
        path = self.root / "manifest.csv"
        atomic_write_text(path, buf.getvalue())
        return path

    def manifest_hash(self) -> str:
        """A hash of every row as stored (sorted by name): training runs record it to pin their inputs."""
        digest = hashlib.sha256()
        for name in self.names():
            digest.update(json.dumps(self._row(name), sort_keys=True).encode())
        return digest.hexdigest()
