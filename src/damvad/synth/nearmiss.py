"""Near misses (synth-ucf-v2): normal activity that moves or changes the picture like an event does.

A jogger or a cyclist (vs run), a hugging or a dancing pair (vs fight), someone sitting down and maybe
lying on a bench (vs fall), a slow van (vs vehicle), a flickering lamp or steam from a vent (vs
explosion); camera shake is drawn by the scene's benign effects. They are there so that a detector of
*change* is fooled where a detector of *meaning* is not. Each comes from a :class:`BenignSpec` (its
interval, amount and seed, drawn from the video's seed alone), is placed inside the I3D centre crop
like the events, and is never in the ground truth.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from damvad.synth.draw import _Camera, _draw_capsules, _fill_rect, _noise1d, _smooth_noise, _soft_disc
from damvad.synth.events import _CAR_COLOURS, _Event, _lateral_dir, _visible
from damvad.synth.people import (
    J_HIPL,
    Item,
    _Ctx,
    _draw_person,
    _gait,
    _jitter,
    _Pose,
    _random_look,
    _skeleton,
    _stride_hz,
)
from damvad.synth.specs import _CAM_HEIGHT, _HORIZON, BenignSpec


class _Episode(NamedTuple):
    """What :class:`_Event` reads of a spec: the interval and the ground point (fractions of the frame)."""

    start_frame: int
    end_frame: int
    position: tuple[float, float]


class _NearMiss(_Event):
    """Base: placed at a random point of the centre crop at ``depth`` metres, from the episode's own seed."""

    depth: tuple[float, float] = (8.0, 14.0)

    def __init__(self, b: BenignSpec, cam: _Camera, fps: float, rng: np.random.Generator) -> None:
        z = float(rng.uniform(*self.depth))
        u = float(rng.uniform(0.35, 0.65))
        super().__init__(_Episode(b.start_frame, b.end_frame, (u, _HORIZON + _CAM_HEIGHT / z)), cam, fps, rng)
        self.amount = b.amount
        self.mid = 0.5 * (self.start + self.end)


def _clamp_z(cam: _Camera, z: float) -> float:
    return min(max(z, cam.z_near - 1.0), cam.z_far - 0.5)


class _Passer(_NearMiss):
    """Someone crossing the picture in a straight line at ``amount`` m/s, in the middle of the crop at
    the episode's midpoint: drawn whenever in the picture."""

    blend_range = (0.5, 0.7)  # jogging: between a walk (0) and a sprint (1)

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        rng = self.rng
        self.look = _random_look(rng)
        self.d = _lateral_dir(rng, 0.3)
        self.psi = math.atan2(self.d[1], self.d[0])
        self.blend = float(rng.uniform(*self.blend_range))
        self.phase0 = float(rng.uniform(0, 2 * math.pi))

    def where(self, t: int) -> tuple[float, float] | None:
        dist = self.amount * (t - self.mid) / self.fps
        x, z = self.p[0] + self.d[0] * dist, _clamp_z(self.cam, self.p[1] + self.d[1] * dist)
        return (x, z) if _visible(self.cam, x, z) else None

    def items(self, t: int) -> list[Item]:
        at = self.where(t)
        if at is None:
            return []
        x, z = at
        hz = _stride_hz(self.amount, self.look.height, self.blend)
        phase = self.phase0 + 2 * math.pi * hz * (t - self.mid) / self.fps
        return [(z, _draw_person, x, z, self.psi, self.look, _gait(phase, self.blend))]


class _Jogger(_Passer):
    """A jogger: 2.3-3.4 m/s in a straight line (a run event sprints at 4.2-6 m/s and weaves)."""


# A bicycle in its own frame (forward, up; metres): hubs, crank, saddle, handlebar.
_REAR, _FRONT, _CRANK = (-0.52, 0.34), (0.52, 0.34), (0.0, 0.3)
_SADDLE, _BAR, _HEAD = (-0.2, 0.95), (0.45, 1.02), (0.42, 0.86)
_TUBES = ((_REAR, _CRANK), (_CRANK, _SADDLE), (_SADDLE, _REAR), (_CRANK, _HEAD), (_SADDLE, _HEAD), (_HEAD, _FRONT),
          (_HEAD, _BAR))


