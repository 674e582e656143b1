"""Shared bits of the benchmark scripts: locating the sample clip, medians, the closing line."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_CLIP = REPO.parent / "shared" / "media" / "vtest.avi"


def default_video() -> Path:
    if not SHARED_CLIP.exists():
        raise SystemExit(f"{SHARED_CLIP} not found: pass --video PATH (any surveillance clip)")
    return SHARED_CLIP


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
