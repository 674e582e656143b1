"""Specs of synthetic videos: events, videos, and the random draw of a video's spec."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

EVENT_KINDS: tuple[str, ...] = ("run", "fight", "fall", "explosion", "collision", "vehicle")
# Near misses (synth-ucf-v2): normal activity that looks or changes like an event -- a jogger or a cyclist
# (vs run), a hugging or dancing pair (vs fight), someone sitting or lying on a bench (vs fall), a slow
# van (vs vehicle), a flickering lamp or steam from a vent (vs explosion), camera shake. Never anomalous.
NEAR_MISS_KINDS: tuple[str, ...] = ("jogger", "cyclist", "hug", "dance", "bench", "van", "flicker", "steam", "shake")
BENIGN_KINDS: tuple[str, ...] = ("drift", "light", "shake", "crowd", "group", *NEAR_MISS_KINDS[:-1])
# Bump when rendering changes, so that generate_dataset() never reuses videos drawn by older code.
SYNTH_FORMAT = 2  # 2: benign changes, log-uniform durations, deterministic encoding

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
class BenignSpec:
    """A benign (normal) change of the scene: not an anomaly, never in the ground truth.

    ``kind``: ``drift`` (slow lighting drift over the whole video, ``amount`` = relative amplitude),
    ``light`` (a lighting change with smooth ramps: relative gain change, signed), ``shake`` (camera
    shake: amplitude in pixels at 240 px height), ``crowd`` (a busy spell: spawn-rate multiplier) or
    ``group`` (``amount`` people walking through together, entering at ``start_frame``).
    """

    kind: str
    start_frame: int
    end_frame: int
    amount: float
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in BENIGN_KINDS:
            raise ValueError(f"BenignSpec: unknown kind {self.kind!r}; expected one of {BENIGN_KINDS}")
        object.__setattr__(self, "start_frame", int(self.start_frame))
        object.__setattr__(self, "end_frame", int(self.end_frame))
        object.__setattr__(self, "amount", float(self.amount))
        object.__setattr__(self, "seed", int(self.seed))
        if self.start_frame < 0 or self.end_frame <= self.start_frame:
            raise ValueError(f"BenignSpec {self.kind}: need 0 <= start_frame < end_frame, got "
                             f"[{self.start_frame}, {self.end_frame})")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "start_frame": self.start_frame, "end_frame": self.end_frame,
                "amount": self.amount, "seed": self.seed}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BenignSpec:
        return cls(d["kind"], d["start_frame"], d["end_frame"], d["amount"], d.get("seed", 0))


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
    benign: tuple[BenignSpec, ...] = field(default_factory=tuple)  # normal changes, see draw_benign
    # A camera shared by several videos (synth-ucf-v2): its scene (background, lighting, doors) comes from
    # scene_seed, the rest (crowd, noise, events) from seed. None: the scene comes from seed (v1).
    scene_seed: int | None = None
    camera: str = ""  # the camera's name, recorded for reports (seen vs unseen cameras)
    # Frames are labelled only while the event is inside the I3D centre crop (the vehicle enters the
    # picture before its interval and leaves it after); False: v1's vehicle, labelled from entering the frame.
    crop_labels: bool = False

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
        if self.scene_seed is not None:
            object.__setattr__(self, "scene_seed", int(self.scene_seed))
        object.__setattr__(self, "events", tuple(self.events))
        object.__setattr__(self, "benign", tuple(self.benign))
        for b in self.benign:
            if not isinstance(b, BenignSpec) or b.end_frame > self.num_frames:
                raise ValueError(f"{where}: benign changes must be BenignSpec inside the video, got {b!r}")
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
        if self.benign:
            d["benign"] = [b.to_dict() for b in self.benign]
        if self.scene_seed is not None:  # v2 fields only where set: a v1 spec's dict is unchanged
            d.update(scene_seed=self.scene_seed, camera=self.camera)
        if self.crop_labels:
            d["crop_labels"] = True
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
            benign=tuple(BenignSpec.from_dict(b) for b in d.get("benign", [])),
            scene_seed=d.get("scene_seed"),
            camera=d.get("camera", ""),
            crop_labels=bool(d.get("crop_labels", False)),
        )


def min_anomalous_frames(fps: float = 25) -> int:
    """Shortest anomalous video make_video_spec accepts: 1.5 s of normal start, a 1.5 s event, 0.5 s after."""
    ceil = math.ceil
    return int(ceil(_MIN_START_S * fps)) + int(ceil(1.5 * fps)) + int(ceil(_END_MARGIN_S * fps))


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


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
    p_more_events: float = 0.35,
    durations: Mapping[str, tuple[float, float]] | None = None,
    max_event_fraction: float = 1.0,
    benign: bool = False,
    event_kinds: Sequence[str] | None = None,
    depths: Mapping[str, tuple[float, float]] | None = None,
    near_miss: Sequence[str] = (),
    benign_kinds: Sequence[str] | None = None,
    scene_seed: int | None = None,
    camera: str = "",
    crop_labels: bool = False,
    benign_seed: int | None = None,
) -> VideoSpec:
    """A random spec; anomalous videos get 1 to ``max_events`` non-overlapping events, never in the first 1.5 s.

    Each further event is added with probability ``p_more_events``. Durations are drawn log-uniformly
    from ``durations[kind]`` seconds (default: 1.5-5 s per kind), then shrunk (never below 1.5 s) until
    they fit and cover at most ``max_event_fraction`` of the video. ``kind`` forces the kind of the first
    event (``generate_dataset`` uses it to cover every kind). Events are placed at random times, in the
    central 40 % of the width (inside the I3D centre crop) at 6.5-18 m. ``benign`` adds the benign changes
    of :func:`draw_benign` (drawn from the video's seed alone, so they never depend on the label).

    synth-ucf-v2 options: ``event_kinds`` gives the exact kinds of the events (one event each; the
    dataset balances kinds over all events of a split), ``depths`` replaces the depth range per kind,
    ``near_miss`` adds one near-miss episode of each listed kind (timing from the seed alone, see
    :func:`draw_near_misses`), ``benign_kinds`` restricts draw_benign's episodes, ``benign_seed`` draws the
    benign changes and near misses instead of the video's seed (a dataset gives one to a normal and an
    anomalous video alike), ``scene_seed`` / ``camera`` / ``crop_labels`` go to the :class:`VideoSpec`.
    """
    label_i = {"normal": 0, "anomalous": 1}.get(label, label)  # type: ignore[call-overload]
    seed = int(rng.integers(0, 2**31 - 1))
    table = dict(_DURATION_S if durations is None else durations)
    depth_table = dict(_EVENT_DEPTH if depths is None else depths)
    plan_seed = seed if benign_seed is None else int(benign_seed)
    plan = draw_benign(num_frames, fps, plan_seed, benign_kinds) if benign else ()
    if near_miss:
        plan = tuple(sorted((*plan, *draw_near_misses(near_miss, num_frames, fps, plan_seed)),
                            key=lambda b: (b.start_frame, b.kind)))
    extra = {"scene_seed": scene_seed, "camera": camera, "crop_labels": crop_labels}
    if label_i != 1:
        return VideoSpec(name, num_frames, fps, size, seed, (), label_i, plan, **extra)
    _check_event_options(name, kinds, kind, event_kinds, table, max_event_fraction)
    lo = int(math.ceil(_MIN_START_S * fps))
    hi = num_frames - int(math.ceil(_END_MARGIN_S * fps))
    min_len = int(math.ceil(1.5 * fps))
    if hi - lo < min_len:
        raise ValueError(
            f"make_video_spec {name!r}: {num_frames} frames at {fps} fps leave no room for an event "
            f"(need at least {min_anomalous_frames(fps)} frames)"
        )
    gap = int(round(1.0 * fps))
    budget = max(min_len, int(max_event_fraction * num_frames))
    if event_kinds is not None:
        chosen = [str(k) for k in event_kinds]
        while len(chosen) > 1 and hi - lo < len(chosen) * min_len + (len(chosen) - 1) * gap:
            chosen.pop()  # a short video keeps the events that fit
    else:
        n_events = 1
        while (n_events < max_events and rng.random() < p_more_events
               and hi - lo >= (n_events + 1) * min_len + n_events * gap and budget >= (n_events + 1) * min_len):
            n_events += 1
        first = kind or str(rng.choice(list(kinds)))
        chosen = [first] + [str(rng.choice(list(kinds))) for _ in range(n_events - 1)]
    durs = _event_durations(name, num_frames, chosen, table, rng, fps=fps, span=hi - lo, gap=gap, budget=budget,
                            min_len=min_len)
    events = _place_events(chosen, durs, depth_table, rng, lo=lo, slack=hi - lo - gap * (len(chosen) - 1) - sum(durs),
                           gap=gap)
    return VideoSpec(name, num_frames, fps, size, seed, tuple(events), 1, plan, **extra)


def _check_event_options(name: str, kinds: Sequence[str], kind: str | None, event_kinds: Sequence[str] | None,
                         table: Mapping[str, tuple[float, float]], max_event_fraction: float) -> None:
    """make_video_spec's event options, refused with their reason before anything is drawn."""
    if event_kinds is not None and not event_kinds:
        raise ValueError(f"make_video_spec {name!r}: event_kinds is empty for an anomalous video")
    for k in (*kinds, *([kind] if kind else []), *(event_kinds or ())):
        if k not in EVENT_KINDS:
            raise ValueError(f"make_video_spec: unknown event kind {k!r}; expected one of {EVENT_KINDS}")
        if k not in table:
            raise ValueError(f"make_video_spec: no duration range for event kind {k!r}")
    if not 0 < max_event_fraction <= 1:
        raise ValueError(f"make_video_spec: max_event_fraction must be in (0, 1], got {max_event_fraction}")


