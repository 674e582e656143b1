"""Shared by the backend tests: the shared media clips, the golden I3D outputs, feature comparisons."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from damvad.device import cpu_isa, cpu_runs_bf16
from damvad.video import iter_frames, iter_snippets, snippet_to_input

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
VTEST = MEDIA / "vtest.avi"
UCF = sorted((MEDIA / "ucf-crime").glob("*.mp4")) if (MEDIA / "ucf-crime").is_dir() else []
GOLDEN = Path(__file__).parent / "data" / "i3d_golden_seed0_64f.npz"

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
