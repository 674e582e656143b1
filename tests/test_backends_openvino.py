"""damvad.backends.openvino: the runtime vs the reference, uint8 input, a warm start from the cache, an IR
folder of one's own, int8 accuracy gates on real frames, extraction and detection through int8."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from backendtools import GOLDEN, MEDIA, UCF, VTEST, cosine, real_snippets, rel_l2, vtest_5crop_inputs
from damvad.backends import openvino_ir as ovb
from damvad.backends.openvino import OpenVINOBackend
from damvad.extraction import open_backend


@pytest.mark.slow
def test_openvino_fp32_matches_golden_and_warm_start_reuses_the_cache(ov_backends, monkeypatch):
    with np.load(GOLDEN) as g:
        golden = {k: g[k] for k in g.files}
    backend = ov_backends("fp32")
    x = np.random.default_rng(0).uniform(-1, 1, size=(1, 64, 224, 224, 3)).astype(np.float32)
    feats, logits = backend.features_and_logits(torch.from_numpy(x).permute(0, 4, 1, 2, 3).contiguous())
    assert feats.shape == (1, 7, 1024) and feats.dtype == torch.float32
    assert rel_l2(feats[0], golden["feature"]) < 1e-4 and rel_l2(logits[0], golden["logits"]) < 1e-4
    meta = json.loads((backend.folder / "meta.json").read_text())
    assert meta["weights_sha256"] == backend.weights_sha256 and meta["input_shape"] == [1, 3, 64, 224, 224]

    def no_conversion(*args, **kwargs):
        raise AssertionError("a warm start must not convert again")

    monkeypatch.setattr(ovb, "convert_i3d", no_conversion)
    again = open_backend(backend="openvino", precision="bf16")  # same IR, bf16 hint
    assert again.folder == backend.folder
    assert again.load_seconds < 10  # read from disk (seconds even on a loaded machine)
    assert cosine(again(torch.from_numpy(x).permute(0, 4, 1, 2, 3).contiguous()), feats) > 0.9995


@pytest.mark.slow
def test_openvino_uint8_input_equals_float_input(ov_backends):
    backend = ov_backends("fp32")
    u8 = np.random.default_rng(1).integers(0, 256, size=(2, 3, 64, 224, 224), dtype=np.uint8)
    f_u8 = backend(u8)
    f_fl = backend(u8.astype(np.float32) / 127.5 - 1.0)
    assert f_u8.shape == (2, 7, 1024) and rel_l2(f_u8, f_fl) < 1e-5


@pytest.mark.slow
@pytest.mark.skipif(not VTEST.exists() or not UCF, reason=f"real clips absent ({MEDIA}: vtest.avi, ucf-crime/)")
def test_int8_gate_feature_cosine_on_real_frames(ov_backends):
    """Gate: every real snippet's int8 features within cosine 0.995 of fp32 (vtest.avi + UCF-Crime clips;
    the UCF-Crime clips are not in the built-in calibration set)."""
    fp32, int8 = ov_backends("fp32"), ov_backends("int8")
    snippets = real_snippets([VTEST, *UCF], per_video=4)
    coss = [cosine(int8(x), fp32(x)) for x in snippets]
    assert len(coss) >= 8
    assert min(coss) >= 0.995, [round(c, 5) for c in coss]
    info = int8.info()
    assert info["precision"] == "int8" and info["calibration"]["count"] >= 16
    assert info["versions"]["nncf"] and info["versions"]["openvino"]


@pytest.mark.slow
@pytest.mark.skipif(not VTEST.exists(), reason=f"{VTEST} not present (the shared media folder)")
def test_int8_gate_same_kinetics_top1_on_vtest_crops(ov_backends):
    """Gate: on every vtest snippet whose fp32 class (top-1 of the 5-crop-averaged logits) leads by more than
    0.5 logits, int8 gives fp32's class, and each crop whose fp32 class leads by as much has it in int8's top 3
    (:func:`damvad.devtools.int8.top1_gate`). Near-ties are not gated: pedestrians are no Kinetics class;
    snippet 6's two top classes are 0.034 logits apart in fp32 (int8 flips it 227 -> 156; bf16 does not),
    snippet 0's centre crop 0.405 (int8 ranks it 4th)."""
    from backendtools import vtest_fp32_reference
    from damvad.devtools.int8 import top1_gate

    inputs = vtest_5crop_inputs()
    reference, source = vtest_fp32_reference(inputs, lambda: ov_backends("fp32"))
    gate = top1_gate([ov_backends("int8").logits(x) for x in inputs], reference)
    gate["fp32_reference"] = source
    if source == "stored":  # the stored reference is still what fp32 gives (checked on one snippet: ~9 s)
        assert rel_l2(ov_backends("fp32").logits(inputs[0]), reference[0]) < 1e-3
    assert len(gate["gated"]) >= len(inputs) // 2, gate  # most snippets are a real test of the class
    assert gate["passed"], gate


