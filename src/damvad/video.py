"""Video input: decoding (PyAV), resizing, cropping and cutting into 64-frame snippets.

Decoding runs in a background thread (:class:`BackgroundIterator`) so it overlaps with the I3D
forward pass; PyAV and numpy release the GIL for the heavy work.

Preprocessing follows the I3D convention: RGB, shorter side resized to 256 (bilinear, by FFmpeg's
swscale while decoding), 224 x 224 crops, values scaled to [-1, 1].

Speed: swscale converts and resizes to *planar* RGB (``gbrp``) about 3x faster than to packed ``rgb24``
(its packed-RGB output path is unvectorised) with the same pixels (identical on vtest.avi's downscale;
at most one level apart on < 1 % of values elsewhere, tested), so frames are decoded as planes
and, on the extraction path, kept planar (``planar=True``: (3, H, W) frames, (T, 3, H, W) snippets) and
handed to the model as uint8 (``dtype="uint8"``): the backend scales to [-1, 1] inside its own graph.
One swscale context per video with one thread (:class:`damvad.frames.FrameConverter`), and with the
centre crop only the crop's window copied on (``crops="center"``). Measured in benchmarks/README.md.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

# damvad.video's API: decoded frames (damvad.frames) and snippets (damvad.snippets) are read from here too
from damvad.frames import (  # noqa: F401
    CROP,
    CROP_NAMES,
    RESIZE_SHORT,
    VIDEO_EXTENSIONS,
    FrameConverter,
    VideoError,
    VideoInfo,
    crop_offsets,
    normalize_crops,
    resized_size,
)
from damvad.snippets import SNIPPET_LEN, Snippet, check_stride, iter_snippets  # noqa: F401

if TYPE_CHECKING:
    from damvad.frametimes import FrameClock

NETWORK_TIMEOUT = (10.0, 10.0)  # seconds to open a URL, and without data before a read gives up (a stall)


def _open(source: str | int | os.PathLike, options: dict[str, str] | None = None):
    import av

    src: Any = source
    fmt = None
    if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
        # a webcam index: V4L2 device on Linux
        src, fmt = f"/dev/video{int(source)}", "v4l2"
    elif not is_live_source(source):
        path = Path(source)
        if not path.exists():
            raise VideoError(source, "file does not exist")
        if path.is_dir():
            raise VideoError(source, "is a directory, not a video file")
        if path.stat().st_size == 0:
            raise VideoError(source, "file is empty (0 bytes)")
        src = str(path)
    try:
        container = av.open(src, format=fmt, options=options or {}, timeout=NETWORK_TIMEOUT)
    except av.error.ExitError as exc:  # FFmpeg gave up on PyAV's timeout
        raise VideoError(source, f"no answer within {NETWORK_TIMEOUT[0]:.0f} s while opening it (is the "
                                 "address right, the server or camera up?)") from exc
    except Exception as exc:  # PyAV raises many FFmpeg error types
        raise VideoError(source, f"cannot open as a video ({type(exc).__name__}: {exc})") from exc
    if not container.streams.video:
        container.close()
        raise VideoError(source, "contains no video stream")
    return container


def is_live_source(source: str | int | os.PathLike) -> bool:
    """A URL (RTSP, HTTP...) or a webcam index, as opposed to a file: live sources can stall and reconnect."""
    if isinstance(source, int):
        return True
    if isinstance(source, os.PathLike):
        return False
    return "://" in source or source.isdigit()


def probe(source: str | int | os.PathLike, fps: float | None = None) -> VideoInfo:
    """Read a video's size, frame rate and declared frame count without decoding it.

    A folder of frames (:mod:`damvad.framefolder`) has no frame rate of its own: ``fps`` gives it (None:
    the default, with a warning); a video file's own rate is kept."""
    if _is_folder(source):
        from damvad.framefolder import probe_folder

        return probe_folder(Path(source), fps)
    container = _open(source)
    try:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        rate = stream.average_rate or stream.base_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        return VideoInfo(
            source=str(source),
            width=int(ctx.width or 0),
            height=int(ctx.height or 0),
            fps=fps,
            declared_frames=int(stream.frames or 0),
            codec=str(ctx.name),
            pix_fmt=ctx.pix_fmt,
        )
    finally:
        container.close()


