"""A folder of image files is a video: UCSD Ped2, Avenue and ShanghaiTech's test split come that way.

Rules:

* **What is a folder of frames**: a folder that holds image files (jpg, jpeg, png, bmp, tif, tiff) and no
  sub-folder that holds images. Its frames are its images in natural order (``2.jpg`` before ``10.jpg``);
  hidden files and other files (a ``README``, ``annotations.csv``) are ignored. A folder holding images
  and also video files, or images and sub-folders of images, is ambiguous: an error that says what it holds.
* **Pixels**: each image is decoded by PyAV (FFmpeg's image decoders; no other image library), converted
  to RGB at its own size, then resized exactly as a video file's frames are (:class:`damvad.frames.FrameConverter`):
  features equal those of the same RGB frames stored losslessly in a video file (``tests/test_framefolder.py``).
  A frame that cannot be decoded, or of another size than the first, is the video's error naming the file
  (in a batch the other videos go on; nothing of that video is written).
* **Frame rate**: image files do not have one; it is given (``--fps``, config key ``fps``), else
  :data:`DEFAULT_FPS` is assumed with a warning. It only dates frames (detect's times and alert closing,
  the feature rows); the features do not depend on it.
* **Fingerprint** (resume): the folder's frames' names, total size, newest mtime (the folder's own mtime
  counts: adding, removing or renaming a frame changes it), and a hash of each frame's name, size, first
  and last 64 KiB: a changed frame redoes the video, as a changed file does.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from damvad.frames import VIDEO_EXTENSIONS, FrameConverter, VideoError, VideoInfo
from damvad.frametimes import FALLBACK_FPS
from damvad.store import SourceFile
from damvad.utils import hash_ends

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
DEFAULT_FPS = FALLBACK_FPS  # assumed, with a warning, when a folder of frames is given no frame rate
FRAME_SAMPLE = 1 << 16  # bytes hashed at each end of every frame for the fingerprint


def natural_key(name: str) -> tuple[tuple[int, Any], ...]:
    """Sort key putting ``frame2.jpg`` before ``frame10.jpg`` (digit runs compare as numbers)."""
    return tuple((0, int(part)) if part.isdigit() else (1, part.lower())
                 for part in re.split(r"(\d+)", name) if part)


def _visible(name: str) -> bool:
    return not name.startswith(".")


def _kind(name: str) -> str | None:
    suffix = os.path.splitext(name)[1].lower()
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    return "video" if suffix in VIDEO_EXTENSIONS else None


def _survey(root: Path) -> dict[Path, tuple[list[str], list[str]]]:
    """Every visible folder under ``root`` (itself included) -> (its image files, its video files)."""
    out: dict[Path, tuple[list[str], list[str]]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if _visible(d))
        images = [f for f in filenames if _visible(f) and _kind(f) == "image"]
        videos = [f for f in filenames if _visible(f) and _kind(f) == "video"]
        out[Path(dirpath)] = (images, videos)
    return out


def _ambiguity(folder: Path, images: list[str], videos: list[str], nested: list[Path]) -> VideoError:
    held = f"{len(images)} image file(s) ({sorted(images, key=natural_key)[0]}, ...) and "
    if videos:
        held += f"{len(videos)} video file(s) ({', '.join(sorted(videos)[:3])})"
    else:
        shown = ", ".join(str(p.relative_to(folder)) for p in nested[:3]) + (", ..." if len(nested) > 3 else "")
        held += f"{len(nested)} sub-folder(s) of images ({shown})"
    return VideoError(folder, f"holds {held}: a folder of frames is one video and holds only its frames; move "
                              "the frames into a folder of their own")


def scan_folder(root: Path) -> list[Path]:
    """The videos under ``root``, sorted: its video files (at any depth) and its folders of frames
    (``root`` itself when it holds images); a VideoError for an ambiguous folder (module docstring)."""
    survey = _survey(root)
    image_dirs = {d for d, (images, _) in survey.items() if images}
    nested: dict[Path, list[Path]] = {}
    for d in sorted(image_dirs):
        for parent in d.parents:
            if parent in image_dirs:
                nested.setdefault(parent, []).append(d)
    found: list[Path] = []
    for folder, (images, videos) in survey.items():
        if folder in image_dirs and (videos or folder in nested):
            raise _ambiguity(folder, images, videos, nested.get(folder, []))
        found += [folder] if images else [folder / v for v in videos]
    return sorted(found)


def frame_files(folder: Path) -> list[Path]:
    """The frames of a folder of frames, in natural order; a VideoError when it is none (module docstring)."""
    if not folder.is_dir():
        raise VideoError(folder, "folder does not exist")
    found = scan_folder(folder)
    images, _ = _survey_one(folder)
    if not images:
        what = f"its videos ({', '.join(p.name for p in found[:3])}) are" if found else "nothing here is"
        raise VideoError(folder, f"holds no image files ({', '.join(e[1:] for e in IMAGE_EXTENSIONS)}): not a "
                                 f"folder of frames; {what} a video")
    return [folder / name for name in sorted(images, key=lambda n: (natural_key(n), n))]


def _survey_one(folder: Path) -> tuple[list[str], list[str]]:
    names = [e.name for e in os.scandir(folder) if e.is_file() and _visible(e.name)]
    return [n for n in names if _kind(n) == "image"], [n for n in names if _kind(n) == "video"]


def decode_image(path: Path, folder: Path) -> Any:
    """The frame of one image file as an ``av.VideoFrame`` in planar RGB (``gbrp``) at its own size, what a
    lossless RGB video of it decodes to; a VideoError of ``folder`` naming the file when it cannot be decoded.

    The RGB pixels come from swscale's packed RGB output: its unscaled conversion to planar RGB garbles the
    last ``width % 16`` columns (:class:`damvad.frames.FrameConverter`)."""
    import av

    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(container.streams.video[0]), None)
            if frame is None:
                raise VideoError(folder, f"frame {path.name}: holds no image")
            rgb = frame.to_ndarray(format="rgb24")
    except (av.error.FFmpegError, IndexError, OSError) as exc:
        raise VideoError(folder, f"frame {path.name}: cannot be decoded as an image ({type(exc).__name__}: "
                                 f"{exc})") from exc
    height, width = rgb.shape[:2]
    out = av.VideoFrame(width, height, "gbrp")
    for channel, plane in zip((1, 2, 0), out.planes, strict=True):  # planes G, B, R
        np.frombuffer(plane, dtype=np.uint8).reshape(-1, plane.line_size)[:height, :width] = rgb[..., channel]
    return out


def iter_folder_frames(folder: Path, short_side: int | None, planar: bool,
                       crops: str | None = None) -> Iterator[np.ndarray]:
    """The frames of a folder of frames as :func:`damvad.video.iter_frames` yields a video file's."""
    files = frame_files(folder)
    first: tuple[int, int] | None = None
    convert = FrameConverter(short_side, planar, crops)
    for path in files:
        frame = decode_image(path, folder)
        if first is None:
            first = (frame.width, frame.height)
        elif (frame.width, frame.height) != first:
            raise VideoError(folder, f"frame {path.name} is {frame.width}x{frame.height}, the first frame "
                                     f"{files[0].name} is {first[0]}x{first[1]}: every frame of a video has one size")
        yield convert(frame)