class _Cyclist(_Passer):
    """A cyclist: 3.5-6 m/s in a straight line, pedalling, leaning to the handlebar."""

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        self.frame_col = _jitter(self.rng, _CAR_COLOURS[int(self.rng.integers(len(_CAR_COLOURS)))], 0.1)

    def items(self, t: int) -> list[Item]:
        at = self.where(t)
        if at is None:
            return []
        x, z = at
        crank = self.phase0 + 2 * math.pi * 1.2 * (t - self.mid) / self.fps  # ~70 rpm
        c, s = math.cos(crank), math.sin(crank)
        pose = _Pose(lean=0.55, arms=(1.15, 0.35, 1.15, 0.35, 0.1),
                     legs=(1.05 + 0.35 * s, 1.35 + 0.45 * c, 1.05 - 0.35 * s, 1.35 - 0.45 * c))
        hip = _skeleton(self.look.height, self.look.width, pose)[J_HIPL, 1]  # the hip's height with no lift
        pose = pose._replace(lift=max(0.0, _SADDLE[1] - hip))
        fwd = _SADDLE[0]
        px, pz = x + fwd * math.cos(self.psi), _clamp_z(self.cam, z + fwd * math.sin(self.psi))
        return [(z + 0.01, self._draw_bike, x, z), (pz, _draw_person, px, pz, self.psi, self.look, pose)]

    def _draw_bike(self, frame: np.ndarray, ctx: _Ctx, x: float, z: float) -> None:
        cam = ctx.cam
        s = cam.f / z
        fx, fy = cam.foot(x, z)
        cp, sp = math.cos(self.psi), math.sin(self.psi)

        def project(a: float, b: float) -> tuple[float, float]:
            return fx + s * a * cp, fy - s * (b + _CAM_HEIGHT * a * sp / z)

        ring = np.linspace(0, 2 * math.pi, 13)
        p0, p1 = [], []
        for hub in (_REAR, _FRONT):
            pts = [project(hub[0] + 0.34 * math.cos(q), hub[1] + 0.34 * math.sin(q)) for q in ring]
            p0 += pts[:-1]
            p1 += pts[1:]
        tyres = len(p0)
        for a, b in _TUBES:
            p0.append(project(*a))
            p1.append(project(*b))
        n = len(p0)
        radius = np.array([0.03 * s] * tyres + [0.022 * s] * (n - tyres), np.float32)
        col = np.array([[25, 25, 25]] * tyres + [self.frame_col * ctx.light_at(fx, fy)] * (n - tyres), np.float32)
        _draw_capsules(frame, np.array(p0, np.float32), np.array(p1, np.float32), radius, col,
                       np.ones(n, np.float32), noise=ctx.noise[0])


class _Pair(_NearMiss):
    """Two people walk in, meet face to face at ``sep`` metres and do something for the episode, then part
    (the structure of the fight event, with a gentle activity)."""

    sep = (0.35, 0.45)

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        rng = self.rng
        ux, uz = _lateral_dir(rng, 0.45)
        sep = float(rng.uniform(*self.sep))
        px, pz = self.p
        self.spots = [(px - ux * sep / 2, pz - uz * sep / 2), (px + ux * sep / 2, pz + uz * sep / 2)]
        self.dirs = [(ux, uz), (-ux, -uz)]
        self.looks = [_random_look(rng), _random_look(rng)]
        self.vw = [float(rng.uniform(1.0, 1.4)) for _ in range(2)]
        self.phase0 = [float(rng.uniform(0, 2 * math.pi)) for _ in range(2)]
        self.meet = int(rng.uniform(0.5, 1.5) * self.fps)
        self.sway = _noise1d(rng, self.n, self.fps, 0.8, 0.12)

    def pose(self, i: int, k: int) -> tuple[float, float, float, _Pose]:  # pragma: no cover - overridden
        """(forward offset, lateral offset, heading change, pose) of person i at episode frame k."""
        raise NotImplementedError

    def items(self, t: int) -> list[Item]:
        out: list[Item] = []
        for i in range(2):
            spot, d, look = self.spots[i], self.dirs[i], self.looks[i]
            psi = math.atan2(d[1], d[0])
            if t < self.start - self.meet:
                out += self._walk_in(t, self.start - self.meet, spot, d, self.vw[i], look, self.phase0[i])
            elif t < self.start:
                out.append((spot[1], _draw_person, spot[0], spot[1], psi, look, _Pose(arms=(0.1, 0.3, 0.1, 0.3, 0.1))))
            elif t < self.end:
                du, dp, dpsi, pose = self.pose(i, t - self.start)
                x = spot[0] + d[0] * du - d[1] * dp
                z = spot[1] + d[1] * du + d[0] * dp
                out.append((z, _draw_person, x, z, psi + dpsi, look, pose))
            else:
                out += self._walk_away(t, self.end - 1, spot, (-d[0], -d[1]), self.vw[i], look, self.phase0[i])
        return out