def _event_durations(name: str, num_frames: int, chosen: list[str], table: Mapping[str, tuple[float, float]],
                     rng: np.random.Generator, *, fps: float, span: int, gap: int, budget: int, min_len: int
                     ) -> list[int]:
    """Each event's length in frames: drawn log-uniformly from its kind's range, then shrunk to fit the free
    ``span`` and the ``budget`` when needed (never below ``min_len``, 1.5 s)."""
    n_events = len(chosen)
    durs = [int(round(_log_uniform(rng, *table[k]) * fps)) for k in chosen]
    room = min(span - gap * (n_events - 1), max(budget, n_events * min_len))
    while sum(durs) > room:
        i = int(np.argmax(durs))
        durs[i] = max(min_len, durs[i] - max(1, (sum(durs) - room)))
        if all(d == min_len for d in durs) and sum(durs) > room:  # pragma: no cover - guarded above
            raise ValueError(f"make_video_spec {name!r}: events do not fit in {num_frames} frames")
    return durs


def _place_events(chosen: list[str], durs: list[int], depth_table: Mapping[str, tuple[float, float]],
                  rng: np.random.Generator, *, lo: int, slack: int, gap: int) -> list[EventSpec]:
    """The events in order from frame ``lo``, ``gap`` frames at least between them, the ``slack`` split at
    random before, between and after them; each at a random place in the central 40 % of the width."""
    n_events = len(chosen)
    # Split the slack randomly into n_events + 1 parts: before, between, after.
    cuts = np.sort(rng.integers(0, slack + 1, size=n_events))
    events = []
    t = lo
    prev = 0
    for i, (k, d) in enumerate(zip(chosen, durs, strict=True)):
        t += int(cuts[i] - prev)
        prev = int(cuts[i])
        u = float(rng.uniform(0.3, 0.7))
        z = float(rng.uniform(*depth_table[k]))
        v = _HORIZON + _CAM_HEIGHT / z
        events.append(EventSpec(k, t, t + d, (u, v), int(rng.integers(0, 2**31 - 1))))
        t += d + gap
    return events


