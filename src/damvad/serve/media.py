"""Pictures of cameras and events: each camera's recent frames as JPEGs in memory (its live thumbnail and
the start of any event), event thumbnails and frames written under ``DATA/media/<event id>/`` off the
scoring thread, and the retention that deletes old media (by age, then by total size).

Paths are built from event ids (integers) only: nothing a request sends names a file.
"""

from __future__ import annotations

import io
import logging
import queue
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from damvad.serve.store import EventStore
from damvad.utils import atomic_write_bytes

log = logging.getLogger(__name__)

KEEP_FPS = 4.0  # frames kept per second for thumbnails and event clips
RING_SECONDS = 20.0  # how far back a camera's kept frames go (an alert comes one snippet after its start)
PRE_ROLL = 1.0  # seconds of an event clip before its first frame
CLIP_FRAMES = 60  # at most this many frames per event clip (15 s at KEEP_FPS)


def jpeg(frame: np.ndarray, quality: int = 80) -> bytes:
    """An RGB uint8 frame as JPEG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame)).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


@dataclass
class Recording:
    """An open event's frames: those the ring still had from ``start``, then each new kept frame."""

    start: int
    frames: list[tuple[int, bytes]] = field(default_factory=list)
    active: bool = True

    def add(self, index: int, data: bytes) -> None:
        if self.active and index >= self.start and len(self.frames) < CLIP_FRAMES:
            self.frames.append((index, data))


class FrameRing:
    """A camera's recent frames: every frame's arrival time, and one frame in ``fps / KEEP_FPS`` as JPEG.

    ``add`` runs on the camera's decoding thread, the readers on the scoring and web threads."""

    def __init__(self, fps: float, arrivals: int = 8192):
        self.step = max(1, round(fps / KEEP_FPS))
        self.fps = fps
        self._lock = threading.Lock()
        self._kept: deque[tuple[int, bytes]] = deque(maxlen=int(RING_SECONDS * KEEP_FPS) + 1)
        self._arrived = np.full(arrivals, np.nan)
        self._index = np.full(arrivals, -1, dtype=np.int64)
        self._recordings: list[Recording] = []

    def add(self, index: int, frame: np.ndarray) -> None:
        now = time.time()
        slot = index % len(self._arrived)
        self._arrived[slot], self._index[slot] = now, index
        if index % self.step:
            return
        data = jpeg(frame)
        with self._lock:
            self._kept.append((index, data))
            for rec in self._recordings:
                rec.add(index, data)

    def arrival(self, index: int) -> float | None:
        """When frame ``index`` arrived (unix seconds), if it is recent enough to be remembered."""
        slot = index % len(self._arrived)
        return float(self._arrived[slot]) if self._index[slot] == index else None

    def latest(self) -> tuple[int, bytes] | None:
        with self._lock:
            return self._kept[-1] if self._kept else None

    def nearest(self, index: int) -> bytes | None:
        with self._lock:
            if not self._kept:
                return None
            return min(self._kept, key=lambda item: abs(item[0] - index))[1]

    def record(self, start: int) -> Recording:
        """Start recording an event's frames from frame ``start`` (minus the pre-roll)."""
        rec = Recording(max(0, start - int(PRE_ROLL * self.fps)))
        with self._lock:
            for index, data in self._kept:
                rec.add(index, data)
            self._recordings.append(rec)
        return rec

    def stop(self, rec: Recording) -> list[tuple[int, bytes]]:
        with self._lock:
            rec.active = False
            if rec in self._recordings:
                self._recordings.remove(rec)
            return list(rec.frames)


class MediaWriter:
    """Writes event pictures on its own thread (disk never slows scoring), then records them in the store."""

    def __init__(self, root: Path, store: EventStore):
        self.root, self.store = root, store
        self._jobs: queue.Queue[tuple[int, str, list[bytes]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="damvad-media", daemon=True)
        self._thread.start()

    def folder(self, event_id: int) -> Path:
        return self.root / str(int(event_id))

    def thumbnail(self, event_id: int, data: bytes) -> None:
        self._jobs.put((event_id, "thumbnail", [data]))

    def frames(self, event_id: int, frames: list[bytes]) -> None:
        if frames:
            self._jobs.put((event_id, "frames", frames))

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            event_id, kind, items = job
            try:
                folder = self.folder(event_id)
                folder.mkdir(parents=True, exist_ok=True)
                if kind == "thumbnail":
                    atomic_write_bytes(folder / "thumb.jpg", items[0])
                    self.store.update_event(event_id, thumbnail=True)
                else:
                    for i, data in enumerate(items):
                        atomic_write_bytes(folder / f"{i:03d}.jpg", data)
                    self.store.update_event(event_id, media_frames=len(items))
            except OSError as exc:  # a full disk loses pictures, never the event (already committed)
                log.error("event %d: cannot write its %s: %s", event_id, kind, exc)
            finally:
                self._jobs.task_done()

    def flush(self) -> None:
        """Wait until every queued picture is written."""
        self._jobs.join()

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=30)


def apply_retention(store: EventStore, writer: MediaWriter, days: float, gigabytes: float,
                    now: Callable[[], float] = time.time) -> int:
    """Delete event media older than ``days``, then the oldest until the rest fits in ``gigabytes``; the event
    rows stay (their pictures are gone). Returns how many events lost their media."""
    cutoff = now() - days * 86400.0
    sized = [(e, _size(writer.folder(e.id))) for e in store.events_with_media()]
    total = sum(size for _, size in sized)
    budget = gigabytes * 1e9
    removed = 0
    for event, size in sized:  # oldest first
        if (event.end_ts or event.updated_ts) >= cutoff and total <= budget:
            continue
        if event.state == "open":
            continue  # still being recorded
        shutil.rmtree(writer.folder(event.id), ignore_errors=True)
        store.update_event(event.id, media_frames=0, thumbnail=False)
        total -= size
        removed += 1
    return removed


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*") if p.is_file()) if folder.is_dir() else 0
