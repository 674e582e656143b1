"""Writing a whole synthetic dataset (splits, labels, frame ground truth) and reading its ground truth."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from damvad.datasets import SPLITS
from damvad.synth.render import _frame_count, render_frames
from damvad.synth.specs import (
    EVENT_KINDS,
    NEAR_MISS_KINDS,
    SYNTH_FORMAT,
    VideoSpec,
    make_video_spec,
    min_anomalous_frames,
)
from damvad.utils import atomic_write_json, atomic_write_text, usable_cores
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
    # synth-ucf-v2 (each left out of the record at its default, so older presets keep their keys):
    cameras: int = 0  # > 0: a pool of cameras (scenes) shared by videos of both labels in every split
    unseen_cameras: int = 0  # cameras that appear in the test split only
    unseen_share: float = 0.0  # the share of test videos (per label) from the unseen cameras
    balance_events: bool = False  # event kinds balanced over all events of a split (not just the first)
    near_miss: tuple[int, int] = (0, 0)  # near-miss episodes per video (min, max), the same counts per label
    depths: tuple[tuple[str, float, float], ...] | None = None  # event depth range (metres) per kind
    crop_labels: bool = False  # frames labelled only while the event is inside the centre crop
    benign_kinds: tuple[str, ...] | None = None  # draw_benign's episode kinds (None: all)
    test_seed: int | None = None  # another draw of the test split (same recipe, other seed)
    # The i-th normal and i-th anomalous video of a split share length, camera and every benign change and
    # near miss (drawn from the split's design stream): the labels differ by the events alone.
    paired: bool = False

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
        lo_nm, hi_nm = (int(v) for v in self.near_miss)
        if not 0 <= lo_nm <= hi_nm:
            raise ValueError(f"generate_dataset: near_miss={self.near_miss!r} must be (min, max) with 0 <= min <= max")
        if self.cameras < 0 or self.unseen_cameras < 0 or not 0 <= self.unseen_share <= 1:
            raise ValueError("generate_dataset: cameras and unseen_cameras must be >= 0 and unseen_share in [0, 1]")
        if (self.unseen_cameras > 0) != (self.unseen_share > 0) or (self.unseen_cameras and not self.cameras):
            raise ValueError("generate_dataset: unseen_cameras and unseen_share go together, with cameras > 0")

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.update(num_frames=[int(v) for v in self.num_frames], size=[int(v) for v in self.size],
                 synth_format=SYNTH_FORMAT, codec=video_codec())
        if self.durations is None:
            d.pop("durations")
        for f in dataclasses.fields(self):  # the v2 fields: recorded only where set
            if f.name in _V2_FIELDS and getattr(self, f.name) == f.default:
                d.pop(f.name)
        return json.loads(json.dumps(d))

    def draw_length(self, rng: np.random.Generator) -> int:
        lo, hi = (int(v) for v in self.num_frames)
        if self.length_skew == 0:
            return int(rng.integers(lo, hi + 1))
        return int(min(hi, round(lo * (hi / lo) ** (rng.random() ** self.length_skew))))


_V2_FIELDS = ("cameras", "unseen_cameras", "unseen_share", "balance_events", "near_miss", "depths", "crop_labels",
              "benign_kinds", "test_seed", "paired")


def split_seed(params: SynthParams, split: str) -> int:
    """The seed a split's stream comes from: ``test_seed`` draws another test split, nothing else changes."""
    return int(params.test_seed) if split == "test" and params.test_seed is not None else int(params.seed)


def camera_pool(params: SynthParams) -> dict[str, tuple[int, bool]]:
    """Camera name -> (scene seed, seen in training). Unseen cameras come from the test split's seed."""
    seen = np.random.default_rng([int(params.seed), 0xCA]).integers(0, 2**31 - 1, params.cameras)
    unseen = np.random.default_rng([split_seed(params, "test"), 0xCB]).integers(0, 2**31 - 1, params.unseen_cameras)
    pool = {f"cam{i + 1:02d}": (int(s), True) for i, s in enumerate(seen)}
    pool.update({f"new{i + 1:02d}": (int(s), False) for i, s in enumerate(unseen)})
    return pool


def _cameras_of(params: SynthParams, split: str, n: int) -> list[str]:
    """The camera of each of a split's n videos of one label (the same list for both labels)."""
    seen = [f"cam{i + 1:02d}" for i in range(params.cameras)]
    unseen = [f"new{i + 1:02d}" for i in range(params.unseen_cameras)]
    k = int(round(params.unseen_share * n)) if split == "test" and unseen else 0
    return [unseen[i % len(unseen)] for i in range(k)] + [seen[i % len(seen)] for i in range(n - k)]


def _balanced(kinds: tuple[str, ...], total: int, rng: np.random.Generator) -> list[str]:
    """``total`` kinds, each as often as the others (within one), in random order."""
    out = [kinds[i % len(kinds)] for i in range(total)]
    return [out[i] for i in rng.permutation(total)]