class _Hug(_Pair):
    """A hugging pair: arms around each other, swaying slowly (a fight strikes several times a second)."""

    def pose(self, i: int, k: int) -> tuple[float, float, float, _Pose]:
        ramp = min(1.0, (k + 1) / (0.5 * self.fps), (self.n - k) / (0.5 * self.fps))
        arms = (0.3 + 1.0 * ramp, 0.3 + 0.9 * ramp, 0.3 + 1.05 * ramp, 0.3 + 0.8 * ramp, 0.1 + 0.4 * ramp)
        return 0.08 * ramp, 0.0, float(self.sway[k]), _Pose(lean=0.12 * ramp, arms=arms)


class _Dance(_Pair):
    """A dancing pair at arm's length: steps, bounces and arm waves on a beat of ``amount`` Hz."""

    sep = (0.7, 0.95)

    def pose(self, i: int, k: int) -> tuple[float, float, float, _Pose]:
        beat = 2 * math.pi * self.amount * k / self.fps
        side = 1.0 if i == 0 else -1.0  # partners mirror each other
        sway = math.sin(beat / 2)
        arms = (0.9 + 0.7 * math.sin(beat + 0.5 * i), 0.6 + 0.4 * math.cos(beat),
                0.9 + 0.7 * math.sin(beat + math.pi + 0.5 * i), 0.6 - 0.4 * math.cos(beat),
                0.35 + 0.25 * math.sin(beat / 2))
        bend = 0.25 + 0.2 * abs(math.sin(beat))
        legs = (0.15 * sway, bend, -0.15 * sway, bend)
        return 0.0, 0.18 * side * sway, 0.35 * math.sin(beat / 4), _Pose(lean=0.05, arms=arms, legs=legs)


def _draw_bench(frame: np.ndarray, ctx: _Ctx, x: float, z: float, wood: np.ndarray) -> None:
    """A bench running across the picture, its seat 0.45 m high (the scene's benches, drawn per video)."""
    cam = ctx.cam
    s = cam.f / z
    fx, fy = cam.foot(x, z)
    sq = _CAM_HEIGHT / z
    noise = ctx.noise[0]
    col = wood * ctx.light_at(fx, fy - 0.5 * s)
    _soft_disc(frame, fx, fy, 1.2 * s, (0, 0, 0), 0.3, squash=sq, noise=noise)
    for lx in (-0.9, 0.8):
        _fill_rect(frame, fx + s * lx, fy - s * 0.45, fx + s * (lx + 0.1), fy, col * 0.5, noise=noise)
    _fill_rect(frame, fx - s * 1.05, fy - s * (0.48 + 0.4 * sq), fx + s * 1.05, fy - s * 0.4, col, noise=noise)
    back = 0.4 * sq
    _fill_rect(frame, fx - s * 1.05, fy - s * (0.95 + back), fx + s * 1.05, fy - s * (0.6 + back), col * 0.85,
               noise=noise)


_SIT = _Pose(lean=-0.1, arms=(0.3, 0.6, 0.3, 0.6, 0.15), legs=(1.5, 1.5, 1.45, 1.45))
_SEAT = 0.45


class _Bench(_NearMiss):
    """Someone walks to a bench (in the picture for the whole video), sits down and, if ``amount`` >= 0.5,
    lies down on it for the second half, then gets up and walks on (a fall ends lying on the ground)."""

    depth = (8.0, 12.5)

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        rng = self.rng
        self.look = _random_look(rng)
        self.d = _lateral_dir(rng, 0.3)
        self.vw = float(rng.uniform(0.9, 1.3))
        self.phase0 = float(rng.uniform(0, 2 * math.pi))
        self.wood = _jitter(rng, (120, 80, 50), 0.15)
        self.lie = self.amount >= 0.5
        self.side = 1.0 if rng.random() < 0.5 else -1.0
        sit = _skeleton(self.look.height, self.look.width, _SIT)
        self.sit_lift = max(0.0, _SEAT - float(sit[:, 1].min()) + 0.1)

    def items(self, t: int) -> list[Item]:
        x, z = self.p
        out: list[Item] = [(z + 0.3, _draw_bench, x, z + 0.3, self.wood)]
        if t < self.start:
            return out + self._walk_in(t, self.start, self.p, self.d, self.vw, self.look, self.phase0)
        if t >= self.end:
            return out + self._walk_away(t, self.end - 1, self.p, self.d, self.vw, self.look, self.phase0)
        k, n, fps = t - self.start, self.n, self.fps
        edge = min(1.0, (k + 1) / (0.6 * fps), (n - k) / (0.6 * fps))  # sitting down / standing up
        pose = _Pose(lean=_SIT.lean * edge, arms=_SIT.arms, legs=tuple(v * edge for v in _SIT.legs),  # type: ignore[arg-type]
                     lift=self.sit_lift * edge)
        psi = 0.0  # in profile, along the bench
        lying = 0.0
        if self.lie:
            a, b = 0.35 * n, 0.85 * n  # lies down after a while, sits up again before leaving
            lying = float(np.clip(min((k - a) / (0.8 * fps), (b - k) / (0.8 * fps)), 0, 1))
        if lying > 0:
            tilt = self.side * math.pi / 2 * lying
            bent = 0.3 * (1 - lying)
            pose = _Pose(tilt=tilt, arms=(0.2, 0.4, 0.2, 0.4, 0.2), legs=(bent, 0.4, bent, 0.4),
                         lift=_SEAT * lying + self.sit_lift * (1 - lying))
        return out + [(z, _draw_person, x, z, psi, self.look, pose)]


