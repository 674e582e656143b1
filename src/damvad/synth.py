"""Synthetic surveillance videos with frame-exact anomalies, for the demo and for tests.

Why it exists: a newcomer without UCF-Crime/ShanghaiTech on disk must still be able to run the whole
pipeline (I3D features -> weakly-supervised DAM training -> frame-level evaluation), and tests need
small videos whose ground truth is known exactly.

The scene is a plaza in front of buildings seen by a fixed, elevated camera (pinhole, 4 m high; the
geometry depends only on the frame height, so any size works). Articulated people walk along paths,
stop, walk in pairs or stop to chat. Anomalous videos add one or two events (running, a fight, a fall,
an explosion, a collision between two runners, a vehicle speeding through the plaza).

Honesty rules the generator keeps (tested in ``tests/test_synth.py``):

* normal and anomalous videos come from the same scene, lighting, crowd and noise distributions;
* the crowd, the background and the sensor noise use random streams that do not depend on the events,
  so a video with events differs from the same video without them only near the event's actors;
* the people of an event walk in (and away) like everybody else; only the event itself is abnormal;
* nothing global changes at an event's onset (the explosion is a local fireball with smoke, and its
  bystanders run away).

Conventions: ``size`` is ``(width, height)``; frames are ``H x W x 3`` uint8 RGB; frame indices are
0-based and event intervals are ``[start_frame, end_frame)`` (end exclusive). Events are placed in the
central part of the image so that the centre 224 x 224 crop used by I3D sees them.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from damvad.utils import atomic_open, atomic_write_json, atomic_write_text

__all__ = [
    "EVENT_KINDS",
    "EventSpec",
    "VideoSpec",
    "make_video_spec",
    "min_anomalous_frames",
    "render_frames",
    "synthetic_stream",
    "write_video",
    "generate_dataset",
    "load_ground_truth",
]

EVENT_KINDS: tuple[str, ...] = ("run", "fight", "fall", "explosion", "collision", "vehicle")
# Bump when rendering changes, so that generate_dataset() never reuses videos drawn by older code.
SYNTH_FORMAT = 1

# Duration range (seconds) that make_video_spec draws for each kind; all within 1.5-5 s.
_DURATION_S = {
    "run": (1.5, 3.5),
    "fight": (2.0, 5.0),
    "fall": (2.0, 4.5),
    "explosion": (2.0, 4.5),
    "collision": (2.5, 5.0),
    "vehicle": (1.5, 2.6),
}
# Depth range (metres) make_video_spec draws for each kind: close enough for the figures to be 35-65 px
# tall at 240 px height, so that I3D (which sees a 224 x 224 crop) can resolve limbs.
_EVENT_DEPTH = {
    "run": (6.5, 11.5), "fight": (6.5, 10.5), "fall": (6.5, 11.0), "explosion": (8.0, 13.0),
    "collision": (6.5, 11.0), "vehicle": (10.0, 18.0),
}
_MIN_START_S = 1.5  # no event in the first 1.5 s: the video must show normal activity first
_END_MARGIN_S = 0.5  # ...and a little normal activity after the last event

# Camera geometry, shared by every size: focal length = frame height, horizon at 35 % of the height.
_CAM_HEIGHT = 4.0  # metres above the ground
_HORIZON = 0.35
_Z_FAR = 30.0  # far edge of the walkable plaza (metres)
_Z_WALL = 32.0  # facade of the buildings
# Ground rows an event may sit on, as a fraction of the height (v = _HORIZON + _CAM_HEIGHT / Z).
_V_MIN = _HORIZON + _CAM_HEIGHT / _Z_FAR


# ----------------------------------------------------------------------------------------------------
# Specs
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventSpec:
    """One anomalous event: its kind, its frames ``[start_frame, end_frame)`` and where it happens.

    ``position`` is the ground point ``(u, v)`` of the event as fractions of the frame width and height
    (``v`` must lie on the plaza: ``0.49 <= v <= 1``); ``seed`` drives the event's own randomness
    (people's looks, directions, debris...).
    """

    kind: str
    start_frame: int
    end_frame: int
    position: tuple[float, float] = (0.5, 0.72)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"EventSpec: unknown kind {self.kind!r}; expected one of {EVENT_KINDS}")
        for name in ("start_frame", "end_frame", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"EventSpec: {name} must be an integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.start_frame < 0 or self.end_frame <= self.start_frame:
            raise ValueError(
                f"EventSpec {self.kind}: need 0 <= start_frame < end_frame, got "
                f"[{self.start_frame}, {self.end_frame})"
            )
        try:
            u, v = (float(x) for x in self.position)
        except (TypeError, ValueError):
            raise ValueError(f"EventSpec: position must be (u, v), got {self.position!r}") from None
        if not (0.0 <= u <= 1.0 and _V_MIN - 1e-9 <= v <= 1.0):
            raise ValueError(
                f"EventSpec {self.kind}: position {self.position!r} is off the plaza; need 0 <= u <= 1 "
                f"and {_V_MIN:.3f} <= v <= 1 (fractions of width and height)"
            )
        object.__setattr__(self, "position", (u, v))

    @property
    def num_frames(self) -> int:
        return self.end_frame - self.start_frame

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "position": list(self.position),
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EventSpec:
        return cls(d["kind"], d["start_frame"], d["end_frame"], tuple(d["position"]), d.get("seed", 0))


@dataclass(frozen=True)
class VideoSpec:
    """Everything needed to render one video deterministically.

    ``label`` is 0 (normal: no events) or 1 (anomalous: at least one event); ``size`` is
    ``(width, height)``.
    """

    name: str
    num_frames: int
    fps: float = 25
    size: tuple[int, int] = (320, 240)
    seed: int = 0
    events: tuple[EventSpec, ...] = field(default_factory=tuple)
    label: int = 0

    def __post_init__(self) -> None:
        where = f"VideoSpec {self.name!r}"
        if isinstance(self.num_frames, bool) or not isinstance(self.num_frames, (int, np.integer)):
            raise ValueError(f"{where}: num_frames must be an integer, got {self.num_frames!r}")
        object.__setattr__(self, "num_frames", int(self.num_frames))
        if self.num_frames < 1:
            raise ValueError(f"{where}: num_frames must be >= 1, got {self.num_frames}")
        if not self.fps > 0:
            raise ValueError(f"{where}: fps must be > 0, got {self.fps!r}")
        w, h = (int(x) for x in self.size)
        if w < 32 or h < 32:
            raise ValueError(f"{where}: size (width, height) must be at least 32 x 32, got {self.size!r}")
        object.__setattr__(self, "size", (w, h))
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "events", tuple(self.events))
        label = {"normal": 0, "anomalous": 1}.get(self.label, self.label)  # type: ignore[call-overload]
        if label not in (0, 1):
            raise ValueError(f"{where}: label must be 0/1 or 'normal'/'anomalous', got {self.label!r}")
        object.__setattr__(self, "label", int(label))
        if self.label == 0 and self.events:
            raise ValueError(f"{where}: a normal video (label 0) cannot have events")
        if self.label == 1 and not self.events:
            raise ValueError(f"{where}: an anomalous video (label 1) needs at least one event")
        for ev in self.events:
            if not isinstance(ev, EventSpec):
                raise ValueError(f"{where}: events must be EventSpec, got {type(ev).__name__}")
            if ev.end_frame > self.num_frames:
                raise ValueError(
                    f"{where}: event {ev.kind} [{ev.start_frame}, {ev.end_frame}) ends after the "
                    f"video's {self.num_frames} frames"
                )

    def frame_labels(self) -> np.ndarray:
        """Frame-level ground truth: True during any event (0-based, end exclusive)."""
        gt = np.zeros(self.num_frames, dtype=bool)
        for ev in self.events:
            gt[ev.start_frame : ev.end_frame] = True
        return gt

    def to_dict(self, with_events: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "num_frames": self.num_frames,
            "fps": self.fps,
            "size": list(self.size),
            "seed": self.seed,
            "label": self.label,
        }
        if with_events:
            d["events"] = [ev.to_dict() for ev in self.events]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VideoSpec:
        return cls(
            name=d["name"],
            num_frames=d["num_frames"],
            fps=d["fps"],
            size=tuple(d["size"]),
            seed=d["seed"],
            events=tuple(EventSpec.from_dict(e) for e in d.get("events", [])),
            label=d["label"],
        )


def min_anomalous_frames(fps: float = 25) -> int:
    """Shortest anomalous video make_video_spec accepts: 1.5 s of normal start, a 1.5 s event, 0.5 s after."""
    ceil = math.ceil
    return int(ceil(_MIN_START_S * fps)) + int(ceil(1.5 * fps)) + int(ceil(_END_MARGIN_S * fps))


def make_video_spec(
    name: str,
    label: int | str,
    num_frames: int,
    rng: np.random.Generator,
    *,
    fps: float = 25,
    size: tuple[int, int] = (320, 240),
    kinds: Sequence[str] = EVENT_KINDS,
    kind: str | None = None,
    max_events: int = 2,
    p_second_event: float = 0.35,
) -> VideoSpec:
    """A random spec; anomalous videos get 1-2 non-overlapping events of 1.5-5 s, never in the first 1.5 s.

    ``kind`` forces the kind of the first event (``generate_dataset`` uses it to cover every kind).
    Events are placed in the central 40 % of the width (inside the I3D centre crop) at 6.5-18 m.
    """
    label_i = {"normal": 0, "anomalous": 1}.get(label, label)  # type: ignore[call-overload]
    seed = int(rng.integers(0, 2**31 - 1))
    if label_i != 1:
        return VideoSpec(name, num_frames, fps, size, seed, (), label_i)
    for k in (*kinds, *([kind] if kind else [])):
        if k not in EVENT_KINDS:
            raise ValueError(f"make_video_spec: unknown event kind {k!r}; expected one of {EVENT_KINDS}")
    lo = int(math.ceil(_MIN_START_S * fps))
    hi = num_frames - int(math.ceil(_END_MARGIN_S * fps))
    min_len = int(math.ceil(1.5 * fps))
    if hi - lo < min_len:
        raise ValueError(
            f"make_video_spec {name!r}: {num_frames} frames at {fps} fps leave no room for an event "
            f"(need at least {min_anomalous_frames(fps)} frames)"
        )
    gap = int(round(1.0 * fps))
    n_events = 1
    if max_events >= 2 and rng.random() < p_second_event and hi - lo >= 2 * min_len + gap:
        n_events = 2
    first = kind or str(rng.choice(list(kinds)))
    chosen = [first] + [str(rng.choice(list(kinds))) for _ in range(n_events - 1)]
    # Durations, shrunk to fit the free span when needed (never below 1.5 s).
    durs = []
    for k in chosen:
        a, b = _DURATION_S[k]
        durs.append(int(round(rng.uniform(a, b) * fps)))
    room = hi - lo - gap * (n_events - 1)
    while sum(durs) > room:
        i = int(np.argmax(durs))
        durs[i] = max(min_len, durs[i] - max(1, (sum(durs) - room)))
        if all(d == min_len for d in durs) and sum(durs) > room:  # pragma: no cover - guarded above
            raise ValueError(f"make_video_spec {name!r}: events do not fit in {num_frames} frames")
    slack = room - sum(durs)
    # Split the slack randomly into n_events + 1 parts: before, between, after.
    cuts = np.sort(rng.integers(0, slack + 1, size=n_events))
    events = []
    t = lo
    prev = 0
    for i, (k, d) in enumerate(zip(chosen, durs, strict=True)):
        t += int(cuts[i] - prev)
        prev = int(cuts[i])
        u = float(rng.uniform(0.3, 0.7))
        z = float(rng.uniform(*_EVENT_DEPTH[k]))
        v = _HORIZON + _CAM_HEIGHT / z
        events.append(EventSpec(k, t, t + d, (u, v), int(rng.integers(0, 2**31 - 1))))
        t += d + gap
    return VideoSpec(name, num_frames, fps, size, seed, tuple(events), 1)


# ----------------------------------------------------------------------------------------------------
# Camera and drawing primitives
# ----------------------------------------------------------------------------------------------------


class _Camera:
    """Pinhole camera with a horizontal axis, shifted principal point, 4 m above a flat plaza."""

    def __init__(self, width: int, height: int) -> None:
        self.W, self.H = width, height
        self.f = float(height)
        self.cx = width / 2.0
        self.yh = _HORIZON * height
        self.z_near = self.f * _CAM_HEIGHT / (height - self.yh)  # ground seen at the bottom edge
        self.z_far = _Z_FAR
        self.z_wall = _Z_WALL

    def foot(self, x: float, z: float) -> tuple[float, float]:
        return self.cx + self.f * x / z, self.yh + self.f * _CAM_HEIGHT / z

    def half_width(self, z: float) -> float:
        """Half the visible width of the ground (metres) at depth z."""
        return self.cx * z / self.f

    def ground(self, position: tuple[float, float]) -> tuple[float, float]:
        u, v = position
        z = self.f * _CAM_HEIGHT / max(v * self.H - self.yh, 1e-6)
        z = min(max(z, 3.0), self.z_far)
        return (u * self.W - self.cx) * z / self.f, z


def _draw_capsules(
    frame: np.ndarray, p0: np.ndarray, p1: np.ndarray, r: np.ndarray, col: np.ndarray, alpha: np.ndarray,
    noise: np.ndarray | None = None,
) -> None:
    """Composite anti-aliased capsules (segments with round caps), in the given order, onto frame.

    Each capsule only visits its own bounding box: the pixels of all boxes are laid out in one flat
    array, and the 'over' operator is evaluated per pixel in closed form (bg * prod(1 - a) +
    sum_i c_i a_i prod_{j > i}(1 - a_j)) after grouping by pixel. One call draws a whole crowd, which
    keeps the numpy call count per frame small. ``noise`` (H x W x 3) is added in proportion to the
    covered fraction, so drawn pixels carry the same sensor noise as the pre-noised background.
    """
    H, W = frame.shape[:2]
    n = len(r)
    pad = (r + 1.0)[:, None]
    lo = np.floor(np.minimum(p0, p1) - pad).astype(np.int32)
    hi = np.ceil(np.maximum(p0, p1) + pad).astype(np.int32) + 1
    lim = np.array([W, H], np.int32)
    np.clip(lo, 0, lim, out=lo)
    np.clip(hi, 0, lim, out=hi)
    wh = np.maximum(hi - lo, 0)
    area = wh[:, 0] * wh[:, 1]
    m = int(area.sum())
    if m == 0:
        return
    cid = np.repeat(np.arange(n, dtype=np.int32), area)
    first = np.cumsum(area) - area
    ly, lx = np.divmod(np.arange(m, dtype=np.int32) - first[cid], wh[cid, 0])
    off = (lo - p0).astype(np.float32)  # box corner relative to the segment start
    d = (p1 - p0).astype(np.float32)
    inv = 1.0 / np.maximum((d * d).sum(1), np.float32(1e-6))
    ax = lx.astype(np.float32) + off[cid, 0]
    ay = ly.astype(np.float32) + off[cid, 1]
    dx = d[cid, 0]
    dy = d[cid, 1]
    t = (ax * dx + ay * dy) * inv[cid]
    np.clip(t, 0.0, 1.0, out=t)
    ax -= t * dx
    ay -= t * dy
    ax *= ax
    ay *= ay
    ax += ay
    a = (r + np.float32(0.5))[cid] - np.sqrt(ax)
    np.clip(a, 0.0, 1.0, out=a)
    a *= alpha[cid]
    keep = np.flatnonzero(a > 1e-3)
    if not len(keep):
        return
    a, cid = a[keep], cid[keep]
    pid = (ly[keep] + lo[cid, 1]) * W + (lx[keep] + lo[cid, 0])
    order = np.argsort(pid, kind="stable")  # stable: the paint order within a pixel is kept
    pid, a, cid = pid[order], a[order], cid[order]
    logt = np.log1p(-np.minimum(a, np.float32(0.99999)))
    newg = np.empty(len(pid), bool)
    newg[0] = True
    np.not_equal(pid[1:], pid[:-1], out=newg[1:])
    gstart = np.flatnonzero(newg)
    gi = np.cumsum(newg) - 1
    cs = np.cumsum(logt, dtype=np.float64)
    tot = np.add.reduceat(logt, gstart, dtype=np.float64)
    # tot: log of the background's surviving fraction per pixel; after: log prod_{j > i} (1 - a_j)
    after = tot[gi] - (cs - (cs[gstart] - logt[gstart])[gi])
    w = a * np.exp(after).astype(np.float32)
    colsum = np.add.reduceat(w[:, None] * col[cid], gstart, axis=0)
    gy, gx = np.divmod(pid[gstart], W)
    keep_bg = np.exp(tot).astype(np.float32)[:, None]
    out = frame[gy, gx] * keep_bg
    out += colsum
    if noise is not None:
        out += noise[gy, gx] * (1.0 - keep_bg)
    out += 0.5
    np.clip(out, 0, 255, out=out)
    frame[gy, gx] = out


def _store(
    patch: np.ndarray, out: np.ndarray, a: np.ndarray, noise: np.ndarray | None, y0: int, x0: int
) -> None:
    """Write a blended patch back; on uint8 frames add the frame's sensor noise where paint covers."""
    if patch.dtype != np.uint8:
        patch[...] = out
        return
    if noise is not None:
        out += noise[y0 : y0 + patch.shape[0], x0 : x0 + patch.shape[1]] * a
    np.clip(out + 0.5, 0, 255, out=out)
    patch[...] = out.astype(np.uint8)


def _fill_rect(img: np.ndarray, x0: float, y0: float, x1: float, y1: float, col: Any, alpha: float = 1.0,
               noise: np.ndarray | None = None) -> None:
    """Axis-aligned rectangle with fractional (anti-aliased) edge coverage; img may be float or uint8."""
    H, W = img.shape[:2]
    ix0, iy0 = max(int(math.floor(x0)), 0), max(int(math.floor(y0)), 0)
    ix1, iy1 = min(int(math.ceil(x1)), W), min(int(math.ceil(y1)), H)
    if ix0 >= ix1 or iy0 >= iy1:
        return
    xs = np.arange(ix0, ix1, dtype=np.float32)
    ys = np.arange(iy0, iy1, dtype=np.float32)
    cx = np.clip(np.minimum(xs + 1, x1) - np.maximum(xs, x0), 0, 1)
    cy = np.clip(np.minimum(ys + 1, y1) - np.maximum(ys, y0), 0, 1)
    a = (cy[:, None] * cx[None, :] * alpha)[..., None]
    patch = img[iy0:iy1, ix0:ix1]
    out = patch.astype(np.float32) * (1 - a) + np.asarray(col, np.float32) * a
    _store(patch, out, a, noise, iy0, ix0)


def _soft_disc(
    img: np.ndarray, cx: float, cy: float, r: float, col: Any, alpha: float, tex: np.ndarray | None = None,
    squash: float = 1.0, hard: bool = False, noise: np.ndarray | None = None,
) -> None:
    """A soft (or anti-aliased, if ``hard``) disc, optionally modulated by a noise texture in [0, 1]."""
    H, W = img.shape[:2]
    ry = r * squash
    x0, x1 = max(int(cx - r - 1), 0), min(int(cx + r + 2), W)
    y0, y1 = max(int(cy - ry - 1), 0), min(int(cy + ry + 2), H)
    if x0 >= x1 or y0 >= y1 or r <= 0 or alpha <= 0:
        return
    dx = (np.arange(x0, x1, dtype=np.float32) - cx)[None, :]
    dy = (np.arange(y0, y1, dtype=np.float32) - cy)[:, None] / squash
    d = np.sqrt(dx * dx + dy * dy)
    if hard:
        a = np.clip(r + 0.5 - d, 0, 1)
    else:
        q = d / max(r, 1e-3)
        a = np.clip(1.0 - q * q, 0, 1)
    if tex is not None:
        n = tex.shape[0]
        ix = np.clip(((dx / max(r, 1e-3)) * 0.5 + 0.5) * (n - 1), 0, n - 1).astype(np.intp)
        iy = np.clip(((dy / max(r, 1e-3)) * 0.5 + 0.5) * (n - 1), 0, n - 1).astype(np.intp)
        a = a * (0.55 + 0.45 * tex[iy, ix])
    a = (a * alpha)[..., None]
    patch = img[y0:y1, x0:x1]
    out = patch.astype(np.float32) * (1 - a) + np.asarray(col, np.float32) * a
    _store(patch, out, a, noise, y0, x0)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Value noise in [0, 1]: a cells x cells random grid bilinearly upsampled to shape."""
    g = rng.random((cells + 1, cells + 1)).astype(np.float32)
    h, w = shape
    ys = np.linspace(0, cells, h, dtype=np.float32)
    xs = np.linspace(0, cells, w, dtype=np.float32)
    y0 = np.minimum(ys.astype(int), cells - 1)
    x0 = np.minimum(xs.astype(int), cells - 1)
    fy = (ys - y0)[:, None]
    fx = (xs - x0)[None, :]
    a = g[y0][:, x0] * (1 - fx) + g[y0][:, x0 + 1] * fx
    b = g[y0 + 1][:, x0] * (1 - fx) + g[y0 + 1][:, x0 + 1] * fx
    return a * (1 - fy) + b * fy


def _noise1d(rng: np.random.Generator, n: int, fps: float, rate_hz: float, amp: float) -> np.ndarray:
    """A smooth random signal in [-amp, amp] changing about rate_hz times a second (n samples)."""
    step = max(fps / rate_hz, 1.0)
    knots = np.arange(0, n + step, step)
    vals = rng.uniform(-amp, amp, size=len(knots))
    return np.interp(np.arange(n), knots, vals)


# ----------------------------------------------------------------------------------------------------
# People
# ----------------------------------------------------------------------------------------------------

_SKIN = [(255, 224, 196), (234, 192, 160), (224, 172, 125), (198, 134, 90), (141, 85, 36), (95, 60, 35)]
_HAIR = [(20, 18, 16), (55, 38, 25), (105, 70, 40), (190, 160, 100), (150, 150, 150), (35, 28, 22)]
_SHIRT = [
    (30, 35, 60), (22, 22, 24), (225, 225, 220), (165, 30, 35), (120, 120, 125), (200, 180, 140),
    (40, 95, 60), (215, 185, 45), (120, 160, 210), (110, 70, 45), (200, 95, 40), (90, 50, 120),
    (60, 60, 65), (160, 40, 90), (70, 120, 140),
]
_PANTS = [
    (40, 55, 95), (25, 25, 28), (90, 90, 95), (170, 150, 110), (80, 60, 40), (50, 70, 110), (60, 60, 50),
]
_SHOES = [(20, 20, 20), (60, 45, 35), (200, 200, 200), (90, 90, 95), (120, 40, 30)]

# Joints (forward a, up b, lateral c, in metres in the body frame).
(J_HEAD, J_HAIR, J_TTL, J_TTR, J_SHL, J_ELL, J_HAL, J_SHR, J_ELR, J_HAR,
 J_HIPL, J_KNL, J_ANL, J_TOL, J_HIPR, J_KNR, J_ANR, J_TOR) = range(18)
# Capsules: (joint, joint, radius as a fraction of the body height, colour: 0 shirt, 1 sleeve,
# 2 trousers, 3 shoes, 4 skin, 5 hair). The base order breaks depth ties: torso, legs, arms, head.
_CAPSULES = [
    (J_HIPL, J_TTL, 0.055, 0), (J_HIPR, J_TTR, 0.055, 0),
    (J_HIPL, J_KNL, 0.045, 2), (J_KNL, J_ANL, 0.037, 2), (J_ANL, J_TOL, 0.024, 3),
    (J_HIPR, J_KNR, 0.045, 2), (J_KNR, J_ANR, 0.037, 2), (J_ANR, J_TOR, 0.024, 3),
    (J_SHL, J_ELL, 0.031, 0), (J_ELL, J_HAL, 0.027, 1),
    (J_SHR, J_ELR, 0.031, 0), (J_ELR, J_HAR, 0.027, 1),
    (J_HAIR, J_HAIR, 0.064, 5), (J_HEAD, J_HEAD, 0.060, 4),
]
_CAP_J0 = np.array([c[0] for c in _CAPSULES])
_CAP_J1 = np.array([c[1] for c in _CAPSULES])
_CAP_R = np.array([c[2] for c in _CAPSULES], np.float32)
_CAP_C = np.array([c[3] for c in _CAPSULES])


class _Look(NamedTuple):
    height: float
    width: float
    colors: np.ndarray  # 6 x 3 float32


def _jitter(rng: np.random.Generator, rgb: Sequence[float], spread: float = 0.12) -> np.ndarray:
    c = np.asarray(rgb, np.float32) * rng.uniform(1 - spread, 1 + spread) + rng.normal(0, 6, 3)
    return np.clip(c, 0, 255).astype(np.float32)


def _random_look(rng: np.random.Generator) -> _Look:
    """Same distribution for everybody (crowd and event actors): nothing in a look marks an event."""
    height = float(np.clip(rng.normal(1.72, 0.09), 1.5, 1.98))
    width = float(rng.uniform(0.9, 1.15))
    skin = _jitter(rng, _SKIN[rng.integers(len(_SKIN))], 0.05)
    shirt = _jitter(rng, _SHIRT[rng.integers(len(_SHIRT))])
    sleeve = shirt if rng.random() < 0.5 else skin
    pants = _jitter(rng, _PANTS[rng.integers(len(_PANTS))])
    shoes = _jitter(rng, _SHOES[rng.integers(len(_SHOES))])
    hair = _jitter(rng, _HAIR[rng.integers(len(_HAIR))], 0.08)
    return _Look(height, width, np.stack([shirt, sleeve, pants, shoes, skin, hair]))


class _Pose(NamedTuple):
    phase: float = 0.0  # gait phase (radians)
    leg_amp: float = 0.0  # hip swing amplitude (radians)
    knee: float = 0.1  # knee flexion in the swing phase
    arm_amp: float = 0.0
    elbow: float = 0.15
    lean: float = 0.0  # trunk lean forward
    tilt: float = 0.0  # whole body rotated about the feet; +pi/2 = lying face down, -pi/2 = on the back
    # Explicit arm angles: alpha_l, elbow_l, alpha_r, elbow_r, abduction (replaces the gait's swing).
    arms: tuple[float, float, float, float, float] | None = None
    legs: tuple[float, float, float, float] | None = None  # thigh_l, knee_l, thigh_r, knee_r


_WALK = np.array([0.42, 0.75, 0.32, 0.25, 0.03])  # leg_amp, knee, arm_amp, elbow, lean
_RUN = np.array([0.80, 1.70, 0.85, 1.45, 0.22])


def _gait(phase: float, blend: float = 0.0, **kw: Any) -> _Pose:
    """Walking (blend 0) to running (blend 1) pose."""
    g = _WALK + (_RUN - _WALK) * blend
    return _Pose(phase, float(g[0]), float(g[1]), float(g[2]), float(g[3]), float(g[4]), **kw)


def _stride_hz(speed: float, height: float, blend: float = 0.0) -> float:
    walk = speed / (0.82 * height)
    run = speed / (1.9 * height)
    return walk + (run - walk) * blend


def _joints(h: float, w: float, p: _Pose) -> list[tuple[float, float, float]]:
    """The 18 joints (forward, up, lateral; metres) before the whole-body tilt and ground contact."""
    J: list[tuple[float, float, float]] = [(0.0, 0.0, 0.0)] * 18
    hip_b = 0.53 * h
    thigh = shin = 0.245 * h
    foot = 0.075 * h
    s0, c0 = math.sin(p.phase), math.cos(p.phase)
    if p.legs is None:
        thl = p.leg_amp * s0
        thr = -thl
        kl = 0.08 + p.knee * max(0.0, c0)
        kr = 0.08 + p.knee * max(0.0, -c0)
    else:
        thl, kl, thr, kr = p.legs
    for side, th, k, ih, ik, ia, it in ((1, thl, kl, J_HIPL, J_KNL, J_ANL, J_TOL),
                                        (-1, thr, kr, J_HIPR, J_KNR, J_ANR, J_TOR)):
        lc = side * 0.055 * h * w
        kx, ky = thigh * math.sin(th), hip_b - thigh * math.cos(th)
        sh = th - k  # the knee bends the shin backwards
        ax, ay = kx + shin * math.sin(sh), ky - shin * math.cos(sh)
        J[ih] = (0.0, hip_b, lc)
        J[ik] = (kx, ky, lc)
        J[ia] = (ax, ay, lc)
        J[it] = (ax + foot * math.cos(sh), ay + foot * math.sin(sh), lc)
    cl, sl = math.cos(p.lean), math.sin(p.lean)

    def up(dh: float, a: float = 0.0) -> tuple[float, float]:
        return a * cl + dh * sl, hip_b - a * sl + dh * cl

    J[J_TTL] = (*up(0.29 * h), 0.07 * h * w)
    J[J_TTR] = (*up(0.29 * h), -0.07 * h * w)
    J[J_HEAD] = (*up(0.395 * h, 0.012 * h), 0.0)
    J[J_HAIR] = (*up(0.405 * h, -0.014 * h), 0.0)
    sa, sb = up(0.27 * h)
    if p.arms is None:
        al, el, ar, er, ab = -p.arm_amp * s0, p.elbow, p.arm_amp * s0, p.elbow, 0.08
    else:
        al, el, ar, er, ab = p.arms
    ua, fa = 0.17 * h, 0.165 * h
    sab, cab = math.sin(ab), math.cos(ab)
    for side, a1, e1, ish, iel, iha in ((1, al, el, J_SHL, J_ELL, J_HAL), (-1, ar, er, J_SHR, J_ELR, J_HAR)):
        sc = side * 0.105 * h * w
        a1 = a1 + 0.5 * p.lean
        ex = sa + ua * math.sin(a1) * cab
        ey = sb - ua * math.cos(a1) * cab
        ez = sc + side * ua * sab
        a2 = a1 + e1
        J[ish] = (sa, sb, sc)
        J[iel] = (ex, ey, ez)
        J[iha] = (ex + fa * math.sin(a2), ey - fa * math.cos(a2), ez + side * 0.5 * fa * sab)
    return J


def _pose_joints(J: np.ndarray, h: np.ndarray, tilt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tilt bodies (P x 18 x 3) about their feet and put their lowest point on the ground: (a, b, c)."""
    ct, st = np.cos(tilt)[:, None], np.sin(tilt)[:, None]
    a = J[..., 0] * ct + J[..., 1] * st
    b = J[..., 1] * ct - J[..., 0] * st
    b -= (b.min(1) - 0.024 * h)[:, None]
    return a, b, J[..., 2]


def _skeleton(h: float, w: float, p: _Pose) -> np.ndarray:
    """Joint positions (18 x 3: forward, up, lateral; metres) of one posed body, feet on the ground."""
    a, b, c = _pose_joints(np.array([_joints(h, w, p)]), np.array([h]), np.array([p.tilt]))
    return np.stack([a[0], b[0], c[0]], 1)


class _Ctx(NamedTuple):
    cam: _Camera
    light: np.ndarray  # H x W lighting factor
    tint: np.ndarray  # 3 colour balance
    shadow_vec: tuple[float, float]  # ground offset (metres) of a 1 m tall object's shadow tip
    shadow_alpha: float
    noise: list  # [H x W x 3 int16 sensor noise of the current frame], set by the renderer

    def light_at(self, x: float, y: float) -> float:
        H, W = self.light.shape
        return float(self.light[min(max(int(y), 0), H - 1), min(max(int(x), 0), W - 1)])


_Capsules = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
_Person = tuple[float, float, float, _Look, _Pose]  # x, z (metres), heading psi, look, pose


def _people_capsules(ctx: _Ctx, people: Sequence[_Person]) -> _Capsules | None:
    """Capsules of a list of people (already far to near), vectorised over people.

    Projection: scaled orthographic about each person's feet, plus the ground-plane foreshortening of
    depth offsets (a point d metres behind the feet appears higher by f * h_cam * d / Z^2). Per person the
    paint order is: shadow, then body parts far to near.
    """
    cam = ctx.cam
    vis = []
    for x, z, psi, look, pose in people:
        s = cam.f / z
        fx, fy = cam.cx + s * x, cam.yh + s * _CAM_HEIGHT
        hp = look.height * s
        if fx + hp < 0 or fx - hp > cam.W or fy - 1.1 * hp > cam.H or fy + hp < 0:
            continue
        vis.append((x, z, psi, look, pose, s, fx, fy, ctx.light_at(fx, fy - 0.5 * hp)))
    if not vis:
        return None
    P = len(vis)
    J = np.array([_joints(v[3].height, v[3].width, v[4]) for v in vis])
    z, psi, s, fx, fy, lf = (np.array([v[i] for v in vis]) for i in (1, 2, 5, 6, 7, 8))
    h = np.array([v[3].height for v in vis])
    a, b, c = _pose_joints(J, h, np.array([v[4].tilt for v in vis]))
    cp, sp = np.cos(psi)[:, None], np.sin(psi)[:, None]
    dx = a * cp - c * sp
    dz = a * sp + c * cp
    s_, z_ = s[:, None], z[:, None]
    px = fx[:, None] + s_ * dx
    py = fy[:, None] - s_ * (b + _CAM_HEIGHT * dz / z_)
    depth = dz[:, _CAP_J0] + dz[:, _CAP_J1]
    order = np.argsort(-depth, axis=1, kind="stable")
    rows = np.arange(P)[:, None]
    j0, j1 = _CAP_J0[order], _CAP_J1[order]
    nc = len(_CAPSULES) + 1
    p0 = np.empty((P, nc, 2), np.float32)
    p1 = np.empty((P, nc, 2), np.float32)
    p0[:, 1:, 0], p0[:, 1:, 1] = px[rows, j0], py[rows, j0]
    p1[:, 1:, 0], p1[:, 1:, 1] = px[rows, j1], py[rows, j1]
    hp = h * s
    r = np.empty((P, nc), np.float32)
    r[:, 0] = 0.035 * hp
    r[:, 1:] = _CAP_R[order] * hp[:, None]
    shade = np.clip(1.0 - 0.6 * np.take_along_axis(depth, order, 1) / h[:, None], 0.78, 1.1) * lf[:, None]
    looks = np.stack([v[3].colors for v in vis])
    col = np.zeros((P, nc, 3), np.float32)
    col[:, 1:] = looks[rows, _CAP_C[order]] * (shade[..., None] * ctx.tint)
    # Shadow: a flat pill from the feet to the ground point under the head, stretched away from the light.
    hx = fx + s * dx[:, J_HEAD]
    hy = fy - s * _CAM_HEIGHT * dz[:, J_HEAD] / z
    wpx = 0.12 * hp
    vx, vy = hx - fx, hy - fy
    nv = np.hypot(vx, vy)
    lying = nv >= wpx
    ux = np.where(lying, vx / np.maximum(nv, 1e-6), 1.0)
    uy = np.where(lying, vy / np.maximum(nv, 1e-6), 0.0)
    lx, lz = ctx.shadow_vec
    ox, oy = 0.35 * s * lx * h, -0.35 * s * _CAM_HEIGHT * lz * h / z
    p0[:, 0, 0], p0[:, 0, 1] = fx - ux * wpx, fy - uy * wpx
    p1[:, 0, 0] = np.where(lying, hx + ux * wpx + 0.3 * ox, fx + wpx + ox)
    p1[:, 0, 1] = np.where(lying, hy + uy * wpx + 0.3 * oy, fy + oy)
    alpha = np.ones((P, nc), np.float32)
    alpha[:, 0] = ctx.shadow_alpha
    return p0.reshape(-1, 2), p1.reshape(-1, 2), r.reshape(-1), col.reshape(-1, 3), alpha.reshape(-1)


def _draw_people(frame: np.ndarray, ctx: _Ctx, people: list[_Person]) -> None:
    """Draw people (far to near) with one rasteriser call, then empty the list."""
    caps = _people_capsules(ctx, people)
    if caps is not None:
        _draw_capsules(frame, *caps, noise=ctx.noise[0])
    people.clear()


def _draw_person(
    frame: np.ndarray, ctx: _Ctx, x: float, z: float, psi: float, look: _Look, pose: _Pose
) -> None:
    """Draw one person (the renderer batches people instead; this is the drawing item's tag)."""
    _draw_people(frame, ctx, [(x, z, psi, look, pose)])


# ----------------------------------------------------------------------------------------------------
# Background
# ----------------------------------------------------------------------------------------------------

_FACADES = [
    (200, 185, 160), (165, 90, 70), (150, 150, 150), (225, 215, 190), (120, 110, 100), (185, 160, 120),
]


class _Scene(NamedTuple):
    bg: np.ndarray  # H x W x 3 uint8, static image with lighting applied
    ctx: _Ctx
    doors: list[float]  # X positions (metres) of doors people come out of


def _build_background(cam: _Camera, rng: np.random.Generator) -> _Scene:
    """Plaza, buildings, benches, lamps, trees and bins; drawn once per video."""
    H, W = cam.H, cam.W
    img = np.zeros((H, W, 3), np.float32)
    ys = np.arange(H, dtype=np.float32)[:, None]
    xs = np.arange(W, dtype=np.float32)[None, :]
    y_base = cam.yh + cam.f * _CAM_HEIGHT / cam.z_wall
    # Sky (visible above low buildings).
    top, bot = _jitter(rng, (150, 175, 205), 0.08), _jitter(rng, (205, 212, 222), 0.05)
    t = np.clip(ys / max(y_base, 1.0), 0, 1)[..., None]
    img[:] = top * (1 - t) + bot * t
    # Ground: perspective paving with mortar lines, per-tile shade, blotches, grass borders.
    yg = np.maximum(ys - cam.yh, 0.5)
    Z = cam.f * _CAM_HEIGHT / yg  # H x 1
    X = (xs - cam.cx) * Z / cam.f  # H x W
    tile = float(rng.uniform(0.5, 0.9))
    pave = _jitter(rng, (150, 146, 138), 0.12)
    path = _jitter(rng, [(160, 110, 90), (185, 180, 165), (120, 120, 125)][rng.integers(3)], 0.08)
    tx, tz = X / tile + rng.random(), Z / tile + rng.random()
    fxr, fzr = tx - np.floor(tx), tz - np.floor(tz)
    dxl = np.minimum(fxr, 1 - fxr) * tile
    dzl = np.minimum(fzr, 1 - fzr) * tile
    lw = 0.025
    foot_x = np.maximum(Z / cam.f, lw)  # metres per pixel across
    foot_z = np.maximum(Z * Z / (cam.f * _CAM_HEIGHT), lw)  # metres per pixel in depth
    mortar = np.maximum(
        np.clip(1 - dxl / foot_x, 0, 1) * (lw / foot_x), np.clip(1 - dzl / foot_z, 0, 1) * (lw / foot_z)
    )
    h = (np.floor(tx).astype(np.int64) * 73856093) ^ (np.floor(tz).astype(np.int64) * 19349663)
    tile_shade = 1 + 0.07 * (((h & 1023) / 1023.0) - 0.5).astype(np.float32)
    blot = 0.9 + 0.2 * _smooth_noise(rng, (H, W), 6)
    grain = rng.normal(1.0, 0.035, (H, W)).astype(np.float32)
    base = np.broadcast_to(pave, (H, W, 3)).copy()
    # A walkway of a different paving along the depth direction.
    wx, ww = float(rng.uniform(-3, 3)), float(rng.uniform(1.2, 2.5))
    on_path = np.abs(X - wx) < ww
    base[on_path] = path
    ground = base * (tile_shade * blot * grain * (1 - 0.3 * mortar))[..., None]
    # Lawns at one or both sides of the plaza.
    for side in (-1, 1):
        if rng.random() < 0.6:
            edge = float(rng.uniform(3.5, 7.0))  # metres from the plaza's axis: converges in perspective
            lawn = side * X > edge
            grass = _jitter(rng, (85, 125, 60), 0.1)
            gtex = (0.8 + 0.4 * _smooth_noise(rng, (H, W), 12)) * rng.normal(1, 0.08, (H, W))
            gtex = gtex.astype(np.float32)
            ground[lawn] = (grass * gtex[..., None])[lawn]
    below = (ys >= y_base)[:, 0]
    img[below] = ground[below]
    # A strip of sidewalk along the building bases.
    y_sw = cam.yh + cam.f * _CAM_HEIGHT / (cam.z_far + 0.3)
    _fill_rect(img, 0, y_base, W, y_sw, _jitter(rng, (175, 170, 160), 0.06))
    # Buildings.
    doors: list[float] = []
    s_w = cam.f / cam.z_wall
    hw = cam.half_width(cam.z_wall)
    bx = -hw - float(rng.uniform(0, 6))
    while bx < hw:
        bw = float(rng.uniform(6, 14))
        bh = float(rng.uniform(6, 22))
        col = _jitter(rng, _FACADES[rng.integers(len(_FACADES))], 0.1)
        xa, xb = cam.cx + s_w * bx, cam.cx + s_w * (bx + bw)
        ytop = y_base - s_w * bh
        _fill_rect(img, xa, ytop, xb, y_base, col)
        _fill_rect(img, xa, ytop, xb, ytop + max(1.0, 0.4 * s_w), col * 0.7)
        glass = _jitter(rng, (70, 85, 100), 0.15)
        col_w = float(rng.uniform(2.4, 3.4))
        for fy in np.arange(3.6, bh - 1.5, 3.2):
            for wxm in np.arange(bx + 0.9, bx + bw - 1.3, col_w):
                lit = rng.random() < 0.12
                c = _jitter(rng, (205, 190, 150), 0.05) if lit else glass * rng.uniform(0.8, 1.2)
                _fill_rect(img, cam.cx + s_w * wxm, y_base - s_w * (fy + 1.6), cam.cx + s_w * (wxm + 1.3),
                           y_base - s_w * fy, c)
        # Ground floor: shop window and one or two doors.
        _fill_rect(img, xa + s_w * 0.6, y_base - s_w * 2.6, xb - s_w * 0.6, y_base - s_w * 0.8, glass * 0.9)
        for _ in range(1 + int(rng.random() < 0.5)):
            dxm = float(rng.uniform(bx + 1.0, bx + bw - 2.2))
            _fill_rect(img, cam.cx + s_w * dxm, y_base - s_w * 2.3, cam.cx + s_w * (dxm + 1.2), y_base,
                       _jitter(rng, (60, 45, 35), 0.2))
            if abs(dxm + 0.6) < cam.half_width(cam.z_far) - 1:
                doors.append(dxm + 0.6)
        bx += bw + float(rng.uniform(0, 1.5))
    if not doors:
        doors.append(float(rng.uniform(-3, 3)))
    # Street furniture, drawn far to near.
    objs = []
    for kind, lo, hi in (("bench", 1, 3), ("lamp", 2, 4), ("tree", 1, 3), ("bin", 0, 2)):
        for _ in range(int(rng.integers(lo, hi + 1))):
            z = float(1.0 / rng.uniform(1 / (cam.z_far - 1), 1 / (cam.z_near + 1.5)))
            x = float(rng.uniform(-0.92, 0.92) * cam.half_width(z))
            if kind == "tree":  # at the sides: a canopy must not cover the middle, where events happen
                x = float(np.sign(x) * rng.uniform(0.5, 0.95) * cam.half_width(z))
            objs.append((z, kind, x))
    objs.sort(key=lambda o: -o[0])
    wood = _jitter(rng, (120, 80, 50), 0.15)
    metal = _jitter(rng, (55, 60, 58), 0.1)
    leaf = _jitter(rng, (60, 105, 50), 0.12)
    for z, kind, x in objs:
        s = cam.f / z
        fx, fy = cam.foot(x, z)
        sq = _CAM_HEIGHT / z  # vertical foreshortening of shapes lying on the ground
        if kind == "bench":
            _soft_disc(img, fx, fy, 1.1 * s, (0, 0, 0), 0.3, squash=sq)
            for lx in (-0.8, 0.7):
                _fill_rect(img, fx + s * lx, fy - s * 0.45, fx + s * (lx + 0.1), fy, metal)
            _fill_rect(img, fx - s * 0.95, fy - s * (0.48 + 0.4 * sq), fx + s * 0.95, fy - s * 0.4, wood)
            back = 0.4 * sq  # the backrest stands behind the seat
            xa, xb = fx - s * 0.95, fx + s * 0.95
            _fill_rect(img, xa, fy - s * (0.9 + back), xb, fy - s * (0.58 + back), wood * 0.85)
        elif kind == "lamp":
            _fill_rect(img, fx - s * 0.07, fy - s * 4.2, fx + s * 0.07, fy, metal)
            _fill_rect(img, fx - s * 0.3, fy - s * 4.4, fx + s * 0.3, fy - s * 4.15, metal * 0.8)
            _fill_rect(img, fx - s * 0.2, fy - s * 4.17, fx + s * 0.2, fy - s * 4.1, (235, 230, 200))
        elif kind == "tree":
            _soft_disc(img, fx + s * 0.4, fy, 1.6 * s, (0, 0, 0), 0.35, squash=sq)
            _fill_rect(img, fx - s * 0.15, fy - s * 2.6, fx + s * 0.15, fy, _jitter(rng, (90, 65, 45), 0.1))
            for i in range(16):  # opaque canopy: big blobs, then small lighter/darker leaf clusters
                big = i < 6
                ox, oy = rng.normal(0, 0.5 if big else 0.7), rng.normal(0, 0.4 if big else 0.55)
                rr = float(rng.uniform(0.8, 1.3) if big else rng.uniform(0.25, 0.45))
                shade = rng.uniform(0.8, 1.1) if big else rng.uniform(0.65, 1.3)
                _soft_disc(img, fx + s * ox, fy - s * (3.4 + oy), rr * s, leaf * shade, 1.0, hard=True)
        else:  # bin
            _fill_rect(img, fx - s * 0.25, fy - s * 0.9, fx + s * 0.25, fy, _jitter(rng, (45, 80, 55), 0.15))
            _fill_rect(img, fx - s * 0.28, fy - s * 0.95, fx + s * 0.28, fy - s * 0.85, metal)
    # Lighting: brightness, left-right and top-bottom gradients, vignetting, colour balance.
    bright = float(rng.uniform(0.8, 1.12))
    gx, gy = float(rng.uniform(-0.25, 0.25)), float(rng.uniform(-0.15, 0.15))
    vig = float(rng.uniform(0.1, 0.35))
    u, v = xs / W - 0.5, ys / H - 0.5
    light = (bright * (1 + gx * u + gy * v) * (1 - 2 * vig * (u * u + v * v))).astype(np.float32)
    tint = (1 + rng.normal(0, 0.035, 3)).astype(np.float32)
    bg = np.clip(img * light[..., None] * tint, 0, 255).astype(np.uint8)
    ang = float(rng.uniform(0, 2 * math.pi))
    length = float(rng.uniform(0.4, 1.2))
    ctx = _Ctx(cam, light, tint, (length * math.cos(ang), length * math.sin(ang)),
               float(rng.uniform(0.25, 0.45)), [None])
    return _Scene(bg, ctx, doors)


class _NoiseBank:
    """Sensor noise: K (4-8) Gaussian noise frames, pre-added to the static background.

    Each frame starts from one noisy background (never the same one twice in a row), and everything drawn
    on top receives the same noise in proportion to its coverage, so the noise is identical in
    statistics everywhere, with or without events, at the cost of one copy per frame.
    """

    def __init__(self, rng: np.random.Generator, bg: np.ndarray) -> None:
        self.rng = rng
        self.sigma = float(rng.uniform(1.5, 3.5))
        k = int(np.clip(8 * 320 * 240 / bg[..., 0].size, 4, 8))  # bounded memory for large frames
        noise = rng.standard_normal((k, *bg.shape), dtype=np.float32)
        noise *= self.sigma
        self.noise = np.rint(noise).astype(np.int16)
        self.noisy = np.clip(bg[None].astype(np.int16) + self.noise, 0, 255).astype(np.uint8)
        self.k = 0

    def frame(self, ctx: _Ctx) -> np.ndarray:
        self.k = (self.k + 1 + int(self.rng.integers(len(self.noise) - 1))) % len(self.noise)
        ctx.noise[0] = self.noise[self.k]
        return self.noisy[self.k].copy()


# ----------------------------------------------------------------------------------------------------
# Normal crowd
# ----------------------------------------------------------------------------------------------------


class _Walker:
    """A pedestrian following a polyline at walking speed, possibly stopping at one vertex."""

    def __init__(self, look: _Look, path: list[tuple[float, float]], speed: float, fps: float, phase: float,
                 stop_vertex: int = -1, stop_frames: int = 0, face: float | None = None,
                 gesture: float | None = None) -> None:
        self.look, self.path, self.speed, self.fps = look, path, speed, fps
        self.x, self.z = path[0]
        self.seg = 0
        self.phase = phase
        self.stop_vertex, self.stop_left = stop_vertex, stop_frames
        self.stopped = False
        self.face, self.gesture = face, gesture
        self.psi = self._heading()
        self.done = False
        self.age = 0

    def _heading(self) -> float:
        tx, tz = self.path[min(self.seg + 1, len(self.path) - 1)]
        if abs(tx - self.x) + abs(tz - self.z) < 1e-9:
            return getattr(self, "psi", 0.0)
        return math.atan2(tz - self.z, tx - self.x)

    def step(self) -> None:
        self.age += 1
        if self.stopped:
            self.stop_left -= 1
            if self.stop_left <= 0:
                self.stopped = False
            return
        dist = self.speed / self.fps
        while dist > 1e-9 and self.seg < len(self.path) - 1:
            tx, tz = self.path[self.seg + 1]
            d = math.hypot(tx - self.x, tz - self.z)
            if d <= dist:
                self.x, self.z = tx, tz
                dist -= d
                self.seg += 1
                if self.seg == self.stop_vertex and self.stop_left > 0:
                    self.stopped = True
                    break
            else:
                self.x += (tx - self.x) * dist / d
                self.z += (tz - self.z) * dist / d
                dist = 0.0
        if self.seg >= len(self.path) - 1:
            self.done = True
        self.psi = self._heading()
        self.phase += 2 * math.pi * _stride_hz(self.speed, self.look.height) / self.fps

    def item(self) -> tuple[float, float, float, _Look, _Pose]:
        if self.stopped:
            psi = self.face if self.face is not None else self.psi
            if self.gesture is not None:
                t = self.age / self.fps
                g = self.gesture
                arms = (
                    0.15 + 0.25 * (1 + math.sin(2.1 * t + g)), 0.5 + 0.5 * (1 + math.sin(1.3 * t + 2 * g)),
                    0.05 + 0.1 * (1 + math.sin(0.9 * t + 3 * g)), 0.3, 0.1,
                )
                return self.x, self.z, psi, self.look, _Pose(arms=arms)
            return self.x, self.z, psi, self.look, _Pose()
        return self.x, self.z, self.psi, self.look, _gait(self.phase)


class _Crowd:
    """People entering and leaving the plaza: singles, pairs, chatting pairs, people stopping."""

    MEAN_DWELL_S = 25.0  # calibrated: about `density` people visible on average (measured 2-9, mean 5)

    def __init__(self, cam: _Camera, fps: float, rng: np.random.Generator, doors: list[float]) -> None:
        self.cam, self.fps, self.rng, self.doors = cam, fps, rng, doors
        self.density = float(rng.uniform(2.5, 7.0))  # mean number of people in view
        self.rate = self.density / self.MEAN_DWELL_S  # spawns per second (people per spawn ~1.3)
        self.walkers: list[_Walker] = []
        self.pending: list[tuple[int, _Walker]] = []
        self.t = 0
        for _ in range(int(40 * fps)):  # warm up: frame 0 shows a crowd already in the scene
            self.step()

    def _ground_z(self, lo: float, hi: float) -> float:
        """Depth drawn uniformly in image rows, so near and far rows are equally used."""
        return float(1.0 / self.rng.uniform(1.0 / hi, 1.0 / lo))

    def _boundary(self, side: str) -> tuple[float, float]:
        cam, rng = self.cam, self.rng
        if side in ("left", "right"):
            z = self._ground_z(cam.z_near + 0.5, cam.z_far - 0.5)
            return (-1 if side == "left" else 1) * (cam.half_width(z) + 1.0), z
        if side == "far":
            return float(self.doors[rng.integers(len(self.doors))] + rng.normal(0, 0.2)), cam.z_far
        z = cam.z_near - 1.2
        return float(rng.uniform(-0.7, 0.7) * cam.half_width(z)), z

    def _sides(self) -> tuple[str, str]:
        sides, p = ["left", "right", "far", "near"], [0.35, 0.35, 0.2, 0.1]
        a = str(self.rng.choice(sides, p=p))
        b = a
        while b == a:
            b = str(self.rng.choice(sides, p=p))
        return a, b

    def _inside(self) -> tuple[float, float]:
        z = self._ground_z(self.cam.z_near + 1.5, self.cam.z_far - 3)
        return float(self.rng.uniform(-0.75, 0.75) * self.cam.half_width(z)), z

    def _new(self, path: list[tuple[float, float]], speed: float, **kw: Any) -> _Walker:
        phase = float(self.rng.uniform(0, 2 * math.pi))
        return _Walker(_random_look(self.rng), path, speed, self.fps, phase, **kw)

    def _spawn(self) -> None:
        rng = self.rng
        r = rng.random()
        speed = float(rng.uniform(1.0, 1.6))
        if r < 0.12:  # two people meet, stand face to face and chat, then go on
            mx, mz = self._inside()
            a = float(rng.uniform(-0.5, 0.5)) + (math.pi if rng.random() < 0.5 else 0.0)
            ux, uz = math.cos(a), math.sin(a)
            spots = [(mx - 0.35 * ux, mz - 0.35 * uz), (mx + 0.35 * ux, mz + 0.35 * uz)]
            stop = int(rng.uniform(3, 10) * self.fps)
            ws, times = [], []
            for i, spot in enumerate(spots):
                ent, ex = self._sides()
                p0, p1 = self._boundary(ent), self._boundary(ex)
                sp = float(rng.uniform(1.0, 1.5))
                face = a if i == 0 else a + math.pi
                ws.append(self._new([p0, spot, p1], sp, stop_vertex=1, stop_frames=stop, face=face,
                                    gesture=float(rng.uniform(0, 6))))
                times.append(math.hypot(spot[0] - p0[0], spot[1] - p0[1]) / sp)
            delay = int(round((times[0] - times[1]) * self.fps))
            self.pending.append((self.t + max(0, -delay), ws[0]))
            self.pending.append((self.t + max(0, delay), ws[1]))
            return
        ent, ex = self._sides()
        path = [self._boundary(ent)]
        if rng.random() < 0.5:
            path.append(self._inside())
        path.append(self._boundary(ex))
        stop_vertex, stop_frames = -1, 0
        if rng.random() < 0.2:  # stop somewhere along the way for a few seconds
            i = int(rng.integers(len(path) - 1))
            f = float(rng.uniform(0.3, 0.7))
            (ax, az), (bx, bz) = path[i], path[i + 1]
            path.insert(i + 1, (ax + f * (bx - ax), az + f * (bz - az)))
            stop_vertex, stop_frames = i + 1, int(rng.uniform(2, 8) * self.fps)
        if r < 0.32:  # a pair walking side by side
            (ax, az), (bx, bz) = path[0], path[1]
            d = math.hypot(bx - ax, bz - az) or 1.0
            ox, oz = -(bz - az) / d * 0.55, (bx - ax) / d * 0.55
            for k in (0, 1):
                p = [(x + k * ox, z + k * oz) for x, z in path]
                self.walkers.append(self._new(p, speed, stop_vertex=stop_vertex, stop_frames=stop_frames))
        else:
            self.walkers.append(self._new(path, speed, stop_vertex=stop_vertex, stop_frames=stop_frames))

    def step(self) -> None:
        self.t += 1
        if len(self.walkers) < 12 and self.rng.random() < self.rate / self.fps:
            self._spawn()
        if self.pending:
            ready = [w for t, w in self.pending if t <= self.t]
            self.pending = [(t, w) for t, w in self.pending if t > self.t]
            self.walkers.extend(ready)
        for w in self.walkers:
            w.step()
        self.walkers = [w for w in self.walkers if not w.done]

    def items(self) -> list[tuple[float, float, float, _Look, _Pose]]:
        return [w.item() for w in self.walkers]


# ----------------------------------------------------------------------------------------------------
# Events
# ----------------------------------------------------------------------------------------------------

Item = tuple  # (depth z, draw callable, args...)


def _along(cam: _Camera, p: tuple[float, float], d: tuple[float, float], dist: float
           ) -> tuple[float, float, tuple[float, float]]:
    """Point ``dist`` metres from p along unit d; turns to a lateral walk where the plaza ends in depth."""
    px, pz = p
    dx, dz = d
    zlo, zhi = cam.z_near - 1.0, cam.z_far - 0.5
    if dz > 1e-6:
        lim = max((zhi - pz) / dz, 0.0)
    elif dz < -1e-6:
        lim = max((zlo - pz) / dz, 0.0)
    else:
        lim = math.inf
    if dist <= lim:
        return px + dx * dist, pz + dz * dist, (dx, dz)
    qx, qz = px + dx * lim, pz + dz * lim
    sx = 1.0 if dx >= 0 else -1.0
    return qx + sx * (dist - lim), qz, (sx, 0.0)


def _visible(cam: _Camera, x: float, z: float) -> bool:
    return abs(x) < cam.half_width(z) + 2.5


def _lateral_dir(rng: np.random.Generator, spread: float = 0.5) -> tuple[float, float]:
    """Mostly sideways in the image, so that limbs and falls are seen in profile."""
    a = float(rng.uniform(-spread, spread)) + (math.pi if rng.random() < 0.5 else 0.0)
    return math.cos(a), math.sin(a)


class _Event:
    """Base: an event owns its actors for the whole video (walk-in before, walk-away after)."""

    def __init__(self, ev: EventSpec, cam: _Camera, fps: float, rng: np.random.Generator) -> None:
        self.ev, self.cam, self.fps, self.rng = ev, cam, fps, rng
        self.start, self.end = ev.start_frame, ev.end_frame
        self.n = self.end - self.start
        self.p = cam.ground(ev.position)

    def items(self, t: int) -> list[Item]:  # pragma: no cover - overridden
        raise NotImplementedError

    # Walk-in / walk-away helpers shared by the people-based events.
    def _walk_in(self, t: int, t_arrive: int, spot: tuple[float, float], d: tuple[float, float],
                 speed: float, look: _Look, phase_at_arrival: float) -> list[Item]:
        dist = speed * (t_arrive - t) / self.fps
        x, z, dd = _along(self.cam, spot, (-d[0], -d[1]), dist)
        if not _visible(self.cam, x, z):
            return []
        phase = phase_at_arrival - 2 * math.pi * _stride_hz(speed, look.height) * (t_arrive - t) / self.fps
        return [(z, _draw_person, x, z, math.atan2(-dd[1], -dd[0]), look, _gait(phase))]

    def _walk_away(self, t: int, t_leave: int, spot: tuple[float, float], d: tuple[float, float],
                   speed: float, look: _Look, phase0: float) -> list[Item]:
        dist = speed * (t - t_leave + 1) / self.fps
        x, z, dd = _along(self.cam, spot, d, dist)
        if not _visible(self.cam, x, z):
            return []
        phase = phase0 + 2 * math.pi * _stride_hz(speed, look.height) * (t - t_leave + 1) / self.fps
        return [(z, _draw_person, x, z, math.atan2(dd[1], dd[0]), look, _gait(phase))]


class _RunEvent(_Event):
    """A pedestrian breaks into a run (4.2-6 m/s, long strides, lean), weaving around, then walks on."""

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        rng, cam, fps, n = self.rng, self.cam, self.fps, self.n
        self.look = _random_look(rng)
        self.d0 = _lateral_dir(rng, 0.6)
        self.vw = float(rng.uniform(1.1, 1.5))
        vr = float(rng.uniform(4.2, 6.0))
        self.phase0 = float(rng.uniform(0, 2 * math.pi))
        ramp = max(int(0.3 * fps), 1)
        k = np.arange(n)
        self.blend = np.clip(np.minimum((k + 1) / ramp, (n - k) / ramp), 0, 1)
        speed = self.vw + (vr - self.vw) * self.blend
        xs, zs, psis, phases = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
        x, z = self.p
        psi = math.atan2(self.d0[1], self.d0[0])
        ph = self.phase0
        turn = _noise1d(rng, n, fps, 1.0, 0.05)
        zlo, zhi = max(cam.z_near + 1.0, 7.0), 18.0
        for i in range(n):
            xs[i], zs[i], psis[i], phases[i] = x, z, psi, ph
            step = speed[i] / fps
            psi += turn[i]
            nx, nz = x + step * math.cos(psi), z + step * math.sin(psi)
            lim = 0.62 * cam.half_width(nz)
            if abs(nx) > lim:  # stay inside the I3D centre crop: turn back
                psi = math.pi - psi
            if not zlo <= nz <= zhi:
                psi = -psi
            x, z = x + step * math.cos(psi), z + step * math.sin(psi)
            ph += 2 * math.pi * _stride_hz(speed[i], self.look.height, self.blend[i]) / fps
        self.xs, self.zs, self.psis, self.phases = xs, zs, psis, phases
        self.d1 = (math.cos(psis[-1]), math.sin(psis[-1]))
        self.ph1 = ph

    def items(self, t: int) -> list[Item]:
        if t < self.start:
            return self._walk_in(t, self.start, self.p, self.d0, self.vw, self.look, self.phase0)
        if t >= self.end:
            return self._walk_away(t, self.end - 1, (self.xs[-1], self.zs[-1]), self.d1, self.vw, self.look,
                                   self.ph1)
        k = t - self.start
        pose = _gait(float(self.phases[k]), float(self.blend[k]))
        return [(self.zs[k], _draw_person, self.xs[k], self.zs[k], self.psis[k], self.look, pose)]


def _punches(rng: np.random.Generator, n: int, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Shoulder and elbow angles of one arm: guard <-> strike every 0.08-0.22 s."""
    knots, alpha, elbow = [], [], []
    t = -int(rng.integers(0, 4))
    strike = bool(rng.random() < 0.5)
    while t < n + 8:
        knots.append(t)
        if strike:
            alpha.append(rng.uniform(1.3, 1.7))
            elbow.append(rng.uniform(0.0, 0.35))
        else:
            alpha.append(rng.uniform(0.6, 1.2))
            elbow.append(rng.uniform(1.5, 2.2))
        strike = (not strike) if rng.random() < 0.8 else strike
        t += int(rng.integers(max(2, int(0.08 * fps)), max(3, int(0.22 * fps)) + 1))
    k = np.arange(n)
    return np.interp(k, knots, alpha), np.interp(k, knots, elbow)


class _FightEvent(_Event):
    """Two people meet face to face (normal so far), then punch, kick, shove and jitter; then part."""

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        rng, fps, n = self.rng, self.fps, self.n
        ux, uz = _lateral_dir(rng, 0.45)
        sep = float(rng.uniform(0.55, 0.75))
        px, pz = self.p
        self.spots = [(px - ux * sep / 2, pz - uz * sep / 2), (px + ux * sep / 2, pz + uz * sep / 2)]
        self.dirs = [(ux, uz), (-ux, -uz)]
        self.looks = [_random_look(rng), _random_look(rng)]
        self.vw = [float(rng.uniform(1.1, 1.5)) for _ in range(2)]
        self.phase0 = [float(rng.uniform(0, 2 * math.pi)) for _ in range(2)]
        self.meet = int(rng.uniform(0.5, 1.3) * fps)  # standing face to face before it starts
        self.sig = []
        for _ in range(2):
            al, el = _punches(rng, n, fps)
            ar, er = _punches(rng, n, fps)
            ab = 0.15 + np.abs(_noise1d(rng, n, fps, 3.0, 0.45))
            kick = np.maximum(_noise1d(rng, n, fps, 2.5, 1.6) - 0.6, 0)  # occasional kicks
            legs = np.stack([
                _noise1d(rng, n, fps, 4.0, 0.3) + kick, 0.25 + np.abs(_noise1d(rng, n, fps, 4.0, 0.5)),
                _noise1d(rng, n, fps, 4.0, 0.3), 0.25 + np.abs(_noise1d(rng, n, fps, 4.0, 0.5)),
            ], 1)
            self.sig.append({
                "du": _noise1d(rng, n, fps, 6.0, 0.22), "dp": _noise1d(rng, n, fps, 6.0, 0.12),
                "lean": 0.2 + _noise1d(rng, n, fps, 5.0, 0.3), "dpsi": _noise1d(rng, n, fps, 4.0, 0.5),
                "arms": np.stack([al, el, ar, er, ab], 1), "legs": legs,
            })

    def items(self, t: int) -> list[Item]:
        out: list[Item] = []
        for i in range(2):
            spot, d, look = self.spots[i], self.dirs[i], self.looks[i]
            psi = math.atan2(d[1], d[0])
            if t < self.start - self.meet:
                out += self._walk_in(t, self.start - self.meet, spot, d, self.vw[i], look, self.phase0[i])
            elif t < self.start:
                g = 1.7 * i + t / self.fps
                arms = (0.2 + 0.15 * math.sin(2 * g), 0.6 + 0.3 * math.sin(1.4 * g), 0.1, 0.3, 0.1)
                out.append((spot[1], _draw_person, spot[0], spot[1], psi, look, _Pose(arms=arms)))
            elif t < self.end:
                k = t - self.start
                s = self.sig[i]
                x = spot[0] + d[0] * s["du"][k] - d[1] * s["dp"][k]
                z = spot[1] + d[1] * s["du"][k] + d[0] * s["dp"][k]
                arms = tuple(float(v) for v in s["arms"][k])
                legs = tuple(float(v) for v in s["legs"][k])
                pose = _Pose(lean=float(s["lean"][k]), arms=arms, legs=legs)  # type: ignore[arg-type]
                out.append((z, _draw_person, x, z, psi + float(s["dpsi"][k]), look, pose))
            else:
                back = (-d[0], -d[1])
                out += self._walk_away(t, self.end - 1, spot, back, self.vw[i], look, self.phase0[i])
        return out


def _lying_pose(tilt: float) -> _Pose:
    return _Pose(tilt=tilt, arms=(0.2, 0.3, -0.1, 0.2, 0.35), legs=(0.05, 0.1, -0.05, 0.15))


def _getting_up(tilt: float, x: float) -> _Pose:
    """x in [0, 1]: crouched half way, arms pushing."""
    bend = 1.4 * math.sin(math.pi * x)
    return _Pose(tilt=tilt, arms=(0.9, 0.4, 0.9, 0.4, 0.2), legs=(0.5 * bend, bend, 0.3 * bend, bend))


class _FallEvent(_Event):
    """A walker topples over (forward or backward), lies still, and gets up at the end of the event."""

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        rng, fps, n = self.rng, self.fps, self.n
        self.look = _random_look(rng)
        self.d = _lateral_dir(rng, 0.45)
        self.vw = float(rng.uniform(1.0, 1.4))
        self.phase0 = float(rng.uniform(0, 2 * math.pi))
        self.sign = 1.0 if rng.random() < 0.6 else -1.0
        self.nf = max(2, min(int(0.6 * fps), int(0.3 * n)))
        self.nu = max(2, min(int(0.9 * fps), int(0.35 * n)))

    def items(self, t: int) -> list[Item]:
        x, z = self.p
        psi = math.atan2(self.d[1], self.d[0])
        if t < self.start:
            return self._walk_in(t, self.start, self.p, self.d, self.vw, self.look, self.phase0)
        if t >= self.end:
            return self._walk_away(t, self.end - 1, self.p, self.d, self.vw, self.look, self.phase0)
        k = t - self.start
        half = self.sign * math.pi / 2
        if k < self.nf:
            f = (k + 1) / self.nf
            tilt = half * f * f  # accelerating, like a falling body
            g = _gait(self.phase0, 0.0)
            arms = (0.3 + 1.3 * f, 0.3, 0.2 + 1.5 * f, 0.2, 0.2 + 0.3 * f)
            pose = _Pose(g.phase, g.leg_amp * (1 - f), g.knee, 0.0, 0.2, 0.0, tilt, arms, None)
        elif k < self.n - self.nu:
            pose = _lying_pose(half)
        else:
            f = (k - (self.n - self.nu) + 1) / self.nu
            e = f * f * (3 - 2 * f)
            pose = _getting_up(half * (1 - e), f)
        return [(z, _draw_person, x, z, psi, self.look, pose)]


class _CollisionEvent(_Event):
    """Two people run into each other head on, both fall on their backs, lie there and get up."""

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        rng, fps, n = self.rng, self.fps, self.n
        ux, uz = _lateral_dir(rng, 0.35)
        px, pz = self.p
        self.impact = [(px - 0.32 * ux, pz - 0.32 * uz), (px + 0.32 * ux, pz + 0.32 * uz)]
        self.dirs = [(ux, uz), (-ux, -uz)]
        self.looks = [_random_look(rng), _random_look(rng)]
        self.vw = [float(rng.uniform(1.1, 1.5)) for _ in range(2)]
        vr = [float(rng.uniform(3.8, 5.2)) for _ in range(2)]
        nr = int(np.clip(0.3 * n, 0.8 * fps, 1.5 * fps))
        nf = int(0.5 * fps)
        nu = int(0.9 * fps)
        if nr + nf + nu > n:  # short user-given event: scale the phases down
            sc = n / (nr + nf + nu)
            nr, nf = max(2, int(nr * sc)), max(2, int(nf * sc))
            nu = max(1, n - nr - nf)
        self.nr, self.nf, self.nu = nr, nf, nu
        ramp = max(int(0.25 * fps), 1)
        k = np.arange(nr)
        self.run = []
        for i in range(2):
            blend = np.clip((k + 1) / ramp, 0, 1)
            speed = self.vw[i] + (vr[i] - self.vw[i]) * blend
            togo = np.cumsum(speed[::-1])[::-1] / fps  # distance still to run at each frame
            phase0 = float(rng.uniform(0, 2 * math.pi))
            h = self.looks[i].height
            hz = np.array([_stride_hz(sp, h, b) for sp, b in zip(speed, blend, strict=True)])
            phases = phase0 + np.concatenate([[0.0], np.cumsum(2 * math.pi * hz / fps)[:-1]])
            self.run.append((togo, blend, phases))

    def items(self, t: int) -> list[Item]:
        out: list[Item] = []
        for i in range(2):
            (ix, iz), (dx, dz), look = self.impact[i], self.dirs[i], self.looks[i]
            togo, blend, phases = self.run[i]
            psi = math.atan2(dz, dx)
            start_pos = (ix - dx * togo[0], iz - dz * togo[0])
            k = t - self.start
            rest = (ix - 0.5 * dx, iz - 0.5 * dz)
            if t < self.start:
                out += self._walk_in(t, self.start, start_pos, (dx, dz), self.vw[i], look, float(phases[0]))
            elif k < self.nr:
                x, z = ix - dx * togo[k], iz - dz * togo[k]
                out.append((z, _draw_person, x, z, psi, look, _gait(float(phases[k]), float(blend[k]))))
            elif k < self.nr + self.nf:
                f = (k - self.nr + 1) / self.nf
                x, z = ix - 0.5 * dx * f, iz - 0.5 * dz * f
                pose = _Pose(tilt=-math.pi / 2 * f * f, arms=(1.2 + f, 0.3, 1.0 + 1.2 * f, 0.4, 0.3),
                             legs=(0.3 * f, 0.2, 0.5 * f, 0.3), lean=-0.2 * f)
                out.append((z, _draw_person, x, z, psi, look, pose))
            elif t < self.end - self.nu:
                out.append((rest[1], _draw_person, rest[0], rest[1], psi, look, _lying_pose(-math.pi / 2)))
            elif t < self.end:
                f = (t - (self.end - self.nu) + 1) / self.nu
                e = f * f * (3 - 2 * f)
                pose = _getting_up(-math.pi / 2 * (1 - e), f)
                out.append((rest[1], _draw_person, rest[0], rest[1], psi, look, pose))
            else:
                out += self._walk_away(t, self.end - 1, rest, (-dx, -dz), self.vw[i], look, 0.0)
        return out


class _Fleer:
    """A bystander of an explosion: walks by normally, startles at the blast, runs away for 1.2-2.2 s
    (inside the event), then walks on."""

    def __init__(self, ev: _Event, rng: np.random.Generator) -> None:
        cam, fps = ev.cam, ev.fps
        self.ev = ev
        bx, bz = ev.p
        ang = float(rng.uniform(0, 2 * math.pi))
        dist = float(rng.uniform(2.0, 4.5))
        sz = min(max(bz + 0.6 * dist * math.sin(ang), cam.z_near + 0.8), cam.z_far - 2.0)
        self.spot = (bx + dist * math.cos(ang), sz)
        self.d = _lateral_dir(rng, 0.6)
        self.look = _random_look(rng)
        self.vw = float(rng.uniform(1.0, 1.5))
        self.phase0 = float(rng.uniform(0, 2 * math.pi))
        ex, ez = self.spot[0] - bx, 0.7 * (self.spot[1] - bz)
        norm = math.hypot(ex, ez) or 1.0
        self.e = (ex / norm, ez / norm)  # away from the blast
        delay = int(rng.uniform(0.15, 0.4) * fps)  # startle
        nrun = max(2, min(int(rng.uniform(1.2, 2.2) * fps), ev.n - delay - int(0.2 * fps)))
        vr = float(rng.uniform(4.0, 5.5))
        n = delay + nrun
        ramp_up, ramp_down = max(1, int(0.25 * fps)), max(1, int(0.4 * fps))
        k = np.arange(n) - delay
        blend = np.where(k < 0, 0.0, np.clip(np.minimum((k + 1) / ramp_up, (nrun - k) / ramp_down), 0, 1))
        x, z = self.spot
        ph = self.phase0
        self.track = []
        for i in range(n):
            dx, dz = self.d if k[i] < 0 else self.e
            sp = self.vw + (vr - self.vw) * blend[i]
            self.track.append((x, z, math.atan2(dz, dx), ph, float(blend[i])))
            x, z = x + dx * sp / fps, min(max(z + dz * sp / fps, cam.z_near - 1.0), cam.z_far - 0.5)
            ph += 2 * math.pi * _stride_hz(sp, self.look.height, blend[i]) / fps
        self.last = (x, z)
        self.ph_end = ph

    def items(self, t: int) -> list[Item]:
        ev = self.ev
        if t < ev.start:
            return ev._walk_in(t, ev.start, self.spot, self.d, self.vw, self.look, self.phase0)
        k = t - ev.start
        if k < len(self.track):
            x, z, psi, ph, b = self.track[k]
            if not _visible(ev.cam, x, z):
                return []
            return [(z, _draw_person, x, z, psi, self.look, _gait(ph, b))]
        t_leave = ev.start + len(self.track) - 1
        return ev._walk_away(t, t_leave, self.last, self.e, self.vw, self.look, self.ph_end)


class _ExplosionEvent(_Event):
    """A local fireball that grows in ~0.2 s and lights the ground around it, then flames on the ground,
    rising smoke and debris; bystanders flee. Everything has faded by the end of the event."""

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        rng, fps = self.rng, self.fps
        dur = self.n / fps
        self.R = float(rng.uniform(1.5, 2.4))
        self.tf = float(min(rng.uniform(0.6, 1.0), 0.45 * dur))
        m = 10
        self.puffs = np.stack([
            rng.uniform(0.05, min(0.6, 0.4 * dur), m),  # birth (s)
            rng.uniform(-0.6, 0.6, m) * self.R,  # x offset (m)
            rng.uniform(0.3, 1.3, m) * self.R,  # height (m)
            rng.uniform(0.3, 0.9, m),  # rise speed (m/s)
            rng.uniform(-0.35, 0.35, m),  # drift (m/s)
            rng.uniform(0.45, 0.85, m) * self.R,  # radius (m)
            rng.uniform(0.2, 0.45, m),  # growth (1/s)
            rng.uniform(40, 95, m),  # grey level
            rng.uniform(0.7, 0.95, m),  # opacity
        ], 1)
        nd = 26
        self.debris = np.stack([
            rng.uniform(-6, 6, nd), rng.uniform(-2.5, 2.5, nd),  # lateral and depth speed (m/s)
            rng.uniform(2.5, 9, nd), rng.uniform(25, 70, nd),  # upward speed (m/s), grey level
        ], 1)
        nfl = int(rng.integers(4, 8))  # flames left burning on the ground
        self.flames = np.stack([rng.uniform(-0.8, 0.8, nfl) * self.R, rng.uniform(-0.5, 0.5, nfl) * self.R,
                                rng.uniform(0.4, 0.9, nfl)], 1)
        self.flicker = np.stack([0.6 + _noise1d(rng, self.n, fps, 8.0, 0.4) for _ in range(nfl)], 1)
        self.tex = _smooth_noise(rng, (32, 32), 6)
        self.fleers = [_Fleer(self, rng) for _ in range(int(rng.integers(1, 4)))]

    def items(self, t: int) -> list[Item]:
        out: list[Item] = [it for f in self.fleers for it in f.items(t)]
        if self.start <= t < self.end:
            out.append((self.p[1], self._draw, t - self.start))
        return out

    def _draw(self, frame: np.ndarray, ctx: _Ctx, k: int) -> None:
        cam, fps = ctx.cam, self.fps
        x, z = self.p
        s = cam.f / z
        fx, fy = cam.foot(x, z)
        ts = (k + 1) / fps  # the fireball is already visible on the event's first frame
        dur = self.n / fps
        fade = float(np.clip((dur + 1 / fps - ts) / (0.35 * dur), 0, 1))  # > 0 up to the last event frame
        grow = 1 - math.exp(-ts / 0.07)
        inten = float(np.clip((self.tf - ts) / (0.6 * self.tf), 0, 1))
        lf = ctx.light_at(fx, fy)
        noise = ctx.noise[0]
        # Ground lit by the fire: an additive orange glow on a flat ellipse around the centre.
        if inten > 0:
            rg = 3.0 * self.R * s
            x0, x1 = max(int(fx - rg), 0), min(int(fx + rg) + 1, cam.W)
            sq = _CAM_HEIGHT / z
            y0, y1 = max(int(fy - rg * sq), 0), min(int(fy + rg * sq) + 1, cam.H)
            if x0 < x1 and y0 < y1:
                ddx = (np.arange(x0, x1, dtype=np.float32) - fx)[None, :] / rg
                ddy = (np.arange(y0, y1, dtype=np.float32) - fy)[:, None] / (rg * sq)
                g = np.exp(-3 * (ddx * ddx + ddy * ddy)) * (70 * inten * grow)
                glow = g[..., None] * np.array([1.0, 0.6, 0.25], np.float32)
                patch = frame[y0:y1, x0:x1].astype(np.float32) + glow
                frame[y0:y1, x0:x1] = np.clip(patch, 0, 255).astype(np.uint8)
        # Flames burning on the ground, flickering, dying with the smoke.
        if ts > 0.25 * self.tf:
            fire = np.array([255, 150, 40], np.float32)
            for (ox, oz, hgt), fl in zip(self.flames, self.flicker[k], strict=True):
                zz = z + oz
                sf = cam.f / zz
                gx, gy = cam.foot(x + ox, zz)
                hh = hgt * fl * fade * sf
                _soft_disc(frame, gx, gy - 0.5 * hh, 0.5 * hh, fire, min(1.0, 1.2 * fl) * fade, tex=self.tex,
                           squash=1.8, noise=noise)
        # Smoke puffs (behind the fireball).
        for birth, ox, oy, rise, drift, r0, gr, grey, op in self.puffs:
            age = ts - birth
            if age <= 0:
                continue
            cx = fx + s * (ox + drift * age)
            cy = fy - s * (oy + rise * age)
            r = s * r0 * (1 + gr * age) * min(1.0, 0.4 + age / 0.3)
            warm = float(np.clip(inten * 1.5, 0, 1))
            col = np.array([grey + 60 * warm, grey + 25 * warm, grey], np.float32) * lf * ctx.tint
            shift = int(age * 8) % 16
            opacity = op * min(1.0, age / 0.25) * fade
            _soft_disc(frame, cx, cy, r, col, opacity, tex=np.roll(self.tex, shift, 1), noise=noise)
        # Fireball.
        if inten > 0:
            rf = self.R * s * grow * (1 + 0.25 * ts)
            cy = fy - s * (0.7 * self.R * grow + 0.6 * ts)
            x0, x1 = max(int(fx - rf - 1), 0), min(int(fx + rf + 2), cam.W)
            y0, y1 = max(int(cy - rf - 1), 0), min(int(cy + rf + 2), cam.H)
            if x0 < x1 and y0 < y1 and rf > 0.5:
                ddx = (np.arange(x0, x1, dtype=np.float32) - fx)[None, :]
                ddy = (np.arange(y0, y1, dtype=np.float32) - cy)[:, None]
                q = np.sqrt(ddx * ddx + ddy * ddy) / rf
                n = self.tex.shape[0]
                ix = np.clip((ddx / rf * 0.5 + 0.5) * (n - 1), 0, n - 1).astype(np.intp)
                iy = np.clip((ddy / rf * 0.5 + 0.5 + 0.1 * ts) * (n - 1), 0, n - 1).astype(np.intp)
                tx = self.tex[iy, ix]
                heat = np.clip((1 - q) * 1.4 * (0.4 + 0.9 * tx), 0, 1)[..., None]
                core = np.array([255, 225, 120], np.float32)
                edge = np.array([205, 60, 15], np.float32)
                col = edge + (core - edge) * heat
                a = (np.clip((1 - q * q) * 1.3 + 0.4 * (tx - 0.5), 0, 1) * inten)[..., None]
                patch = frame[y0:y1, x0:x1]
                _store(patch, patch.astype(np.float32) * (1 - a) + col * a, a, noise, y0, x0)
        # Debris: ballistic specks that land and stay until the smoke has gone.
        if fade > 0:
            vx, vz, vy, grey = self.debris.T
            tt = np.minimum(ts, 2 * vy / 9.81)  # time of flight; then they lie on the ground
            h = np.maximum(vy * tt - 0.5 * 9.81 * tt * tt, 0)
            dz = vz * tt
            px = (fx + s * vx * tt).astype(np.intp)
            py = (fy - s * (h + _CAM_HEIGHT * dz / z)).astype(np.intp)
            ok = (px >= 0) & (px < cam.W - 1) & (py >= 0) & (py < cam.H - 1)
            px, py, grey = px[ok], py[ok], grey[ok, None]
            for oy, ox in ((0, 0), (1, 0), (0, 1)) if s > 12 else ((0, 0),):
                frame[py + oy, px + ox] = np.clip(grey + noise[py + oy, px + ox], 0, 255).astype(np.uint8)


_CAR_COLOURS = [(170, 25, 30), (230, 230, 228), (150, 155, 160), (25, 25, 30), (30, 60, 130), (200, 160, 40)]


class _VehicleEvent(_Event):
    """A car crossing the pedestrian plaza fast: it enters at start_frame and has left at end_frame."""

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        rng = self.rng
        self.z = self.p[1]
        self.sign = 1.0 if rng.random() < 0.5 else -1.0
        self.L = float(rng.uniform(3.9, 4.6))
        self.Hc = float(rng.uniform(1.35, 1.55))
        self.col = _jitter(rng, _CAR_COLOURS[rng.integers(len(_CAR_COLOURS))], 0.08)
        hw = self.cam.half_width(self.z)
        self.v = (2 * hw + self.L) * self.fps / self.n  # m/s
        self.x0 = -self.sign * (hw + self.L / 2)

    def items(self, t: int) -> list[Item]:
        if not self.start <= t < self.end:
            return []
        xc = self.x0 + self.sign * self.v * (t - self.start + 0.5) / self.fps
        return [(self.z, self._draw, xc)]

    def _draw(self, frame: np.ndarray, ctx: _Ctx, xc: float) -> None:
        cam, z, L, Hc = ctx.cam, self.z, self.L, self.Hc
        s = cam.f / z
        fx, fy = cam.foot(xc, z)
        lf = ctx.light_at(fx, fy - s)
        col = self.col * lf * ctx.tint
        sq = _CAM_HEIGHT / z
        noise = ctx.noise[0]
        _soft_disc(frame, fx, fy - 0.3 * s * sq, 0.6 * L * s, (0, 0, 0), 0.45, squash=0.9 * sq, noise=noise)

        def X(m: float) -> float:  # metres from the car's centre, positive towards its front
            return fx + self.sign * m * s

        def rect(a: float, b: float, h0: float, h1: float, c: Any) -> None:
            xa, xb = sorted((X(a), X(b)))
            _fill_rect(frame, xa, fy - h1 * s, xb, fy - h0 * s, c, noise=noise)

        rect(-L / 2, L / 2, 0.3, 0.95, col)
        rect(-L / 2 + 0.05, L / 2 - 0.05, 0.95, 0.95 + 0.8 * sq, col * 1.08)  # bonnet/boot seen from above
        rect(-0.35 * L, 0.2 * L, 0.95, Hc, col * 0.95)
        win = np.array([60, 75, 90], np.float32) * lf
        rect(-0.31 * L, -0.07 * L, 1.0, Hc - 0.06, win)
        rect(-0.04 * L, 0.17 * L, 1.0, Hc - 0.06, win)
        rect(L / 2 - 0.12, L / 2, 0.65, 0.8, (250, 245, 210))
        rect(-L / 2, -L / 2 + 0.08, 0.65, 0.8, (200, 30, 30))
        wheels = np.array([[X(-0.32 * L), fy - 0.32 * s], [X(0.32 * L), fy - 0.32 * s]], np.float32)
        n = len(wheels)
        _draw_capsules(frame, np.vstack([wheels, wheels]), np.vstack([wheels, wheels]),
                       np.array([0.32 * s] * n + [0.15 * s] * n, np.float32),
                       np.array([[20, 20, 20]] * n + [[140, 140, 140]] * n, np.float32),
                       np.ones(2 * n, np.float32), noise=noise)


_EVENT_CLASSES: dict[str, type[_Event]] = {
    "run": _RunEvent, "fight": _FightEvent, "fall": _FallEvent, "explosion": _ExplosionEvent,
    "collision": _CollisionEvent, "vehicle": _VehicleEvent,
}


# ----------------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------------


class _Renderer:
    """Frame-by-frame renderer with constant memory (the crowd is simulated as frames are drawn)."""

    def __init__(self, size: tuple[int, int], fps: float, seed: int, events: Sequence[EventSpec]) -> None:
        w, h = (int(v) for v in size)
        ss = np.random.SeedSequence(int(seed))
        s_bg, s_crowd, s_noise = ss.spawn(3)
        self.cam = _Camera(w, h)
        scene = _build_background(self.cam, np.random.default_rng(s_bg))
        self.ctx = scene.ctx
        # Separate streams: the crowd and the noise are the same whether or not there are events.
        self.crowd = _Crowd(self.cam, fps, np.random.default_rng(s_crowd), scene.doors)
        self.noise = _NoiseBank(np.random.default_rng(s_noise), scene.bg)
        self.events = [
            _EVENT_CLASSES[ev.kind](ev, self.cam, fps, np.random.default_rng([int(seed), ev.seed, i]))
            for i, ev in enumerate(events)
        ]
        self.t = 0

    def next(self) -> np.ndarray:
        frame = self.noise.frame(self.ctx)
        items: list[Item] = [(p[1], _draw_person, *p) for p in self.crowd.items()]
        for ev in self.events:
            items.extend(ev.items(self.t))
        items.sort(key=lambda it: -it[0])
        people: list[_Person] = []
        for it in items:
            if it[1] is _draw_person:
                people.append(it[2:])
            else:
                _draw_people(frame, self.ctx, people)
                it[1](frame, self.ctx, *it[2:])
        _draw_people(frame, self.ctx, people)
        self.crowd.step()
        self.t += 1
        return frame


def render_frames(spec: VideoSpec) -> Iterator[np.ndarray]:
    """Yield the spec's frames one at a time (H x W x 3 uint8 RGB); the same spec gives the same frames."""
    r = _Renderer(spec.size, spec.fps, spec.seed, spec.events)
    for _ in range(spec.num_frames):
        yield r.next()


def synthetic_stream(
    num_frames: int | None,
    seed: int = 0,
    events: Sequence[EventSpec] = (),
    *,
    size: tuple[int, int] = (320, 240),
    fps: float = 25,
) -> Iterator[np.ndarray]:
    """A lazy synthetic 'camera': ``num_frames`` frames, or endless with ``None`` (constant memory).

    The arguments are checked at call time (not at the first ``next``), so mistakes surface early.
    """
    length = num_frames if num_frames is not None else max([1, *(e.end_frame for e in events)])
    VideoSpec("stream", length, fps, size, seed, tuple(events), 1 if events else 0)  # validates everything
    return _stream(num_frames, seed, tuple(events), size, fps)


def _stream(num_frames: int | None, seed: int, events: tuple[EventSpec, ...], size: tuple[int, int],
            fps: float) -> Iterator[np.ndarray]:
    r = _Renderer(size, fps, seed, events)
    for _ in range(num_frames) if num_frames is not None else itertools.count():
        yield r.next()


# ----------------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------------

_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}


def _codec() -> str:
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float = 25, *, crf: int = 18) -> int:
    """Encode RGB uint8 frames to ``path`` (H.264 yuv420p, or MPEG-4 Part 2 where PyAV lacks libx264).

    The file appears atomically (written to a temporary file in the same folder, then renamed).
    Returns the number of frames written.
    """
    import av

    path = Path(path)
    fmt = _CONTAINERS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"write_video: {path}: unsupported extension {path.suffix!r}; use one of {sorted(_CONTAINERS)}"
        )
    codec = _codec()
    rate = Fraction(fps).limit_denominator(1001)
    count = 0
    with atomic_open(path, "wb") as fh:
        container = av.open(fh, "w", format=fmt)
        ok = False
        try:
            stream = None
            for frame in frames:
                arr = np.asarray(frame)
                if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
                    raise ValueError(f"write_video: {path}: frame {count} must be H x W x 3 uint8, got "
                                     f"{arr.dtype} {arr.shape}")
                if stream is None:
                    h, w = arr.shape[:2]
                    if h % 2 or w % 2:
                        raise ValueError(f"write_video: {path}: yuv420p needs even dimensions, got {w} x {h}")
                    opts = {"crf": str(crf), "preset": "veryfast"} if codec == "libx264" else {}
                    stream = container.add_stream(codec, rate=rate, options=opts)
                    stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
                    if codec == "mpeg4":
                        stream.bit_rate = int(w * h * float(rate) * 0.25)
                    shape = arr.shape
                elif arr.shape != shape:
                    raise ValueError(
                        f"write_video: {path}: frame {count} is {arr.shape}, frame 0 was {shape}"
                    )
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
                vf.pts = count
                for packet in stream.encode(vf):
                    container.mux(packet)
                count += 1
            if stream is None:
                raise ValueError(f"write_video: {path}: no frames to write")
            for packet in stream.encode():
                container.mux(packet)
            ok = True
        finally:
            try:
                container.close()
            except Exception:
                if ok:
                    raise  # otherwise keep the original error, not the muxer's complaint about it
    return count


def _frame_count(path: Path) -> int:
    """Frames recorded in the container header; -1 if the file cannot be opened."""
    import av

    try:
        with av.open(str(path)) as c:
            return int(c.streams.video[0].frames)
    except Exception:  # noqa: BLE001 - any unreadable file is simply re-encoded
        return -1


# ----------------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------------

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
