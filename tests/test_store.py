"""The feature store: typed per-video records, one checked read per video, old rows, bad rows."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from damvad.contract import contract_of_record
from damvad.extract import ExtractorSpec, extract, video_status
from damvad.store import (
    MANIFEST_COLUMNS,
    FeatureRecord,
    FeatureStore,
    FeatureStoreError,
    InconsistentRecordError,
    SourceFile,
)
from featuretools import synthetic_record
from videotools import fake_features, write_video

# A row as damvad 0.1 wrote it, before sources, backends, devices, shapes and snippet counts were recorded.
OLD_ROW = {"name": "old", "path": "/videos/old.mp4", "frames": 150, "fps": 25.0, "snippet_len": 64,
           "crops": 1, "dtype": "float32", "precision": "fp32", "weights_sha256": "w" * 64, "damvad_version": "0.1.0"}


def _write(root: Path, name: str, row: dict, maps: np.ndarray) -> FeatureStore:
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / f"{name}.npy", maps)
    (root / f"{name}.json").write_text(json.dumps(row))
    return FeatureStore(root)


def _maps(snippets: int, crops: int = 1, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(snippets).random((snippets, crops, 7, 1024)).astype(dtype)


def test_an_extracted_row_round_trips_through_the_record(tmp_path):
    (tmp_path / "v").mkdir()
    write_video(tmp_path / "v" / "a.mp4", 150, seed=1)
    assert extract([tmp_path / "v"], tmp_path / "f", feature_fn=fake_features, weights_sha256="abc",
                   progress=False).ok
    store = FeatureStore(tmp_path / "f")
    on_disk = json.loads((tmp_path / "f" / "a.json").read_text())
    record = store.record("a")
    assert record.to_json() == on_disk  # what extract writes is exactly the record: no key lost or added
    assert FeatureRecord.from_json(on_disk) == record
    assert isinstance(record.source, SourceFile) and record.source.path == str((tmp_path / "v" / "a.mp4").resolve())
    assert record.snippet_ranges == record.expected_ranges == ((0, 64), (64, 128), (128, 150))
    assert record.shape == (3, 1, 7, 1024) and record.crop_setting == "center" and record.device == "cpu"
    with open(tmp_path / "f" / "manifest.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == MANIFEST_COLUMNS and rows[0]["frames"] == "150" and rows[0]["weights_sha256"] == "abc"


def test_manifest_columns_are_the_record_fields_and_the_csv_format_is_unchanged():
    assert set(MANIFEST_COLUMNS) <= {f.name for f in dataclasses.fields(FeatureRecord)}
    # manifest.csv is read by people's own scripts: its header is part of the on-disk format
    assert MANIFEST_COLUMNS == ["name", "path", "frames", "fps", "snippet_len", "num_snippets", "crops", "dtype",
                                "precision", "weights_sha256", "damvad_version"]


def test_an_old_row_missing_optional_fields_still_loads(tmp_path):
    store = _write(tmp_path / "f", "old", OLD_ROW, _maps(3))
    video = store.load("old")
    record = video.record
    assert (record.frames, record.snippet_len, video.maps.shape) == (150, 64, (3, 1, 7, 1024))
    assert record.source is None and record.backend == "" and record.snippet_ranges is None and record.shape is None
    assert record.num_snippets is None and record.crop_names is None and record.warning is None
    assert record.frame_ranges == record.expected_ranges == ((0, 64), (64, 128), (128, 150))
    contract = contract_of_record(record)
    assert (contract.weights_sha256, contract.crops, contract.precision, contract.backend) == ("w" * 64, "center",
                                                                                              "fp32", "")
    hash_before = store.manifest_hash()
    store.write_manifest()
    assert store.manifest_hash() == hash_before  # the hash pins the rows as stored, which reading never changes
    assert "old,/videos/old.mp4,150,25.0,64,,1,float32,fp32," in (tmp_path / "f" / "manifest.csv").read_text()
    # even older: no snippet_len, fps, dtype or provenance at all (the defaults: 64-frame snippets, unknown)
    bare = {"name": "bare", "path": "/videos/bare.mp4", "frames": 64, "fps": None}
    record = _write(tmp_path / "f", "bare", bare, _maps(1)).load("bare").record
    assert (record.snippet_len, record.fps, record.precision, record.weights_sha256) == (64, None, "", "")
    assert record.stride == 64 and contract_of_record(record).stride == 64  # rows before strides: the paper's


def test_extract_resumes_over_an_old_row_by_its_path(tmp_path):
    """A row without a recorded source: the same path is done, another path with that name is refused."""
    (tmp_path / "v").mkdir(), (tmp_path / "w").mkdir()
    video = write_video(tmp_path / "v" / "old.mp4", 150, seed=2)
    row = {**OLD_ROW, "path": str(video), "weights_sha256": ""}
    store = _write(tmp_path / "f", "old", row, _maps(3))
    spec = ExtractorSpec(crops="center", precision="fp32", dtype="float32")
    assert video_status(store, "old", video, spec).action == "skip"
    other = write_video(tmp_path / "w" / "old.mp4", 150, seed=3)
    status = video_status(store, "old", other, spec)
    assert status.action == "refuse" and str(video) in status.reason


@pytest.mark.parametrize("edit, field, says", [
    (lambda r: r.pop("frames"), "frames", "is missing"),
    (lambda r: r.update(frames="150"), "frames", "should be an integer, got '150'"),
    (lambda r: r.update(frames=True), "frames", "should be an integer"),
    (lambda r: r.update(fps="fast"), "fps", "should be a number"),
    (lambda r: r.update(snippet_ranges=[[0, 64, 1]]), "snippet_ranges", "should be a list of 2"),
    (lambda r: r.update(shape="3x1"), "shape", "should be a list"),
    (lambda r: r.update(source={"path": "/v.mp4"}), "source", "'size' is missing"),
    (lambda r: r.update(backend_info=["x"]), "backend_info", "should be a JSON object"),
])
def test_a_bad_row_names_the_file_and_the_field(tmp_path, edit, field, says):
    row = dict(OLD_ROW)
    edit(row)
    store = _write(tmp_path / "f", "old", row, _maps(3))
    for read in (store.record, store.load):
        with pytest.raises(FeatureStoreError) as err:
            read("old")
        assert str(tmp_path / "f" / "old.json") in str(err.value)
        assert repr(field) in str(err.value) and says in str(err.value)


@pytest.mark.parametrize("text, says", [("{not json", "not valid JSON"), ("[1, 2]", "expected a JSON object")])
def test_an_unreadable_row_is_named(tmp_path, text, says):
    store = _write(tmp_path / "f", "old", OLD_ROW, _maps(3))
    (tmp_path / "f" / "old.json").write_text(text)
    with pytest.raises(FeatureStoreError, match=says) as err:
        store.load("old")
    assert str(tmp_path / "f" / "old.json") in str(err.value)


def test_unknown_keys_and_nulls_are_not_recorded_fields(tmp_path):
    """A row from a newer version (extra keys) or with nulls loads; null means "not recorded"."""
    row = {**OLD_ROW, "added_in_a_later_version": {"x": 1}, "weights_sha256": None, "snippet_len": None}
    record = _write(tmp_path / "f", "old", row, _maps(3)).record("old")
    assert record.weights_sha256 == "" and record.snippet_len == 64
    assert "added_in_a_later_version" not in record.to_json()


@pytest.mark.parametrize("change, problem", [
    (dict(num_snippets=4), "num_snippets 4 but the feature file has 3 snippets"),
    (dict(frames=200), "3 snippets, but 200 frames make 4 snippets of 64"),
    (dict(frames=0), "manifest says 0 frames"),
    (dict(snippet_ranges=((0, 64), (70, 128), (128, 150))), "snippet_ranges[1] is [70, 128)"),
    (dict(frames=129), "frames 129 but snippet_ranges end at frame 150"),
    (dict(snippet_ranges=((0, 64), (64, 128))), "2 snippet_ranges for 3 snippets"),
    (dict(stride=32), "3 snippets, but 150 frames make 4 snippets of 64 every 32 frames"),
    (dict(stride=0), "manifest says 150 frames, snippet_len 64, stride 0"),
])
def test_a_record_contradicting_itself_or_its_file_is_refused(tmp_path, change, problem):
    maps = _maps(3)
    record = dataclasses.replace(synthetic_record("v", "/v.mp4", maps, 150), **change)
    assert record.problem(3).startswith(problem)
    store = FeatureStore(tmp_path / "f")
    store.save(maps, record)
    with pytest.raises(InconsistentRecordError, match="contradicts itself") as err:
        store.load("v", raw=True)
    assert err.value.problem == record.problem(3) and str(store.json_path("v")) in str(err.value)


def test_a_row_copied_from_another_video_is_refused(tmp_path):
    store = _write(tmp_path / "f", "new", OLD_ROW, _maps(3))  # old.json copied as new.json
    with pytest.raises(InconsistentRecordError, match=r"new\.json: the record of video 'new' contradicts itself: "
                                                      r"it is the row of video 'old'"):
        store.load("new")


def test_load_checks_shape_and_values_once_raw_skips_the_scan(tmp_path):
    maps = _maps(3, crops=2, dtype=np.float16)
    maps[1, 1, 3, 7] = np.nan
    store = FeatureStore(tmp_path / "f")
    store.save(maps, synthetic_record("v", "/v.mp4", maps, 150))
    raw = store.load("v", raw=True)  # as stored, memory-mapped: a shape check reads nothing
    assert raw.maps.dtype == np.float16 and isinstance(raw.maps, np.memmap) and raw.record.dtype == "float16"
    with pytest.raises(FeatureStoreError, match=r"v\.npy: non-finite values.*snippet\(s\) 1 of 3"):
        store.load("v")
    maps[1, 1, 3, 7] = 0
    store.save(maps, synthetic_record("v", "/v.mp4", maps, 150))
    video = store.load("v")
    assert video.maps.dtype == np.float32 and video.name == "v" and video.frames == 150
    np.testing.assert_array_equal(video.maps, maps.astype(np.float32))
    np.save(tmp_path / "f" / "v.npy", maps[:, :1])  # the .npy replaced, the row not
    with pytest.raises(FeatureStoreError, match=r"shape \(3, 1, 7, 1024\) does not match its manifest row"):
        store.load("v")


def test_missing_files_are_named(tmp_path):
    store = FeatureStore(tmp_path / "f")
    with pytest.raises(FeatureStoreError, match=r"no manifest row for video 'x'"):
        store.load("x")
    maps = _maps(1)
    store.save(maps, synthetic_record("x", "/x.mp4", maps, 10))
    (tmp_path / "f" / "x.npy").unlink()
    with pytest.raises(FeatureStoreError, match=r"x\.npy: feature file for video 'x' is missing"):
        store.load("x")
    assert "x" not in store and store.names() == []


def test_for_maps_derives_the_shape_facts():
    maps = _maps(2, crops=5, dtype=np.float16)
    record = FeatureRecord.for_maps("v", "/v.mp4", maps, 100, snippet_len=64,
                                    crop_names=("center", "top_left", "top_right", "bottom_left", "bottom_right"))
    assert (record.num_snippets, record.crops, record.shape, record.dtype) == (2, 5, (2, 5, 7, 1024), "float16")
    assert record.snippet_ranges == ((0, 64), (64, 100)) and record.problem(2) is None
    assert record.crop_setting == "5" and record.expected_snippets == 2
    short = FeatureRecord.for_maps("s", "/s.mp4", _maps(1), 1)  # one frame: one padded snippet
    assert short.snippet_ranges == ((0, 1),) and short.problem(1) is None
    strided = FeatureRecord.for_maps("t", "/t.mp4", _maps(4), 150, stride=32)
    assert strided.snippet_ranges == ((0, 64), (32, 96), (64, 128), (86, 150)) and strided.problem(4) is None
    assert strided.to_json()["stride"] == 32
    moved = dataclasses.replace(strided, snippet_ranges=((0, 64), (32, 96), (64, 128), (80, 150)))
    assert moved.problem(4) == "snippet_ranges[3] is [80, 150), expected [86, 150)"


def test_feature_record_consistency_is_checked_on_load(tmp_path):
    from featuretools import make_feature_dataset

    _, feats = make_feature_dataset(tmp_path / "ds", n_train=2, n_test=1)
    store = FeatureStore(feats)
    row = store.record("train_norm_000").to_json()
    row["snippet_ranges"][1] = [70, 128]  # a gap between snippets
    (feats / "train_norm_000.json").write_text(json.dumps(row))
    with pytest.raises(RuntimeError, match=r"train_norm_000\.json.*snippet_ranges"):
        store.load("train_norm_000")
    store.load("train_anom_001")  # a consistent record loads
