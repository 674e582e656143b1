"""Frame-by-frame rendering with constant memory, lazy streams, and writing videos to disk."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from damvad.synth.draw import _Camera
from damvad.synth.events import _EVENT_CLASSES, _CropVehicleEvent
from damvad.synth.nearmiss import NEAR_MISS_CLASSES
from damvad.synth.people import Item, _Crowd, _draw_people, _draw_person, _Person
from damvad.synth.scene import _BenignEffects, _build_background, _NoiseBank
from damvad.synth.specs import BenignSpec, EventSpec, VideoSpec

# ----------------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------------


class _Renderer:
    """Frame-by-frame renderer with constant memory (the crowd is simulated as frames are drawn)."""

    def __init__(self, size: tuple[int, int], fps: float, seed: int, events: Sequence[EventSpec],
                 benign: Sequence[BenignSpec] = (), scene_seed: int | None = None, crop_labels: bool = False) -> None:
        w, h = (int(v) for v in size)
        ss = np.random.SeedSequence(int(seed))
        s_bg, s_crowd, s_noise = ss.spawn(3)
        if scene_seed is not None:  # a camera shared by several videos: its scene has a seed of its own
            s_bg = np.random.SeedSequence([int(scene_seed), 0x5CE])
        self.cam = _Camera(w, h)
        scene = _build_background(self.cam, np.random.default_rng(s_bg))
        self.ctx = scene.ctx
        # Separate streams: the crowd, the noise and the benign changes are the same with or without events.
        self.crowd = _Crowd(self.cam, fps, np.random.default_rng(s_crowd), scene.doors, benign)
        self.effects = _BenignEffects(benign, fps, h)
        self.noise = _NoiseBank(np.random.default_rng(s_noise), scene.bg)
        classes = {**_EVENT_CLASSES, "vehicle": _CropVehicleEvent} if crop_labels else _EVENT_CLASSES
        self.events = [
            classes[ev.kind](ev, self.cam, fps, np.random.default_rng([int(seed), ev.seed, i]))
            for i, ev in enumerate(events)
        ]
        self.events += [NEAR_MISS_CLASSES[b.kind](b, self.cam, fps, np.random.default_rng([b.seed, 0x4E]))
                        for b in benign if b.kind in NEAR_MISS_CLASSES]
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
        frame = self.effects.apply(frame, self.t)
        self.crowd.step()
        self.t += 1
        return frame


def render_frames(spec: VideoSpec) -> Iterator[np.ndarray]:
    """Yield the spec's frames one at a time (H x W x 3 uint8 RGB); the same spec gives the same frames."""
    r = _Renderer(spec.size, spec.fps, spec.seed, spec.events, spec.benign, spec.scene_seed, spec.crop_labels)
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