_VAN_COLOURS = [(235, 235, 232), (200, 200, 205), (170, 175, 180), (60, 90, 140)]


class _Van(_NearMiss):
    """A delivery van crossing the plaza slowly (``amount`` 1.2-3 m/s; the vehicle event speeds)."""

    depth = (10.0, 17.0)

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        rng = self.rng
        self.sign = 1.0 if rng.random() < 0.5 else -1.0
        self.L = float(rng.uniform(4.8, 6.0))
        self.Hc = float(rng.uniform(2.2, 2.6))
        self.col = _jitter(rng, _VAN_COLOURS[rng.integers(len(_VAN_COLOURS))], 0.05)
        self.limit = self.cam.half_width(self.p[1]) + self.L / 2

    def items(self, t: int) -> list[Item]:
        xc = self.p[0] + self.sign * self.amount * (t - self.mid) / self.fps
        return [(self.p[1], self._draw, xc)] if abs(xc) < self.limit else []

    def _draw(self, frame: np.ndarray, ctx: _Ctx, xc: float) -> None:
        cam, z, L, Hc = ctx.cam, self.p[1], self.L, self.Hc
        s = cam.f / z
        fx, fy = cam.foot(xc, z)
        lf = ctx.light_at(fx, fy - s)
        col = self.col * lf * ctx.tint
        sq = _CAM_HEIGHT / z
        noise = ctx.noise[0]
        _soft_disc(frame, fx, fy - 0.3 * s * sq, 0.6 * L * s, (0, 0, 0), 0.45, squash=0.9 * sq, noise=noise)

        def rect(a: float, b: float, h0: float, h1: float, c: Any) -> None:
            xa, xb = sorted((fx + self.sign * a * s, fx + self.sign * b * s))
            _fill_rect(frame, xa, fy - h1 * s, xb, fy - h0 * s, c, noise=noise)

        rect(-L / 2, L / 2 - 0.9, 0.3, Hc, col)  # the box
        rect(-L / 2, L / 2 - 0.9, Hc, Hc + 0.6 * sq, col * 1.06)  # its roof seen from above
        rect(L / 2 - 0.9, L / 2, 0.3, 0.62 * Hc, col * 0.95)  # the cab
        rect(L / 2 - 0.75, L / 2 - 0.1, 0.62 * Hc * 0.7, 0.6 * Hc, np.array([60, 75, 90], np.float32) * lf)
        rect(L / 2 - 0.1, L / 2, 0.55, 0.7, (250, 245, 210))
        for m in (-0.3 * L, 0.3 * L):
            _soft_disc(frame, fx + self.sign * m * s, fy - 0.32 * s, 0.32 * s, (20, 20, 20), 1.0, hard=True,
                       noise=noise)


