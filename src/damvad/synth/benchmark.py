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

from pathlib import Path
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

# synth-ucf-v2: events mostly >= one snippet, seen whole by the centre crop (falls and collisions no nearer
# than 7.5 m: nearer, the body lies below the crop), labelled only while inside it (crop_labels).
V2_DURATIONS = (
    ("run", 2.5, 6.0),
    ("fight", 3.0, 10.0),
    ("fall", 3.0, 9.0),
    ("explosion", 3.0, 7.0),
    ("collision", 3.0, 9.0),
    ("vehicle", 1.8, 3.2),
)
V2_DEPTHS = (
    ("run", 7.0, 12.0),
    ("fight", 7.0, 11.0),
    ("fall", 7.5, 11.5),
    ("explosion", 8.5, 13.0),
    ("collision", 7.5, 11.5),
    ("vehicle", 10.0, 17.0),
)

_V2 = dict(
    num_frames=(1024, 1280),
    size=(320, 240),
    fps=25,
    durations=V2_DURATIONS,
    depths=V2_DEPTHS,
    max_events=2,
    p_more_events=0.5,
    max_event_fraction=0.35,
    benign=True,
    benign_kinds=("light", "crowd", "group"),  # shake is a near miss now
    cameras=12,
    unseen_cameras=3,
    unseen_share=0.2,
    balance_events=True,
    near_miss=(1, 3),
    crop_labels=True,
    paired=True,  # normal and anomalous video i share length, camera, benign changes and near misses
)
# The demo's draws: the v2 recipe on 4 cameras, 6 + 6 test videos (the test split has its own random stream, so
# every training size gets the same test videos).
_DEMO = dict(_V2, cameras=4, unseen_cameras=0, unseen_share=0.0, n_test_normal=6, n_test_anomalous=6, seed=8)

BENCHMARKS: dict[str, dict[str, Any]] = {
    "synth-ucf-v1": dict(
        _UCF_SHAPED,
        n_train_normal=50, n_train_anomalous=50,
        n_dev_normal=12, n_dev_anomalous=12,
        n_test_normal=20, n_test_anomalous=20,
        seed=20261129,
    ),
    # A camera pool (12 seen + 3 test-only), balanced event kinds, near misses for every kind, crop labels.
    "synth-ucf-v2": dict(
        _V2,
        n_train_normal=150, n_train_anomalous=150,
        n_dev_normal=30, n_dev_anomalous=30,
        n_test_normal=50, n_test_anomalous=50,
        seed=20261202,
    ),
    # The demo until 2026-12-02 (damvad demo --quick still uses it): synth-ucf-v2's recipe on a few cameras.
    "synth-demo-v2": dict(_DEMO, n_train_normal=12, n_train_anomalous=12),
    # The demo since 2026-12-02 (issue 19): synth-demo-v2 with 24 + 24 training videos (chosen on dev draws,
    # benchmarks/demo-dev-study.md); the same seed, so the same 6 + 6 test videos (the test split has its own stream).
    "synth-demo-v3": dict(_DEMO, n_train_normal=24, n_train_anomalous=24),
    # The demo since 2026-12-03 (issue 19): half-length videos (512-640 frames, 8-10 snippets), so that 90 + 90
    # training videos fit the demo's minutes; 8 + 8 test videos (benchmarks/demo-dev-study.md, fourth round).
    "synth-demo-v4": dict(_DEMO, num_frames=(512, 640), n_train_normal=90, n_train_anomalous=90, n_test_normal=8,
                          n_test_anomalous=8),
    # The demo on CPUs without fast int8 units since 2026-12-05 (issue 19): quarter-length videos (256-320 frames,
    # 4-5 snippets), 64 + 64 training, 8 + 8 test (benchmarks/demo-dev-study.md, seventh round: N).
    "synth-demo-v5": dict(_DEMO, num_frames=(256, 320), n_train_normal=64, n_train_anomalous=64, n_test_normal=8,
                          n_test_anomalous=8),
    # The former demo: a small slice made by the same generator (every video >= 16 snippets), sized for ~10 min.
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


def describe(root: str | Path) -> str:
    """``--summary`` of a generated benchmark: the dataset table (videos, frames, anomalous frames, snippets
    per video per split), then its events and benign changes per split, from its ``synth.json``."""
    import json

    import numpy as np

    from damvad.datasets import dataset_summary, get_dataset
    from damvad.synth.dataset import _DEBUG_KEY, SPLITS

    root = Path(root)
    manifest_path = root / "synth.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path}: no generated benchmark here (run `damvad benchmark prepare`)")
    manifest = json.loads(manifest_path.read_text())
    lines = [dataset_summary(get_dataset(root)), "", f"generator parameters: {json.dumps(manifest['params'])}"]
    hidden = manifest.get(_DEBUG_KEY, {})
    for split in SPLITS:
        videos = [v for v in manifest["videos"] if v["split"] == split]
        if not videos:
            continue
        events = [e for v in videos for e in (v.get("events") or hidden.get(v["name"], []))]
        anomalous = [v for v in videos if v["label"] == 1]
        lengths = np.array([e["end_frame"] - e["start_frame"] for e in events]) if events else np.zeros(1)
        frames = sum(v["num_frames"] for v in anomalous) or 1
        benign: dict[str, list[int]] = {}
        for label in (0, 1):
            for v in (v for v in videos if v["label"] == label):
                for b in v.get("benign", []):
                    benign.setdefault(b["kind"], [0, 0])[label] += 1
        n_norm, n_anom = len(videos) - len(anomalous), len(anomalous)
        kinds = ", ".join(f"{k} {c[0] / max(n_norm, 1):.1f} / {c[1] / max(n_anom, 1):.1f}" for k, c in benign.items())
        lines += [
            f"{split}: {len(events)} events in {len(anomalous)} anomalous videos ({len(events) / max(n_anom, 1):.2f} "
            f"per video), {lengths.min()} / {int(np.median(lengths))} / {lengths.max()} frames long (min / median "
            f"/ max; {lengths.min() / 64:.1f} to {lengths.max() / 64:.1f} snippets), covering "
            f"{100 * lengths.sum() / frames:.1f} % of the anomalous videos' frames"
            + (" (training events are hidden from training; shown here only)" if split == "train" else ""),
            f"{split}: benign changes per normal / anomalous video: {kinds}",
        ]
    return "\n".join(lines)
