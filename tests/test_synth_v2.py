"""synth-ucf-v2's generator: a camera pool, balanced event kinds, near misses, crop labels, another test draw,
generation in parts and in parallel -- and synth-ucf-v1 left exactly as its results were made."""

from __future__ import annotations

import collections
import hashlib
import json

import numpy as np
import pytest

from damvad.synth import EventSpec, VideoSpec, generate_dataset, render_frames
from damvad.synth.benchmark import benchmark_params
from damvad.synth.dataset import SynthParams, camera_pool, dataset_specs
from damvad.synth.draw import _Camera
from damvad.synth.specs import NEAR_MISS, NEAR_MISS_KINDS, BenignSpec, draw_near_misses

SMALL = (160, 120)


@pytest.fixture(scope="module")
def v2():
    return dataset_specs(SynthParams(**benchmark_params("synth-ucf-v2")))


def test_synth_ucf_v1_is_unchanged():
    """Every spec of synth-ucf-v1 (and its recorded parameters, which key its features) as when its results
    were made: sha256 of the specs' JSON, computed before the v2 options existed."""
    params = SynthParams(**benchmark_params("synth-ucf-v1"))
    specs = [(a, b, s.to_dict()) for a, b, s in dataset_specs(params)]
    digest = hashlib.sha256(json.dumps(specs, sort_keys=True).encode()).hexdigest()
    assert digest == "ed477f4c1c75b68f9100e8ee94451eb5a19354fff89904a5df763a48e903440f"
    record = hashlib.sha256(json.dumps(params.as_dict(), sort_keys=True).encode()).hexdigest()
    assert record == "a9d45a35c179ed1dde3c1fcfc6131b0ce7e8c3697d15f12deccad6bad08c29bf"


def test_v2_sizes_and_anomalous_share(v2):
    by_split = collections.defaultdict(list)
    for split, _, spec in v2:
        by_split[split].append(spec)
    assert {s: len(v) for s, v in by_split.items()} == {"train": 300, "dev": 60, "test": 100}
    for split, specs in by_split.items():
        assert sum(s.label for s in specs) == len(specs) // 2
        assert all(1024 <= s.num_frames <= 1280 for s in specs)
        share = sum(s.frame_labels().sum() for s in specs) / sum(s.num_frames for s in specs)
        assert 0.06 < share < 0.10, (split, share)  # "about 8 %"
        events = [e for s in specs for e in s.events]
        assert all(1 <= len(s.events) <= 2 for s in specs if s.label)
        counts = collections.Counter(e.kind for e in events)
        assert max(counts.values()) - min(counts.values()) <= 1, (split, counts)  # balanced over all events
        assert np.mean([e.num_frames >= 64 for e in events]) > 0.8  # most last at least one snippet


def test_v2_design_is_label_blind(v2):
    for split in ("train", "dev", "test"):
        specs = [s for sp, _, s in v2 if sp == split]
        for what in ("camera", "near miss"):
            per_label = []
            for label in (0, 1):
                of = [s for s in specs if s.label == label]
                if what == "camera":
                    per_label.append(collections.Counter(s.camera for s in of))
                else:
                    per_label.append(collections.Counter(b.kind for s in of for b in s.benign
                                                         if b.kind in NEAR_MISS_KINDS))
            assert per_label[0] == per_label[1], (split, what)
        near = collections.Counter(b.kind for s in specs for b in s.benign if b.kind in NEAR_MISS_KINDS)
        assert set(near) == set(NEAR_MISS_KINDS)
    cams = {split: {s.camera for sp, _, s in v2 if sp == split} for split in ("train", "dev", "test")}
    unseen = cams["test"] - cams["train"]
    assert cams["dev"] <= cams["train"] and unseen == {"new01", "new02", "new03"}
    assert sum(s.camera in unseen for sp, _, s in v2 if sp == "test") == 20
    pool = camera_pool(SynthParams(**benchmark_params("synth-ucf-v2")))
    assert all(s.scene_seed == pool[s.camera][0] for _, _, s in v2)


def test_a_camera_keeps_its_scene_across_videos():
    """Two videos of one camera share the background (their first frames agree where no one walks);
    videos of two cameras do not."""
    a, b, c = (VideoSpec(n, 2, 25, SMALL, seed, scene_seed=scene, camera=n)
               for n, seed, scene in (("a", 1, 7), ("b", 2, 7), ("c", 3, 8)))
    fa, fb, fc = (next(render_frames(s)).astype(int) for s in (a, b, c))
    assert np.median(np.abs(fa - fb)) <= 4  # sensor noise and a few passers-by
    assert np.median(np.abs(fa - fc)) > 10


