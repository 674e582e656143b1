"""Camera geometry and the anti-aliased drawing primitives every other part paints with."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from damvad.synth.specs import _CAM_HEIGHT, _HORIZON, _Z_FAR, _Z_WALL

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

    def crop_half_width(self, z: float) -> float:
        """Half the width (metres, at depth z) that I3D's centre crop sees: 224 of the frame resized to a
        short side of 256."""
        return self.half_width(z) * min(1.0, 224 / 256 * min(self.W, self.H) / self.W)

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
