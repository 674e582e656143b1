"""Shared by the backend tests: the shared media clips, the golden I3D outputs, feature comparisons."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from damvad.device import cpu_isa, cpu_runs_bf16
from damvad.video import iter_frames, iter_snippets, snippet_to_input

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
VTEST = MEDIA / "vtest.avi"
UCF = sorted((MEDIA / "ucf-crime").glob("*.mp4")) if (MEDIA / "ucf-crime").is_dir() else []
GOLDEN = Path(__file__).parent / "data" / "i3d_golden_seed0_64f.npz"
# OpenVINO fp32 5-crop logits of vtest's full snippets, stored with the sha256 of the inputs they were made from:
# the int8 top-1 gate's reference without ~100 s of fp32 I3D per CI run (2 AVX2 cores). Rewrite it with
# `python tests/backendtools.py` after a change to decoding, resizing or cropping.
VTEST_FP32_LOGITS = Path(__file__).parent / "data" / "vtest_5crop_fp32_logits.npz"

# torch bf16 I3D where the CPU runs it (AVX-512 or AMX); elsewhere torch refuses it (tests/test_backends_torch.py)
needs_cpu_bf16 = pytest.mark.skipif(not cpu_runs_bf16(), reason=f"this CPU ({cpu_isa()}) has no bf16 convolutions: "
                                    "torch refuses bf16 here; CPUs with AVX-512 or AMX run this test")


def cosine(a, b) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def rel_l2(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def real_snippets(videos: list[Path], per_video: int) -> list[np.ndarray]:
    """uint8 centre crops of up to ``per_video`` full snippets of each video, evenly spread."""
    out = []
    for video in videos:
        snips = [s for s in iter_snippets(iter_frames(video, planar=True), planar=True) if s.end - s.start == 64]
        for i in np.unique(np.linspace(0, len(snips) - 1, min(per_video, len(snips))).round().astype(int)):
            out.append(snippet_to_input(snips[int(i)].frames, planar=True, dtype="uint8"))
    return out


def vtest_5crop_inputs() -> list[np.ndarray]:
    """uint8 5-crop inputs of every full 64-frame snippet of vtest.avi (what the int8 top-1 gate scores)."""
    return [snippet_to_input(s.frames, "5", planar=True, dtype="uint8")
            for s in iter_snippets(iter_frames(VTEST, planar=True), planar=True) if s.end - s.start == 64]


def inputs_sha256(inputs: list[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for x in inputs:
        digest.update(repr((x.shape, str(x.dtype))).encode())
        digest.update(np.ascontiguousarray(x).tobytes())
    return digest.hexdigest()


def vtest_fp32_reference(inputs: list[np.ndarray], fp32_backend: Callable) -> tuple[list[torch.Tensor], str]:
    """fp32 logits of ``inputs`` (vtest's 5-crop snippets) and where they came from: the stored reference when it
    was made from these very inputs (same sha256), else computed now with ``fp32_backend()`` (decoding or
    cropping changed, or this CPU's swscale rounds differently)."""
    if VTEST_FP32_LOGITS.exists():
        with np.load(VTEST_FP32_LOGITS) as stored:
            if str(stored["inputs_sha256"]) == inputs_sha256(inputs):
                return [torch.from_numpy(lg) for lg in stored["logits"]], "stored"
    backend = fp32_backend()
    return [backend.logits(x) for x in inputs], "computed"


if __name__ == "__main__":  # rewrite the stored reference (see VTEST_FP32_LOGITS)
    from damvad import __version__
    from damvad.extraction import open_backend

    inputs = vtest_5crop_inputs()
    sha = inputs_sha256(inputs)
    backend = open_backend(backend="openvino", precision="fp32", progress=False)
    logits = np.stack([backend.logits(x).numpy() for x in inputs]).astype(np.float32)
    np.savez_compressed(VTEST_FP32_LOGITS, logits=logits, inputs_sha256=sha,
                        made_with=f"damvad {__version__}, OpenVINO fp32, {cpu_isa()}")
    print(f"{VTEST_FP32_LOGITS}: {logits.shape} logits, inputs sha256 {sha[:16]}...")
