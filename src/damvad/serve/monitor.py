"""The monitor: cameras sharing one detector and one I3D, the events database, pictures, alerts out and
retention, started and stopped together. The web app (:mod:`damvad.serve.app`) only reads from it.

An event is committed to SQLite (with its queued alerts) before the page, a webhook or MQTT hears of it.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from damvad.detect import Detector
from damvad.detections import AlertEvent, DetectionRow
from damvad.serve.alerts import Backoff, MqttSender, Sender, Targets, WebhookSender
from damvad.serve.backend import SharedBackend
from damvad.serve.camera import Camera
from damvad.serve.config import ServeConfig
from damvad.serve.media import MediaWriter, apply_retention
from damvad.serve.store import Event, EventStore

log = logging.getLogger(__name__)

RETENTION_EVERY = 600.0  # seconds between retention passes


class Monitor:
    """Everything ``damvad serve`` runs besides the web server."""

    def __init__(self, cfg: ServeConfig, i3d: Any = None, backoff: Backoff | None = None):
        """``i3d``: a stand-in I3D backend (tests); else the model's. ``backoff``: alert retries."""
        self.cfg = cfg
        self.data = Path(cfg.data)
        self.data.mkdir(parents=True, exist_ok=True)
        self.store = EventStore(self.data / "events.db")
        if self.store.interrupted:
            log.warning("%d event(s) were open when the server last stopped: kept, marked interrupted",
                        self.store.interrupted)
        self.media = MediaWriter(self.data / "media", self.store)
        mqtt = cfg.mqtt_settings()
        self.targets = Targets(list(cfg.webhooks), mqtt["topic_prefix"] if mqtt else None)
        self.senders: list[Sender] = [WebhookSender(self.store, url, backoff) for url in cfg.webhooks]
        if mqtt:
            self.senders.append(MqttSender(self.store, mqtt, backoff))
        self.detector = Detector.from_config(cfg, i3d=i3d)
        self.backend = SharedBackend(self.detector.backend)
        self.detector.backend = self.backend  # every camera's snippets through one queue
        self.cameras = {spec.name: Camera(spec, self.detector, self, cfg.history_minutes)
                        for spec in cfg.camera_specs()}
        self.started_ts = time.time()
        self._stop = threading.Event()
        self._janitor = threading.Thread(target=self._retention, name="damvad-retention", daemon=True)

    def start(self) -> Monitor:
        for sender in self.senders:
            sender.start()
        for camera in self.cameras.values():
            camera.start()
        self._janitor.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Cameras end their streams (open events close and are announced), then alerts, pictures, database."""
        self._stop.set()
        for camera in self.cameras.values():
            camera.stop()
        deadline = time.monotonic() + timeout
        for camera in self.cameras.values():
            camera.join(max(0.1, deadline - time.monotonic()))
        self.media.flush()
        self.media.close()
        for sender in self.senders:
            sender.stop()
        self.backend.close()
        self.store.close()

    # ------------------------------------------------------------------ events (the cameras' sink)

    def opened(self, camera: str, row: DetectionRow, start_ts: float, threshold: float) -> Event:
        event = self.store.open_event(camera, row.start_frame, row.end_frame, start_ts, row.score, threshold,
                                      self.targets.event_messages("new", None))
        log.info("event %d on %s: score %.3f >= %.3f", event.id, camera, row.score, threshold)
        self._wake()
        return event

    def peaked(self, event: Event, peak: float) -> Event:
        after = self.store.update_event(event.id, self.targets.event_messages("update", event), peak_score=peak)
        self._wake()
        return after

    def closed(self, event: Event, alert: AlertEvent, end_ts: float) -> Event:
        after = self.store.update_event(event.id, self.targets.event_messages("end", event), state="closed",
                                        end_frame=alert.end_frame, end_ts=end_ts, peak_score=alert.peak_score)
        self._wake()
        return after

    def pictures(self, event: Event, thumbnail: bytes | None, frames: list[bytes]) -> None:
        if thumbnail is not None:
            self.media.thumbnail(event.id, thumbnail)
        self.media.frames(event.id, frames)

    def acknowledge(self, event_id: int) -> Event | None:
        if self.store.get(event_id) is None:
            return None
        return self.store.update_event(event_id, acknowledged_ts=time.time())

    def _wake(self) -> None:
        for sender in self.senders:
            sender.wake()

    # ------------------------------------------------------------------ the rest

    def _retention(self) -> None:
        while not self._stop.is_set():
            try:
                removed = apply_retention(self.store, self.media, self.cfg.retain_days, self.cfg.retain_gb)
                if removed:
                    log.info("retention: media of %d event(s) deleted", removed)
                self.store.prune_outbox(time.time() - 7 * 86400)
            except Exception:  # noqa: BLE001 - retention must not stop the monitor; tried again later
                log.exception("retention failed")
            self._stop.wait(RETENTION_EVERY)

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "uptime_s": round(time.time() - self.started_ts, 1), "cameras": len(self.cameras),
                "cameras_running": sum(c.state in ("running", "alert") for c in self.cameras.values()),
                "alerts_pending": self.store.pending(), "i3d_snippets": self.backend.calls,
                "i3d_calls": self.backend.batches, "device": str(self.detector.device)}

    def score_file(self, path: Path) -> dict[str, Any]:
        """Score an uploaded clip with the same detector (its snippets queue with the cameras')."""
        result = self.detector.run(path, progress=False, name=path.name)
        if result.error is not None:
            raise ValueError(result.error)
        return {"frames": result.frames, "fps": result.fps, "threshold": self.detector.threshold,
                "seconds": round(result.seconds, 3),
                "clips": [{"start_frame": r.start_frame, "end_frame": r.end_frame, "score": r.score,
                           "alert": r.alert} for r in result.rows],
                "events": [asdict(e) for e in result.events]}

    def upload_folder(self) -> Path:
        folder = self.data / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=folder))
