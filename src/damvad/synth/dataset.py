"""Writing a whole synthetic dataset (splits, labels, frame ground truth) and reading its ground truth."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from damvad.datasets import SPLITS
from damvad.synth.render import _frame_count, render_frames
from damvad.synth.specs import EVENT_KINDS, SYNTH_FORMAT, VideoSpec, make_video_spec, min_anomalous_frames
from damvad.utils import atomic_write_json, atomic_write_text
from damvad.video import video_codec, write_video

_SPLITS = tuple((s, lab) for s in SPLITS for lab in ("normal", "anomalous"))
LABELLED_SPLITS = ("dev", "test")  # splits whose frame labels are written (annotations.csv)
_DEBUG_KEY = "debug_only_train_events_not_for_training"
_SPLIT_STREAM = {"train": 1, "dev": 2, "test": 3}  # disjoint random streams per split


@dataclass(frozen=True)
class SynthParams:
    """Everything that decides a generated dataset; its dict is recorded in synth.json and compared on reuse.

    Lengths: ``num_frames[0] * (hi / lo) ** (u ** length_skew)`` for u uniform in [0, 1) (``length_skew``
    0 means uniform in [lo, hi] as before; 1 is log-uniform; larger puts more videos near ``lo``).
    ``durations`` maps an event kind to its (min, max) seconds (None: 1.5-5 s per kind).
    """

    n_train_normal: int = 12
    n_train_anomalous: int = 12
    n_dev_normal: int = 0
    n_dev_anomalous: int = 0
    n_test_normal: int = 6
    n_test_anomalous: int = 6
    num_frames: tuple[int, int] = (192, 448)
    length_skew: float = 0.0
    size: tuple[int, int] = (320, 240)
    fps: float = 25
    seed: int = 0
    durations: tuple[tuple[str, float, float], ...] | None = None
    max_events: int = 2
    p_more_events: float = 0.35
    max_event_fraction: float = 1.0
    benign: bool = False

    def count(self, split: str, label: str) -> int:
        return int(getattr(self, f"n_{split}_{label}"))

    def check(self) -> None:
        for split, label in _SPLITS:
            c = self.count(split, label)
            if isinstance(c, bool) or not isinstance(c, int) or c < 0:
                raise ValueError(f"generate_dataset: n_{split}_{label} must be an integer >= 0, got {c!r}")
        lo, hi = (int(v) for v in self.num_frames)
        need = min_anomalous_frames(self.fps)
        anomalous = any(self.count(s, "anomalous") for s in SPLITS)
        if lo > hi or lo < 1 or (lo < need and anomalous):
            raise ValueError(f"generate_dataset: num_frames={self.num_frames!r} must be (lo, hi) with lo <= hi and "
                             f"lo >= {need} (an event needs 1.5 s after the first 1.5 s, plus 0.5 s)")
        w, h = (int(v) for v in self.size)
        if w % 2 or h % 2 or w < 32 or h < 32:
            raise ValueError(f"generate_dataset: size={self.size!r} must be (width, height), even, at least 32 x 32")
        if self.length_skew < 0:
            raise ValueError(f"generate_dataset: length_skew must be >= 0, got {self.length_skew}")

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.update(num_frames=[int(v) for v in self.num_frames], size=[int(v) for v in self.size],
                 synth_format=SYNTH_FORMAT, codec=video_codec())
        if self.durations is None:
            d.pop("durations")
        return json.loads(json.dumps(d))

    def draw_length(self, rng: np.random.Generator) -> int:
        lo, hi = (int(v) for v in self.num_frames)
        if self.length_skew == 0:
            return int(rng.integers(lo, hi + 1))
        return int(min(hi, round(lo * (hi / lo) ** (rng.random() ** self.length_skew))))


def dataset_specs(params: SynthParams) -> list[tuple[str, str, VideoSpec]]:
    """(split, label, spec) of every video: each split from its own random stream of ``params.seed``."""
    out = []
    durations = None if params.durations is None else {k: (a, b) for k, a, b in params.durations}
    for split in SPLITS:
        rng = np.random.default_rng([int(params.seed), _SPLIT_STREAM[split]])
        for label in ("normal", "anomalous"):
            order = list(rng.permutation(EVENT_KINDS))  # every kind appears once per len(EVENT_KINDS) videos
            for i in range(params.count(split, label)):
                n = params.draw_length(rng)
                kind = str(order[i % len(order)]) if label == "anomalous" else None
                spec = make_video_spec(
                    f"{split}_{label}_{i:03d}", label, n, rng, fps=params.fps, size=tuple(params.size), kind=kind,
                    max_events=params.max_events, p_more_events=params.p_more_events, durations=durations,
                    max_event_fraction=params.max_event_fraction, benign=params.benign)
                out.append((split, label, spec))
    return out


def generate_dataset(root: str | Path, progress: bool = True, *, overwrite: bool = False, **params: Any) -> Path:
    """Write a synthetic dataset (layout below) and return ``root``; reruns reuse finished videos.

    ``params`` are :class:`SynthParams` fields. Layout: ``root/{train,dev,test}/{normal,anomalous}/NAME.mp4``
    (empty splits are not written), ``root/{dev,test}/annotations.csv`` (``name,start,end``, one row per
    event, frames 0-based end-exclusive) and ``root/synth.json`` (specs, parameters, version). Training
    videos carry video-level labels only (their folder); their events are kept in synth.json under a key
    marked debug-only. The same parameters always give the same files (byte for byte). A root made with
    other parameters is refused unless ``overwrite`` (which deletes only the videos that root's synth.json
    lists).
    """
    from tqdm import tqdm

    from damvad import __version__

    if "num_frames" in params:
        params["num_frames"] = tuple(params["num_frames"])
    if "size" in params:
        params["size"] = tuple(params["size"])
    known = {f.name for f in dataclasses.fields(SynthParams)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"generate_dataset: unknown parameter(s) {unknown}; known: {sorted(known)}")
    spec_params = SynthParams(**params)
    spec_params.check()
    root = Path(root)
    record = spec_params.as_dict()
    manifest_path = root / "synth.json"
    if manifest_path.exists():
        try:
            old = json.loads(manifest_path.read_text())
        except (OSError, ValueError) as e:
            raise ValueError(f"generate_dataset: {manifest_path} is unreadable ({e}); delete it or choose "
                             "another root") from None
        if old.get("params") != record:
            if not overwrite:
                diff = {k: (old.get("params", {}).get(k), v) for k, v in record.items()
                        if old.get("params", {}).get(k) != v}
                raise FileExistsError(
                    f"generate_dataset: {root} already holds a synthetic dataset made with other parameters "
                    f"(old, new: {diff}); pass overwrite=True or choose another root")
            for v in old.get("videos", []):
                (root / v["path"]).unlink(missing_ok=True)
            for split in LABELLED_SPLITS:
                (root / split / "annotations.csv").unlink(missing_ok=True)
    else:
        foreign = [p for s, lab in _SPLITS for p in (root / s / lab).glob("*.mp4")]
        if foreign:
            raise FileExistsError(f"generate_dataset: {root} holds videos not made by damvad.synth "
                                  f"(e.g. {foreign[0]}); choose an empty or new root")
    specs = dataset_specs(spec_params)
    videos = []
    debug_events: dict[str, list[dict[str, Any]]] = {}
    for split, label, spec in specs:
        entry = spec.to_dict(with_events=(split in LABELLED_SPLITS))
        entry.update(split=split, path=f"{split}/{label}/{spec.name}.mp4")
        videos.append(entry)
        if split == "train" and spec.events:
            debug_events[spec.name] = [e.to_dict() for e in spec.events]
    manifest = {
        "generator": "damvad.synth", "damvad_version": __version__, "params": record, "complete": False,
        "frame_convention": "0-based frame indices, events are [start, end) (end exclusive)",
        "videos": videos, _DEBUG_KEY: debug_events,
    }
    atomic_write_json(manifest_path, manifest)
    total = sum(s.num_frames for _, _, s in specs)
    with tqdm(total=total, unit="frame", desc="synthetic videos", disable=not progress) as bar:
        for split, label, spec in specs:
            path = root / split / label / f"{spec.name}.mp4"
            if path.exists() and _frame_count(path) == spec.num_frames:
                bar.update(spec.num_frames)
                continue

            def counted(it: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
                for fr in it:
                    yield fr
                    bar.update(1)

            bar.set_postfix_str(spec.name)
            write_video(path, counted(render_frames(spec)), spec.fps)
    for split in LABELLED_SPLITS:
        chosen = [spec for s, _, spec in specs if s == split]
        if not chosen:
            continue
        buf = io.StringIO()
        wr = csv.writer(buf, lineterminator="\n")
        wr.writerow(["name", "start", "end"])
        for spec in chosen:
            for ev in spec.events:
                wr.writerow([spec.name, ev.start_frame, ev.end_frame])
        atomic_write_text(root / split / "annotations.csv", buf.getvalue())
    manifest["complete"] = True
    atomic_write_json(manifest_path, manifest)
    return root


def load_ground_truth(root: str | Path, split: str = "test") -> dict[str, np.ndarray]:
    """Frame-level ground truth (bool per frame) of every video of a labelled split (dev or test)."""
    if split not in LABELLED_SPLITS:
        raise ValueError(f"load_ground_truth: split must be one of {LABELLED_SPLITS}, got {split!r}")
    root = Path(root)
    manifest_path = root / "synth.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"load_ground_truth: cannot read {manifest_path} ({e})") from None
    gt = {v["name"]: np.zeros(int(v["num_frames"]), bool) for v in manifest["videos"] if v["split"] == split}
    ann = root / split / "annotations.csv"
    with open(ann, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or rows[0] != ["name", "start", "end"]:
        raise ValueError(f"load_ground_truth: {ann}: expected header name,start,end")
    for i, row in enumerate(rows[1:], start=2):
        try:
            name, a, b = row[0], int(row[1]), int(row[2])
        except (IndexError, ValueError):
            raise ValueError(f"load_ground_truth: {ann}, line {i}: malformed row {row!r}") from None
        if name not in gt or not 0 <= a < b <= len(gt[name]):
            raise ValueError(f"load_ground_truth: {ann}, line {i}: {row!r} does not fit a {split} video")
        gt[name][a:b] = True
    return gt
