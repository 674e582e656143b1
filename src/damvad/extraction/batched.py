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
The decoding and preprocessing of one video are :mod:`damvad.video`'s (:func:`~damvad.video.snippet_inputs`).
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from damvad.backends import I3DBackend, run_batch
from damvad.extraction.local import finish_video
from damvad.extraction.plan import ExtractorSpec, ExtractReport, read_source_fingerprint
from damvad.store import FeatureRecord, FeatureStore, SourceFile
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
    bad: set[int] = field(default_factory=set)  # snippets with non-finite features
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


class _Decoders:
    """The decoding threads: each takes the next video, puts its crops into the assembler's slots, and
    reports its start, its snippets' frame ranges and its end (or its error) on the ready queue."""

    def __init__(self, todo: Sequence[tuple[str, Path]], spec: ExtractorSpec, infos: dict[str, VideoInfo],
                 assembler: _Assembler, uint8: bool, count: int) -> None:
        self.todo, self.spec, self.infos, self.assembler, self.uint8 = todo, spec, infos, assembler, uint8
        self.crops = len(CROP_NAMES[spec.crops])
        self.next_video = iter(range(len(todo)))
        self.pick_lock = threading.Lock()
        self.running = count
        self.threads = [threading.Thread(target=self._loop, name=f"damvad-decoder-{i}", daemon=True)
                        for i in range(count)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self, timeout: float) -> None:
        for thread in self.threads:
            thread.join(timeout=timeout)

    def _loop(self) -> None:
        try:
            while not self.assembler.stop.is_set():
                with self.pick_lock:
                    vid = next(self.next_video, None)
                if vid is None:
                    break
                self._decode(vid)
        finally:
            with self.pick_lock:
                self.running -= 1
                last = self.running == 0
            if last:
                self.assembler.flush()
                self.assembler.ready.put(_END)

    def _decode(self, vid: int) -> None:
        import torch

        name, path = self.todo[vid]
        spec, ready = self.spec, self.assembler.ready
        try:
            info = self.infos.get(name) or probe(path, spec.fps)
            source = read_source_fingerprint(path)
            ready.put(("start", vid, _Video(name, path, info, source)))
            count, frames = 0, 0
            frames_in = iter_frames(path, planar=True, crops=spec.crops)  # the centre crop: only its window
            for snip, x in snippet_inputs(frames_in, spec.crops, spec.snippet_len, source=path, planar=True,
                                          dtype="uint8" if self.uint8 else "float32", stride=spec.stride):
                for crop in range(self.crops):  # progress counts the frames each snippet adds (they may overlap)
                    slot = self.assembler.reserve((vid, snip.index, crop, snip.end - frames))
                    if slot is None:
                        return
                    target, row = slot
                    try:
                        target.tensor[row].copy_(torch.from_numpy(x[crop]))
                    finally:
                        self.assembler.commit(target)
                ready.put(("range", vid, snip.index, snip.start, snip.end))
                count, frames = count + 1, snip.end
                if self.assembler.stop.is_set():
                    return
            ready.put(("end", vid, count, frames))
        except VideoError as exc:
            ready.put(("error", vid, exc.cause))
        except Exception as exc:  # anything else a decoder hits is that video's failure, not the batch's
            log.exception("decoding %s", path)
            ready.put(("error", vid, f"{type(exc).__name__}: {exc}"))


