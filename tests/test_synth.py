"""Tests of damvad.synth: specs, ground truth, determinism, video files, dataset layout, and honesty
(an anomaly must not be detectable from a global artefact of the generator)."""

from __future__ import annotations

import csv
import itertools
import json
import math
import time

import av
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from damvad.synth import (
    EVENT_KINDS,
    EventSpec,
    VideoSpec,
    draw,
    events,
    generate_dataset,
    load_ground_truth,
    make_video_spec,
    min_anomalous_frames,
    people,
    render_frames,
    synthetic_stream,
    write_video,
)
from damvad.synth import dataset as synth_dataset

SMALL = (160, 120)
FPS = 25


def _spec(events=(), n=60, seed=3, size=SMALL) -> VideoSpec:
    return VideoSpec("t", n, FPS, size, seed, tuple(events), 1 if events else 0)


def _decode(path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255.0**2 / mse)


# ------------------------------------------------------------------------------------------------ specs


def test_frame_labels_are_0_based_end_exclusive():
    spec = VideoSpec("v", 100, FPS, SMALL, 0, (EventSpec("run", 10, 20), EventSpec("fall", 50, 53)), 1)
    expected = [10 <= t < 20 or 50 <= t < 53 for t in range(100)]  # hand-written definition
    assert spec.frame_labels().tolist() == expected
    assert spec.frame_labels().sum() == 13
    assert not _spec().frame_labels().any()


