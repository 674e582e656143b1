"""damvad.modelfile: the trained-model file round-trips, is read safely, and is updated atomically."""

from __future__ import annotations

import pickle

import pytest
import torch

from damvad import __version__
from damvad.model import DAMModel, build_model
from damvad.modelfile import FORMAT, load_model, read_model_file, save_model_file, update_model_file
from damvad.utils import LoadError

META = {"num_clips": 16, "threshold": None, "held_out_videos": ["a", "b"], "train": {"seed": 3}}


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(0)
    model = build_model("cov", hidden=16, mlp_hidden=8, feature_dim=24, temporal=7)
    return model, save_model_file(tmp_path / "run" / "model.pt", model, META)


def test_round_trip_gives_the_same_model_in_eval_mode_and_the_metadata(saved):
    model, path = saved
    loaded, meta = load_model(path)
    assert isinstance(loaded, DAMModel) and not loaded.training
    assert loaded.config == model.config  # every DAMConfig field, not only the variant
    want, got = model.state_dict(), loaded.state_dict()
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    x = torch.randn(2, 5, 7, 24)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)["score"], model(x)["score"], rtol=0, atol=0)
    assert meta["format"] == FORMAT and meta["damvad_version"] == __version__
    assert {k: meta[k] for k in META} == META and meta["path"] == str(path)
    assert "state_dict" not in meta  # the weights went into the model
    # the run folder names its model file too
    assert read_model_file(path.parent)["path"] == str(path)


def test_the_file_is_plain_data_that_loads_without_code(saved):
    _, path = saved
    payload = torch.load(path, weights_only=True)  # what damvad itself does: no pickle code runs
    assert set(payload) >= {"format", "damvad_version", "model_config", "state_dict", *META}
    assert all(isinstance(v, torch.Tensor) and v.device.type == "cpu" for v in payload["state_dict"].values())


class _Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_missing_foreign_damaged_and_hostile_files_are_clear_errors(saved, tmp_path, capsys):
    _, path = saved
    with pytest.raises(FileNotFoundError, match="no model file .train one with `damvad train`"):
        read_model_file(tmp_path / "nowhere")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ValueError, match=f"not a damvad model file .format {FORMAT} expected"):
        read_model_file(foreign)
    damaged = tmp_path / "damaged.pt"
    payload = torch.load(path, weights_only=True)
    payload["state_dict"].popitem()
    torch.save(payload, damaged)
    with pytest.raises(LoadError, match="damaged damvad model file"):
        load_model(damaged)
    hostile = tmp_path / "hostile.pt"
    hostile.write_bytes(pickle.dumps({"format": FORMAT, "x": _Evil()}, protocol=2))
    with pytest.raises(LoadError):
        read_model_file(hostile)
    assert "code ran" not in capsys.readouterr().out


def test_update_changes_only_the_given_fields_atomically(saved):
    model, path = saved
    threshold = {"value": 0.42, "score": "D", "protocol": "online"}
    update_model_file(path.parent, threshold=threshold, note="calibrated")  # the run folder works too
    loaded, meta = load_model(path)
    assert meta["threshold"] == threshold and meta["note"] == "calibrated"
    assert meta["held_out_videos"] == META["held_out_videos"] and meta["train"] == META["train"]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in loaded.state_dict().items())
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.pt"]  # no temporary file left behind