def test_the_stored_fp32_reference_serves_only_the_inputs_it_was_made_from():
    """Inputs other than the stored ones (a decoding or cropping change) get fp32 computed now, not stale logits."""
    from backendtools import vtest_fp32_reference

    other = [np.zeros((5, 3, 64, 8, 8), np.uint8)]

    class Fp32:
        def logits(self, x):
            return torch.full((x.shape[0], 400), 7.0)

    logits, source = vtest_fp32_reference(other, Fp32)
    assert source == "computed" and len(logits) == 1 and float(logits[0][0, 0]) == 7.0


@pytest.mark.slow
def test_extract_and_detect_through_openvino_int8(tmp_path, ov_backends):
    """What the lead's AUC gate runs: extract(..., backend="openvino", precision="int8"); and live detection."""
    from damvad.detect import Detector
    from damvad.extract import extract
    from damvad.model import build_model
    from damvad.modelfile import save_model_file
    from damvad.store import FeatureStore
    from videotools import write_video

    ov_backends("int8")  # built (or loaded) once per session
    video = write_video(tmp_path / "cam.mp4", 150, width=320, height=240, seed=3)
    report = extract([video], tmp_path / "feats", backend="openvino", precision="int8", progress=False)
    assert report.ok, report.summary()
    store = FeatureStore(tmp_path / "feats")
    record, feats = store.load("cam").record, store.load("cam").maps
    assert record.backend == "openvino" and record.precision == "int8"
    assert record.backend_info["calibration"]["source"].startswith("built-in")
    assert feats.shape == (3, 1, 7, 1024) and np.isfinite(feats).all()

    torch.manual_seed(0)
    model_path = save_model_file(tmp_path / "m.pt", build_model("dist", hidden=32, mlp_hidden=8))
    det = Detector(model_path, backend="openvino", precision="int8")
    result = det.run(video, progress=False)
    assert result.error is None and len(result.rows) == 3 and result.frames == 150


@pytest.mark.slow
def test_a_backend_runs_any_ir_folder(ov_backends, tmp_path):
    """``from_ir``: an IR of one's own (an experiment's) behind the same interface, no private field touched."""
    shipped = ov_backends("fp32")
    for name in ("model.xml", "model.bin"):
        (tmp_path / name).write_bytes((shipped.folder / name).read_bytes())
    mine = OpenVINOBackend.from_ir(tmp_path, "fp32")
    assert mine.folder == tmp_path and mine.weights_sha256 == "" and mine.batch_size == 1  # no meta.json here
    x = np.random.default_rng(2).integers(0, 256, size=(1, 3, 64, 224, 224), dtype=np.uint8)
    assert rel_l2(mine(x), shipped(x)) < 1e-6
    assert mine.request("uint8") is mine.request("uint8")  # compiled once, public for profiling
    with pytest.raises(FileNotFoundError, match="no model.xml"):
        OpenVINOBackend.from_ir(tmp_path / "nowhere")


@pytest.mark.slow
def test_bf16_on_a_cpu_without_bf16_units_runs_and_records_fp32(ov_backends, monkeypatch, caplog):
    """OpenVINO's plugin drops a bf16 hint on a CPU without bf16 units and runs fp32: the backend (built directly,
    or resolved by name) says so and records fp32 (the features' contract); where the plugin lists BF16 the hint
    stays."""
    import logging

    from damvad.backends import resolve

    folder = ov_backends("fp32").folder
    monkeypatch.setattr("damvad.backends.openvino.cpu_capabilities", lambda: ["FP32", "INT8"])
    with caplog.at_level(logging.WARNING, logger="damvad.backends"):
        plain = OpenVINOBackend.from_ir(folder, "bf16")
    assert plain.precision == "fp32" and plain.config["INFERENCE_PRECISION_HINT"] == "f32"
    assert plain.info()["precision"] == "fp32" and "running fp32 and recording fp32" in caplog.text
    assert resolve("openvino", "bf16") == ("openvino", "fp32") and resolve("openvino", "int8")[1] == "int8"
    monkeypatch.setattr("damvad.backends.openvino.cpu_capabilities", lambda: ["FP32", "BF16", "INT8"])
    native = OpenVINOBackend.from_ir(folder, "bf16")
    assert native.precision == "bf16" and native.config["INFERENCE_PRECISION_HINT"] == "bf16"
    assert resolve("openvino", "bf16") == ("openvino", "bf16")


@pytest.mark.slow
def test_bf16_asked_where_fp32_runs_is_resumed_not_redone(ov_backends, tmp_path, monkeypatch):
    """Features recorded as fp32 (bf16 asked for, the CPU has no bf16 units) are what a second run with the same
    command finds: skipped, not extracted again, nothing reported as redone."""
    from damvad.extract import extract
    from damvad.store import FeatureStore
    from videotools import write_video

    ov_backends("fp32")  # converted once per session
    monkeypatch.setattr("damvad.backends.openvino.cpu_capabilities", lambda: ["FP32", "INT8"])
    video = write_video(tmp_path / "cam.mp4", 70, width=160, height=120, seed=4)
    first = extract([video], tmp_path / "feats", backend="openvino", precision="bf16", progress=False)
    assert first.ok and FeatureStore(tmp_path / "feats").load("cam").record.precision == "fp32"
    again = extract([video], tmp_path / "feats", backend="openvino", precision="bf16", progress=False)
    assert again.ok and again.skipped == ["cam"] and not again.redone, again.summary()