# Benign changes: (episodes per minute, duration range in seconds, amount range) per kind.
_BENIGN_RATES = {
    "light": (1.0, (2.0, 12.0), (0.10, 0.35)),  # a cloud, a lamp, auto-exposure: gain change (signed)
    "shake": (0.6, (1.0, 6.0), (1.5, 5.0)),  # wind on the mast: shake amplitude (pixels at 240 px height)
    "crowd": (0.5, (5.0, 25.0), (2.5, 5.0)),  # a busy spell: spawn-rate multiplier
    "group": (0.5, (8.0, 8.0), (4.0, 9.0)),  # a group walking through together: its size
}


def draw_benign(num_frames: int, fps: float, seed: int, kinds: Sequence[str] | None = None
                ) -> tuple[BenignSpec, ...]:
    """The benign changes of one video, a function of its length, frame rate and seed only.

    A slow lighting drift over the whole video, plus Poisson-many episodes of lighting changes, camera
    shake, busy spells and groups walking through (at least one episode per video). None of them is an
    anomaly: they are there so that "the picture changed" is not the same as "something anomalous
    happened" (a plain change detector must be fooled by normal videos too). ``kinds`` keeps
    only those episode kinds (None: all four).
    """
    rng = np.random.default_rng([int(seed), 0xBE])
    minutes = num_frames / fps / 60.0
    rates = {k: v for k, v in _BENIGN_RATES.items() if kinds is None or k in kinds}
    out = [BenignSpec("drift", 0, num_frames, float(rng.uniform(0.02, 0.08)), int(rng.integers(0, 2**31 - 1)))]
    episodes = []
    for kind, (rate, (d0, d1), (a0, a1)) in rates.items():
        for _ in range(int(rng.poisson(rate * minutes))):
            episodes.append((kind, d0, d1, a0, a1))
    if not episodes and rates:
        kind = str(rng.choice(list(rates)))
        _, (d0, d1), (a0, a1) = rates[kind]
        episodes.append((kind, d0, d1, a0, a1))
    for kind, d0, d1, a0, a1 in episodes:
        dur = min(int(round(rng.uniform(d0, d1) * fps)), num_frames)
        start = int(rng.integers(0, num_frames - dur + 1))
        amount = float(rng.uniform(a0, a1))
        if kind == "light" and rng.random() < 0.6:
            amount = -amount  # darker more often than brighter (clouds)
        if kind == "group":
            amount = float(round(amount))
        out.append(BenignSpec(kind, start, start + dur, amount, int(rng.integers(0, 2**31 - 1))))
    return tuple(sorted(out, key=lambda b: (b.start_frame, b.kind)))