def test_test_seed_redraws_the_test_split_only(v2):
    other = dataset_specs(SynthParams(**{**benchmark_params("synth-ucf-v2"), "test_seed": 99}))
    for split in ("train", "dev"):
        assert [s for sp, _, s in other if sp == split] == [s for sp, _, s in v2 if sp == split]
    new, old = ([s for sp, _, s in x if sp == "test"] for x in (other, v2))
    assert {s.seed for s in new}.isdisjoint({s.seed for s in old})
    seen = {s.scene_seed for s in old if not s.camera.startswith("new")}
    assert {s.scene_seed for s in new if not s.camera.startswith("new")} == seen  # the same seen cameras
    assert {s.scene_seed for s in new if s.camera.startswith("new")}.isdisjoint(
        {s.scene_seed for s in old if s.camera.startswith("new")})  # other unseen ones


def test_crop_labelled_vehicle_is_in_the_crop_exactly_while_labelled():
    """The car is in the picture before its interval (entering outside the crop) and is inside the centre
    crop on every labelled frame; v1's car is labelled from the frame's edge."""
    size = (320, 240)
    ev = EventSpec("vehicle", 40, 100, (0.5, 0.35 + 4.0 / 14), seed=3)
    plain = list(render_frames(VideoSpec("p", 140, 25, size, 5)))
    car = list(render_frames(VideoSpec("c", 140, 25, size, 5, (ev,), 1, crop_labels=True)))
    cam = _Camera(*size)
    half = cam.crop_half_width(14.0) / cam.half_width(14.0) * size[0] / 2
    lo, hi = int(size[0] / 2 - half), int(size[0] / 2 + half)
    diff = [np.abs(a.astype(int) - b).sum(2) > 30 for a, b in zip(car, plain, strict=True)]
    assert any(d.any() for d in diff[:40])  # seen entering the picture before its interval
    assert not any(d[:, lo:hi].any() for d in diff[:30])  # ...but not in the crop
    assert all(d[:, lo:hi].any() for d in diff[40:100])
    assert VideoSpec("c", 140, 25, size, 5, (ev,), 1, crop_labels=True).frame_labels().sum() == 60


@pytest.mark.parametrize("kind", [k for k in NEAR_MISS_KINDS if k != "shake"])
def test_near_misses_are_local_and_never_labelled(kind):
    b = BenignSpec(kind, 30, 90, float(np.mean(NEAR_MISS[kind][1])), 11)
    spec = VideoSpec("n", 110, 25, SMALL, 4, (), 0, (b,), scene_seed=2, camera="x")
    plain = VideoSpec("p", 110, 25, SMALL, 4, scene_seed=2, camera="x")
    masks = [np.any(x != y, axis=2) for x, y in zip(render_frames(spec), render_frames(plain), strict=True)]
    assert max(m.mean() for m in masks) < 0.3, kind
    assert sum(m.any() for m in masks[30:90]) >= 40, f"{kind} invisible during most of its episode"
    assert not spec.frame_labels().any()


def test_near_miss_draw_depends_on_the_seed_only():
    a = draw_near_misses(["van", "hug"], 1100, 25, 5)
    assert a == draw_near_misses(["van", "hug"], 1100, 25, 5) and a != draw_near_misses(["van", "hug"], 1100, 25, 6)
    assert [b.kind for b in a] == ["van", "hug"] and all(0 <= b.start_frame < b.end_frame <= 1100 for b in a)
    with pytest.raises(ValueError, match="unknown kind"):
        draw_near_misses(["parade"], 1100, 25, 5)


def test_generation_in_parts_and_in_parallel_gives_the_same_files(tmp_path):
    kw = dict(n_train_normal=2, n_train_anomalous=2, n_dev_normal=1, n_dev_anomalous=1, n_test_normal=0,
              n_test_anomalous=0, num_frames=(100, 120), size=SMALL, seed=3, benign=True, cameras=2,
              near_miss=(1, 2), balance_events=True, crop_labels=True, progress=False)
    a = generate_dataset(tmp_path / "a", splits=["train"], workers=1, **kw)
    manifest = json.loads((a / "synth.json").read_text())
    assert not manifest["complete"] and not list((a / "dev").rglob("*.mp4"))
    generate_dataset(a, workers=2, **kw)
    assert json.loads((a / "synth.json").read_text())["complete"]
    b = generate_dataset(tmp_path / "b", workers=1, **kw)
    files = sorted(p.relative_to(a) for p in a.rglob("*.mp4"))
    assert len(files) == 6 and all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    with pytest.raises(ValueError, match="splits must be some of"):
        generate_dataset(tmp_path / "c", splits=["val"], **kw)
