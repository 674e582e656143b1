"""What live detection produces: a clip's row, alert events (hysteresis), a source's result, the rows' writer,
and the report of a source (timeline plot, events JSON, annotated copy). Records and their outputs only: the
scoring itself is :mod:`damvad.detect`."""

from __future__ import annotations

import csv
import json
from array import array
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from damvad.choices import CLOSE_AFTER, ROW_FORMATS
from damvad.clips import clip_scores_to_frames
from damvad.frametimes import known_rate
from damvad.scoring import ClipResult
from damvad.video import iter_frames, write_video


@dataclass
class AlertEvent:
    start_frame: int
    end_frame: int  # exclusive: the end of the last clip at or above the threshold
    peak_score: float
    start_time: float
    end_time: float


@dataclass
class AlertTracker:
    """Hysteresis: an event opens when a score reaches the threshold and closes once scores have
    stayed below it for ``close_after`` seconds (so one flickering score does not make many alerts)."""

    threshold: float
    fps: float  # for clips given without their times
    close_after: float = CLOSE_AFTER
    _open: AlertEvent | None = field(default=None, init=False)
    _below_since: float | None = field(default=None, init=False)  # time

    def update(self, clip: ClipResult, score: float,
               times: tuple[float, float] | None = None) -> tuple[bool, AlertEvent | None]:
        """(alert active after this clip, the event that just closed or None). ``times``: the clip's start and
        end in seconds (from its frames' timestamps); default its frames at ``fps``."""
        closed = None
        fps = known_rate(self.fps)
        start, end = times if times is not None else (clip.start_frame / fps, clip.end_frame / fps)
        if score >= self.threshold:
            if self._open is None:
                self._open = AlertEvent(clip.start_frame, clip.end_frame, score, start, end)
            else:
                self._open.end_frame, self._open.end_time = clip.end_frame, end
                self._open.peak_score = max(self._open.peak_score, score)
            self._below_since = None
        elif self._open is not None:
            if self._below_since is None:
                self._below_since = start
            if end - self._below_since >= self.close_after:
                closed, self._open, self._below_since = self._open, None, None
        return self._open is not None, closed

    def finish(self) -> AlertEvent | None:
        event, self._open, self._below_since = self._open, None, None
        return event


@dataclass
class DetectionRow:
    """One scored clip, as written to CSV / JSON lines."""

    source: str
    clip: int
    start_frame: int
    end_frame: int
    start_time: float
    end_time: float
    score: float
    weighted: float
    clip_attention: float | None
    alert: bool
    latency_ms: float


class DetectionInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM, from the CLI) while a source was scored; ``result``: that source's rows and events up
    to the stop, its open alert closed (already written to the run's writer); ``__cause__``: the interrupt."""

    def __init__(self, result: DetectionResult):
        super().__init__(f"{result.source}: interrupted after {result.frames} frames")
        self.result = result


@dataclass
class DetectionResult:
    source: str
    fps: float  # the declared (average) rate; times come from the frames' timestamps
    frames: int = 0
    rows: list[DetectionRow] = field(default_factory=list)
    events: list[AlertEvent] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    warning: str | None = None  # e.g. fewer frames decoded than the container declares
    device: str = ""  # where I3D and the head ran ("cpu", "cuda:0")
    frame_times: array = field(default_factory=lambda: array("d"))  # each frame's time (s), kept with the rows
    timing: str = "pts"  # where times come from: "pts", or "declared rate" (frames without timestamps)
    variable_frame_rate: bool = False
    behind_real_time: float | None = None  # a live source scored slower than it arrives: its pace (x real time)
    interrupted: bool = False  # stopped by Ctrl-C / SIGTERM: scored up to ``frames``, its open alert closed

    def times(self) -> np.ndarray:
        """Each frame's time in seconds (from the rows' frames at ``fps`` when the times were not kept)."""
        if len(self.frame_times) == self.frames:
            return np.asarray(self.frame_times, dtype=np.float64)
        return np.arange(self.frames, dtype=np.float64) / known_rate(self.fps)

    def _per_frame(self, field_name: str) -> np.ndarray:
        """Clip values painted onto frames as evaluate does (zeros when the rows were not kept)."""
        if not self.rows or not self.frames:
            return np.zeros(self.frames, dtype=np.float64)
        return clip_scores_to_frames(np.array([getattr(r, field_name) for r in self.rows], dtype=np.float64),
                                     np.array([[r.start_frame, r.end_frame] for r in self.rows]), self.frames)

    def frame_scores(self) -> np.ndarray:
        return self._per_frame("score")

    def frame_clip_attention(self) -> np.ndarray | None:
        if not self.rows or self.rows[0].clip_attention is None:
            return None
        return self._per_frame("clip_attention")


class RowWriter:
    """Streams rows as CSV or JSON lines to a file or stdout, flushed per row (it is live output). ``header``:
    whether CSV output starts with its header (not when appending to a file that already has one)."""

    def __init__(self, stream: TextIO | None, fmt: str = "csv", header: bool = True):
        if fmt not in ROW_FORMATS:
            raise ValueError(f"format must be csv or jsonl, got {fmt!r}")
        self.stream, self.fmt, self.header = stream, fmt, header
        self._csv = None

    def write(self, row: DetectionRow) -> None:
        if self.stream is None:
            return
        data = asdict(row)
        if self.fmt == "jsonl":
            self.stream.write(json.dumps({"type": "clip", **data}) + "\n")
        else:
            if self._csv is None:
                self._csv = csv.DictWriter(self.stream, fieldnames=list(data), lineterminator="\n")
                if self.header:
                    self._csv.writeheader()
            self._csv.writerow(data)
        self.stream.flush()

    def event(self, source: str, event: AlertEvent) -> None:
        if self.stream is not None and self.fmt == "jsonl":
            self.stream.write(json.dumps({"type": "event", "source": source, **asdict(event)}) + "\n")
            self.stream.flush()


def print_summary(result: DetectionResult, src: str, is_file: bool, report: str | None, threshold: float,
                  say: TextIO) -> None:
    """A source's line (frames, events, warning or error) and its report, when one was asked for."""
    spans = ", ".join(f"{e.start_time:.1f}-{e.end_time:.1f}s (peak {e.peak_score:.2f})" for e in result.events)
    print(f"{src}: {result.frames} frames in {result.seconds:.1f} s, {len(result.events)} alert event(s)"
          f"{': ' + spans if spans else ''}{'; WARNING ' + result.warning if result.warning else ''}"
          f"{'; ERROR ' + result.error if result.error else ''}{'; INTERRUPTED' if result.interrupted else ''}",
          file=say)
    if report:
        paths = write_report(result, report, threshold, src if is_file else None)
        print(f"  report: {', '.join(paths.values())}", file=say)


def write_report(result: DetectionResult, out_dir: str | Path, threshold: float,
                 video_path: str | Path | None = None) -> dict[str, str]:
    """A timeline plot with alert spans, events as JSON, and for files an annotated video copy."""
    from damvad.plots import timeline_plot
    from damvad.utils import atomic_write_json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(result.source).stem if result.source != "<frames>" else "stream"
    paths = {}
    if result.frames:
        paths["timeline"] = str(timeline_plot(
            result.frame_scores(), out / f"{stem}_timeline.png", title=f"{stem}: live anomaly score",
            clip_attention=result.frame_clip_attention(), threshold=threshold,
            events=[(e.start_frame, e.end_frame) for e in result.events], times=result.times()))
    atomic_write_json(out / f"{stem}_events.json", {
        "source": result.source, "threshold": threshold, "frames": result.frames, "fps": result.fps,
        "timing": result.timing, "variable_frame_rate": result.variable_frame_rate,
        "events": [asdict(e) for e in result.events], "error": result.error, "device": result.device,
        "behind_real_time": result.behind_real_time, "interrupted": result.interrupted})
    paths["events"] = str(out / f"{stem}_events.json")
    if video_path is not None and Path(video_path).exists() and result.frames:
        paths["video"] = str(annotate_video(video_path, result, out / f"{stem}_annotated.mp4", threshold))
    return paths


def annotate_video(video_path: str | Path, result: DetectionResult, out_path: str | Path, threshold: float) -> Path:
    """Copy of the video (a file or a folder of frames) with a score bar (bottom) and a red border while an
    alert is open, each frame at its time in the source (a variable frame rate stays one)."""
    scores = result.frame_scores()
    in_alert = np.zeros(result.frames, dtype=bool)
    for e in result.events:
        in_alert[e.start_frame : e.end_frame] = True

    def annotated() -> Iterator[np.ndarray]:
        for i, frame in enumerate(iter_frames(video_path, short_side=None)):
            if i >= result.frames:
                break
            h, w = frame.shape[:2]
            h2, w2 = h - h % 2, w - w % 2
            img = np.array(frame[:h2, :w2])
            bar_h = max(6, h2 // 24)
            s = float(scores[i])
            img[h2 - bar_h :, :] = (img[h2 - bar_h :, :] * 0.4).astype(np.uint8)
            filled = int(round(s * w2))
            color = (230, 40, 40) if s >= threshold else (40, 200, 80)
            img[h2 - bar_h :, :filled] = color
            img[h2 - bar_h :, min(w2 - 1, int(threshold * w2))] = (255, 255, 255)
            if in_alert[i]:
                b = max(3, min(h2, w2) // 60)
                img[:b], img[-b - bar_h : -bar_h], img[:, :b], img[:, -b:] = (230, 30, 30), (230, 30, 30), \
                    (230, 30, 30), (230, 30, 30)
            yield img

    write_video(out_path, annotated(), known_rate(result.fps), times=result.times())  # the source's timing
    return Path(out_path)
