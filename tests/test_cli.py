"""The command line: every sub-command end to end on small inputs, exit codes and messages."""

from __future__ import annotations

import json

import pytest

from damvad.cli import main
from featuretools import make_feature_dataset


def test_dataset_summary(capsys):
    assert main(["dataset", "ucf-crime"]) == 0
    out = capsys.readouterr().out
    assert "1,111,808" in out and "1,610" in out


def test_unknown_dataset_is_a_clear_error(capsys):
    assert main(["dataset", "no-such-dataset"]) == 2
    err = capsys.readouterr().err
    assert "no-such-dataset" in err


def test_train_evaluate_calibrate_from_the_command_line(tmp_path, capsys):
    data, feats = make_feature_dataset(tmp_path / "ds", n_train=12, n_test=6)
    run = tmp_path / "run"
    code = main(["train", "--dataset", str(data), "--features", str(feats), "--out", str(run), "--variant", "cov",
                 "--iterations", "30", "--quiet", "model={hidden: 16, mlp_hidden: 8}", "eval_every=10",
                 "batch_anomalous=3", "batch_normal=3", "val_fraction=0.34"])
    assert code == 0
    out = capsys.readouterr().out
    assert "val video AUC" in out and (run / "seed0" / "model.pt").exists()
    assert main(["train", "--dataset", str(data), "--features", str(feats), "--out", str(run), "--quiet"]) == 2
    assert "--resume" in capsys.readouterr().err

    assert main(["evaluate", str(run), "--dataset", str(data), "--features", str(feats), "--quiet",
                 "--set", "timelines=1"]) == 0
    out = capsys.readouterr().out
    assert "offline" in out and "online" in out
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert metrics["runs"]["run/seed0"]["protocols"]["offline"]["num_frames"] > 0
    assert metrics["provenance"]["damvad_version"]

    assert main(["calibrate", str(run / "seed0" / "model.pt"), "--features", str(feats), "--dataset", str(data),
                 "--far", "0.1"]) == 0
    assert "threshold" in capsys.readouterr().out


def test_bad_override_is_refused(tmp_path, capsys):
    assert main(["train", "--dataset", "x", "--features", "y", "--out", str(tmp_path / "r"), "nonsense=1"]) == 2
    assert "unknown config key" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--version"], ["train", "--help"]])
def test_help_and_version(argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0


def test_extract_and_detect_a_folder_of_frames_at_a_stride(tmp_path, capsys, monkeypatch):
    """``damvad extract FRAMES --stride 16 --fps 10`` and ``damvad detect FRAMES --model M`` (stand-in I3D)."""
    import torch

    from damvad.backends import FunctionBackend
    from damvad.contract import FeatureContract
    from damvad.extraction import backend as backend_mod
    from damvad.model import build_model
    from damvad.modelfile import ModelCard, save_model_file
    from videotools import fake_features, write_frame_folder

    monkeypatch.setattr(backend_mod, "open_backend", lambda **k: FunctionBackend(fake_features))
    frames = write_frame_folder(tmp_path / "cam01", 100)
    assert main(["extract", str(frames), "--out", str(tmp_path / "f"), "--stride", "16", "--fps", "10",
                 "--quiet"]) == 0
    row = json.loads((tmp_path / "f" / "cam01.json").read_text())
    assert (row["frames"], row["stride"], row["fps"], row["num_snippets"]) == (100, 16, 10.0, 4)
    assert "extracted 1 video(s)" in capsys.readouterr().out

    torch.manual_seed(0)
    model = save_model_file(tmp_path / "model.pt", build_model("dist", hidden=16, mlp_hidden=8),
                            ModelCard(features=FeatureContract(crops="center", stride=16)))
    assert main(["detect", str(frames), "--model", str(model), "-o", str(tmp_path / "rows.csv"), "--fps", "10",
                 "--quiet"]) == 0
    rows = (tmp_path / "rows.csv").read_text().splitlines()
    assert rows[0].startswith("source,clip,start_frame") and len(rows) == 1 + 4
    assert rows[-1].split(",")[2:4] == ["96", "100"]
    assert "cam01: 100 frames" in capsys.readouterr().err
