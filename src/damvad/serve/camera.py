"""One camera of the monitor: its frames go through the live path (:class:`damvad.detect.Detector`, the
same snippets, scores, threshold and hysteresis as ``damvad detect``), and the detector's rows and alert
events come back here (this class is the detector's row writer) to become the camera's state, its score
timeline and the monitor's events.

A camera never gives up: a URL that the live path's reconnects could not save is opened again after
``retry`` seconds; a file or generated stream ends (or starts again with ``loop``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from damvad.detect import Detector
from damvad.detections import AlertEvent, DetectionRow
from damvad.serve.config import CameraSpec
from damvad.serve.media import FrameRing, Recording
from damvad.serve.sources import SYNTH, VideoError, open_source, paced, until
from damvad.serve.store import Event

log = logging.getLogger(__name__)


class EventSink(Protocol):
    """What a camera tells about its events (:class:`damvad.serve.monitor.Monitor`)."""

    def opened(self, camera: str, row: DetectionRow, start_ts: float, threshold: float) -> Event: ...

    def peaked(self, event: Event, peak: float) -> Event: ...

    def closed(self, event: Event, alert: AlertEvent, end_ts: float) -> Event: ...

    def pictures(self, event: Event, thumbnail: bytes | None, frames: list[bytes]) -> None: ...


@dataclass
class ScorePoint:
    ts: float  # when the clip was scored (unix seconds)
    start_frame: int
    end_frame: int
    score: float
    alert: bool


class Camera:
    """A camera's thread, state and recent history."""

    def __init__(self, spec: CameraSpec, detector: Detector, sink: EventSink, history_minutes: float = 60.0,
                 retry: float = 30.0):
        self.spec, self.detector, self.sink = spec, detector, sink
        self.history_seconds, self.retry = history_minutes * 60.0, retry
        self.state = "starting"  # starting | running | alert | reconnecting | error | ended | stopped
        self.error: str | None = None
        self.fps: float | None = None
        self.frames = 0
        self.score: float | None = None
        self.updated_ts: float | None = None
        self.history: deque[ScorePoint] = deque()
        self.ring: FrameRing | None = None
        self._event: Event | None = None
        self._recording: Recording | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"damvad-camera-{spec.name}", daemon=True)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Camera:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _realtime(self) -> bool:
        return self.spec.realtime if self.spec.realtime is not None else self.spec.source.startswith(SYNTH)

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # noqa: BLE001 - e.g. the disk under the database failing: shown, not hidden
            log.exception("camera %s stopped", self.spec.name)
            self.state, self.error = "error", f"{type(exc).__name__}: {exc}"

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                source = open_source(self.spec.source)
            except (VideoError, ValueError) as exc:
                if not self._failed(str(exc)):
                    return
                continue
            self.fps, self.frames, self.error = source.fps, 0, None
            self.ring = FrameRing(source.fps)
            frames = (paced(source.frames, source.fps, self._stop) if self._realtime() and not source.live
                      else until(source.frames, self._stop))
            self.state = "running"
            result = self.detector.run(self._tee(frames), fps=source.fps, writer=self, progress=False,
                                       name=self.spec.name, keep_rows=False, live=source.live or self._realtime())
            if result.error is not None and not self._stop.is_set():
                if not self._failed(result.error):
                    return
            elif not self.spec.loop or self._stop.is_set():
                break
        self.state = "stopped" if self._stop.is_set() else "ended"

    def _failed(self, error: str) -> bool:
        """Record an error; True when the camera tries again (live sources, after ``retry`` seconds)."""
        self.error = error
        live = "://" in self.spec.source and not self.spec.source.startswith(SYNTH) or self.spec.source.isdigit()
        log.error("camera %s: %s%s", self.spec.name, error, f"; trying again in {self.retry:.0f} s" if live else "")
        self.state = "reconnecting" if live else "error"
        return live and not self._stop.wait(self.retry)

    def _tee(self, frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        """The frames, each remembered (arrival time, and every few as a JPEG) on the way to the detector."""
        ring = self.ring
        assert ring is not None
        for i, frame in enumerate(frames):
            ring.add(i, frame)
            self.frames = i + 1
            yield frame

    # ------------------------------------------------------------------ the detector's row writer

    def write(self, row: DetectionRow) -> None:
        """One scored clip (on the scoring thread): timeline, state, and an event opening or peaking."""
        now = time.time()
        with self._lock:
            self.history.append(ScorePoint(now, row.start_frame, row.end_frame, row.score, row.alert))
            while self.history and self.history[0].ts < now - self.history_seconds:
                self.history.popleft()
            self.score, self.updated_ts = row.score, now
        if row.alert and self._event is None:
            self._open(row)
        elif row.alert and self._event is not None and row.score > self._event.peak_score:
            self._event = self.sink.peaked(self._event, row.score)
        self.state = "alert" if row.alert else "running"

    def event(self, source: str, alert: AlertEvent) -> None:
        """The detector closed an event (hysteresis, or the stream ended)."""
        if self._event is None:  # not seen opening (cannot happen with Detector.run; kept safe)
            self._open(DetectionRow(source, 0, alert.start_frame, alert.end_frame, alert.start_time,
                                    alert.end_time, alert.peak_score, alert.peak_score, None, True, 0.0))
        assert self._event is not None and self.ring is not None
        end_ts = self.ring.arrival(alert.end_frame - 1) or time.time()
        event = self.sink.closed(self._event, alert, end_ts)
        frames = [data for _, data in self.ring.stop(self._recording)] if self._recording else []
        self.sink.pictures(event, None, frames)
        self._event, self._recording = None, None

    def _open(self, row: DetectionRow) -> None:
        ring = self.ring
        assert ring is not None
        start_ts = ring.arrival(row.start_frame) or time.time()
        self._event = self.sink.opened(self.spec.name, row, start_ts, self.detector.threshold)
        self._recording = ring.record(row.start_frame)
        thumb = ring.nearest((row.start_frame + row.end_frame) // 2)
        self.sink.pictures(self._event, thumb, [])

    # ------------------------------------------------------------------ views

    def snapshot(self) -> dict[str, Any]:
        """The camera as ``/api/cameras`` shows it."""
        return {"name": self.spec.name, "source": redact(self.spec.source), "state": self.state,
                "error": self.error, "fps": self.fps, "frames": self.frames, "score": self.score,
                "threshold": self.detector.threshold, "alert": self._event is not None,
                "event_id": self._event.id if self._event is not None else None, "updated_ts": self.updated_ts,
                "thumbnail": f"/api/cameras/{self.spec.name}/thumbnail.jpg"}

    def scores_since(self, since: float) -> list[list[float]]:
        """``[ts, score, alert]`` of the clips scored after ``since``."""
        with self._lock:
            return [[p.ts, round(p.score, 5), int(p.alert)] for p in self.history if p.ts > since]

    def thumbnail(self) -> bytes | None:
        latest = self.ring.latest() if self.ring is not None else None
        return latest[1] if latest else None


def redact(source: str) -> str:
    """A source without the password a URL may carry (``rtsp://user:secret@host`` -> ``rtsp://user:***@host``)."""
    from urllib.parse import urlsplit, urlunsplit

    if "://" not in source:
        return source
    parts = urlsplit(source)
    if parts.password is None:
        return source
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