def probe_folder(folder: Path, fps: float | None = None) -> VideoInfo:
    """A folder of frames' size (its first frame's), frame count (its images) and the frame rate ``fps``
    (None: :func:`frame_rate`'s default, warned)."""
    files = frame_files(folder)
    frame = decode_image(files[0], folder)
    rate = frame_rate(fps, [folder])
    return VideoInfo(str(folder), frame.width, frame.height, float(rate or DEFAULT_FPS), len(files),
                     f"frames ({files[0].suffix.lower()[1:]})", frame.format.name)


def frame_rate(fps: float | None, sources: Iterable[Path]) -> float | None:
    """The frame rate to give ``sources``' folders of frames: ``fps``, else :data:`DEFAULT_FPS` with one
    warning for all of them; None when none is a folder (a video file keeps its own rate)."""
    if fps is not None:
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        return float(fps)
    folders = [p for p in sources if Path(p).is_dir()]
    if not folders:
        return None
    log.warning("%s: image files carry no frame rate; assuming %g frames/s (give it with --fps, or `fps:` in "
                "the config)", folders[0] if len(folders) == 1 else f"{len(folders)} folders of frames",
                DEFAULT_FPS)
    return DEFAULT_FPS


def folder_fingerprint(folder: Path, sample: bool = True) -> SourceFile:
    """What identifies a folder of frames' content (module docstring), as
    :func:`damvad.extract.source_fingerprint` does a file's; OSError when it cannot be read."""
    try:
        files = frame_files(folder)
    except VideoError as exc:
        raise OSError(exc.cause) from exc
    stats = [p.stat() for p in files]
    mtime = max([folder.stat().st_mtime_ns, *(st.st_mtime_ns for st in stats)])
    digest = None
    if sample:
        h = hashlib.sha256()
        for path, st in zip(files, stats, strict=True):
            h.update(f"{path.name}\0{st.st_size}\0".encode())
            hash_ends(h, path, st.st_size, FRAME_SAMPLE)
        digest = h.hexdigest()
    return SourceFile(str(folder.resolve()), sum(st.st_size for st in stats), mtime, digest)


def folder_sha256(folder: Path) -> str:
    """A sha256 of every frame's name and whole content, in order: the checksum of a folder of frames where a
    file's sha256 is asked (int8 calibration sets)."""
    h = hashlib.sha256()
    for path in frame_files(folder):
        h.update(f"{path.name}\0".encode())
        h.update(path.read_bytes())
    return h.hexdigest()
