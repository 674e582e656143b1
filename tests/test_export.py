"""`damvad export`: the ONNX files run in an independent runtime (onnxruntime) and match eager torch;
the IR files run in OpenVINO; the spec table is written beside them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from damvad.cli import main
from damvad.model import build_model
from damvad.modelfile import ModelCard, Threshold, save_model_file

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is in the dev extra")


@pytest.fixture(scope="module")
def head_and_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    torch.manual_seed(0)
    head = build_model("dist", hidden=64, mlp_hidden=16).eval()
    return head, save_model_file(out / "model.pt", head, ModelCard(threshold=Threshold(value=0.7)))


@pytest.fixture(scope="module")
def exported(tmp_path_factory, head_and_file, i3d_model):
    """The whole command: I3D + head, ONNX + IR (~1 min: two I3D conversions)."""
    head, model_path = head_and_file
    out = tmp_path_factory.mktemp("export") / "files"
    assert main(["export", "--out", str(out), "--model", str(model_path)]) == 0
    return out, head


@pytest.fixture(scope="module")
def head_files(tmp_path_factory, head_and_file):
    """Only the head's files (fast), through the same functions the command uses."""
    from damvad.backends.export import export_ir, export_onnx, head_step_module

    head, _ = head_and_file
    out = tmp_path_factory.mktemp("head")
    step = head_step_module(head)
    pair = (torch.zeros(1, 7, 1024), torch.zeros(1, 7, 1024))
    export_onnx(step, pair, out / "dam_head.onnx", ["current", "previous"], ["score", "weighted"])
    export_ir(step, pair, out / "dam_head.xml", ["current", "previous"], ["score", "weighted"])
    return out, head


@pytest.mark.slow
def test_i3d_onnx_and_ir_match_eager(exported, i3d_model):
    import openvino as ov

    folder, _ = exported
    x = np.random.default_rng(1).uniform(-1, 1, size=(1, 3, 64, 224, 224)).astype(np.float32)
    with torch.no_grad():
        ref_f, ref_l = i3d_model(torch.from_numpy(x))
    sess = ort.InferenceSession(str(folder / "i3d.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["video"]
    feats, logits = sess.run(["features", "logits"], {"video": x})
    assert feats.shape == (1, 7, 1024) and logits.shape == (1, 400)
    rel = np.linalg.norm(feats - ref_f.numpy()) / np.linalg.norm(ref_f.numpy())
    assert rel < 1e-4, rel
    np.testing.assert_allclose(logits, ref_l.numpy(), rtol=0, atol=1e-3 * float(np.abs(ref_l.numpy()).max()))
    compiled = ov.Core().compile_model(str(folder / "i3d.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    out = compiled({"video": x})
    rel_ir = np.linalg.norm(out["features"] - ref_f.numpy()) / np.linalg.norm(ref_f.numpy())
    assert rel_ir < 1e-4, rel_ir


def test_head_onnx_and_ir_match_a_stream_of_steps(head_files):
    import openvino as ov

    folder, head = head_files
    sess = ort.InferenceSession(str(folder / "dam_head.onnx"), providers=["CPUExecutionProvider"])
    ir = ov.Core().compile_model(str(folder / "dam_head.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    rng = np.random.default_rng(2)
    state = head.init_state(1)
    previous = np.zeros((1, 7, 1024), np.float32)
    for _ in range(3):  # a stream: the exported step fed back its own previous clip
        clip = rng.gamma(2.0, 0.3, size=(1, 7, 1024)).astype(np.float32)
        with torch.no_grad():
            ref, state = head.step(torch.from_numpy(clip), state)
        score, weighted = sess.run(["score", "weighted"], {"current": clip, "previous": previous})
        np.testing.assert_allclose(score, ref["score"].numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(weighted, ref["weighted"].numpy(), rtol=1e-4, atol=1e-5)
        out = ir({"current": clip, "previous": previous})
        np.testing.assert_allclose(out["score"], ref["score"].numpy(), rtol=1e-4, atol=1e-5)
        previous = clip


@pytest.mark.slow
def test_specs_written_beside_the_files(exported):
    folder, _ = exported
    specs = json.loads((folder / "specs.json").read_text())
    names = [row["tensor"] for row in specs["tensors"]]
    assert "video (input)" in names and "previous (input)" in names
    assert specs["dam_head"]["threshold"]["value"] == 0.7
    text = (folder / "INPUT_SPECS.md").read_text()
    assert "(1, 3, 64, 224, 224)" in text and "[-1, 1]" in text and "zeros before" in text


@pytest.mark.parametrize("variant", ["mlp", "lstm"])
def test_heads_that_never_read_the_previous_clip_keep_it_as_an_input(variant, tmp_path):
    """Every exported head has the interface of HEAD_SPECS (current, previous), also the variants without a DAM
    (the exporters drop an unread input: a client written for one variant failed on these)."""
    import openvino as ov

    from damvad.backends.export import export_ir, export_onnx, head_step_module

    torch.manual_seed(5)
    head = build_model(variant, hidden=32, mlp_hidden=8).eval()
    step, pair = head_step_module(head), (torch.zeros(1, 7, 1024), torch.zeros(1, 7, 1024))
    onnx_path = export_onnx(step, pair, tmp_path / "h.onnx", ["current", "previous"], ["score", "weighted"])
    ir_path = export_ir(step, pair, tmp_path / "h.xml", ["current", "previous"], ["score", "weighted"])
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["current", "previous"]
    clip = np.random.default_rng(6).gamma(2.0, 0.3, size=(1, 7, 1024)).astype(np.float32)
    other = np.random.default_rng(7).gamma(2.0, 0.3, size=(1, 7, 1024)).astype(np.float32)
    with torch.no_grad():
        ref = head.score_pairs(torch.from_numpy(clip), torch.from_numpy(other))["score"].numpy()
    score, _ = sess.run(["score", "weighted"], {"current": clip, "previous": other})
    np.testing.assert_allclose(score, ref, rtol=1e-5, atol=1e-6)
    compiled = ov.Core().compile_model(str(ir_path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    assert sorted(next(iter(p.get_names())) for p in compiled.inputs) == ["current", "previous"]
    np.testing.assert_allclose(compiled({"current": clip, "previous": other})["score"], ref, rtol=1e-5, atol=1e-6)
def test_an_ensemble_exports_as_one_step_scoring_the_mean(tmp_path):
    """A model file of K heads exports as one ONNX step whose score is the heads' mean."""
    from damvad.backends.export import export_onnx, head_step_module
    from damvad.model import HeadEnsemble

    torch.manual_seed(4)
    ensemble = HeadEnsemble([build_model("lstm", hidden=32, mlp_hidden=8) for _ in range(3)]).eval()
    pair = (torch.zeros(1, 7, 1024), torch.zeros(1, 7, 1024))
    path = export_onnx(head_step_module(ensemble), pair, tmp_path / "dam_head.onnx", ["current", "previous"],
                       ["score", "weighted"])
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    clip = np.random.default_rng(3).gamma(2.0, 0.3, size=(1, 7, 1024)).astype(np.float32)
    previous = np.zeros_like(clip)
    score, _ = sess.run(["score", "weighted"], {"current": clip, "previous": previous})
    with torch.no_grad():
        heads = [m.score_pairs(torch.from_numpy(clip), torch.from_numpy(previous))["score"] for m in ensemble.members]
    np.testing.assert_allclose(score, torch.stack(heads).mean(0).numpy(), rtol=1e-4, atol=1e-6)
