"""Writers of small test videos (PyAV), shared by the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_video(
    path: Path,
    num_frames: int,
    width: int = 96,
    height: int = 64,
    fps: int = 25,
    codec: str = "mpeg4",
    pix_fmt: str = "yuv420p",
    seed: int = 0,
    gray: bool = False,
) -> Path:
    """Frames of moving noise blocks; ``num_frames=0`` writes a container with a stream but no frame."""
    import av

    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.codec_context.thread_count = 1  # the same bytes on every machine (threads change the packets)
        if num_frames == 0:
            container.start_encoding()  # header with a video stream and no frame at all
        base = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
        for i in range(num_frames):
            img = np.roll(base, 3 * i, axis=1)
            if gray:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[..., 0]), format="gray")
            else:
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def fake_features(x):
    """A cheap deterministic stand-in for I3D with the right output shape, for pipeline tests."""
    import torch

    n, c, t, h, w = x.shape
    pooled = x.float().mean(dim=(3, 4))  # (N, 3, T)
    per_step = pooled.reshape(n, c, t // 8, 8).mean(-1)[:, :, : t // 8 - 1]  # (N, 3, 7)
    ramp = torch.linspace(0, 1, 1024)
    return (per_step.mean(1, keepdim=True).transpose(1, 2) + ramp)  # (N, 7, 1024)


def write_small_batch(root: Path) -> Path:
    """``root`` with a.mp4 (150 frames), b.mp4 (64: one snippet) and c.avi (1 frame: one padded snippet)."""
    root.mkdir(parents=True, exist_ok=True)
    write_video(root / "a.mp4", 150, seed=1)
    write_video(root / "b.mp4", 64, seed=2)
    write_video(root / "c.avi", 1, seed=3)
    return root


IMAGE_CODECS = {".png": ("png", "rgb24"), ".jpg": ("mjpeg", "yuvj420p"), ".bmp": ("bmp", "bgr24"),
                ".tif": ("tiff", "rgb24")}


def write_image(path: Path, rgb: np.ndarray) -> Path:
    """One RGB uint8 image file, its format from the extension (PyAV's image encoders)."""
    import av

    codec, pix_fmt = IMAGE_CODECS[path.suffix.lower()]
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream(codec, rate=1)
        stream.width, stream.height, stream.pix_fmt = rgb.shape[1], rgb.shape[0], pix_fmt
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format=pix_fmt)
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return path


def write_frame_folder(folder: Path, num_frames: int, width: int = 64, height: int = 48, ext: str = ".png",
                       seed: int = 0) -> Path:
    """A folder of frames 0.png, 1.png, ... (unpadded numbers: natural order matters) of moving noise."""
    folder.mkdir(parents=True, exist_ok=True)
    base = np.random.default_rng(seed).integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    for i in range(num_frames):
        write_image(folder / f"{i}{ext}", np.roll(base, 3 * i, axis=1))
    return folder


def write_lossless_video(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """RGB frames stored losslessly (libx264rgb, qp 0): decoded, they are the same pixels."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264rgb", rate=fps, options={"qp": "0"})
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "bgr24"
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[..., ::-1]), format="bgr24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


VFR_TIMES = [k / 30 if k < 64 else 64 / 30 + (k - 64) / 5 for k in range(130)]  # 0-63 at 30 fps, then 5 fps


def write_vfr_video(path: Path) -> Path:
    """A variable-frame-rate MP4 (as phones record): frames 0-63 at 30 fps, 64-129 at 5 fps (``VFR_TIMES``),
    so frame 64 shows at 2.13 s where the average rate (8.6 fps) would put it at 7.5 s."""
    from damvad.video import write_video as write_frames

    base = np.random.default_rng(0).integers(0, 255, size=(64, 96, 3), dtype=np.uint8)
    write_frames(path, (np.roll(base, 3 * i, axis=1) for i in range(len(VFR_TIMES))), fps=30, times=VFR_TIMES)
    return path
