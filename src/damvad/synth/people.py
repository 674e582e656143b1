"""People: looks, articulated poses, the vectorised body rasteriser, walkers and the normal crowd."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from damvad.synth.draw import _Camera, _draw_capsules
from damvad.synth.specs import _CAM_HEIGHT, BenignSpec

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
    lift: float = 0.0  # metres the lowest point sits above the ground (a seat, a saddle's pedal)


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


def _pose_joints(J: np.ndarray, h: np.ndarray, tilt: np.ndarray, lift: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tilt bodies (P x 18 x 3) about their feet and put their lowest point on the ground (or ``lift``
    metres above it): (a, b, c)."""
    ct, st = np.cos(tilt)[:, None], np.sin(tilt)[:, None]
    a = J[..., 0] * ct + J[..., 1] * st
    b = J[..., 1] * ct - J[..., 0] * st
    b -= (b.min(1) - 0.024 * h)[:, None]
    if lift is not None and lift.any():
        b += lift[:, None]
    return a, b, J[..., 2]


def _skeleton(h: float, w: float, p: _Pose) -> np.ndarray:
    """Joint positions (18 x 3: forward, up, lateral; metres) of one posed body, feet on the ground."""
    a, b, c = _pose_joints(np.array([_joints(h, w, p)]), np.array([h]), np.array([p.tilt]), np.array([p.lift]))
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
    a, b, c = _pose_joints(J, h, np.array([v[4].tilt for v in vis]), np.array([v[4].lift for v in vis]))
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

    def __init__(self, cam: _Camera, fps: float, rng: np.random.Generator, doors: list[float],
                 plan: Sequence[BenignSpec] = ()) -> None:
        self.cam, self.fps, self.rng, self.doors = cam, fps, rng, doors
        self.density = float(rng.uniform(2.5, 7.0))  # mean number of people in view
        self.rate = self.density / self.MEAN_DWELL_S  # spawns per second (people per spawn ~1.3)
        self.walkers: list[_Walker] = []
        self.pending: list[tuple[int, _Walker]] = []
        self.spells = [b for b in plan if b.kind == "crowd"]  # busy spells: spawn rate x amount
        self.groups = sorted((b for b in plan if b.kind == "group"), key=lambda b: b.start_frame)
        warmup = int(40 * fps)
        self.t = -warmup  # video frame 0 is self.t == 0
        for _ in range(warmup):  # warm up: frame 0 shows a crowd already in the scene
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

    def _group(self, b: BenignSpec) -> None:
        """``b.amount`` people walking through together (a tour, a class): own random stream."""
        rng = np.random.default_rng(b.seed)
        saved, self.rng = self.rng, rng
        try:
            ent, ex = self._sides()
            path = [self._boundary(ent), self._inside(), self._boundary(ex)]
            speed = float(rng.uniform(1.0, 1.4))
            (ax, az), (bx, bz) = path[0], path[1]
            d = math.hypot(bx - ax, bz - az) or 1.0
            ox, oz = -(bz - az) / d, (bx - ax) / d
            for _ in range(max(2, int(b.amount))):
                back, side = float(rng.uniform(0, 3.5)), float(rng.uniform(-1.2, 1.2))
                p = [(x + side * ox, z + side * oz) for x, z in path]  # side by side, trailing in time
                w = self._new(p, speed * float(rng.uniform(0.95, 1.05)))
                self.pending.append((self.t + int(back / speed * self.fps), w))
        finally:
            self.rng = saved

    def step(self) -> None:
        self.t += 1
        rate = self.rate
        for b in self.spells:
            if b.start_frame <= self.t < b.end_frame:
                rate *= b.amount
        cap = 12 if rate == self.rate else 24
        if len(self.walkers) < cap and self.rng.random() < rate / self.fps:
            self._spawn()
        while self.groups and self.groups[0].start_frame <= self.t:
            self._group(self.groups.pop(0))
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
