"""One config flow: one YAML schema with a section per stage, the same --config / key=value for every command."""

from __future__ import annotations

import pytest
import yaml

from damvad.cli import build_parser, main
from damvad.config import ConfigError, config_path, load_config, show_config
from damvad.evaluate import EvalConfig
from damvad.stages import CalibrateConfig, DetectConfig, ExtractConfig
from damvad.train import TrainConfig


def _write(tmp_path, text: str):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_every_shipped_config_loads_for_every_stage():
    for name in ("ucf-crime", "shanghaitech", "xd-violence"):
        path = config_path(name)
        cfg = load_config(EvalConfig, path)  # used to fail: "unknown config key(s) ['batch_anomalous', ...]"
        assert cfg.dataset == name and cfg.features == f"features/{name}" and cfg.out == ""
        assert load_config(TrainConfig, path).out == f"runs/{name}-dist"
        for cls in (ExtractConfig, CalibrateConfig, DetectConfig):
            load_config(cls, path)
    assert load_config(ExtractConfig, config_path("ucf-crime")).crops == "5"
    assert load_config(TrainConfig, config_path("table1-synth-ucf-v1")).iterations == 1000  # its train section


def test_top_level_keys_are_shared_sections_win_and_other_stages_keys_are_ignored(tmp_path):
    path = _write(tmp_path, "dataset: d\nfeatures: f\nsnippets_per_clip: 3\niterations: 50\n"
                            "evaluate: {snippets_per_clip: 2, out: rep}\ncalibrate: {far: 0.05}\n")
    ev = load_config(EvalConfig, path)
    assert (ev.dataset, ev.features, ev.snippets_per_clip, ev.out) == ("d", "f", 2, "rep")
    cal = load_config(CalibrateConfig, path)
    assert (cal.dataset, cal.snippets_per_clip, cal.far) == ("d", 3, 0.05)
    assert load_config(TrainConfig, path).iterations == 50
    # explicit flags beat the file, key=value beats both; stage.key=value is the same key
    ev = load_config(EvalConfig, path, ["evaluate.timelines=1", "score=wD"], out="flag")
    assert (ev.out, ev.timelines, ev.score) == ("flag", 1, "wD")


def test_unknown_keys_are_refused_naming_the_file_or_the_owner(tmp_path):
    with pytest.raises(ConfigError, match=r"c.yaml: unknown config key\(s\) \['bogus'\]"):
        load_config(EvalConfig, _write(tmp_path, "dataset: d\nbogus: 1\n"))
    with pytest.raises(ConfigError, match=r"c.yaml: unknown detect key\(s\) \['thresh'\]"):
        load_config(TrainConfig, _write(tmp_path, "detect: {thresh: 0.3}\n"))  # a typo in another section
    with pytest.raises(ConfigError, match="section 'train' must be a mapping"):
        load_config(EvalConfig, _write(tmp_path, "train: 3\n"))
    with pytest.raises(ConfigError, match=r"unknown config key 'iterations' for evaluate \(a key of train"):
        load_config(EvalConfig, None, ["iterations=5"])
    with pytest.raises(ConfigError, match="c.yaml: crops: must be one of"):
        load_config(ExtractConfig, _write(tmp_path, "extract: {crops: 7}\n"))


def test_every_subcommand_takes_config_and_key_value_the_same_way():
    parser = build_parser()
    for argv in (["extract", "v.mp4", "crops=5"], ["train", "lr=0.1"], ["evaluate", "run", "score=wD"],
                 ["calibrate", "m.pt", "far=0.05"], ["detect", "v.mp4", "threshold=0.4"],
                 ["serve", "v.mp4", "serve.port=9000"]):
        args = parser.parse_args([*argv, "--config", "x.yaml"])
        assert args.config == "x.yaml"
    # extract and detect leave --precision to their defaults alike (None: the backend's, or the model's)
    assert parser.parse_args(["extract", "v"]).precision is None
    assert parser.parse_args(["detect", "v"]).precision is None
    assert parser.parse_args(["evaluate", "r", "--set", "score=wD"]).set_overrides == ["score=wD"]  # old spelling


def test_config_show_prints_every_stage_merged(tmp_path, capsys):
    path = _write(tmp_path, "dataset: d\ntrain: {iterations: 9}\n")
    shown = yaml.safe_load(show_config(path, ["evaluate.score=wD", "snippets_per_clip=2"]))
    assert set(shown) == {"extract", "train", "evaluate", "calibrate", "detect", "serve"}
    assert shown["train"]["iterations"] == 9 and shown["evaluate"]["score"] == "wD"
    assert shown["evaluate"]["dataset"] == "d" and shown["calibrate"]["snippets_per_clip"] == 2
    assert shown["detect"]["snippets_per_clip"] == 2 and shown["extract"]["precision"] is None
    assert shown["serve"]["snippets_per_clip"] == 2 and shown["serve"]["host"] == "127.0.0.1"  # detect's keys too
    # key=value after an option still counts (argparse alone would refuse it)
    assert main(["config", "show", "--config", str(path), "--stage", "train", "lr=0.5"]) == 0
    out = yaml.safe_load(capsys.readouterr().out)
    assert list(out) == ["train"] and out["train"]["lr"] == 0.5 and out["train"]["iterations"] == 9
    assert main(["config", "show", "bogus=1"]) == 2
    assert "unknown key(s) ['bogus']" in capsys.readouterr().err