def dataset_specs(params: SynthParams) -> list[tuple[str, str, VideoSpec]]:
    """(split, label, spec) of every video: each split from its own random stream of ``params.seed``.

    With the v2 options the design is label-blind where it must be: both labels of a split get the same
    cameras and the same near-miss counts per kind (with ``paired``, the i-th video of each label the same
    length, camera, benign changes and near misses); event kinds are balanced over all of a split's events."""
    out = []
    durations = None if params.durations is None else {k: (a, b) for k, a, b in params.durations}
    depths = None if params.depths is None else {k: (a, b) for k, a, b in params.depths}
    pool = camera_pool(params) if params.cameras else {}
    lo_nm, hi_nm = (int(v) for v in params.near_miss)
    for split in SPLITS:
        seed = split_seed(params, split)
        rng = np.random.default_rng([seed, _SPLIT_STREAM[split]])
        most = max(params.count(split, "normal"), params.count(split, "anomalous"))
        design = np.random.default_rng([seed, _SPLIT_STREAM[split], 0x4E])  # label-blind choices
        near_counts = design.integers(lo_nm, hi_nm + 1, most) if hi_nm else np.zeros(most, int)
        if params.paired:  # one length, benign seed and near-miss list per index, for both labels
            lengths = [params.draw_length(design) for _ in range(most)]
            benign_seeds = [int(v) for v in design.integers(0, 2**31 - 1, most)]
            shared_near = _balanced(NEAR_MISS_KINDS, int(near_counts.sum()), design)
        for label in ("normal", "anomalous"):
            count = params.count(split, label)
            order = list(rng.permutation(EVENT_KINDS))  # every kind appears once per len(EVENT_KINDS) videos
            cams = _cameras_of(params, split, count) if pool else [""] * count
            near = shared_near if params.paired else _balanced(NEAR_MISS_KINDS, int(near_counts[:count].sum()), design)
            per_video = np.cumsum([0, *near_counts[:count]])
            kinds_of: list[list[str] | None] = [None] * count
            if params.balance_events and label == "anomalous":
                n_events = [1 + int(sum(rng.random() < params.p_more_events for _ in range(params.max_events - 1)))
                            for _ in range(count)]
                flat = _balanced(EVENT_KINDS, sum(n_events), rng)
                starts = np.cumsum([0, *n_events])
                kinds_of = [flat[starts[i]:starts[i + 1]] for i in range(count)]
            for i in range(count):
                n = lengths[i] if params.paired else params.draw_length(rng)
                kind = str(order[i % len(order)]) if label == "anomalous" else None
                spec = make_video_spec(
                    f"{split}_{label}_{i:03d}", label, n, rng, fps=params.fps, size=tuple(params.size), kind=kind,
                    max_events=params.max_events, p_more_events=params.p_more_events, durations=durations,
                    max_event_fraction=params.max_event_fraction, benign=params.benign, event_kinds=kinds_of[i],
                    depths=depths, near_miss=near[per_video[i]:per_video[i + 1]], benign_kinds=params.benign_kinds,
                    scene_seed=pool[cams[i]][0] if pool else None, camera=cams[i], crop_labels=params.crop_labels,
                    benign_seed=benign_seeds[i] if params.paired else None)
                out.append((split, label, spec))
    return out


def _render_one(path: Path, spec: VideoSpec) -> int:
    """Render and encode one video (a worker process's job); returns its frame count."""
    write_video(path, render_frames(spec), spec.fps)
    return spec.num_frames


def generate_dataset(root: str | Path, progress: bool = True, *, overwrite: bool = False,
                     splits: Sequence[str] | None = None, workers: int | None = None, **params: Any) -> Path:
    """Write a synthetic dataset (layout below) and return ``root``; reruns reuse finished videos.

    ``splits`` renders only those splits (the manifest lists every video; it is ``complete`` once every
    split is on disk), so a large benchmark can be made in parts. ``workers`` processes render videos at
    once (default: one per available CPU); every file is a function of its spec, whatever the order.

    ``params`` are :class:`SynthParams` fields. Layout: ``root/{train,dev,test}/{normal,anomalous}/NAME.mp4``
    (empty splits are not written), ``root/{dev,test}/annotations.csv`` (``name,start,end``, one row per
    event, frames 0-based end-exclusive) and ``root/synth.json`` (specs, parameters, version). Training
    videos carry video-level labels only (their folder); their events are kept in synth.json under a key
    marked debug-only. The same parameters always give the same files (byte for byte). A root made with
    other parameters is refused unless ``overwrite`` (which deletes only the videos that root's synth.json
    lists).
    """
    wanted, spec_params = _synth_params(params, splits)
    root = Path(root)
    record = spec_params.as_dict()
    manifest_path = root / "synth.json"
    _claim_root(root, manifest_path, record, overwrite)
    specs = dataset_specs(spec_params)
    manifest = _manifest(specs, record)
    atomic_write_json(manifest_path, manifest)
    chosen = [(root / split / label / f"{spec.name}.mp4", spec) for split, label, spec in specs if split in wanted]
    _render_videos(chosen, workers, progress)
    for split in (s for s in LABELLED_SPLITS if s in wanted):  # a split not made yet has no folder at all
        _write_annotations(root / split / "annotations.csv", [spec for s, _, spec in specs if s == split])
    manifest["complete"] = all((root / v["path"]).exists() for v in manifest["videos"])
    atomic_write_json(manifest_path, manifest)
    return root


