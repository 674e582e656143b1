"""Shared bits of the benchmark scripts: the sample clips and real snippets, the eager baseline, round-robin
timing and medians, feature cosine, the other processes' load during a timed run, the closing line.

The sample clips are ``shared/media`` beside a source checkout (:func:`damvad.utils.shared_media`)."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from damvad.utils import shared_media

REPO = Path(__file__).resolve().parents[3]  # the source checkout this was installed from (editable install)
MEDIA = shared_media("") or REPO.parent / "shared" / "media"
SHARED_CLIP = MEDIA / "vtest.avi"


def default_video() -> Path:
    if not SHARED_CLIP.exists():
        raise SystemExit(f"{SHARED_CLIP} not found: pass --video PATH (any surveillance clip)")
    return SHARED_CLIP


def full_snippets(video: Path) -> list:
    """The video's full 64-frame snippets (planar frames), the padded last one left out."""
    from damvad.video import iter_frames, iter_snippets

    return [s for s in iter_snippets(iter_frames(video, planar=True), planar=True) if s.end - s.start == 64]


def real_snippets(limit_per_video: int = 4) -> tuple[list[np.ndarray], list[str]]:
    """uint8 (1, 3, 64, 224, 224) centre crops of full snippets, spread over each shared clip (vtest.avi and
    the UCF-Crime clips, those present), with names ``clip#index``."""
    from damvad.video import snippet_to_input

    videos = [MEDIA / "vtest.avi", *sorted((MEDIA / "ucf-crime").glob("*.mp4"))]
    out, names = [], []
    for video in videos:
        if not video.is_file():
            continue
        snips = full_snippets(video)
        picks = np.unique(np.linspace(0, len(snips) - 1, min(limit_per_video, len(snips))).round().astype(int))
        for i in picks:
            out.append(snippet_to_input(snips[int(i)].frames, planar=True, dtype="uint8"))
            names.append(f"{video.stem}#{int(i)}")
    return out, names


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


class OtherLoad:
    """Cores other processes used between construction and :meth:`cores` (from /proc/stat, minus this
    process's own CPU time): says how shared the machine was during a timed run."""

    def __init__(self) -> None:
        self.busy0, self.own0, self.wall0 = _busy(), _own(), time.perf_counter()

    def cores(self) -> float:
        return max(_busy() - self.busy0 - (_own() - self.own0), 0.0) / (time.perf_counter() - self.wall0)


def _busy() -> float:
    with open("/proc/stat") as fh:
        fields = [float(v) for v in fh.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _own() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def eager_i3d(model: object = None) -> Callable[[np.ndarray], object]:
    """Eager fp32 ``InceptionI3d`` (``model``, else the pretrained one) on a uint8 or float input: the baseline
    of every speed ratio."""
    import torch

    from damvad.backends.torch import to_float_input
    from damvad.i3d import load_i3d

    net = model if model is not None else load_i3d()

    def eager(x: np.ndarray) -> object:
        with torch.no_grad():
            return net(to_float_input(x))

    return eager


def round_robin(fns: dict[str, Callable[[np.ndarray], object]], inputs: list[np.ndarray],
                reps: int) -> dict[str, list[float]]:
    """Seconds per call of each function; every rep times all of them in turn on the same input, so they
    share the machine's load (use the medians)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for rep in range(reps):
        x = inputs[rep % len(inputs)]
        for name, fn in fns.items():
            t = time.perf_counter()
            fn(x)
            times[name].append(time.perf_counter() - t)
    return times


def median_time(fn: Callable[[], object], reps: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def closing_line(values: dict[str, float]) -> str:
    def fmt(v: float) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    return " ".join(f"{k}={fmt(v)}" for k, v in values.items())


def cpu_name() -> str:
    """The CPU model, cores and int8 / bf16 units (what runs record, :func:`damvad.device.device_info`): every
    speed figure names the CPU kind it was measured on."""
    from damvad.device import device_info

    info = device_info("cpu")
    return f"{info['device_name']}, {info['cpu_count']} cores, {info['cpu_isa']}"


def camera_clip(height: int, source: Path | None = None) -> Path:
    """vtest.avi (or ``source``) scaled to a ``height``-line 16:9 h264 clip, the resolution of real cameras:
    made once by PyAV's libx264 (crf 23, preset veryfast) in ``~/.cache/damvad/bench-clips``, no download.
    Its bytes need not be reproducible (x264 is not here): only its decoding speed is measured."""
    import av

    from damvad.utils import atomic_open

    source = source or default_video()
    width = (height * 16 // 9) // 2 * 2
    out = Path.home() / ".cache" / "damvad" / "bench-clips" / f"{source.stem}-{height}p.mp4"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(source)) as inp, atomic_open(out, "wb") as fh:
        with av.open(fh, "w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=inp.streams.video[0].average_rate)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"crf": "23", "preset": "veryfast"}
            for frame in inp.decode(video=0):
                scaled = frame.reformat(width=width, height=height, format="yuv420p")
                scaled.pts = None
                for packet in stream.encode(scaled):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return out
