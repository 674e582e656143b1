"""damvad.modelfile: the trained-model file round-trips its typed card, is read safely, is updated atomically,
and format 1 files (before the typed card) still load."""

from __future__ import annotations

import dataclasses
import pickle

import pytest
import torch

from damvad import __version__
from damvad.contract import FeatureContract
from damvad.model import DAMModel, build_model
from damvad.modelfile import (
    FORMAT,
    FORMAT_1,
    CalibrationFeatures,
    ClipProtocol,
    ModelCard,
    Provenance,
    SelectionRule,
    Threshold,
    TrainResult,
    load_model,
    read_model_card,
    save_model_file,
    update_model_file,
)
from damvad.utils import LoadError

CONTRACT = FeatureContract(weights_sha256="w" * 64, crops="5", precision="bf16", backend="openvino", stride=32)
TRAIN = {"seed": 3, "variant": "cov", "parameters": 99, "iterations": 40, "seconds": 1.5, "device": "cpu",
         "devices": ["cpu"], "selection": "average", "iteration": 40, "averaged_steps": 20, "averaged_from": 21,
         "val_video_auc": 0.75, "rule": {"selection": "average", "configured": "average", "iterations": 40,
                                         "held_out_videos": 2, "training_videos": 10, "average_from": 0.5,
                                         "a_newer_key": [1, 2]}}
PROVENANCE = {"damvad_version": "0.1.0", "torch_version": "2", "numpy_version": "1", "python": "3", "dataset": "d",
              "dataset_source": "/data/d", "features": "/f",
              "features_manifest_sha256": "m", "i3d_weights_sha256": "w" * 64, "feature_crops": 5,
              "feature_precision": "bf16", "snippet_len": 64, "seed": 3, "device": "cpu", "device_name": "x",
              "cpu_count": 2, "feature_contract": CONTRACT.to_dict()}
CARD = ModelCard(features=CONTRACT, clips=ClipProtocol(num_clips=12), train=TrainResult.from_dict(TRAIN),
                 provenance=Provenance.from_dict(PROVENANCE), held_out_videos=("a", "b"))


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(0)
    model = build_model("cov", hidden=16, mlp_hidden=8, feature_dim=24, temporal=7)
    return model, save_model_file(tmp_path / "run" / "model.pt", model, CARD)


def test_round_trip_gives_the_same_model_in_eval_mode_and_the_card(saved):
    model, path = saved
    loaded, card = load_model(path)
    assert isinstance(loaded, DAMModel) and not loaded.training
    assert loaded.config == model.config  # every DAMConfig field, not only the variant
    want, got = model.state_dict(), loaded.state_dict()
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    x = torch.randn(2, 5, 7, 24)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)["score"], model(x)["score"], rtol=0, atol=0)
    assert card == dataclasses.replace(CARD, path=str(path))  # every record, typed
    assert card.train.rule.extra == {"a_newer_key": [1, 2]}  # a newer damvad's keys are kept
    assert card.train.extra == {"averaged_steps": 20, "averaged_from": 21}
    assert card.train.to_dict() == TRAIN and card.provenance.to_dict() == PROVENANCE
    assert card.damvad_version == __version__ and card.snippets_per_clip == 1
    assert read_model_card(path.parent).path == str(path)  # the run folder names its model file too


def test_the_file_is_plain_data_that_loads_without_code(saved):
    _, path = saved
    payload = torch.load(path, weights_only=True)  # what damvad itself does: no pickle code runs
    assert payload["format"] == FORMAT and "num_clips" not in payload  # C is stored once, in the clip protocol
    assert set(payload) == {"format", "damvad_version", "model_config", "state_dict", "contract", "train",
                            "provenance", "threshold", "held_out_videos"}
    assert payload["contract"] == {"features": CONTRACT.to_dict(), "clips": ClipProtocol(num_clips=12).to_dict()}
    assert all(isinstance(v, torch.Tensor) and v.device.type == "cpu" for v in payload["state_dict"].values())


def test_a_format_1_file_loads_migrated_and_is_written_back_as_format_2(saved, tmp_path):
    model, path = saved
    payload = torch.load(path, weights_only=True)
    old = {**payload, "format": FORMAT_1, "num_clips": 12, "contract": {"features": CONTRACT.to_dict()}}
    torch.save(old, tmp_path / "old.pt")
    card = read_model_card(tmp_path / "old.pt")
    assert card.clips.num_clips == 12 and card.features == CONTRACT and card.train == CARD.train
    update_model_file(tmp_path / "old.pt", threshold=Threshold(value=0.3))
    assert torch.load(tmp_path / "old.pt", weights_only=True)["format"] == FORMAT
    assert read_model_card(tmp_path / "old.pt").clips.num_clips == 12