def _synth_params(params: dict[str, Any], splits: Sequence[str] | None) -> tuple[tuple[str, ...], SynthParams]:
    """The splits to render and ``generate_dataset``'s keywords (lists from a YAML file made tuples) as checked
    :class:`SynthParams`."""
    if "num_frames" in params:
        params["num_frames"] = tuple(params["num_frames"])
    for key in ("size", "near_miss", "benign_kinds"):
        if params.get(key) is not None:
            params[key] = tuple(params[key])
    for key in ("durations", "depths"):
        if params.get(key) is not None:
            params[key] = tuple(tuple(row) for row in params[key])
    wanted = tuple(SPLITS if splits is None else splits)
    if not wanted or any(sp not in SPLITS for sp in wanted):
        raise ValueError(f"generate_dataset: splits must be some of {SPLITS}, got {splits!r}")
    known = {f.name for f in dataclasses.fields(SynthParams)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"generate_dataset: unknown parameter(s) {unknown}; known: {sorted(known)}")
    spec_params = SynthParams(**params)
    spec_params.check()
    return wanted, spec_params


def _claim_root(root: Path, manifest_path: Path, record: dict[str, Any], overwrite: bool) -> None:
    """Refuse a root made with other parameters (unless ``overwrite``: then its listed videos and annotations
    are deleted) or one holding videos damvad.synth did not make."""
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


def _manifest(specs: list[tuple[str, str, VideoSpec]], record: dict[str, Any]) -> dict[str, Any]:
    """synth.json (``complete`` false until every video is on disk); training events only under the debug key."""
    from damvad import __version__

    videos = []
    debug_events: dict[str, list[dict[str, Any]]] = {}
    for split, label, spec in specs:
        entry = spec.to_dict(with_events=(split in LABELLED_SPLITS))
        entry.update(split=split, path=f"{split}/{label}/{spec.name}.mp4")
        videos.append(entry)
        if split == "train" and spec.events:
            debug_events[spec.name] = [e.to_dict() for e in spec.events]
    return {
        "generator": "damvad.synth", "damvad_version": __version__, "params": record, "complete": False,
        "frame_convention": "0-based frame indices, events are [start, end) (end exclusive)",
        "videos": videos, _DEBUG_KEY: debug_events,
    }


def _render_videos(chosen: list[tuple[Path, VideoSpec]], workers: int | None, progress: bool) -> None:
    """Render and write the videos of ``chosen`` not already on disk whole, in this process or in ``workers``."""
    from damvad.progress import progress_bar

    total = sum(s.num_frames for _, s in chosen)
    todo = [(path, spec) for path, spec in chosen if not (path.exists() and _frame_count(path) == spec.num_frames)]
    n_workers = min(workers or usable_cores(), max(len(todo), 1))
    with progress_bar(total=total, unit="frame", desc="synthetic videos", disable=not progress) as bar:
        bar.update(total - sum(s.num_frames for _, s in todo))
        if n_workers == 1:
            for path, spec in todo:
                def counted(it: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
                    for fr in it:
                        yield fr
                        bar.update(1)

                bar.set_postfix_str(spec.name)
                write_video(path, counted(render_frames(spec)), spec.fps)
        else:
            _render_parallel(todo, n_workers, bar)


def _write_annotations(path: Path, specs: list[VideoSpec]) -> None:
    """A labelled split's annotations.csv (``name,start,end``, one row per event); none for an empty split."""
    if not specs:
        return
    buf = io.StringIO()
    wr = csv.writer(buf, lineterminator="\n")
    wr.writerow(["name", "start", "end"])
    for spec in specs:
        for ev in spec.events:
            wr.writerow([spec.name, ev.start_frame, ev.end_frame])
    atomic_write_text(path, buf.getvalue())


def _render_parallel(todo: list[tuple[Path, VideoSpec]], workers: int, bar: Any) -> None:
    """Render videos in ``workers`` processes (spawned: no fork of a process holding threads); a failure
    stops the pool and is raised after the finished videos are kept."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(_render_one, path, spec): spec for path, spec in todo}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for fut in done:
                bar.update(fut.result())  # raises the worker's error: the rest are cancelled on exit
                bar.set_postfix_str(futures[fut].name)


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
