"""Decoded frames: what a video is made of once decoded, and the errors that name the video.

The facts shared by decoding (:mod:`damvad.video`), folders of frames (:mod:`damvad.framefolder`), snippets
(:mod:`damvad.snippets`) and the feature store: sizes, crop names, the video error, the probe's record, the crops'
windows and the one conversion of decoded pixels to RGB (:class:`FrameConverter`). It imports no other damvad
module, so each of those can import it.
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


def crop_offsets(height: int, width: int, mode: str, size: int = CROP) -> list[tuple[int, int, bool]]:
    """(top, left, flip) of each crop, in the order of ``CROP_NAMES[mode]``."""
    if height < size or width < size:
        raise ValueError(f"frame {width}x{height} is smaller than the {size}x{size} crop")
    cy, cx = (height - size) // 2, (width - size) // 2
    five = [(cy, cx), (0, 0), (0, width - size), (height - size, 0), (height - size, width - size)]
    mode = normalize_crops(mode)
    if mode == "center":
        return [(cy, cx, False)]
    out = [(y, x, False) for y, x in five]
    if mode == "10":
        out += [(y, x, True) for y, x in five]
    return out


class FrameConverter:
    """Decoded frames (``av.VideoFrame``) of one stream as uint8 RGB, (H, W, 3) or (3, H, W) with ``planar``,
    shorter side ``short_side`` (None: as decoded) by swscale, bilinear: the one conversion of decoded
    pixels, for video files and folders of frames alike.

    Why a converter per stream: one swscale context serves every frame (built again only when the size
    changes), with one scaling thread -- the conversion already runs beside the model, in its own thread.
    A context built per frame, with swscale's automatic threads, cost more than the scaling itself (vtest.avi
    decoded and preprocessed: 1.73 against 0.75 CPU ms per frame; benchmarks/README.md, issue 24). The pixels
    are the same (tested).

    ``crops``: the crop setting the frames are for. ``"center"`` keeps only the centre crop's window
    (``crop_offsets``), pixel for pixel what cropping the whole frame gives: the copies after swscale
    shrink to that window. Any other setting (or None) keeps the whole frame.

    A frame already at its output size goes through swscale's packed RGB output: its unscaled conversion
    from YUV to planar RGB garbles the last ``width % 16`` columns of every row (seen: 360 and 455 wide,
    yuv420p and yuvj420p), where the scaled one is right."""

    def __init__(self, short_side: int | None = RESIZE_SHORT, planar: bool = False, crops: str | None = None):
        from av.video.reformatter import VideoReformatter

        self.short_side, self.planar = short_side, planar
        self.centre_only = crops is not None and normalize_crops(crops) == "center"
        self._reformatter = VideoReformatter()
        self._geometry: dict[tuple[int, int], tuple[int, int, int, int, int, int]] = {}

    def _window(self, width: int, height: int) -> tuple[int, int, int, int, int, int]:
        """(output width, height, window top, left, rows, cols) for an input size, worked out once per size."""
        if (width, height) not in self._geometry:
            out_w, out_h = resized_size(width, height, self.short_side) if self.short_side else (width, height)
            top, left, rows, cols = 0, 0, out_h, out_w
            if self.centre_only:
                (top, left, _), = crop_offsets(out_h, out_w, "center")
                rows = cols = CROP
            self._geometry[width, height] = (out_w, out_h, top, left, rows, cols)
        return self._geometry[width, height]

    def __call__(self, frame: Any) -> np.ndarray:
        width, height, top, left, rows, cols = self._window(frame.width, frame.height)
        if (width, height) == (frame.width, frame.height) and frame.format.name != "gbrp":
            packed = frame.to_ndarray(format="rgb24")[top : top + rows, left : left + cols]
            return np.ascontiguousarray(packed.transpose(2, 0, 1) if self.planar else packed)
        rgb = self._reformatter.reformat(frame, width=width, height=height, format="gbrp",
                                         interpolation="BILINEAR", threads=1)
        planes = _rgb_planes(rgb, top, left, rows, cols)
        return planes if self.planar else np.ascontiguousarray(planes.transpose(1, 2, 0))


def _rgb_planes(frame: Any, top: int, left: int, rows: int, cols: int) -> np.ndarray:
    """(3, rows, cols) uint8 RGB of a window of a ``gbrp`` frame (planes stored G, B, R, rows padded to
    line_size)."""
    out = np.empty((3, rows, cols), dtype=np.uint8)
    for channel, plane in zip((1, 2, 0), frame.planes, strict=True):
        lines = np.frombuffer(plane, dtype=np.uint8).reshape(-1, plane.line_size)
        out[channel] = lines[top : top + rows, left : left + cols]
    return out