class _Flicker(_NearMiss):
    """A street lamp inside the crop, lit all video, that flickers on and off during the episode and
    lights the ground around it (an explosion's glow, without fire, smoke or anyone running)."""

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        rng, fps = self.rng, self.fps
        k, on, state = 0, [], True
        while k < self.n:  # irregular on/off spells of 40-250 ms
            length = max(1, int(rng.uniform(0.04, 0.25) * fps))
            on += [state] * length
            state = not state if rng.random() < 0.85 else state
            k += length
        self.on = np.array(on[: self.n], bool)
        self.metal = _jitter(rng, (55, 60, 58), 0.1)

    def items(self, t: int) -> list[Item]:
        lit = 0.35 if not self.start <= t < self.end else (1.0 if self.on[t - self.start] else 0.0)
        return [(self.p[1], self._draw, lit)]

    def _draw(self, frame: np.ndarray, ctx: _Ctx, lit: float) -> None:
        cam = ctx.cam
        x, z = self.p
        s = cam.f / z
        fx, fy = cam.foot(x, z)
        noise = ctx.noise[0]
        _fill_rect(frame, fx - s * 0.07, fy - s * 4.2, fx + s * 0.07, fy, self.metal, noise=noise)
        _fill_rect(frame, fx - s * 0.3, fy - s * 4.4, fx + s * 0.3, fy - s * 4.15, self.metal * 0.8, noise=noise)
        if lit <= 0:
            _fill_rect(frame, fx - s * 0.2, fy - s * 4.17, fx + s * 0.2, fy - s * 4.1, (90, 90, 80), noise=noise)
            return
        glow = 80.0 * self.amount * lit
        rg = 3.0 * s
        sq = _CAM_HEIGHT / z
        x0, x1 = max(int(fx - rg), 0), min(int(fx + rg) + 1, cam.W)
        y0, y1 = max(int(fy - rg * sq), 0), min(int(fy + rg * sq) + 1, cam.H)
        if x0 < x1 and y0 < y1:
            ddx = (np.arange(x0, x1, dtype=np.float32) - fx)[None, :] / rg
            ddy = (np.arange(y0, y1, dtype=np.float32) - fy)[:, None] / (rg * sq)
            g = np.exp(-3 * (ddx * ddx + ddy * ddy)) * glow
            patch = frame[y0:y1, x0:x1].astype(np.float32) + g[..., None] * np.array([1.0, 0.9, 0.65], np.float32)
            frame[y0:y1, x0:x1] = np.clip(patch, 0, 255).astype(np.uint8)
        _soft_disc(frame, fx, fy - s * 4.1, 1.2 * s, (255, 240, 190), 0.55 * lit * self.amount, noise=noise)
        _fill_rect(frame, fx - s * 0.2, fy - s * 4.17, fx + s * 0.2, fy - s * 4.1, (255, 250, 225), noise=noise)


class _Steam(_NearMiss):
    """White steam rising from a vent in the ground (smoke without a fireball, debris or fleeing people)."""

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        rng, fps = self.rng, self.fps
        m = max(3, int(self.n / fps * rng.uniform(4, 8)))
        self.puffs = np.stack([
            rng.uniform(0, self.n / fps, m),  # birth (s into the episode)
            rng.uniform(-0.25, 0.25, m),  # x offset (m)
            rng.uniform(0.5, 1.1, m),  # rise speed (m/s)
            rng.uniform(-0.3, 0.3, m),  # drift (m/s)
            rng.uniform(0.25, 0.45, m),  # radius at birth (m)
            rng.uniform(0.3, 0.6, m),  # growth (1/s)
            rng.uniform(195, 240, m),  # grey level
            rng.uniform(1.8, 3.0, m),  # life (s)
        ], 1)
        self.tex = _smooth_noise(rng, (32, 32), 5)

    def items(self, t: int) -> list[Item]:
        return [(self.p[1], self._draw, (t - self.start) / self.fps)]

    def _draw(self, frame: np.ndarray, ctx: _Ctx, ts: float) -> None:
        cam = ctx.cam
        x, z = self.p
        s = cam.f / z
        fx, fy = cam.foot(x, z)
        noise = ctx.noise[0]
        _soft_disc(frame, fx, fy, 0.45 * s, (40, 40, 42), 0.9, squash=_CAM_HEIGHT / z, hard=True, noise=noise)
        lf = ctx.light_at(fx, fy)
        for birth, ox, rise, drift, r0, grow, grey, life in self.puffs:
            age = ts - birth
            if not 0 < age < life:
                continue
            op = 0.75 * self.amount * min(1.0, age / 0.3) * (1 - age / life)
            col = np.array([grey, grey, grey + 5], np.float32) * lf * ctx.tint
            r = s * r0 * (1 + grow * age)
            _soft_disc(frame, fx + s * (ox + drift * age), fy - s * (0.2 + rise * age), r, col, op,
                       tex=np.roll(self.tex, int(age * 6) % 16, 1), noise=noise)


NEAR_MISS_CLASSES: dict[str, type[_NearMiss]] = {
    "jogger": _Jogger, "cyclist": _Cyclist, "hug": _Hug, "dance": _Dance, "bench": _Bench, "van": _Van,
    "flicker": _Flicker, "steam": _Steam,
}  # "shake" is a global effect: damvad.synth.scene._BenignEffects