def _is_folder(source: str | int | os.PathLike) -> bool:
    """A local folder: a video made of image files (:mod:`damvad.framefolder`)."""
    return not is_live_source(source) and Path(source).is_dir()


def decoder_threads() -> int:
    """FFmpeg decoder threads for one video, from the cores this process may use, read at run time: one per
    two cores (frame/slice threading, whichever the codec supports), so the decoder never takes the cores
    the model runs on; one (no threading) up to 3 cores. ``DAMVAD_DECODER_THREADS`` overrides it."""
    env = os.environ.get("DAMVAD_DECODER_THREADS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"DAMVAD_DECODER_THREADS must be a whole number >= 1, got {env!r}")
        return int(env)
    from damvad.utils import usable_cores

    return max(1, usable_cores() // 2)


def iter_frames(
    source: str | int | os.PathLike,
    short_side: int | None = RESIZE_SHORT,
    info: VideoInfo | None = None,
    planar: bool = False,
    clock: FrameClock | None = None,
    crops: str | None = None,
) -> Iterator[np.ndarray]:
    """Decoded RGB uint8 frames (H, W, 3), or (3, H, W) with ``planar``, shorter side ``short_side``.

    Any pixel format (grayscale, 10-bit, odd sizes) is converted by swscale (:class:`FrameConverter`:
    bilinear, to planar RGB, one context per video). ``crops="center"``: only the centre crop's window of
    each frame (what that crop setting uses; the same pixels). A decoding error in the middle of the file
    raises :class:`VideoError` saying how many frames were read before it. ``clock`` gets each frame's
    timestamp before the frame is handed on (:mod:`damvad.frametimes`). A folder of frames is decoded
    image by image (:func:`damvad.framefolder.iter_folder_frames`) through the same conversion; its frames
    have no timestamps, so its clock counts them at the frame rate it was given. Decoder threads:
    :func:`decoder_threads`. A frame FFmpeg marks damaged (decoded from a cut or corrupt packet) is handed on
    only once the next frame decodes: when an error follows instead, it is dropped, so a stream resumed after
    a cut (:func:`damvad.detect.reconnecting_frames`) gets that frame again, whole.
    """
    import av

    if _is_folder(source):
        from damvad.framefolder import iter_folder_frames

        yield from iter_folder_frames(Path(source), short_side, planar, crops)
        return
    container = _open(source)
    count = 0
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = decoder_threads()
        ctx = stream.codec_context
        if not ctx.width or not ctx.height:
            raise VideoError(source, "video stream has no frame size (corrupt header?)")
        convert = FrameConverter(short_side, planar, crops)
        try:
            cut_ends_file = not is_live_source(source)  # a stream cut is reconnected, not taken as its end
            for frame in _whole_frames(_decode_to_cut(container, stream, cut_ends_file)):
                count += 1
                if clock is not None:
                    clock.stamp(frame.time, _duration(frame))
                yield convert(frame)
        except av.error.ExitError as exc:  # no data within the read timeout: FFmpeg was told to give up
            raise VideoError(source, f"no data arrived for {NETWORK_TIMEOUT[1]:.0f} s after {count} frames "
                                     "(the source stalled)") from exc
        except av.error.FFmpegError as exc:
            raise VideoError(
                source, f"decoding failed after {count} frames, file truncated or corrupt ({exc})"
            ) from exc
    finally:
        container.close()


def _decode_to_cut(container: Any, stream: Any, cut_ends_file: bool) -> Iterator[Any]:
    """The stream's frames as ``container.decode`` gives them, packet by packet, except at a cut: a truncated
    file's last packet is incomplete (the demuxer flags it corrupt), and some decoders reject it outright where
    others conceal it (which one depends even on how many threads encoded the file). When the rejected packet
    is the file's last, the frames before it are all there is: they are kept, the decoder is drained, and the
    frame-count warning says what is missing. A decoding error anywhere else (or anywhere, without
    ``cut_ends_file``: live sources, whose cuts :func:`damvad.detect.reconnecting_frames` resumes) is raised."""
    import av

    packets = container.demux(stream)
    for packet in packets:
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            if not (cut_ends_file and packet.is_corrupt and _nothing_after(packets)):
                raise
            try:
                yield from stream.codec_context.decode(None)  # frames still inside a threaded decoder
            except av.error.FFmpegError:
                pass
            return
        yield from frames


def _nothing_after(packets: Iterator[Any]) -> bool:
    """Whether the demuxer has no packet left but its end-of-stream (empty) one."""
    return all(packet.size == 0 for packet in packets)


def _whole_frames(decoded: Iterable[Any]) -> Iterator[Any]:
    """Decoded frames, a damaged one (FFmpeg concealed an error in it: the last frame before a cut) held until
    the next frame decodes: dropped when an error follows instead, kept at the end (a truncated file's last
    frame; the frame-count warning says the rest)."""
    held = None
    for frame in decoded:
        if held is not None:
            yield held
            held = None
        if frame.is_corrupt:
            held = frame
        else:
            yield frame
    if held is not None:
        yield held


def _duration(frame: Any) -> float | None:
    """How long a decoded frame shows, in seconds, when its container says (None: unknown)."""
    duration, base = getattr(frame, "duration", None), frame.time_base
    return float(duration * base) if duration and base else None


def resize_frames(frames: Iterable[np.ndarray], short_side: int = RESIZE_SHORT) -> Iterator[np.ndarray]:
    """Resize raw RGB frames (e.g. from a camera SDK) exactly as decoded files are (swscale, bilinear)."""
    import av
    from av.video.reformatter import VideoReformatter

    reformatter = VideoReformatter()  # one swscale context for the stream, as FrameConverter
    for frame in frames:
        h, w = frame.shape[:2]
        size = resized_size(w, h, short_side)
        if (w, h) == size:
            yield frame
            continue
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        yield reformatter.reformat(vf, width=size[0], height=size[1], format="rgb24", interpolation="BILINEAR",
                                   threads=1).to_ndarray()


InputDType = Literal["float32", "uint8"]


def snippet_to_input(
    frames: np.ndarray,
    mode: str = "center",
    size: int = CROP,
    *,
    planar: bool = False,
    dtype: InputDType = "float32",
) -> np.ndarray:
    """(T, H, W, 3) uint8 frames ((T, 3, H, W) with ``planar``) -> (crops, 3, T, size, size), the I3D input.

    ``dtype="float32"``: scaled to [-1, 1] (x / 127.5 - 1), the model's input spec. ``dtype="uint8"``:
    the raw crops in [0, 255], 4x less memory, for backends that scale inside their graph
    (:mod:`damvad.backends`).
    """
    if frames.ndim != 4 or frames.shape[1 if planar else 3] != 3:
        layout = "(T, 3, H, W)" if planar else "(T, H, W, 3)"
        raise ValueError(f"expected {layout} frames, got {frames.shape}")
    if dtype not in ("float32", "uint8"):
        raise ValueError(f"dtype must be 'float32' or 'uint8', got {dtype!r}")
    if planar:
        t, _, h, w = frames.shape
        channels_first = frames.transpose(1, 0, 2, 3)  # (C, T, H, W) view
    else:
        t, h, w, _ = frames.shape
        channels_first = frames.transpose(3, 0, 1, 2)
    offsets = crop_offsets(h, w, mode, size)
    out = np.empty((len(offsets), 3, t, size, size), dtype=np.dtype(dtype))
    for i, (y, x, flip) in enumerate(offsets):
        crop = channels_first[:, :, y : y + size, x : x + size]
        if flip:
            crop = crop[..., ::-1]
        if dtype == "uint8":
            out[i] = crop
        else:  # scaled in place to [-1, 1]
            np.multiply(crop, 1.0 / 127.5, out=out[i], casting="unsafe")
            out[i] -= 1.0
    return out


_END = object()


@dataclass
class BackgroundIterator:
    """Run an iterator in a daemon thread, a bounded queue ahead of the consumer.

    Exceptions raised by the producer are re-raised in the consumer at the point they happened;
    ``close()`` stops the producer early (a consumer that gives up loses nothing but the queue).
    """

    source: Iterable[Any]
    maxsize: int = 4
    _queue: queue.Queue = field(init=False)
    _stop: threading.Event = field(init=False)
    _thread: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self._queue = queue.Queue(maxsize=self.maxsize)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="damvad-decoder", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self.source:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:  # handed to the consumer
            self._put(_Raised(exc))
        finally:
            close = getattr(self.source, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    pass

    def __iter__(self) -> Iterator[Any]:
        try:
            while True:
                item = self._queue.get()
                if item is _END:
                    return
                if isinstance(item, _Raised):
                    raise item.exc
                yield item
        finally:
            self.close()

    def close(self) -> None:
        self._stop.set()


@dataclass
class _Raised:
    exc: BaseException


def snippet_inputs(
    frames: Iterable[np.ndarray],
    crops: str = "center",
    snippet_len: int = SNIPPET_LEN,
    *,
    source: Any = "<frames>",
    planar: bool = False,
    dtype: InputDType = "float32",
    stride: int | None = None,
) -> Iterator[tuple[Snippet, np.ndarray]]:
    """(snippet, model input (crops, 3, T, 224, 224)) pairs from frames: the one path from frames to I3D
    inputs, shared by extraction (:func:`preprocessed_snippets`, the batched GPU path) and live detection,
    so a live camera's inputs are exactly those its features were extracted from. Runs in the caller's
    thread; :func:`preprocessed_snippets` runs it in a background one. ``stride``: see :func:`iter_snippets`."""
    mode = normalize_crops(crops)
    for snip in iter_snippets(frames, snippet_len, source=source, planar=planar, stride=stride):
        yield snip, snippet_to_input(snip.frames, mode, planar=planar, dtype=dtype)


def preprocessed_snippets(
    source: str | int | os.PathLike,
    crops: str = "center",
    snippet_len: int = SNIPPET_LEN,
    prefetch: int = 3,
    dtype: InputDType = "float32",
    *,
    frames: Iterable[np.ndarray] | None = None,
    planar: bool = True,
    stride: int | None = None,
) -> Iterator[tuple[Snippet, np.ndarray]]:
    """:func:`snippet_inputs` in a background thread, ``prefetch`` snippets ahead of the consumer.

    ``frames``: frames already coming from ``source`` (a reconnecting stream, a camera SDK), ``planar``
    saying their layout; default: ``source`` decoded as planar frames (the fast path)."""
    crops = normalize_crops(crops)  # a bad crop mode fails here, not in the background thread
    check_stride(stride, snippet_len)  # idem
    if frames is None:
        frames, planar = iter_frames(source, planar=True, crops=crops), True
    inputs = snippet_inputs(frames, crops, snippet_len, source=source, planar=planar, dtype=dtype, stride=stride)
    return iter(BackgroundIterator(inputs, maxsize=prefetch))


def expand_sources(sources: list[str]) -> list[str]:
    """Sources to score (``detect``, ``serve``): folders expanded into their videos (files and folders of frames),
    URLs and webcam indices passed through."""
    out: list[str] = []
    for s in sources:
        if is_live_source(s):
            out.append(s)
        else:
            out.extend(str(p) for p in find_videos([s]))
    return out


def find_videos(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand files, folders (recursively) and ``.txt`` lists (one path per line) into video paths.

    A folder's videos are its video files and its folders of frames (:func:`damvad.framefolder.scan_folder`;
    a folder holding both images and videos or sub-folders of images is an error); a folder of frames given
    itself is one video. Missing paths are kept so that the extractor reports them per video instead of
    failing the batch.
    """
    from damvad.framefolder import scan_folder

    out: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            out.extend(scan_folder(path))
        elif path.suffix.lower() in (".txt", ".lst", ".list") and path.is_file():
            for line in path.read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    entry = Path(line)
                    out.append(entry if entry.is_absolute() else (path.parent / entry))
        else:
            out.append(path)
    return out


def video_name(path: str | os.PathLike) -> str:
    """The name a video's features are kept under: a file's stem, a folder of frames' own name."""
    path = Path(path)
    return path.name if path.is_dir() else path.stem


# ---------------------------------------------------------------------------- writing
# One writer for every video damvad makes (generated datasets, detect's annotated copies).

_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}


def video_codec() -> str:
    """MPEG-4 Part 2 (FFmpeg's own encoder, in every PyAV build): the same frames give the same bytes.

    libx264 was dropped for generated data: on this project's machines it encoded the same frames
    differently from run to run even with one thread (up to 48 levels on 7 % of pixels, seen in 4 of 30
    encodes), so a dataset was not a function of its seed. At 0.5 bit per pixel MPEG-4 matches x264's
    crf 18 in PSNR (35.5 vs 35.3 dB on a generated scene) at about 6x the file size.
    """
    return "mpeg4"


TIME_BASE = Fraction(1, 60000)  # written timestamps: 24, 25, 30, 50, 60 and 30000/1001 fps exactly; MPEG-4's limit


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float = 25,
                times: Iterable[float] | None = None) -> int:
    """Encode RGB uint8 frames to ``path`` (MPEG-4 Part 2, yuv420p, 0.5 bit per pixel; see :func:`video_codec`).

    Deterministic: the same frames give the same bytes. ``times``: each frame's time in seconds (a
    variable frame rate kept, e.g. an annotated copy), one per frame; default ``index / fps``.

    The file appears atomically (written to a temporary file in the same folder, then renamed).
    Returns the number of frames written.
    """
    import av

    from damvad.utils import atomic_open

    path = Path(path)
    fmt = _CONTAINERS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"write_video: {path}: unsupported extension {path.suffix!r}; use one of {sorted(_CONTAINERS)}"
        )
    rate = Fraction(fps).limit_denominator(1001)
    stamps = iter(times) if times is not None else None
    count = pts = 0
    with atomic_open(path, "wb") as fh:
        container = av.open(fh, "w", format=fmt)
        ok = False
        try:
            stream = None
            for frame in frames:
                arr = np.asarray(frame)
                if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
                    raise ValueError(f"write_video: {path}: frame {count} must be H x W x 3 uint8, got "
                                     f"{arr.dtype} {arr.shape}")
                if stream is None:
                    h, w = arr.shape[:2]
                    if h % 2 or w % 2:
                        raise ValueError(f"write_video: {path}: yuv420p needs even dimensions, got {w} x {h}")
                    stream = container.add_stream(video_codec(), rate=rate)
                    stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
                    stream.codec_context.thread_count = 1  # one thread: the bytes never depend on timing
                    stream.bit_rate = int(w * h * float(rate) * 0.5)  # 0.5 bit per pixel
                    if stamps is not None:
                        stream.codec_context.time_base = stream.time_base = TIME_BASE
                    shape = arr.shape
                elif arr.shape != shape:
                    raise ValueError(
                        f"write_video: {path}: frame {count} is {arr.shape}, frame 0 was {shape}"
                    )
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
                # strictly increasing, as the encoder needs
                pts = count if stamps is None else max(pts + 1 if count else 0, round(next(stamps) / TIME_BASE))
                vf.pts = pts
                if stamps is not None:
                    vf.time_base = TIME_BASE
                for packet in stream.encode(vf):
                    container.mux(packet)
                count += 1
            if stream is None:
                raise ValueError(f"write_video: {path}: no frames to write")
            for packet in stream.encode():
                container.mux(packet)
            ok = True
        finally:
            try:
                container.close()
            except Exception:
                if ok:
                    raise  # otherwise keep the original error, not the muxer's complaint about it
    return count
