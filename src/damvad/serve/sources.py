"""Where a camera's frames come from: files, URLs and webcams (through :mod:`damvad.video` and the live
path's reconnects), or ``synth:`` generated scenes (:func:`damvad.synth.synthetic_stream`), for trying the
monitor without a camera.

``synth:SEED[?events=KIND@START-END,...][&frames=N][&size=WxH][&fps=F]``: the plaza scene of seed SEED,
endless unless ``frames`` is given, with anomalous events at the given frames, e.g.
``synth:3?events=explosion@192-320&frames=448``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import numpy as np

from damvad.detect import is_recording, reconnecting_frames
from damvad.frametimes import FALLBACK_FPS
from damvad.video import VideoError, is_live_source, iter_frames, probe, resize_frames

SYNTH = "synth:"


@dataclass
class FrameSource:
    """Frames (H, W, 3) uint8 RGB, shorter side 256 (the detector's working size), and their rate."""

    frames: Iterator[np.ndarray]
    fps: float
    live: bool  # a camera or URL: it can drop and reconnect, and sets its own pace


def parse_synth(source: str) -> dict:
    """The arguments of :func:`damvad.synth.synthetic_stream` that a ``synth:`` source names."""
    from damvad.synth import EventSpec

    parts = urlsplit(source[len(SYNTH):].lstrip("/"))
    seed_text = parts.path or parts.netloc or "0"
    if not seed_text.isdigit():
        raise ValueError(f"{source}: expected synth:SEED[?events=KIND@START-END,...&frames=N&size=WxH&fps=F]")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = sorted(set(query) - {"events", "frames", "size", "fps"})
    if unknown:
        raise ValueError(f"{source}: unknown parameter(s) {unknown}")
    events = []
    for item in filter(None, query.get("events", "").split(",")):
        kind, _, span = item.partition("@")
        start, _, end = span.partition("-")
        if not (start.isdigit() and end.isdigit()):
            raise ValueError(f"{source}: event {item!r} should read KIND@START-END (frames)")
        events.append(EventSpec(kind, int(start), int(end)))
    width, _, height = query.get("size", "320x240").partition("x")
    return {"num_frames": int(query["frames"]) if "frames" in query else None, "seed": int(seed_text),
            "events": tuple(events), "size": (int(width), int(height)), "fps": float(query.get("fps", FALLBACK_FPS))}


def open_source(source: str) -> FrameSource:
    """The frames of ``source``; a source that cannot be opened raises :class:`VideoError` (or ValueError for
    a malformed ``synth:``)."""
    if source.startswith(SYNTH):
        from damvad.synth import synthetic_stream

        args = parse_synth(source)
        return FrameSource(resize_frames(synthetic_stream(**args)), args["fps"], live=False)
    info = probe(source)
    fps = info.fps or FALLBACK_FPS
    if is_live_source(source):
        return FrameSource(reconnecting_frames(source, resume=is_recording(source, info)), fps, live=True)
    return FrameSource(iter_frames(source), fps, live=False)


def paced(frames: Iterator[np.ndarray], fps: float, stop: threading.Event) -> Iterator[np.ndarray]:
    """``frames`` no faster than ``fps`` (a recording played as a camera would send it); a consumer that
    falls behind gets the frames at once, so the pace never hides that it is late."""
    start = time.monotonic()
    for i, frame in enumerate(frames):
        delay = start + i / fps - time.monotonic()
        if delay > 0 and stop.wait(delay):
            return
        yield frame


def until(frames: Iterator[np.ndarray], stop: threading.Event) -> Iterator[np.ndarray]:
    """``frames`` until ``stop`` is set: the stream then ends as a file does (the detector flushes)."""
    for frame in frames:
        if stop.is_set():
            return
        yield frame


__all__ = ["FrameSource", "SYNTH", "VideoError", "open_source", "paced", "parse_synth", "until"]