# Near misses: (duration range in seconds, amount range) per kind. ``amount``: speed in m/s (jogger,
# cyclist, van), tempo in Hz (dance), 0-1: sit only below 0.5, else sit then lie (bench), intensity
# (flicker, steam), pixels at 240 px height (shake); unused (hug).
NEAR_MISS = {
    "jogger": ((4.0, 8.0), (2.3, 3.4)),
    "cyclist": ((3.0, 6.0), (3.5, 6.0)),
    "hug": ((3.0, 8.0), (0.0, 1.0)),
    "dance": ((4.0, 12.0), (1.6, 2.6)),
    "bench": ((6.0, 20.0), (0.0, 1.0)),
    "van": ((6.0, 12.0), (1.2, 3.0)),
    "flicker": ((2.0, 6.0), (0.5, 1.0)),
    "steam": ((4.0, 12.0), (0.5, 1.0)),
    "shake": ((1.0, 6.0), (2.0, 6.0)),
}


def draw_near_misses(kinds: Sequence[str], num_frames: int, fps: float, seed: int) -> tuple[BenignSpec, ...]:
    """One near-miss episode per entry of ``kinds``: duration, start and amount drawn from the video's
    seed alone (the dataset chooses the kinds with the same counts for both labels)."""
    rng = np.random.default_rng([int(seed), 0xD1])
    out = []
    for kind in kinds:
        if kind not in NEAR_MISS:
            raise ValueError(f"near miss: unknown kind {kind!r}; expected one of {tuple(NEAR_MISS)}")
        (d0, d1), (a0, a1) = NEAR_MISS[kind]
        dur = min(max(int(round(rng.uniform(d0, d1) * fps)), 1), num_frames)
        start = int(rng.integers(0, num_frames - dur + 1))
        out.append(BenignSpec(kind, start, start + dur, float(rng.uniform(a0, a1)), int(rng.integers(0, 2**31 - 1))))
    return tuple(out)
