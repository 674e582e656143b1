"""Writing a whole synthetic dataset (splits, labels, frame ground truth) and reading its ground truth."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from damvad.synth.render import _codec, _frame_count, render_frames, write_video
from damvad.synth.specs import EVENT_KINDS, SYNTH_FORMAT, VideoSpec, make_video_spec, min_anomalous_frames
from damvad.utils import atomic_write_json, atomic_write_text

_SPLITS = (("train", "normal"), ("train", "anomalous"), ("test", "normal"), ("test", "anomalous"))
_DEBUG_KEY = "debug_only_train_events_not_for_training"


def _dataset_specs(counts: dict[tuple[str, str], int], num_frames: tuple[int, int], size: tuple[int, int],
                   fps: float, seed: int) -> list[tuple[str, str, VideoSpec]]:
    rng = np.random.default_rng(seed)
    out = []
    for split, label in _SPLITS:
        order = list(rng.permutation(EVENT_KINDS))  # every kind appears once per len(EVENT_KINDS) videos
        for i in range(counts[(split, label)]):
            n = int(rng.integers(num_frames[0], num_frames[1] + 1))
            kind = str(order[i % len(order)]) if label == "anomalous" else None
            spec = make_video_spec(f"{split}_{label}_{i:03d}", label, n, rng, fps=fps, size=size, kind=kind)
            out.append((split, label, spec))
    return out


def generate_dataset(
    root: str | Path,
    n_train_normal: int = 12,
    n_train_anomalous: int = 12,
    n_test_normal: int = 6,
    n_test_anomalous: int = 6,
    num_frames: tuple[int, int] = (192, 448),
    size: tuple[int, int] = (320, 240),
    fps: float = 25,
    seed: int = 0,
    progress: bool = True,
    *,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic dataset (layout below) and return ``root``; reruns reuse finished videos.

    ``root/{train,test}/{normal,anomalous}/NAME.mp4``, ``root/test/annotations.csv`` (``name,start,end``,
    one row per event of a test video, frames 0-based end-exclusive) and ``root/synth.json`` (specs,
    parameters, version). Training videos carry video-level labels only (their folder); their events
    are kept in synth.json under a key marked debug-only. A root made with other parameters is refused
    unless ``overwrite`` (which deletes only the videos that root's synth.json lists).
    """
    from tqdm import tqdm

    from damvad import __version__

    root = Path(root)
    counts = {("train", "normal"): n_train_normal, ("train", "anomalous"): n_train_anomalous,
              ("test", "normal"): n_test_normal, ("test", "anomalous"): n_test_anomalous}
    for (split, label), c in counts.items():
        if isinstance(c, bool) or not isinstance(c, int) or c < 0:
            raise ValueError(f"generate_dataset: n_{split}_{label} must be an integer >= 0, got {c!r}")
    lo, hi = (int(v) for v in num_frames)
    need = min_anomalous_frames(fps)
    if lo > hi or lo < 1 or (lo < need and (n_train_anomalous or n_test_anomalous)):
        raise ValueError(f"generate_dataset: num_frames={num_frames!r} must be (lo, hi) with lo <= hi and "
                         f"lo >= {need} (an event needs 1.5 s after the first 1.5 s, plus 0.5 s)")
    w, h = (int(v) for v in size)
    if w % 2 or h % 2 or w < 32 or h < 32:
        raise ValueError(f"generate_dataset: size={size!r} must be (width, height), even, at least 32 x 32")
    params = {"n_train_normal": n_train_normal, "n_train_anomalous": n_train_anomalous,
              "n_test_normal": n_test_normal, "n_test_anomalous": n_test_anomalous,
              "num_frames": [lo, hi], "size": [w, h], "fps": fps, "seed": int(seed),
              "synth_format": SYNTH_FORMAT, "codec": _codec()}
    params = json.loads(json.dumps(params))
    manifest_path = root / "synth.json"
    if manifest_path.exists():
        try:
            old = json.loads(manifest_path.read_text())
        except (OSError, ValueError) as e:
            raise ValueError(f"generate_dataset: {manifest_path} is unreadable ({e}); delete it or choose "
                             "another root") from None
        if old.get("params") != params:
            if not overwrite:
                diff = {k: (old.get("params", {}).get(k), v) for k, v in params.items()
                        if old.get("params", {}).get(k) != v}
                raise FileExistsError(
                    f"generate_dataset: {root} already holds a synthetic dataset made with other parameters "
                    f"(old, new: {diff}); pass overwrite=True or choose another root")
            for v in old.get("videos", []):
                (root / v["path"]).unlink(missing_ok=True)
            (root / "test" / "annotations.csv").unlink(missing_ok=True)
    else:
        foreign = [p for s, lab in _SPLITS for p in (root / s / lab).glob("*.mp4")]
        if foreign:
            raise FileExistsError(f"generate_dataset: {root} holds videos not made by damvad.synth "
                                  f"(e.g. {foreign[0]}); choose an empty or new root")
    specs = _dataset_specs(counts, (lo, hi), (w, h), fps, int(seed))
    videos = []
    debug_events: dict[str, list[dict[str, Any]]] = {}
    for split, label, spec in specs:
        entry = spec.to_dict(with_events=(split == "test"))
        entry.update(split=split, path=f"{split}/{label}/{spec.name}.mp4")
        videos.append(entry)
        if split == "train" and spec.events:
            debug_events[spec.name] = [e.to_dict() for e in spec.events]
    manifest = {
        "generator": "damvad.synth", "damvad_version": __version__, "params": params, "complete": False,
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
    buf = io.StringIO()
    wr = csv.writer(buf, lineterminator="\n")
    wr.writerow(["name", "start", "end"])
    for split, _, spec in specs:
        if split == "test":
            for ev in spec.events:
                wr.writerow([spec.name, ev.start_frame, ev.end_frame])
    atomic_write_text(root / "test" / "annotations.csv", buf.getvalue())
    manifest["complete"] = True
    atomic_write_json(manifest_path, manifest)
    return root


def load_ground_truth(root: str | Path) -> dict[str, np.ndarray]:
    """Frame-level ground truth (bool per frame) of every test video of a generated dataset."""
    root = Path(root)
    manifest_path = root / "synth.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"load_ground_truth: cannot read {manifest_path} ({e})") from None
    gt = {v["name"]: np.zeros(int(v["num_frames"]), bool) for v in manifest["videos"] if v["split"] == "test"}
    ann = root / "test" / "annotations.csv"
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
            raise ValueError(f"load_ground_truth: {ann}, line {i}: {row!r} does not fit a test video")
        gt[name][a:b] = True
    return gt