def test_make_video_spec_follows_the_rules():
    rng = np.random.default_rng(0)
    kinds_seen, n_two = set(), 0
    start_min = math.ceil(1.5 * FPS)
    for i in range(300):
        n = int(rng.integers(min_anomalous_frames(FPS), 449))
        normal = make_video_spec(f"n{i}", "normal", n, rng)
        assert normal.label == 0 and normal.events == () and normal.num_frames == n
        spec = make_video_spec(f"a{i}", 1, n, rng)
        assert spec.label == 1 and 1 <= len(spec.events) <= 2
        n_two += len(spec.events) == 2
        prev_end = None
        for ev in spec.events:
            kinds_seen.add(ev.kind)
            assert ev.start_frame >= start_min, "never at the very start"
            assert ev.end_frame <= n - math.ceil(0.5 * FPS), "some normal activity after the event"
            assert math.ceil(1.5 * FPS) <= ev.num_frames <= 5 * FPS, (ev, "lasts 1.5-5 s")
            assert 0.3 <= ev.position[0] <= 0.7, "inside the I3D centre crop"
            if prev_end is not None:
                assert ev.start_frame >= prev_end + FPS, "two events do not overlap"
            prev_end = ev.end_frame
        gt = spec.frame_labels()
        assert gt.sum() == sum(e.num_frames for e in spec.events)
    assert kinds_seen == set(EVENT_KINDS)
    assert 30 < n_two < 200
    assert make_video_spec("k", 1, 200, rng, kind="vehicle").events[0].kind == "vehicle"
    assert min_anomalous_frames(FPS) == 38 + 38 + 13  # 1.5 s normal, 1.5 s event, 0.5 s normal
    make_video_spec("shortest", 1, min_anomalous_frames(FPS), rng)
    with pytest.raises(ValueError, match="no room for an event"):
        make_video_spec("short", 1, min_anomalous_frames(FPS) - 1, rng)
    with pytest.raises(ValueError, match="unknown event kind"):
        make_video_spec("bad", 1, 200, rng, kinds=("dance",))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: EventSpec("dance", 10, 20), "unknown kind"),
        (lambda: EventSpec("run", 20, 20), "start_frame < end_frame"),
        (lambda: EventSpec("run", -1, 20), "start_frame < end_frame"),
        (lambda: EventSpec("run", 1.5, 20), "integer"),
        (lambda: EventSpec("run", 10, 20, (0.5, 0.3)), "off the plaza"),
        (lambda: VideoSpec("v", 50, FPS, SMALL, 0, (EventSpec("run", 10, 60),), 1), "ends after"),
        (lambda: VideoSpec("v", 50, FPS, SMALL, 0, (EventSpec("run", 10, 20),), 0), "normal video"),
        (lambda: VideoSpec("v", 50, FPS, SMALL, 0, (), 1), "needs at least one event"),
        (lambda: VideoSpec("v", 0, FPS, SMALL), "num_frames"),
        (lambda: VideoSpec("v", 10, FPS, (16, 16)), "at least 32"),
        (lambda: synthetic_stream(10, 0, [EventSpec("run", 5, 20)]), "ends after"),
    ],
)
def test_invalid_specs_are_refused_with_a_clear_message(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_spec_dict_roundtrip():
    spec = make_video_spec("x", "anomalous", 300, np.random.default_rng(5))
    assert VideoSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


# ------------------------------------------------------------------------------------------------ frames


def test_render_is_deterministic_with_the_right_shape_and_dtype():
    ev = EventSpec("fight", 10, 40, (0.5, 0.7), seed=2)
    a = list(render_frames(_spec([ev], n=45)))
    b = list(render_frames(_spec([ev], n=45)))
    assert len(a) == 45
    assert all(f.shape == (120, 160, 3) and f.dtype == np.uint8 for f in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    other = next(render_frames(_spec([ev], n=45, seed=4)))
    assert not np.array_equal(a[0], other)
    assert not np.array_equal(a[0], a[1])  # time moves: noise and people
    square = list(render_frames(VideoSpec("sq", 3, FPS, (256, 256), 1)))
    assert square[0].shape == (256, 256, 3)
    odd = next(render_frames(VideoSpec("odd", 1, FPS, (161, 121), 1)))
    assert odd.shape == (121, 161, 3)


def test_synthetic_stream_is_lazy_exact_and_matches_render_frames():
    t0 = time.perf_counter()
    head = list(itertools.islice(synthetic_stream(10**9, seed=1, size=SMALL), 3))
    assert len(head) == 3 and time.perf_counter() - t0 < 10  # a billion frames were not rendered
    endless = synthetic_stream(None, seed=1, size=SMALL)
    assert all(np.array_equal(x, y) for x, y in zip(itertools.islice(endless, 3), head, strict=True))
    ev = EventSpec("run", 2, 6)
    frames = list(synthetic_stream(7, seed=2, events=[ev], size=SMALL))
    assert len(frames) == 7
    ref = list(render_frames(VideoSpec("stream", 7, FPS, SMALL, 2, (ev,), 1)))
    assert all(np.array_equal(x, y) for x, y in zip(frames, ref, strict=True))


def _diff_masks(kind: str, size=SMALL, seed=7, start=30, end=90, n=110):
    ev = EventSpec(kind, start, end, (0.5, 0.72), seed=5)
    with_ev = render_frames(VideoSpec("a", n, FPS, size, seed, (ev,), 1))
    without = render_frames(VideoSpec("b", n, FPS, size, seed))
    return [np.any(x != y, axis=2) for x, y in zip(with_ev, without, strict=True)]


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_events_are_local_and_visible_whenever_labelled(kind):
    """Same seed with and without the event: the frames differ only near the event's actors (no global
    change of brightness, colour or noise), and the event shows in every frame it is labelled."""
    masks = _diff_masks(kind)
    H = SMALL[1]
    frac = np.array([m.mean() for m in masks])
    limit = 0.3 if kind == "explosion" else 0.08  # fireball and smoke of a 1.5-2.4 m blast at ~10 m
    assert frac.max() < limit, (kind, frac.max())
    if kind != "explosion":  # smoke rises; everything else stays below the roofs' base line
        assert not any(m[: int(0.4 * H)].any() for m in masks), kind
    assert all(m.any() for m in masks[30:90]), f"{kind} invisible in some of its labelled frames"
    if kind == "vehicle":  # the only event without people walking in before and away after
        assert not any(m.any() for m in masks[:30] + masks[90:])


def test_a_fallen_person_lies_horizontally():
    masks = _diff_masks("fall", size=(320, 240), start=30, end=130, n=140)

    def box(m):
        ys, xs = np.nonzero(m)
        return xs.max() - xs.min() + 1, ys.max() - ys.min() + 1

    w_walk, h_walk = box(masks[26])
    w_lie, h_lie = box(masks[80])
    assert h_walk > 1.2 * w_walk, (w_walk, h_walk)
    assert w_lie > 1.8 * h_lie, (w_lie, h_lie)
    # The body frame agrees: lying means every joint is within 0.25 m of the ground.
    J = people._skeleton(1.75, 1.0, events._lying_pose(math.pi / 2))
    assert J[:, 1].max() < 0.4 and J[:, 1].min() >= 0
    standing = people._skeleton(1.75, 1.0, people._Pose())
    assert 1.55 < standing[:, 1].max() < 1.75  # centre of the hair; the head's top is higher


def test_capsule_rasteriser_matches_a_per_pixel_reference():
    """Closed-form grouped compositing == painting capsules one after another, pixel by pixel."""
    rng = np.random.default_rng(1)
    H, W = 40, 50
    frame = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    n = 6
    p0 = rng.uniform(5, 45, (n, 2)).astype(np.float32)
    p1 = (p0 + rng.normal(0, 8, (n, 2))).astype(np.float32)
    r = rng.uniform(0.5, 5, n).astype(np.float32)
    col = rng.uniform(0, 255, (n, 3)).astype(np.float32)
    alpha = rng.uniform(0.3, 1, n).astype(np.float32)
    got = frame.copy()
    draw._draw_capsules(got, p0, p1, r, col, alpha)
    ref = frame.astype(np.float64)
    ys, xs = np.mgrid[0:H, 0:W]
    for i in range(n):  # independent reference: distance to segment, then 'over' in order
        d = p1[i] - p0[i]
        t = np.clip(((xs - p0[i, 0]) * d[0] + (ys - p0[i, 1]) * d[1]) / max(d @ d, 1e-6), 0, 1)
        dist = np.hypot(xs - p0[i, 0] - t * d[0], ys - p0[i, 1] - t * d[1])
        a = (np.clip(r[i] + 0.5 - dist, 0, 1) * alpha[i])[..., None]
        ref = ref * (1 - a) + col[i] * a
    assert np.abs(got.astype(int) - np.floor(ref + 0.5).astype(int)).max() <= 1


# ------------------------------------------------------------------------------------------------ honesty


def _trivial_scores(spec: VideoSpec) -> list[np.ndarray]:
    """Per-frame global mean intensity and mean |frame difference|; also for a copy of the video with
    a deliberate global artefact during its events (a +6 grey-level jump plus +-3 flicker), the
    positive control showing that these detectors would catch a dishonest generator."""
    gt = spec.frame_labels()
    mean, diff, mean_bad, diff_bad = [], [], [], []
    prev = prev_bad = None
    for t, f in enumerate(render_frames(spec)):
        g = f.mean(2, dtype=np.float32)
        bad = g + (6 + 3 * (-1) ** t) * gt[t]
        mean.append(g.mean())
        mean_bad.append(bad.mean())
        diff.append(np.abs(g - prev).mean() if prev is not None else np.nan)
        diff_bad.append(np.abs(bad - prev_bad).mean() if prev is not None else np.nan)
        prev, prev_bad = g, bad
    out = [np.array(x) for x in (mean, diff, mean_bad, diff_bad)]
    for x in out[1::2]:
        x[0] = x[1]
    return out


@pytest.fixture(scope="module")
def trivial_detectors():
    rng = np.random.default_rng(2024)
    specs = [make_video_spec(f"n{i}", 0, int(rng.integers(120, 200)), rng, size=SMALL) for i in range(10)]
    specs += [
        make_video_spec(f"a{i}", 1, int(rng.integers(120, 200)), rng, size=SMALL, kind=EVENT_KINDS[i % 6])
        for i in range(10)
    ]
    gts = [s.frame_labels() for s in specs]
    feats = [_trivial_scores(s) for s in specs]
    out: dict[str, float] = {"anomalous_fraction": float(np.concatenate(gts).mean())}
    for i, name in enumerate(["mean", "diff", "bad_mean", "bad_diff"]):
        # Over all test frames (the field's protocol), and inside each anomalous video (can the
        # detector find *when* the event happens?), averaged over the anomalous videos.
        out[name] = roc_auc_score(np.concatenate(gts), np.concatenate([f[i] for f in feats]))
        within = [roc_auc_score(g, f[i]) for g, f in zip(gts, feats, strict=True) if g.any()]
        out[name + "_within"] = float(np.mean(within))
    return out


def test_trivial_detectors_cannot_find_the_anomalies(trivial_detectors):
    """Frame-level AUC of trivial detectors on a generated test set (20 videos, 3k frames, 25 %
    anomalous). Measured at this seed: global mean intensity 0.45 and mean |frame difference| 0.61 over
    all frames; 0.32 and 0.71 inside the anomalous videos (events bring people near the camera and more
    motion). On 36 videos of 192-448 frames at 320 x 240: 0.46 and 0.64 over all frames, against 0.69-0.73
    for a weakly-supervised MIL ranking head on I3D features of the demo dataset."""
    d = trivial_detectors
    assert 0.1 < d["anomalous_fraction"] < 0.5
    assert 0.35 <= d["mean"] <= 0.68, d
    assert d["diff"] <= 0.75, d
    # Inside a video, events do change the frames a little (people near the camera, running, smoke):
    # that is content, not artefact; a global artefact scores > 0.9 (next test).
    assert abs(d["mean_within"] - 0.5) <= 0.3, d
    assert abs(d["diff_within"] - 0.5) <= 0.3, d


def test_trivial_detectors_do_catch_a_global_artefact(trivial_detectors):
    """Positive control: the same detectors find a small global brightness jump / flicker at once
    (measured: 0.96 and 0.99 inside the anomalous videos)."""
    assert trivial_detectors["bad_mean_within"] > 0.9, trivial_detectors
    assert trivial_detectors["bad_diff_within"] > 0.9, trivial_detectors


# ------------------------------------------------------------------------------------------------ files


def test_write_video_roundtrip(tmp_path):
    frames = list(render_frames(_spec([EventSpec("explosion", 5, 35)], n=40)))
    path = tmp_path / "clip.mp4"
    assert write_video(path, iter(frames), FPS) == 40
    decoded = _decode(path)
    assert len(decoded) == 40
    psnr = np.mean([_psnr(a, b) for a, b in zip(decoded, frames, strict=True)])
    assert psnr > 30, psnr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # no temporary file left
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        assert (s.width, s.height, s.format.name) == (160, 120, "yuv420p")
        assert s.codec_context.name == "mpeg4"
        assert abs(float(s.average_rate) - FPS) < 1e-6


def test_write_video_is_deterministic(tmp_path):
    # x264 gave different bytes for the same frames in some runs; the encoder used now must not.
    frames = list(render_frames(_spec([EventSpec("fight", 5, 60)], n=70, size=(320, 240))))
    digests = set()
    for i in range(6):
        write_video(tmp_path / f"{i}.mp4", frames, FPS)
        digests.add((tmp_path / f"{i}.mp4").read_bytes())
    assert len(digests) == 1


def test_write_video_refuses_bad_input_and_leaves_no_file(tmp_path):
    odd = list(render_frames(VideoSpec("odd", 2, FPS, (161, 121), 1)))
    with pytest.raises(ValueError, match="even dimensions"):
        write_video(tmp_path / "odd.mp4", odd, FPS)
    with pytest.raises(ValueError, match="no frames"):
        write_video(tmp_path / "empty.mp4", [], FPS)
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "float.mp4", [np.zeros((8, 8, 3), np.float32)], FPS)
    with pytest.raises(ValueError, match="extension"):
        write_video(tmp_path / "x.gif", odd, FPS)
    assert list(tmp_path.iterdir()) == []


def test_generate_dataset_layout_labels_and_idempotence(tmp_path):
    root = tmp_path / "ds"
    kw = dict(n_train_normal=1, n_train_anomalous=1, n_test_normal=1, n_test_anomalous=2,
              num_frames=(100, 110), size=SMALL, seed=3, progress=False)
    assert generate_dataset(root, **kw) == root
    manifest = json.loads((root / "synth.json").read_text())
    assert manifest["complete"] and manifest["params"]["seed"] == 3
    videos = {v["name"]: v for v in manifest["videos"]}
    for v in videos.values():
        path = root / v["path"]
        assert path.parent == root / v["split"] / ("anomalous" if v["label"] else "normal")
        assert len(_decode(path)) == v["num_frames"]
        assert 100 <= v["num_frames"] <= 110
        if v["split"] == "train":
            assert "events" not in v, "training videos carry video-level labels only"
    train_anom = [n for n, v in videos.items() if v["split"] == "train" and v["label"] == 1]
    assert set(manifest[synth_dataset._DEBUG_KEY]) == set(train_anom)
    # annotations.csv == the test specs' events, row for row
    with open(root / "test" / "annotations.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["name", "start", "end"]
    expected = [[n, str(e["start_frame"]), str(e["end_frame"])]
                for n, v in videos.items() if v["split"] == "test" for e in v["events"]]
    assert rows[1:] == expected and len(expected) >= 2
    assert not any(n.startswith("train") for n, _, _ in rows[1:])
    gt = load_ground_truth(root)
    for n, v in videos.items():
        if v["split"] == "test":
            ref = VideoSpec.from_dict({k: v[k] for k in ("name", "num_frames", "fps", "size", "seed", "label",
                                                         "events")})
            assert np.array_equal(gt[n], ref.frame_labels())
    assert set(gt) == {n for n, v in videos.items() if v["split"] == "test"}
    # Rerun: nothing is re-encoded.
    stamps = {p: p.stat().st_mtime_ns for p in root.rglob("*.mp4")}
    generate_dataset(root, **kw)
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*.mp4")} == stamps
    # A truncated video is noticed and redone.
    victim = next(iter(stamps))
    victim.write_bytes(b"not a video")
    generate_dataset(root, **kw)
    assert len(_decode(victim)) == videos[victim.stem]["num_frames"]
    # Other parameters: refused unless overwrite, which replaces the old videos.
    with pytest.raises(FileExistsError, match="other parameters"):
        generate_dataset(root, **{**kw, "seed": 4})
    generate_dataset(root, **{**kw, "seed": 4, "n_test_anomalous": 1}, overwrite=True)
    assert len(list(root.rglob("*.mp4"))) == 4
    assert not list(root.rglob("*.tmp"))


def test_generate_dataset_refuses_foreign_videos_and_bad_arguments(tmp_path):
    (tmp_path / "train" / "normal").mkdir(parents=True)
    (tmp_path / "train" / "normal" / "mine.mp4").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="not made by damvad.synth"):
        generate_dataset(tmp_path, progress=False)
    with pytest.raises(ValueError, match="even"):
        generate_dataset(tmp_path / "a", size=(161, 120), progress=False)
    with pytest.raises(ValueError, match="num_frames"):
        generate_dataset(tmp_path / "b", num_frames=(50, 60), progress=False)
    with pytest.raises(ValueError, match="n_test_normal"):
        generate_dataset(tmp_path / "c", n_test_normal=-1, progress=False)


# ------------------------------------------------------------------------------------------------ synth-ucf-v1

from damvad.synth.benchmark import BENCHMARKS, benchmark_params  # noqa: E402
from damvad.synth.dataset import SynthParams, dataset_specs  # noqa: E402
from damvad.synth.specs import BenignSpec, draw_benign  # noqa: E402


@pytest.fixture(scope="module")
def ucf_specs():
    return dataset_specs(SynthParams(**benchmark_params("synth-ucf-v1")))


def test_ucf_shaped_benchmark_keeps_its_promises(ucf_specs):
    by_split = {s: [spec for sp, _, spec in ucf_specs if sp == s] for s in ("train", "dev", "test")}
    assert [len(by_split[s]) for s in ("train", "dev", "test")] == [100, 24, 40]
    lengths = np.array([spec.num_frames for _, _, spec in ucf_specs])
    assert lengths.min() >= 1024 and lengths.max() <= 4096  # every video >= 16 snippets
    assert lengths.max() > 2.5 * lengths.min()  # lengths spread
    durations = []
    for split, specs in by_split.items():
        assert sum(s.label for s in specs) == len(specs) // 2
        for spec in specs:
            gt = spec.frame_labels()
            if spec.label:
                assert 0 < gt.mean() <= 0.35 + 1e-9, (spec.name, gt.mean())  # a minority of the frames
                durations += [e.num_frames for e in spec.events]
            kinds = {b.kind for b in spec.benign}
            assert "drift" in kinds and len(kinds) >= 2, spec.name  # benign changes in every video
        if split != "train":
            share = sum(s.frame_labels().sum() for s in specs) / sum(s.num_frames for s in specs)
            assert 0.04 < share < 0.12, (split, share)  # UCF-Crime's test split: 7.6 %
    assert min(durations) < 64 and max(durations) > 4 * 64  # under one snippet to many
    starts = np.array([e.start_frame / s.num_frames for _, _, s in ucf_specs for e in s.events])
    assert starts.min() < 0.15 and starts.max() > 0.7  # at random places, not always early or late


def test_splits_come_from_disjoint_streams(ucf_specs):
    seeds = {split: {spec.seed for sp, _, spec in ucf_specs if sp == split} for split in ("train", "dev", "test")}
    assert not (seeds["train"] & seeds["dev"] or seeds["train"] & seeds["test"] or seeds["dev"] & seeds["test"])
    # The test split does not depend on how many training videos there are, and vice versa.
    fewer = dataset_specs(SynthParams(**{**benchmark_params("synth-ucf-v1"), "n_train_normal": 3}))
    assert [s for sp, _, s in fewer if sp == "test"] == [s for sp, _, s in ucf_specs if sp == "test"]
    assert dataset_specs(SynthParams(**benchmark_params("synth-ucf-v1"))) == ucf_specs  # a function of the seed


def test_benign_changes_do_not_depend_on_the_label():
    a = make_video_spec("a", "normal", 1500, np.random.default_rng(3), benign=True)
    b = make_video_spec("b", "anomalous", 1500, np.random.default_rng(3), benign=True)
    assert a.seed == b.seed and a.benign == b.benign and b.events and not a.events
    assert draw_benign(1500, 25, a.seed) == a.benign
    assert draw_benign(1500, 25, a.seed + 1) != a.benign


def test_benign_changes_change_the_picture_but_never_the_ground_truth():
    plan = (BenignSpec("light", 20, 60, -0.3, 1), BenignSpec("shake", 70, 90, 4.0, 2))
    calm = list(render_frames(VideoSpec("c", 100, FPS, SMALL, 9)))
    moved = list(render_frames(VideoSpec("m", 100, FPS, SMALL, 9, benign=plan)))
    assert np.array_equal(calm[10], moved[10])  # before any episode: the very same frame
    dark = moved[40].mean() / calm[40].mean()
    assert 0.6 < dark < 0.8  # a 30 % darker sky at the episode's plateau
    shaken = [np.abs(moved[t].astype(int) - calm[t]).mean() for t in range(70, 90)]
    assert max(shaken) > 3  # the whole picture moved
    assert not VideoSpec("m", 100, FPS, SMALL, 9, benign=plan).frame_labels().any()
    with_event = VideoSpec("e", 100, FPS, SMALL, 9, (EventSpec("fall", 30, 80),), 1, plan)
    assert with_event.frame_labels().sum() == 50  # benign changes never enter the ground truth


def test_generate_dataset_is_a_function_of_its_seed(tmp_path):
    kw = dict(n_train_normal=1, n_train_anomalous=1, n_dev_normal=1, n_dev_anomalous=1, n_test_normal=1,
              n_test_anomalous=1, num_frames=(100, 130), size=SMALL, seed=11, benign=True, progress=False)
    a, b = generate_dataset(tmp_path / "a", **kw), generate_dataset(tmp_path / "b", **kw)
    files = sorted(p.relative_to(a) for p in a.rglob("*.mp4"))
    assert len(files) == 6
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert (a / "dev" / "annotations.csv").read_text() == (b / "dev" / "annotations.csv").read_text()
    assert set(load_ground_truth(a, "dev")) == {"dev_normal_000", "dev_anomalous_000"}


def test_named_benchmarks_are_known():
    assert {"synth-ucf-v1", "synth-demo-v1"} <= set(BENCHMARKS)
    with pytest.raises(ValueError, match="unknown synthetic benchmark"):
        benchmark_params("synth-ucf-v0")
