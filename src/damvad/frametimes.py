"""When each frame was shown: times from the frames' timestamps (pts), for everything detect reports.

Frame indices stay the unit of ground truth, features and scores; a time in seconds is only ever
reported (detect's rows and events, reports, annotated copies), and it comes from the frame's own
presentation timestamp, not from ``index / rate``: phones and many IP cameras record at a variable frame
rate, where the average rate puts a frame seconds away from where it is. A variable rate is detected and
said once; a source whose frames carry no timestamps (a raw H.264 stream) falls back to the declared rate,
and says so once.

The decoder stamps each frame as it decodes it (:meth:`FrameClock.stamp`, in
:func:`damvad.video.iter_frames`); :func:`timed_frames` ticks the clock for each frame it passes on, so
frames that are decoded but dropped (a reconnected recording decoded again up to where it stopped) never
count. The times of frames passed on and not yet claimed wait in a queue, a few snippets long at most.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

FALLBACK_FPS = 25.0  # a source that declares no rate either


def known_rate(*rates: float | None) -> float:
    """The first of ``rates`` that is a rate (positive), else :data:`FALLBACK_FPS`: the one fallback."""
    return next((float(r) for r in rates if r and r > 0), FALLBACK_FPS)
VARIABLE_RATIO = 1.5  # frame intervals further apart than this make a variable frame rate
_UNSTAMPED = object()


@dataclass
class FrameClock:
    """Times in seconds since a source's first frame, one per frame passed on (see the module docstring)."""

    fps: float  # the declared rate: the fallback without timestamps, and a frame's duration when unknown
    source: str = "<frames>"
    time: float = 0.0  # the latest frame's time
    duration: float = 0.0  # how long the latest frame shows (its own duration, else the latest interval)
    frames: int = 0
    variable: bool = False  # a variable frame rate was seen (said once)
    untimed: bool = False  # decoded frames without timestamps were seen (said once)
    _stamp: Any = field(default=_UNSTAMPED, repr=False)
    _offset: float | None = field(default=None, repr=False)  # frame time = pts + offset
    _anchor: tuple[float, int] = field(default=(0.0, 0), repr=False)  # (time, index) of the latest pts
    _intervals: tuple[float, float] = field(default=(float("inf"), 0.0), repr=False)  # shortest, longest
    _queue: deque = field(default_factory=deque, repr=False)

    @property
    def rate(self) -> float:
        """The declared rate (frames per second), else the fallback."""
        return known_rate(self.fps)

    @property
    def timing(self) -> str:
        """How times were obtained, for reports: "pts" or "declared rate"."""
        return "declared rate" if self.untimed else "pts"

    def stamp(self, pts: float | None, duration: float | None = None) -> None:
        """The decoder's word on the frame it is about to hand on: its pts and duration in seconds (None: unknown)."""
        self._stamp = (pts, duration)

    def tick(self) -> float:
        """Count the next frame passed on; returns its time (also queued for :meth:`take`)."""
        stamp, self._stamp = self._stamp, _UNSTAMPED
        pts, duration = (None, None) if stamp is _UNSTAMPED else stamp
        if pts is None and stamp is not _UNSTAMPED and not self.untimed:
            self.untimed = True
            log.warning("%s: the frames carry no timestamps; times come from the declared rate, %.3g fps",
                        self.source, self.rate)
        previous, n = self.time, self.frames
        if pts is None or self._offset is None:  # at the declared rate since the last frame with a timestamp
            t = self._anchor[0] + (n - self._anchor[1]) / self.rate if n else 0.0
        else:
            t = pts + self._offset
            if t <= previous:  # timestamps went back (a live source reconnected): continue from here
                t = previous + self.duration
        if pts is not None:
            self._offset, self._anchor = t - pts, (t, n)
        if n:
            self._interval(t - previous)
        self.time, self.frames = t, n + 1
        if not (duration and duration > 0):  # the container does not say: the latest interval, else the rate
            duration = t - previous if n and pts is not None else 1.0 / self.rate
        self.duration = duration
        self._queue.append((t, t + self.duration))
        return t

    def _interval(self, dt: float) -> None:
        shortest, longest = min(self._intervals[0], dt), max(self._intervals[1], dt)
        self._intervals = (shortest, longest)
        if not self.variable and not self.untimed and longest > VARIABLE_RATIO * shortest:
            self.variable = True
            log.warning("%s: variable frame rate (frames %.0f to %.0f ms apart; declared %.3g fps): times come "
                        "from the frames' timestamps", self.source, 1e3 * shortest, 1e3 * longest, self.rate)

    def take(self, count: int) -> tuple[list[float], float]:
        """The times of the next ``count`` frames passed on, in order, and when the last of them ends."""
        items = [self._queue.popleft() for _ in range(count)]
        return [t for t, _ in items], items[-1][1]


def timed_frames(frames: Iterable[Any], clock: FrameClock) -> Iterator[Any]:
    """``frames`` unchanged, the clock ticked for each one passed on."""
    for frame in frames:
        clock.tick()
        yield frame


class LivePace:
    """Whether a live source is scored slower than it arrives (its frames then wait in network and decoder
    buffers, every alert comes later than the last, and a camera may drop the connection): judged over windows
    of ``window`` stream seconds from the first score on (start-up excluded), once."""

    def __init__(self, window: float = 60.0, slowest: float = 0.9) -> None:
        self.window, self.slowest = window, slowest
        self.since: tuple[float, float] | None = None  # (stream s, wall s) where the current window began
        self.said = False

    def behind(self, stream_s: float, wall_s: float) -> float | None:
        """The pace (x real time) the first time a window ends below ``slowest``, else None."""
        if self.said:
            return None
        if self.since is None:  # the first score: the window starts here
            self.since = (stream_s, wall_s)
            return None
        stream, wall = stream_s - self.since[0], wall_s - self.since[1]
        if stream < self.window or wall <= 0:
            return None
        self.since = (stream_s, wall_s)
        self.said = stream / wall < self.slowest
        return round(stream / wall, 3) if self.said else None
