"""The static scene (plaza, buildings, street furniture, lighting) and the sensor noise."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from damvad.synth.draw import _Camera, _fill_rect, _noise1d, _smooth_noise, _soft_disc
from damvad.synth.people import _Ctx, _jitter
from damvad.synth.specs import _CAM_HEIGHT, BenignSpec

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
    """Plaza, buildings, benches, lamps, trees and bins; drawn once per video (``rng`` drawn in this order)."""
    H, W = cam.H, cam.W
    img = np.zeros((H, W, 3), np.float32)
    ys = np.arange(H, dtype=np.float32)[:, None]
    xs = np.arange(W, dtype=np.float32)[None, :]
    y_base = cam.yh + cam.f * _CAM_HEIGHT / cam.z_wall
    _paint_sky_and_ground(img, cam, rng, ys, xs, y_base)
    doors = _paint_buildings(img, cam, rng, y_base)
    _paint_street_furniture(img, cam, rng)
    bg, ctx = _light(img, cam, rng, ys, xs)
    return _Scene(bg, ctx, doors)


def _paint_sky_and_ground(img: np.ndarray, cam: _Camera, rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray,
                          y_base: float) -> None:
    """The sky, the paved plaza (a walkway, lawns) below the building bases, and the sidewalk strip."""
    H, W = cam.H, cam.W
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


def _paint_buildings(img: np.ndarray, cam: _Camera, rng: np.random.Generator, y_base: float) -> list[float]:
    """A row of facades with windows, shop windows and doors; the X positions (metres) of the doors people
    come out of (at least one)."""
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
    return doors


def _paint_street_furniture(img: np.ndarray, cam: _Camera, rng: np.random.Generator) -> None:
    """Benches, lamps, trees (at the sides) and bins, placed at random and drawn far to near."""
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


def _light(img: np.ndarray, cam: _Camera, rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray
           ) -> tuple[np.ndarray, _Ctx]:
    """The scene's lighting (brightness, left-right and top-bottom gradients, vignetting, colour balance)
    applied to ``img``: the background image, and the drawing context with that lighting and the shadows."""
    H, W = cam.H, cam.W
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
    return bg, ctx


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


class _BenignEffects:
    """The global benign changes of a video (lighting drift and changes, camera shake), frame by frame.

    Applied after everything is drawn, identically with or without events: a function of the spec's
    benign plan only. (Crowd spells and groups are handled by the crowd itself.)
    """

    def __init__(self, plan: Sequence[BenignSpec], fps: float, height: int) -> None:
        self.plan = [b for b in plan if b.kind in ("drift", "light", "shake")]
        self.fps = fps
        self.scale = height / 240.0
        self.drift = []
        self.shake: list[tuple[BenignSpec, np.ndarray, np.ndarray]] = []
        for b in self.plan:
            rng = np.random.default_rng(b.seed)
            if b.kind == "drift":
                period = float(rng.uniform(20.0, 90.0)) * fps
                self.drift.append((b.amount, period, float(rng.uniform(0, 2 * math.pi))))
            elif b.kind == "shake":
                n = b.end_frame - b.start_frame
                amp = b.amount * self.scale
                self.shake.append((b, _noise1d(rng, n, fps, 7.0, amp), _noise1d(rng, n, fps, 7.0, 0.6 * amp)))

    def gain(self, t: int) -> float:
        g = 1.0
        for amount, period, phase in self.drift:
            g += amount * math.sin(2 * math.pi * t / period + phase)
        for b in self.plan:
            if b.kind == "light" and b.start_frame <= t < b.end_frame:
                n = b.end_frame - b.start_frame
                ramp = max(1.0, 0.25 * n)
                k = t - b.start_frame
                x = min(1.0, (k + 1) / ramp, (n - k) / ramp)
                g += b.amount * x * x * (3 - 2 * x)  # smoothstep ramps in and out
        return g

    def offset(self, t: int) -> tuple[int, int]:
        dx = dy = 0.0
        for b, sx, sy in self.shake:
            if b.start_frame <= t < b.end_frame:
                dx += sx[t - b.start_frame]
                dy += sy[t - b.start_frame]
        return int(round(dx)), int(round(dy))

    def apply(self, frame: np.ndarray, t: int) -> np.ndarray:
        g = self.gain(t)
        if abs(g - 1.0) > 1e-4:
            frame = np.clip(frame.astype(np.float32) * g + 0.5, 0, 255).astype(np.uint8)
        dx, dy = self.offset(t)
        if dx or dy:  # the camera moved: the picture shifts, its border repeats
            h, w = frame.shape[:2]
            ys = np.clip(np.arange(h) - dy, 0, h - 1)
            xs = np.clip(np.arange(w) - dx, 0, w - 1)
            frame = frame[ys][:, xs]
        return frame