class _BatchRun:
    """The consuming side, on the caller's thread: batches to the backend, features back to their videos,
    finished videos to ``on_done`` / ``on_failed``."""

    def __init__(self, todo: Sequence[tuple[str, Path]], backend: I3DBackend, spec: ExtractorSpec,
                 on_done: OnDone, on_failed: OnFailed, on_frames: Callable[[int], None] | None) -> None:
        self.todo, self.backend, self.spec = todo, backend, spec
        self.on_done, self.on_failed, self.on_frames = on_done, on_failed, on_frames
        self.crops = len(CROP_NAMES[spec.crops])
        self.videos: list[_Video | None] = [None] * len(todo)
        self.started: set[int] = set()

    def consume(self, assembler: _Assembler) -> None:
        """Until every decoder is done, or ``on_done`` asks to stop."""
        while True:
            item = assembler.ready.get()
            if item is _END:
                return
            if isinstance(item, tuple):
                if not self._event(item):
                    return
                continue
            n = len(item.owners)
            try:
                feats, finite = run_batch(self.backend, item.tensor[:n])
            finally:
                assembler.release(item.tensor)  # the call has returned: its input copy is done
            if not self._scatter(item.owners, feats, finite):
                return

    def _event(self, item: tuple) -> bool:
        """A decoder's report; False stops the batch."""
        kind, vid = item[0], item[1]
        if kind == "start":
            self.videos[vid] = item[2]
            self.started.add(vid)
            return True
        video = self.videos[vid]
        if video is None:
            if kind == "error" and vid not in self.started:  # failed before it started (probe, open)
                self.on_failed(self.todo[vid][0], item[2])
            return True
        if kind == "range":
            video.ranges.append([item[3], item[4]])
        elif kind == "end":
            video.snippets, video.frames = item[2], item[3]
            return self._finish(vid)
        elif kind == "error":
            video.failed = True
            self.videos[vid] = None
            self.on_failed(video.name, item[2])
        return True

    def _scatter(self, owners: list[tuple[int, int, int, int]], feats: np.ndarray, finite: np.ndarray) -> bool:
        """Each row of a batch's features to its video and snippet; False stops the batch."""
        touched = set()
        for row, (vid, snip, crop, frames) in enumerate(owners):
            video = self.videos[vid]
            if video is None or video.failed:
                continue
            if snip not in video.maps:
                video.maps[snip] = np.empty((self.crops, *feats.shape[1:]), np.float32)
            video.maps[snip][crop] = feats[row]
            if not finite[row]:
                video.bad.add(snip)
            video.filled[snip] = video.filled.get(snip, 0) + 1
            if crop == self.crops - 1 and self.on_frames is not None:
                self.on_frames(frames)
            touched.add(vid)
        return all(self._finish(vid) for vid in sorted(touched))

    def _finish(self, vid: int) -> bool:
        """Write a video once decoded and scored; False stops the batch."""
        video = self.videos[vid]
        if video is None or video.failed or video.snippets is None:
            return True
        if len(video.filled) < video.snippets or any(n < self.crops for n in video.filled.values()):
            return True
        self.videos[vid] = None  # done either way: free its maps
        if video.bad:
            self.on_failed(video.name, f"I3D produced non-finite features at snippet {min(video.bad)}")
            return True
        maps = [video.maps[i].astype(self.spec.dtype) for i in range(video.snippets)]
        try:
            arr, record = finish_video(video.path, video.info, video.source, self.spec, maps, video.ranges,
                                       video.frames, video.name)
        except VideoError as exc:
            self.on_failed(video.name, exc.cause)
            return True
        return self.on_done(video.name, arr, record)


def extract_batched(
    todo: Sequence[tuple[str, Path]],
    backend: I3DBackend,
    spec: ExtractorSpec,
    infos: dict[str, VideoInfo],
    on_done: OnDone,
    on_failed: OnFailed,
    on_frames: Callable[[int], None] | None = None,
    batch_size: int | None = None,
    decoders: int | None = None,
    buffers: int = 3,
) -> None:
    """Extract ``todo`` (name, path) with ``backend`` in full batches (see the module docstring).

    ``batch_size``: clips per model call (default: the backend's). Finished videos go to ``on_done`` in the
    order they finish, failed ones to ``on_failed``; both are called on this thread. When ``on_done`` returns
    False the batch stops: videos in flight or not started are reported to neither (the caller names them).
    """
    import torch

    batch = int(batch_size or backend.batch_size)
    if batch < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch}")
    shape = (batch, 3, spec.snippet_len, CROP, CROP)
    dtype = torch.uint8 if backend.accepts_uint8 else torch.float32
    stop = threading.Event()
    assembler = _Assembler(lambda: torch.empty(shape, dtype=dtype, pin_memory=backend.pin_memory), batch, buffers,
                           stop)
    count = max(1, min(int(decoders or default_decoders()), len(todo) or 1))
    threads = _Decoders(todo, spec, infos, assembler, backend.accepts_uint8, count)
    threads.start()
    try:
        _BatchRun(todo, backend, spec, on_done, on_failed, on_frames).consume(assembler)
    finally:
        stop.set()
        threads.join(timeout=5.0)


def extract_batched_to_store(todo: list[tuple[str, Path]], backend: I3DBackend, spec: ExtractorSpec,
                             infos: dict[str, VideoInfo], store: FeatureStore, report: ExtractReport, bar: Any = None,
                             batch: int | None = None, decoders: int | None = None,
                             on_frames: Callable[[int], None] | None = None) -> None:
    """:func:`extract_batched` writing through ``store`` into ``report`` as the per-video loop does (the GPU
    path of a local extraction and of a GPU cluster worker). ``bar``: a tqdm bar or None."""

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
    extract_batched(todo, backend, spec, infos, done, failed, on_frames=on_frames, batch_size=batch,
                    decoders=decoders)
    finished = set(report.done) | set(report.failed)
    report.out_of_space((name for name, _ in todo if name not in finished), store.root)  # stopped early: disk full
