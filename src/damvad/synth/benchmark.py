"""Named, versioned synthetic benchmarks: fixed generator settings that results can cite.

``synth-ucf-v1`` is shaped like UCF-Crime where it matters for DAM: every video has at least 16
snippets (>= 1,024 frames, up to 4,096), anomalous videos hold 1-3 events that cover a minority of
their frames (from under one 64-frame snippet to ~8 snippets long) at random times, and every video,
normal or not, holds benign changes (lighting drift and changes, camera shake, busy spells, groups
walking through) so that "the picture changed" is not "an anomaly happened". Train (video labels only),
dev (frame labels, for every decision) and test (frame labels, scored once settings are written down)
come from disjoint random streams of the seed.

A preset never changes once results cite it: change the settings and the name gets a new version.
"""

from __future__ import annotations

from typing import Any

# Event durations (seconds, drawn log-uniformly): under one snippet (64 frames = 2.56 s at 25 fps) to many.
UCF_SHAPED_DURATIONS = (
    ("run", 1.5, 8.0),
    ("fight", 2.0, 20.0),
    ("fall", 2.0, 15.0),
    ("explosion", 2.0, 8.0),
    ("collision", 2.5, 12.0),
    ("vehicle", 1.5, 2.6),
)

_UCF_SHAPED = dict(
    num_frames=(1024, 4096),
    length_skew=3.0,  # most videos near 1,024 frames, a tail to 4,096 (mean ~1,550: extraction < 1 h)
    size=(320, 240),
    fps=25,
    durations=UCF_SHAPED_DURATIONS,
    max_events=3,
    p_more_events=0.5,
    max_event_fraction=0.35,
    benign=True,
)

BENCHMARKS: dict[str, dict[str, Any]] = {
    "synth-ucf-v1": dict(
        _UCF_SHAPED,
        n_train_normal=50, n_train_anomalous=50,
        n_dev_normal=12, n_dev_anomalous=12,
        n_test_normal=20, n_test_anomalous=20,
        seed=20261129,
    ),
    # The demo: a small slice made by the same generator (every video >= 16 snippets), sized for ~10 min.
    "synth-demo-v1": dict(
        _UCF_SHAPED,
        num_frames=(1024, 1280),
        n_train_normal=8, n_train_anomalous=8,
        n_test_normal=4, n_test_anomalous=4,
        seed=7,
    ),
}


def benchmark_params(name: str) -> dict[str, Any]:
    """The generator parameters of a named benchmark (a copy; pass them to ``generate_dataset``)."""
    try:
        return dict(BENCHMARKS[name])
    except KeyError:
        raise ValueError(f"unknown synthetic benchmark {name!r}; known: {', '.join(BENCHMARKS)}") from None
