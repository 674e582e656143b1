"""Calibration snippets for int8 post-training quantization: the user's videos, or a built-in default.

What the OpenVINO backend is handed when it quantizes (:data:`VIDEO_CALIBRATION`, its ``CalibrationData``):
the backend itself imports no video decoder or scene generator. NNCF picks each activation's int8 range from
what it sees here, so the snippets should look like the videos that will be extracted. The built-in default
needs no footage: scenes rendered by :mod:`damvad.synth` (a fixed camera over a plaza with walkers and
anomalous events), each taken at several crop positions, plus the real surveillance clip ``vtest.avi`` when
one is found (``$DAMVAD_CALIBRATION_VIDEOS``, or a checkout's ``../shared/media/``). The provenance (source,
count, file checksums) is stored with the quantized model and keys its cache, so a model calibrated on other
data is never reused by mistake.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from damvad.backends.openvino_ir import QuantizationSettings
from damvad.utils import sha256_file, shared_media
from damvad.video import (
    CROP,
    SNIPPET_LEN,
    crop_offsets,
    find_videos,
    iter_frames,
    iter_snippets,
    resize_frames,
    snippet_to_input,
)

CALIBRATION_ENV = "DAMVAD_CALIBRATION_VIDEOS"  # os.pathsep-separated videos/folders for the default set
DEFAULT_SYNTHETIC = 16  # scenes; each gives one full snippet at one crop position
DEFAULT_PER_VIDEO = 8  # snippets taken from each real video (evenly spread)
SYNTH_FORMAT_KEY = "synth-v1"  # bump when this module's synthetic set changes (it keys the cache)


def _synth_format() -> str:
    """This module's and damvad.synth's rendering versions: either changing re-calibrates."""
    from damvad.synth import SYNTH_FORMAT

    return f"{SYNTH_FORMAT_KEY}/render{SYNTH_FORMAT}"


def _shared_media() -> list[Path]:
    """vtest.avi next to a source checkout (``<repo>/../shared/media``), if present."""
    found = shared_media("vtest.avi")
    return [found] if found is not None and found.is_file() else []


def _is_video(path: Path) -> bool:
    """A video file or a folder of frames (what find_videos lists and may still be missing)."""
    return path.is_file() or path.is_dir()


def _sha256(path: Path) -> str:
    """A video file's sha256, or a folder of frames' (:func:`damvad.framefolder.folder_sha256`)."""
    from damvad.framefolder import folder_sha256

    return folder_sha256(path) if path.is_dir() else sha256_file(path)


def default_videos() -> list[Path]:
    """Real videos added to the built-in calibration set: ``$DAMVAD_CALIBRATION_VIDEOS`` or vtest.avi."""
    env = os.environ.get(CALIBRATION_ENV)
    if env:
        return [p for p in find_videos([e for e in env.split(os.pathsep) if e]) if _is_video(p)]
    return _shared_media()


def synthetic_snippets(count: int = DEFAULT_SYNTHETIC, num_frames: int = SNIPPET_LEN) -> list[np.ndarray]:
    """``count`` float32 (1, 3, T, 224, 224) snippets of rendered scenes, every other one with an event."""
    from damvad.synth import EVENT_KINDS, EventSpec, synthetic_stream

    out: list[np.ndarray] = []
    for seed in range(count):
        events = ()
        if seed % 2:  # the second snippet shows the event under way
            kind = EVENT_KINDS[(seed // 2) % len(EVENT_KINDS)]
            events = (EventSpec(kind, num_frames // 2, 2 * num_frames, seed=seed),)
        stream = synthetic_stream(2 * num_frames, seed=1000 + seed, events=events, size=(320, 240))
        snip = list(iter_snippets(resize_frames(stream), num_frames))[1]
        crops = snippet_to_input(snip.frames, "5")  # vary the crop position across scenes
        out.append(crops[seed % len(crops)][None])
    return out


def video_snippets(paths: Sequence[Path], per_video: int = DEFAULT_PER_VIDEO,
                   num_frames: int = SNIPPET_LEN) -> list[np.ndarray]:
    """Up to ``per_video`` full snippets of each video, evenly spread, crop positions varied."""
    out: list[np.ndarray] = []
    for path in paths:
        snippets = [s for s in iter_snippets(iter_frames(path, planar=True), num_frames, source=path, planar=True)
                    if s.end - s.start == num_frames] or []
        if not snippets:
            continue
        picks = np.unique(np.linspace(0, len(snippets) - 1, min(per_video, len(snippets))).round().astype(int))
        for j, i in enumerate(picks):
            frames = snippets[int(i)].frames
            n_crops = len(crop_offsets(frames.shape[2], frames.shape[3], "5", CROP))
            crops = snippet_to_input(frames, "5", planar=True)
            out.append(crops[j % n_crops][None])
    return out


def calibration_snippets(
    videos: Sequence[str | os.PathLike] | None = None,
    synthetic: int | None = None,
    per_video: int = DEFAULT_PER_VIDEO,
    num_frames: int = SNIPPET_LEN,
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """(snippets, provenance). ``videos`` given: the user's own videos (files, folders, lists) only;
    otherwise the built-in default (synthetic scenes + :func:`default_videos`)."""
    if videos:
        paths = [p for p in find_videos(videos) if _is_video(p)]
        if not paths:
            raise ValueError(f"no calibration videos found in {[str(v) for v in videos]}")
        n_synth = synthetic or 0
        source = "user videos"
    else:
        paths = default_videos()
        n_synth = DEFAULT_SYNTHETIC if synthetic is None else synthetic
        source = "built-in (synthetic scenes" + (" + real videos)" if paths else ")")
    snippets = synthetic_snippets(n_synth, num_frames) if n_synth else []
    snippets += video_snippets(paths, per_video, num_frames)
    if not snippets:
        raise ValueError("no calibration snippets (the videos have no full 64-frame snippet)")
    provenance = {
        "source": source,
        "count": len(snippets),
        "synthetic": n_synth,
        "synthetic_format": _synth_format() if n_synth else None,
        "per_video": per_video,
        "videos": [{"name": p.name, "sha256": _sha256(p)} for p in paths],
    }
    return snippets, provenance


def calibration_key(videos: Sequence[str | os.PathLike] | None = None, synthetic: int | None = None,
                    per_video: int = DEFAULT_PER_VIDEO) -> dict[str, Any]:
    """What identifies a calibration set without decoding it (keys the int8 cache)."""
    if videos:
        paths = [p for p in find_videos(videos) if _is_video(p)]
        n_synth = synthetic or 0
    else:
        paths = default_videos()
        n_synth = DEFAULT_SYNTHETIC if synthetic is None else synthetic
    return {"synthetic": n_synth, "synthetic_format": _synth_format() if n_synth else None,
            "per_video": per_video, "videos": sorted(_sha256(p) for p in paths)}


class VideoCalibration:
    """damvad's calibration data (:class:`~damvad.backends.openvino_ir.CalibrationData`): the videos a
    :class:`~damvad.backends.openvino_ir.QuantizationSettings` names, or the built-in default."""

    def key(self, settings: QuantizationSettings) -> dict[str, Any]:
        return calibration_key(settings.videos or None, settings.synthetic, settings.per_video)

    def snippets(self, settings: QuantizationSettings, num_frames: int) -> tuple[list[np.ndarray], dict[str, Any]]:
        return calibration_snippets(settings.videos or None, settings.synthetic, settings.per_video, num_frames)


VIDEO_CALIBRATION = VideoCalibration()
