"""The device option on the CPU: specs, the default, what runs record, models moving between devices (the
batched extraction path, the GPU's, run on the CPU: test_extraction_batched)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
import torch

from damvad.cli import main
from damvad.device import device_info, resolve_device
from damvad.modelfile import load_model
from damvad.store import FeatureStore
from damvad.train import TrainConfig, train
from featuretools import make_feature_dataset, train_killed_after
from videotools import write_video


@pytest.fixture()
def no_cuda(monkeypatch):
    """A machine where torch sees no GPU, whatever this one has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_device_specs_resolve_to_exact_devices(no_cuda):
    assert resolve_device("cpu") == resolve_device(" CPU ") == resolve_device(torch.device("cpu"))
    assert resolve_device(None) == resolve_device("auto") == torch.device("cpu")  # auto without a GPU
    for bad in ("tpu", "cuda:x", "mps", 3):
        with pytest.raises(ValueError, match="auto, cpu, cuda or cuda:N"):
            resolve_device(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("spec", ["cuda", "cuda:1", "gpu"])
def test_cuda_without_a_gpu_is_a_clear_error(no_cuda, spec):
    with pytest.raises(ValueError, match=r"asked for, but .*use --device cpu"):
        resolve_device(spec)


def test_device_info_names_the_cpu():
    info = device_info("cpu")
    assert info["device"] == "cpu" and info["device_name"] and info["cpu_count"] >= 1 and info["cpu_isa"]


def test_backend_defaults_on_cpu_equal_the_default_and_fp16_is_refused(no_cuda):
    from damvad.backends import resolve

    assert resolve(None, None, "cpu") == resolve(None, None, None) == resolve()
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        resolve("torch", "fp16", "cpu")


def test_auto_batch_size_from_free_memory():
    from damvad.backends.torch import MAX_AUTO_BATCH, auto_batch_size

    assert auto_batch_size("cpu", "fp16") == 1  # the CPU: batching measured no faster
    gib = 2**30
    assert auto_batch_size("cpu", "fp16", free_bytes=4 * gib) == 8  # half of 4 GiB / 256 MiB a clip
    assert auto_batch_size("cpu", "fp32", free_bytes=4 * gib) == 4  # fp32: 400 MiB a clip, a power of 2
    assert auto_batch_size("cpu", "fp16", free_bytes=140 * gib) == MAX_AUTO_BATCH
    assert auto_batch_size("cpu", "fp16", free_bytes=100 * 2**20) == 1  # too little: one clip, OOM halves


def _cfg(data, feats, out, **kw):
    base = dict(dataset=str(data), features=str(feats), out=str(out), variant="dist",
                model={"hidden": 16, "mlp_hidden": 8}, iterations=20, eval_every=10, checkpoint_every=10,
                batch_anomalous=3, batch_normal=3, val_fraction=0.25, lr=3e-3)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_feature_dataset(tmp_path_factory.mktemp("synth"), n_train=12, n_test=6)


def test_train_on_cpu_equals_the_default_and_records_the_device(synth, tmp_path, no_cuda):
    from damvad.calibrate import calibrate_model
    from damvad.evaluate import EvalConfig, evaluate

    data, feats = synth
    default = train(_cfg(data, feats, tmp_path / "default"), progress=False)
    on_cpu = train(_cfg(data, feats, tmp_path / "cpu"), progress=False, device="cpu")
    assert default["runs"][0]["device"] == on_cpu["runs"][0]["device"] == "cpu"
    assert on_cpu["provenance"]["device"] == "cpu"
    a, card = load_model(tmp_path / "default" / "seed0")
    b, _ = load_model(tmp_path / "cpu" / "seed0", device="cpu")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
    assert card.provenance.device == "cpu" and card.provenance.device_name
    assert json.loads((tmp_path / "cpu" / "seed0" / "provenance.json").read_text())["device"] == "cpu"
    report = evaluate(EvalConfig(dataset=str(data), features=str(feats), runs=[str(tmp_path / "cpu")], timelines=0),
                      progress=False, device="cpu")
    assert report["provenance"]["device"] == "cpu"
    assert calibrate_model(tmp_path / "cpu" / "seed0", feats, dataset=str(data), device="cpu")["device"] == "cpu"


def _as_if_saved_on_gpu(path):
    """Rewrite a torch file so that its tensors say they were saved on cuda:0 (as a GPU run's files do)."""
    src = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
    out = io.BytesIO()
    moved = 0
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith("data.pkl"):
                moved = data.count(b"X\x03\x00\x00\x00cpu")
                data = data.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
            dst.writestr(info, data)
    assert moved > 0
    path.write_bytes(out.getvalue())


def test_files_of_a_gpu_run_load_and_resume_on_the_cpu(synth, tmp_path, no_cuda):
    data, feats = synth
    train(_cfg(data, feats, tmp_path / "run"), progress=False, device="cpu")
    model_pt = tmp_path / "run" / "seed0" / "model.pt"
    want, _ = load_model(model_pt)
    _as_if_saved_on_gpu(model_pt)
    with pytest.raises(RuntimeError, match="CUDA"):  # what a plain torch.load does with it here
        torch.load(model_pt, weights_only=True)
    got, _ = load_model(model_pt, device="cpu")
    for va, vb in zip(want.state_dict().values(), got.state_dict().values(), strict=True):
        assert vb.device.type == "cpu" and torch.equal(va, vb)
    # a training checkpoint from a GPU loads here (resume): optimizer, RNG and averaged weights included
    from damvad.datasets import get_dataset
    from damvad.train import Trainer, load_train_data, training_meta

    cfg = _cfg(data, feats, tmp_path / "run")
    ckpt = tmp_path / "run" / "seed0" / "checkpoint.pt"
    _as_if_saved_on_gpu(ckpt)
    dataset, store = get_dataset(str(data)), FeatureStore(feats)
    tdata = load_train_data(dataset, store, cfg.num_clips, progress=False)
    trainer = Trainer(cfg, tdata, tmp_path / "run" / "seed0", 0, training_meta(dataset, store, tdata), device="cpu")
    assert trainer.load_checkpoint() and trainer.iteration == 20
    assert trainer.averaged > 0 and all(v.device.type == "cpu" for v in trainer.average.values())
    trainer.train_step()  # and training goes on


def test_cli_device_option_everywhere_and_a_clear_error_without_a_gpu(no_cuda, tmp_path, capsys):
    for argv in (["extract", str(tmp_path), "--out", str(tmp_path / "f")],
                 ["train", "--dataset", "x", "--features", "y"],
                 ["evaluate", "run"], ["calibrate", "m", "--features", "f", "--dataset", "d"],
                 ["detect", "v.mp4", "--model", "m"], ["demo"]):
        with pytest.raises(SystemExit):
            main([*argv, "--help"])
        assert "--device" in capsys.readouterr().out, argv[0]
    write_video(tmp_path / "a.mp4", 3)
    assert main(["extract", str(tmp_path / "a.mp4"), "--out", str(tmp_path / "f"), "--device", "cuda"]) == 2
    assert main(["train", "--dataset", "x", "--features", "y", "--out", str(tmp_path / "r"),
                 "--device", "cuda:0"]) == 2
    err = capsys.readouterr().err
    assert err.count("asked for, but") == 2 and "--device cpu" in err
    assert not (tmp_path / "f").exists() and not (tmp_path / "r").exists()  # nothing started


def test_load_i3d_refuses_a_missing_gpu_before_loading(no_cuda, tmp_path):
    from damvad.i3d import load_i3d

    with pytest.raises(ValueError, match="use --device cpu"):
        load_i3d(tmp_path / "does-not-exist.pt", device="cuda")  # the device is checked first


def test_device_is_a_train_config_key_saved_with_the_run(synth, tmp_path, no_cuda):
    from damvad.config import load_config

    assert load_config(TrainConfig, None, ["device=cpu"]).device == "cpu"
    data, feats = synth
    summary = train(_cfg(data, feats, tmp_path / "run", device="cpu"), progress=False)
    assert summary["config"]["device"] == "cpu" and summary["runs"][0]["devices"] == ["cpu"]
    for saved in (tmp_path / "run" / "config.yaml", tmp_path / "run" / "seed0" / "config.yaml"):
        assert "device: cpu" in saved.read_text().splitlines()
    # a device given to train() is what the run records, like one from the config
    train(_cfg(data, feats, tmp_path / "arg"), progress=False, device="cpu")
    assert "device: cpu" in (tmp_path / "arg" / "config.yaml").read_text().splitlines()
    with pytest.raises(ValueError, match="asked for, but"):
        train(_cfg(data, feats, tmp_path / "gpu", device="cuda"), progress=False)
    assert not (tmp_path / "gpu").exists()


def test_a_run_started_on_a_gpu_resumes_on_the_cpu_and_records_both(synth, tmp_path, no_cuda, monkeypatch):
    """The config and checkpoint of a run killed on cuda:0 (as a GPU machine writes them); resumed here with
    device cpu: the device is the one key that may differ, and the run says where it trained."""
    import yaml

    data, feats = synth
    run = tmp_path / "run"
    train_killed_after(_cfg(data, feats, run, device="cpu"), 12, monkeypatch)  # after the checkpoint at 10
    ckpt_path = run / "seed0" / "checkpoint.pt"
    ckpt = torch.load(ckpt_path, weights_only=True)
    for doc in (run / "config.yaml", run / "seed0" / "config.yaml"):
        doc.write_text(doc.read_text().replace("device: cpu", "device: cuda:0"))
    ckpt["config_yaml"] = ckpt["config_yaml"].replace("device: cpu", "device: cuda:0")
    ckpt["devices"] = ["cuda:0"]
    torch.save(ckpt, ckpt_path)
    _as_if_saved_on_gpu(ckpt_path)
    summary = train(_cfg(data, feats, run, device="cpu"), progress=False, resume=True)
    result = summary["runs"][0]
    assert result["iterations"] == 20 and result["device"] == "cpu" and result["devices"] == ["cuda:0", "cpu"]
    assert yaml.safe_load((run / "config.yaml").read_text())["device"] == "cpu"  # the latest session's
    _, card = load_model(run / "seed0" / "model.pt")
    assert card.train.devices == ("cuda:0", "cpu") and card.provenance.device == "cpu"
    # any other difference is still refused
    with pytest.raises(ValueError, match="started with another config"):
        train(_cfg(data, feats, run, device="cpu", lr=1e-2), progress=False, resume=True)


def test_cpu_flags_are_read_once_and_feed_the_int8_choice(monkeypatch):
    """The CPU's flags have one reader (damvad.device.cpu_flags); the int8 overflow choice and the benchmarks'
    CPU line use it."""
    from pathlib import Path

    from damvad.backends import openvino_ir
    from damvad.device import cpu_flags
    from damvad.devtools.bench import cpu_name

    flags = cpu_flags()
    assert isinstance(flags, frozenset) and cpu_flags() is flags  # cached
    if Path("/proc/cpuinfo").exists():
        assert flags  # every Linux CPU lists some flags
    monkeypatch.setattr("damvad.device.cpu_flags", lambda: frozenset({"avx512_vnni"}))
    assert openvino_ir.cpu_has_vnni()
    monkeypatch.setattr("damvad.device.cpu_flags", lambda: frozenset({"amx_bf16", "amx_int8", "sse2"}))
    assert cpu_name().endswith("AMX: amx_bf16 amx_int8") and openvino_ir.cpu_has_vnni()
    monkeypatch.setattr("damvad.device.cpu_flags", lambda: frozenset())
    assert not openvino_ir.cpu_has_vnni() and cpu_name().endswith(", unknown")


@pytest.mark.parametrize(("flags", "words"), [
    ({"avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni"}, "AVX-512, bf16, VNNI, no AMX"),  # AMD EPYC (Zen 4)
    ({"avx2", "fma", "sse4_2"}, "AVX2, no bf16, no VNNI, no AMX"),  # AMD EPYC (Zen 3): the same model name
    ({"avx2", "avx_vnni"}, "AVX2, no bf16, VNNI, no AMX"),
    ({"avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_int8", "amx_bf16"},
     "AVX-512, bf16, VNNI, AMX: amx_bf16 amx_int8 amx_tile"),  # Intel Xeon (Sapphire Rapids)
])
def test_cpu_isa_tells_apart_cpus_of_one_model_name(monkeypatch, flags, words):
    """Two CPUs named "AMD EPYC" ran int8 I3D 4x apart here: what runs and speed figures record says why."""
    from damvad.device import cpu_isa
    from damvad.devtools.bench import cpu_name

    monkeypatch.setattr("damvad.device.cpu_flags", lambda: frozenset(flags))
    assert cpu_isa() == words and cpu_name().endswith(f" cores, {words}")
    assert device_info("cpu")["cpu_isa"] == words
