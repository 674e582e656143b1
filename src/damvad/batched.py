"""Batched extraction, the GPU path: several videos decoded at once, their crops packed into full batches.

A GPU runs I3D fast only on many clips at once, and only if it never waits for frames. So, for a batch of
videos:

* ``decoders`` CPU threads each decode one video at a time (PyAV and numpy release the GIL) and copy every
  crop of every snippet straight into a slot of a shared batch buffer (pinned memory on a GPU, so the
  copy to the device is asynchronous);
* a buffer is handed to the model as soon as its ``batch_size`` slots are filled, whichever videos they
  come from (snippets are batched across a video and across videos; only the very last batch of a run is
  short), while the decoders already fill the next buffer (``buffers`` of them in rotation);
* the model's outputs go back to the video and snippet they came from; a video is finished (checked,
  written, reported) once it is fully decoded and all its snippets are scored.

Every clip sees the same model call as on the per-video path, so the features equal that path's up to
the backend's batch invariance (exactly for a batch-invariant function; ~1e-7 relative for I3D, tested).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from damvad.store import FeatureRecord, SourceFile
from damvad.video import CROP, CROP_NAMES, VideoError, VideoInfo, iter_frames, probe, snippet_inputs

log = logging.getLogger(__name__)

# (name, features (S, crops, t, n), its record) of a finished video, or (name, error) of a failed one
OnDone = Callable[[str, np.ndarray, FeatureRecord], bool]  # False: stop the batch (e.g. disk full)
OnFailed = Callable[[str, str], None]


def default_decoders() -> int:
    """Decoding threads: half the CPUs (PyAV threads each decoder too), at least 1, at most 8."""
    return max(1, min(8, (os.cpu_count() or 2) // 2))


@dataclass
class _Batch:
    """One buffer being filled: which (video, snippet, crop, frames) each slot holds."""

    tensor: Any  # torch.Tensor (batch, 3, T, 224, 224), uint8 or float32
    owners: list[tuple[int, int, int, int]] = field(default_factory=list)
    committed: int = 0
    sealed: bool = False


@dataclass
class _Video:
    """A video in flight: its maps as they come back, and what its decoder reported at the end."""

    name: str
    path: Path
    info: VideoInfo
    source: SourceFile
    maps: dict[int, np.ndarray] = field(default_factory=dict)  # snippet -> (crops, t, n)
    filled: dict[int, int] = field(default_factory=dict)  # snippet -> crops scored
    ranges: list[list[int]] = field(default_factory=list)
    snippets: int | None = None  # known once decoded
    frames: int = 0
    failed: bool = False


_END = object()


class _Assembler:
    """Slots of rotating batch buffers for the decoding threads; full buffers go to ``ready``."""

    def __init__(self, make_buffer: Callable[[], Any], batch: int, buffers: int, stop: threading.Event) -> None:
        self.batch = batch
        self.free: queue.Queue = queue.Queue()
        for _ in range(buffers):
            self.free.put(make_buffer())
        self.ready: queue.Queue = queue.Queue()  # _Batch, ("end", ...) / ("error", ...) events, _END
        self.lock = threading.Lock()
        self.current: _Batch | None = None
        self.stop = stop

    def reserve(self, owner: tuple[int, int, int, int]) -> tuple[_Batch, int] | None:
        """A slot for one clip (None when stopping); blocks while every buffer is in use.

        The wait for a free buffer happens outside the lock: the commits that seal the buffers in use,
        and so free them, need it."""
        while True:
            with self.lock:
                batch = self.current
                if batch is not None:
                    row = len(batch.owners)
                    batch.owners.append(owner)
                    if len(batch.owners) == self.batch:
                        batch.sealed = True
                        self.current = None
                    return batch, row
            try:
                tensor = self.free.get(timeout=0.1)
            except queue.Empty:
                if self.stop.is_set():
                    return None
                continue
            with self.lock:
                if self.current is None:
                    self.current = _Batch(tensor)
                else:  # another decoder opened one meanwhile
                    self.free.put(tensor)

    def commit(self, batch: _Batch) -> None:
        with self.lock:
            batch.committed += 1
            if batch.sealed and batch.committed == len(batch.owners):
                self.ready.put(batch)

    def flush(self) -> None:
        """Hand over a partly filled buffer (the run's last); every reserved slot has been committed."""
        with self.lock:
            batch, self.current = self.current, None
            if batch is not None and batch.owners:
                batch.sealed = True
                if batch.committed == len(batch.owners):
                    self.ready.put(batch)

    def release(self, tensor: Any) -> None:
        self.free.put(tensor)


def extract_batched(
    todo: Sequence[tuple[str, Path]],
    feature_fn: Any,
    spec: Any,
    infos: dict[str, VideoInfo],
    on_done: OnDone,
    on_failed: OnFailed,
    on_frames: Callable[[int], None] | None = None,
    batch_size: int | None = None,
    decoders: int | None = None,
    buffers: int = 3,
) -> None:
    """Extract ``todo`` (name, path) with ``feature_fn`` in full batches (see the module docstring).

    ``batch_size``: clips per model call (default: the backend's ``batch_size``). Finished videos go to
    ``on_done`` in the order they finish, failed ones to ``on_failed``; both are called on this thread.
    When ``on_done`` returns False the batch stops: videos in flight or not started are reported to
    neither (the caller names them).
    """
    import torch

    from damvad.extract import finish_video, read_source_fingerprint

    batch = int(batch_size or getattr(feature_fn, "batch_size", 1) or 1)
    if batch < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch}")
    decoders = max(1, min(int(decoders or default_decoders()), len(todo) or 1))
    uint8 = bool(getattr(feature_fn, "accepts_uint8", False))
    pin = bool(getattr(feature_fn, "pin_memory", False))
    crops = len(CROP_NAMES[spec.crops])
    shape = (batch, 3, spec.snippet_len, CROP, CROP)

    def make_buffer() -> Any:
        return torch.empty(shape, dtype=torch.uint8 if uint8 else torch.float32, pin_memory=pin)

    stop = threading.Event()
    assembler = _Assembler(make_buffer, batch, buffers, stop)
    videos: list[_Video | None] = [None] * len(todo)
    next_video = iter(range(len(todo)))
    pick_lock = threading.Lock()
    running = [decoders]

    def decode(vid: int) -> None:
        name, path = todo[vid]
        try:
            info = infos.get(name) or probe(path, spec.fps)
            source = read_source_fingerprint(path)
            assembler.ready.put(("start", vid, _Video(name, path, info, source)))
            count, frames = 0, 0
            frames_iter = iter_frames(path, planar=True)
            for snip, x in snippet_inputs(frames_iter, spec.crops, spec.snippet_len, source=path, planar=True,
                                          dtype="uint8" if uint8 else "float32", stride=spec.stride):
                for crop in range(crops):  # progress counts the frames each snippet adds (snippets may overlap)
                    slot = assembler.reserve((vid, snip.index, crop, snip.end - frames))
                    if slot is None:
                        return
                    target, row = slot
                    try:
                        target.tensor[row].copy_(torch.from_numpy(x[crop]))
                    finally:
                        assembler.commit(target)
                assembler.ready.put(("range", vid, snip.index, snip.start, snip.end))
                count, frames = count + 1, snip.end
                if stop.is_set():
                    return
            assembler.ready.put(("end", vid, count, frames))
        except VideoError as exc:
            assembler.ready.put(("error", vid, exc.cause))
        except Exception as exc:  # anything else a decoder hits is that video's failure, not the batch's
            log.exception("decoding %s", path)
            assembler.ready.put(("error", vid, f"{type(exc).__name__}: {exc}"))

    def decoder_loop() -> None:
        try:
            while not stop.is_set():
                with pick_lock:
                    vid = next(next_video, None)
                if vid is None:
                    break
                decode(vid)
        finally:
            with pick_lock:
                running[0] -= 1
                last = running[0] == 0
            if last:
                assembler.flush()
                assembler.ready.put(_END)

    threads = [threading.Thread(target=decoder_loop, name=f"damvad-decoder-{i}", daemon=True) for i in range(decoders)]
    for thread in threads:
        thread.start()

    def finish(vid: int) -> bool:
        """Write a video once decoded and scored; False stops the batch."""
        video = videos[vid]
        if video is None or video.failed or video.snippets is None:
            return True
        if len(video.filled) < video.snippets or any(n < crops for n in video.filled.values()):
            return True
        videos[vid] = None  # done either way: free its maps
        maps = [video.maps[i] for i in range(video.snippets)]
        bad = next((i for i, m in enumerate(maps) if not np.isfinite(m).all()), None)
        if bad is not None:
            on_failed(video.name, f"I3D produced non-finite features at snippet {bad}")
            return True
        try:
            arr, record = finish_video(video.path, video.info, video.source, spec,
                                       [m.astype(spec.dtype) for m in maps], video.ranges, video.frames, video.name)
        except VideoError as exc:
            on_failed(video.name, exc.cause)
            return True
        return on_done(video.name, arr, record)

    started: set[int] = set()
    try:
        while True:
            item = assembler.ready.get()
            if item is _END:
                break
            if isinstance(item, tuple):
                kind, vid = item[0], item[1]
                if kind == "start":
                    videos[vid] = item[2]
                    started.add(vid)
                    continue
                video = videos[vid]
                if video is None:
                    if kind == "error" and vid not in started:  # failed before it started (probe, open)
                        on_failed(todo[vid][0], item[2])
                    continue
                if kind == "range":
                    video.ranges.append([item[3], item[4]])
                elif kind == "end":
                    video.snippets, video.frames = item[2], item[3]
                    if not finish(vid):
                        break
                elif kind == "error":
                    video.failed = True
                    videos[vid] = None
                    on_failed(video.name, item[2])
                continue
            n = len(item.owners)
            try:
                with torch.inference_mode():
                    out = feature_fn(item.tensor[:n])
                feats = out.float().cpu().numpy() if hasattr(out, "cpu") else np.asarray(out, np.float32)
            finally:
                assembler.release(item.tensor)  # the call has returned: its input copy is done
            touched = set()
            for row, (vid, snip, crop, frames) in enumerate(item.owners):
                video = videos[vid]
                if video is None or video.failed:
                    continue
                if snip not in video.maps:
                    video.maps[snip] = np.empty((crops, *feats.shape[1:]), np.float32)
                video.maps[snip][crop] = feats[row]
                video.filled[snip] = video.filled.get(snip, 0) + 1
                if crop == crops - 1 and on_frames is not None:
                    on_frames(frames)
                touched.add(vid)
            if not all(finish(vid) for vid in sorted(touched)):
                break
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5.0)
