"""The dataset registry: built-in names and aliases, the unknown-name error, names vs folders, and
registering a dataset or a dataset-file kind of one's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from damvad.datasets import (
    BUILTIN_DATASETS,
    Dataset,
    DatasetError,
    VideoItem,
    dataset_names,
    get_dataset,
    register_dataset,
    register_file_kind,
    registry,
    unregister_dataset,
)
from datasettools import touch


@pytest.fixture
def isolated_registry(monkeypatch):
    """Registrations made in a test are undone after it (the module-level tables are copied back)."""
    for table in ("_BUILDERS", "_KEYS", "_BUILT", "_FILE_KINDS"):
        monkeypatch.setattr(registry, table, dict(getattr(registry, table)))


def _tiny(name: str) -> Dataset:
    return Dataset(name, "two videos", [VideoItem("a", 0, "train", "Normal"), VideoItem("b", 1, "test", "X", 10)],
                   intervals={"b": ((2, 5),)})


# ----------------------------------------------------------------------------------- built-in names


@pytest.mark.parametrize(
    "alias, name",
    [
        ("ucf-crime", "ucf-crime"), ("UCF_Crime", "ucf-crime"), ("ucf crime", "ucf-crime"), ("ucf", "ucf-crime"),
        ("ucfcrimes", "ucf-crime"), ("shanghaitech", "shanghaitech"), ("ShanghaiTech", "shanghaitech"),
        ("shanghai", "shanghaitech"), ("sht", "shanghaitech"), ("xd-violence", "xd-violence"),
        ("XDViolence", "xd-violence"), ("xd", "xd-violence"),
    ],
)
def test_builtin_aliases(alias, name):
    assert registry.resolve_name(alias) == name
    assert get_dataset(alias) is get_dataset(name)  # built once, shared
    assert get_dataset(alias).name == name


def test_builtin_names_in_order():
    assert BUILTIN_DATASETS == ("ucf-crime", "shanghaitech", "xd-violence", "ucsd-ped2")
    assert dataset_names()[:4] == BUILTIN_DATASETS
    assert get_dataset("ucf-crime").splits == ("train", "test")


def test_unknown_name_lists_known_ones(tmp_path):
    with pytest.raises(DatasetError) as err:
        get_dataset("ucf-crimes-2")
    assert str(err.value) == (
        "unknown dataset 'ucf-crimes-2': not one of ucf-crime, shanghaitech, xd-violence, ucsd-ped2, "
        "and no such folder or CSV file"
    )
    other = touch(tmp_path / "list.txt")
    csv_only = r"list\.txt: a dataset file must be a \.csv of 'path,label\[,split\]' rows$"
    with pytest.raises(DatasetError, match=csv_only):
        get_dataset(other)


def test_name_wins_over_folder_path_does_not(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    touch(tmp_path / "ucf" / "normal" / "x.mp4")
    assert get_dataset("ucf").name == "ucf-crime"  # a registered name first
    assert get_dataset("./ucf").video_labels() == {"x": 0}  # the folder, written as a path
    assert get_dataset(Path("ucf")).video_labels() == {"x": 0}  # a Path is never a name


# ----------------------------------------------------------------------------------- own datasets


def test_register_own_dataset(isolated_registry):
    calls = []

    def build() -> Dataset:
        calls.append(1)
        return _tiny("my-cams")

    register_dataset("my-cams", build, aliases=("cams",))
    assert calls == []  # nothing built until asked for
    ds = get_dataset("My_Cams")
    assert ds is get_dataset("cams") and calls == [1]  # built once
    assert ds.ground_truth("b").tolist() == [0, 0, 1, 1, 1, 0, 0, 0, 0, 0]
    assert dataset_names() == (*BUILTIN_DATASETS, "my-cams")
    with pytest.raises(DatasetError, match="not one of ucf-crime, shanghaitech, xd-violence, ucsd-ped2, my-cams,"):
        get_dataset("nothing-here")

    unregister_dataset("my-cams")
    assert registry.resolve_name("cams") is None
    with pytest.raises(DatasetError, match="unknown dataset 'cams'"):
        get_dataset("cams")
    with pytest.raises(ValueError, match="'my-cams' is not registered"):
        unregister_dataset("my-cams")


def test_register_refuses_taken_names(isolated_registry):
    with pytest.raises(ValueError, match=r"'ucf' of 'my-ucf' already means 'ucf-crime'"):
        register_dataset("my-ucf", lambda: _tiny("my-ucf"), aliases=("UCF",))
    with pytest.raises(ValueError, match="'shanghaitech' is already registered"):
        register_dataset("shanghaitech", lambda: _tiny("shanghaitech"))
    with pytest.raises(ValueError, match="must not be empty"):
        register_dataset("x", lambda: _tiny("x"), aliases=(" - ",))
    assert registry.resolve_name("my-ucf") is None  # a refused registration leaves nothing behind


def test_register_own_file_kind(isolated_registry, tmp_path):
    def load_list(path: Path) -> Dataset:  # one normal video name per line
        items = [VideoItem(n, 0, "train", "Normal") for n in path.read_text().split()]
        return Dataset(path.stem, f"names in {path}", items)

    register_file_kind(".LST", load_list, "a .lst of video names")
    (tmp_path / "cams.lst").write_text("front\nback\n")
    assert get_dataset(tmp_path / "cams.lst").video_labels() == {"front": 0, "back": 0}
    (tmp_path / "v.csv").write_text("a.mp4,1\n")
    assert get_dataset(tmp_path / "v.csv").video_labels() == {"a": 1}  # CSV still there
    with pytest.raises(DatasetError, match=r"x\.txt: a dataset file must be a \.csv .* or a \.lst of video names"):
        get_dataset(touch(tmp_path / "x.txt"))
    with pytest.raises(DatasetError, match="no such folder or CSV or LST file"):
        get_dataset("missing")
    with pytest.raises(ValueError, match="need a new suffix"):
        register_file_kind(".csv", load_list, "again")
