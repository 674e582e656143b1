"""damvad.extraction.engine: ``extract(cfg)`` is the stage's API, the config alone says what to do; the local
engine takes an I3D backend (a stand-in here), the Ray one builds its own on every worker."""

from __future__ import annotations

import pytest

from damvad.backends import FunctionBackend
from damvad.extraction import extract
from damvad.stages import ExtractConfig
from damvad.store import FeatureStore
from videotools import fake_features, write_video


def test_the_config_is_the_whole_api(tmp_path):
    (tmp_path / "v").mkdir()
    write_video(tmp_path / "v" / "a.mp4", 100, seed=1)
    cfg = ExtractConfig(inputs=[str(tmp_path / "v")], features=str(tmp_path / "f"), crops="5", stride=32)
    stand_in = FunctionBackend(fake_features, name="stand-in", precision="bf16", weights_sha256="w")
    report = extract(cfg, i3d=stand_in, progress=False)
    assert report.ok and report.done == ["a"]
    record = FeatureStore(tmp_path / "f").record("a")
    assert (record.crops, record.stride, record.backend, record.precision) == (5, 32, "stand-in", "bf16")
    assert extract(cfg, i3d=stand_in, progress=False).skipped == ["a"]  # the same config resumes
    named = extract(ExtractConfig(features=str(tmp_path / "g")), videos={"cam1": tmp_path / "v" / "a.mp4"},
                    i3d=stand_in, progress=False)
    assert named.done == ["cam1"]  # a dataset names its videos itself


def test_what_the_config_lacks_or_refuses_is_said_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="extract needs videos"):
        extract(ExtractConfig(features=str(tmp_path / "f")))
    with pytest.raises(ValueError, match="extract needs videos .* and --out"):
        extract(ExtractConfig(inputs=[str(tmp_path)]))
    with pytest.raises(ValueError, match="builds its I3D on every worker"):
        extract(ExtractConfig(inputs=[str(tmp_path)], features=str(tmp_path / "f"), engine="ray"),
                i3d=FunctionBackend(fake_features))
    assert not (tmp_path / "f").exists()