def test_device_is_a_key_of_every_torch_stage_train_included(tmp_path):
    path = _write(tmp_path, "device: cpu\ntrain: {device: 'cuda:1'}\n")
    shown = yaml.safe_load(show_config(path))
    assert {s: shown[s]["device"] for s in shown} == {"extract": "cpu", "train": "cuda:1", "evaluate": "cpu",
                                                      "calibrate": "cpu", "detect": "cpu", "serve": "cpu"}
    assert load_config(TrainConfig, None, ["device=cuda:0"]).device == "cuda:0"
    assert load_config(TrainConfig, path, ["device=cpu"]).device == "cpu"  # key=value beats the file
    assert build_parser().parse_args(["train", "--device", "cpu"]).device == "cpu"  # the flag is kept


def test_every_precision_the_command_line_offers_the_config_accepts(tmp_path):
    """One source for each choice: the parser's choices are the config's (fp16 included; the CPU refuses it
    when the device is known, with the device error)."""
    from damvad import choices

    parser = build_parser()
    for stage in ("extract", "detect", "serve"):
        sub = parser._subparsers._group_actions[0].choices[stage]  # noqa: SLF001 -- argparse keeps no public map
        offered = {a.dest: tuple(a.choices) for a in sub._actions if a.choices}
        assert offered["precision"] == choices.PRECISIONS and offered["backend"] == choices.BACKENDS
        assert offered["crops"] == choices.CROPS
    shown = yaml.safe_load(show_config(None, ["precision=fp16"]))
    assert {shown[s]["precision"] for s in ("extract", "detect", "serve")} == {"fp16"}
    assert load_config(ExtractConfig, None, ["precision=fp16"]).precision == "fp16"
    with pytest.raises(ConfigError, match="precision: must be one of 'fp32', 'bf16', 'int8', 'fp16', got 'fp8'"):
        load_config(DetectConfig, None, ["precision=fp8"])


def test_trains_old_crops_key_is_read_as_crop_sampling_with_a_warning(tmp_path, caplog):
    """``crops`` is extract's crop set (center|5|10); train's choice of crop is ``crop_sampling``. A shared
    top-level ``crops: "5"`` no longer breaks train; the old train key still reads, warned."""
    import logging

    from damvad.train import same_run

    shared = _write(tmp_path, "crops: '5'\ntrain: {iterations: 7}\n")
    assert load_config(TrainConfig, shared).crop_sampling == "center"
    assert load_config(ExtractConfig, shared).crops == "5"
    with caplog.at_level(logging.WARNING):
        old = load_config(TrainConfig, _write(tmp_path, "train: {crops: each}\n"))
        assert old.crop_sampling == "each" and "'crops' is deprecated" in caplog.text
        assert load_config(TrainConfig, None, ["crops=each"]).crop_sampling == "each"
        assert load_config(TrainConfig, None, ["train.crops=each"]).crop_sampling == "each"
    with pytest.raises(ConfigError, match="'crops' and 'crop_sampling' both given"):
        load_config(TrainConfig, None, ["crops=each", "crop_sampling=center"])
    # a run started before the rename resumes: its saved config spells the old key
    saved = yaml.safe_dump({**{k: v for k, v in vars(TrainConfig()).items() if k != "crop_sampling"},
                            "crops": "center"})
    assert same_run(saved, TrainConfig())


def test_config_values_are_checked_by_type_and_range():
    cfg = load_config(TrainConfig, None, ["lr=3e-4", "seeds=3", "iterations=2e3"])  # YAML 1.1 reads 3e-4 as text
    assert cfg.lr == 3e-4 and cfg.seeds == [3] and cfg.iterations == 2000
    with pytest.raises(ConfigError, match="TrainConfig: iterations: expected an integer, got 'twenty'"):
        TrainConfig(iterations="twenty")
    with pytest.raises(ConfigError, match="pairing: must be one of 'all_pairs', 'paired', got 'pairs'"):
        load_config(TrainConfig, None, ["pairing=pairs"])
    with pytest.raises(ConfigError, match=r"far_rates: must be in \(0, 1\), got 1.5"):
        load_config(EvalConfig, None, ["far_rates=[0.01, 1.5]"])