def test_the_oldest_files_warn_when_used_and_not_again_when_rewritten(saved, tmp_path, caplog):
    """Before contracts were recorded: the contract the provenance implies, else none; each said once per use
    (calibrate reads the file, then writes its threshold back: one warning, as before the typed card)."""
    _, path = saved
    payload = torch.load(path, weights_only=True)
    implied = {**payload, "format": FORMAT_1, "num_clips": 16, "contract": None}
    unknown = {**implied, "provenance": {k: v for k, v in PROVENANCE.items()
                                         if k not in ("i3d_weights_sha256", "feature_crops")}}
    for name, old, said in (("implied", implied, "using the one its training provenance implies"),
                            ("unknown", unknown, "no feature contract recorded")):
        torch.save(old, tmp_path / f"{name}.pt")
        caplog.clear()
        _, card = load_model(tmp_path / f"{name}.pt")
        assert [r.getMessage() for r in caplog.records if said in r.getMessage()] != []
        assert (card.features is None) == (name == "unknown") and card.clips.num_clips == 16
        caplog.clear()
        update_model_file(tmp_path / f"{name}.pt", threshold=Threshold(value=0.3))
        assert not [r for r in caplog.records if "contract" in r.getMessage()]


class _Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_missing_foreign_damaged_and_hostile_files_are_clear_errors(saved, tmp_path, capsys):
    _, path = saved
    with pytest.raises(FileNotFoundError, match="no model file .train one with `damvad train`"):
        read_model_card(tmp_path / "nowhere")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ValueError, match=f"not a damvad model file .format {FORMAT} expected"):
        read_model_card(foreign)
    damaged = tmp_path / "damaged.pt"
    payload = torch.load(path, weights_only=True)
    payload["state_dict"].popitem()
    torch.save(payload, damaged)
    with pytest.raises(LoadError, match="damaged damvad model file"):
        load_model(damaged)
    hostile = tmp_path / "hostile.pt"
    hostile.write_bytes(pickle.dumps({"format": FORMAT, "x": _Evil()}, protocol=2))
    with pytest.raises(LoadError):
        read_model_card(hostile)
    assert "code ran" not in capsys.readouterr().out


def test_update_changes_only_the_given_fields_atomically(saved):
    model, path = saved
    threshold = Threshold(value=0.42, far_target=0.05, snippets_per_clip=2, warnings=("w",),
                          features=CalibrationFeatures("/f", "m", CONTRACT))
    update_model_file(path.parent, threshold=threshold)  # the run folder works too
    loaded, card = load_model(path)
    assert card.threshold == threshold and card.snippets_per_clip == 2
    assert card.held_out_videos == CARD.held_out_videos and card.train == CARD.train
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in loaded.state_dict().items())
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.pt"]  # no temporary file left behind


def test_records_round_trip_through_their_stored_form():
    rule = SelectionRule("val_auc", "val_auc", 10, 4, 20)
    assert SelectionRule.from_dict(rule.to_dict()) == rule
    th = Threshold.from_dict({"value": 0.5, "features": None, "later": True})
    assert th.extra == {"later": True} and Threshold.from_dict(th.to_dict()) == th


def test_an_ensemble_file_keeps_its_heads_through_updates(tmp_path):
    """A file of K heads loads as the same HeadEnsemble, also after a threshold update; a file of one head has no
    ``heads`` entry (files written before ensembles read as they always did)."""
    from damvad.model import HeadEnsemble

    torch.manual_seed(2)
    heads = [build_model("lstm", hidden=16, mlp_hidden=8, feature_dim=24, temporal=7) for _ in range(2)]
    path = save_model_file(tmp_path / "model.pt", HeadEnsemble(heads), CARD)
    assert torch.load(path, weights_only=True)["heads"] == 2
    update_model_file(path, threshold=Threshold(value=0.4, far_target=0.05))
    loaded, card = load_model(path)
    assert isinstance(loaded, HeadEnsemble) and len(loaded.members) == 2 and card.threshold.value == 0.4
    for head, got in zip(heads, loaded.members, strict=True):
        pairs = zip(head.state_dict().values(), got.state_dict().values(), strict=True)
        assert all(torch.equal(a, b) for a, b in pairs)
    single = save_model_file(tmp_path / "one.pt", heads[0], CARD)
    assert "heads" not in torch.load(single, weights_only=True)
