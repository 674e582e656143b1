"""Anomalous events: each owns its actors for the whole video (they walk in and away like anyone)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from damvad.synth.draw import _Camera, _draw_capsules, _fill_rect, _noise1d, _smooth_noise, _soft_disc, _store
from damvad.synth.people import Item, _Ctx, _draw_person, _gait, _jitter, _Look, _Pose, _random_look, _stride_hz
from damvad.synth.specs import _CAM_HEIGHT, EventSpec


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


class _CropVehicleEvent(_VehicleEvent):
    """synth-ucf-v2's vehicle: ``[start_frame, end_frame)`` is the time the car overlaps the I3D centre crop;
    it is drawn whenever it is in the picture, so it enters the frame before its interval and leaves after."""

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        reach = self.cam.crop_half_width(self.z) + self.L / 2
        self.v = 2 * reach * self.fps / self.n  # m/s
        self.x0 = -self.sign * reach
        self.limit = self.cam.half_width(self.z) + self.L / 2

    def items(self, t: int) -> list[Item]:
        xc = self.x0 + self.sign * self.v * (t - self.start + 0.5) / self.fps
        return [(self.z, self._draw, xc)] if abs(xc) < self.limit else []


_EVENT_CLASSES: dict[str, type[_Event]] = {
    "run": _RunEvent, "fight": _FightEvent, "fall": _FallEvent, "explosion": _ExplosionEvent,
    "collision": _CollisionEvent, "vehicle": _VehicleEvent,
}

