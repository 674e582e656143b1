"""Decoded frames: what a video is made of once decoded, and the errors that name the video.

The facts shared by decoding (:mod:`damvad.video`), folders of frames (:mod:`damvad.framefolder`), snippets
(:mod:`damvad.snippets`) and the feature store: sizes, crop names, the video error, the probe's record, and
the one conversion of decoded pixels to RGB. It imports no other damvad module, so each of those can import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from damvad.choices import CROPS

RESIZE_SHORT = 256
CROP = 224
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".ts", ".m4v", ".flv", ".wmv")

CROP_NAMES: dict[str, list[str]] = {  # the crops of each setting of damvad.choices.CROPS, in order
    "center": ["center"],
    "5": ["center", "top_left", "top_right", "bottom_left", "bottom_right"],
    "10": [
        "center",
        "top_left",
        "top_right",
        "bottom_left",
        "bottom_right",
        "center_flip",
        "top_left_flip",
        "top_right_flip",
        "bottom_left_flip",
        "bottom_right_flip",
    ],
}


class VideoError(RuntimeError):
    """A video that cannot be used; the message names the file and the cause."""

    def __init__(self, source: Any, cause: str):
        self.source = str(source)
        self.cause = cause
        super().__init__(f"{self.source}: {cause}")


@dataclass
class VideoInfo:
    source: str
    width: int
    height: int
    fps: float
    declared_frames: int  # 0 when the container does not say (streams, some AVIs)
    codec: str
    pix_fmt: str | None = None

    def frame_count_warning(self, decoded: int) -> str | None:
        """The warning when decoding gave another number of frames than the container declares (a damaged
        or truncated file); the same words from ``extract`` and ``detect``."""
        if self.declared_frames and decoded != self.declared_frames:
            return f"container declares {self.declared_frames} frames, {decoded} decoded"
        return None


def normalize_crops(crops: str | int) -> str:
    """A crop setting as one of :data:`damvad.choices.CROPS` (``1`` and ``centre`` are the centre crop)."""
    key = str(crops).lower()
    if key in ("1", "centre", "center"):
        return "center"
    if key not in CROP_NAMES:
        raise ValueError(f"crops must be {', '.join(map(repr, CROPS[:-1]))} or {CROPS[-1]!r}, got {crops!r}")
    return key


def resized_size(width: int, height: int, short: int = RESIZE_SHORT) -> tuple[int, int]:
    """(w, h) with the shorter side = ``short`` and the aspect ratio kept."""
    if width <= 0 or height <= 0:
        raise ValueError(f"invalid frame size {width}x{height}")
    if width <= height:
        return short, max(short, int(round(height * short / width)))
    return max(short, int(round(width * short / height))), short


def frame_to_rgb(frame: Any, size: tuple[int, int] | None, planar: bool) -> np.ndarray:
    """One decoded frame (``av.VideoFrame``) as uint8 RGB (H, W, 3), or (3, H, W) with ``planar``, resized
    to ``size`` (w, h; None: as it is) by swscale: the one conversion of decoded pixels, for video files
    and folders of frames alike.

    A frame already at ``size`` goes through swscale's packed RGB output: its unscaled conversion from YUV
    to planar RGB garbles the last ``width % 16`` columns of every row (seen: 360 and 455 wide, yuv420p and
    yuvj420p), where the scaled one is right."""
    width, height = size if size is not None else (frame.width, frame.height)
    if (width, height) == (frame.width, frame.height) and frame.format.name != "gbrp":
        packed = frame.to_ndarray(format="rgb24")
        return np.ascontiguousarray(packed.transpose(2, 0, 1)) if planar else packed
    rgb = frame.reformat(width=width, height=height, format="gbrp", interpolation="BILINEAR")
    planes = _rgb_planes(rgb, width, height)
    return planes if planar else np.ascontiguousarray(planes.transpose(1, 2, 0))


def _rgb_planes(frame: Any, width: int, height: int) -> np.ndarray:
    """(3, H, W) uint8 RGB from a ``gbrp`` frame (planes stored G, B, R, rows padded to line_size)."""
    out = np.empty((3, height, width), dtype=np.uint8)
    for channel, plane in zip((1, 2, 0), frame.planes, strict=True):
        rows = np.frombuffer(plane, dtype=np.uint8).reshape(-1, plane.line_size)
        out[channel] = rows[:height, :width]
    return out

