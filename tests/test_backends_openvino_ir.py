"""damvad.backends.openvino_ir: conversion, int8 quantization settings, the input quantizer, the disk cache."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest
import torch

from damvad.backends import openvino_ir as ovb


def test_cache_keys_separate_what_differs():
    calib = {"synthetic": 16, "videos": []}
    settings = ovb.QuantizationSettings()
    base, _ = ovb.cache_key("ab" * 32, "fp32", (1, 3, 64, 224, 224), None, None)
    assert ovb.cache_key("ab" * 32, "bf16", (1, 3, 64, 224, 224), None, None)[0] == base  # one IR, two hints
    others = [
        ovb.cache_key("cd" * 32, "fp32", (1, 3, 64, 224, 224), None, None)[0],
        ovb.cache_key("ab" * 32, "fp32", (1, 3, 32, 224, 224), None, None)[0],
        ovb.cache_key("ab" * 32, "int8", (1, 3, 64, 224, 224), calib, settings)[0],
        ovb.cache_key("ab" * 32, "int8", (1, 3, 64, 224, 224), {**calib, "videos": ["x"]}, settings)[0],
        ovb.cache_key("ab" * 32, "int8", (1, 3, 64, 224, 224), calib,
                      ovb.QuantizationSettings(keep_first_conv=not settings.keep_first_conv))[0],
        *(ovb.cache_key("ab" * 32, "int8", (1, 3, 64, 224, 224), calib, ovb.QuantizationSettings(**change))[0]
          for change in ({"overflow_fix": "enable" if settings.overflow_fix != "enable" else "disable"},
                         {"bf16_blocks": settings.bf16_blocks + ("Mixed_4b",)},
                         {"smooth_quant_conv": 0.5 if settings.smooth_quant_conv != 0.5 else 0.25},
                         {"fast_bias_correction": not settings.fast_bias_correction},
                         {"bias_correction": not settings.bias_correction},
                         {"activation_range": "minmax" if settings.activation_range != "minmax" else "histogram"},
                         {"input_range": "calibrated" if settings.input_range != "calibrated" else "pixels"})),
    ]
    assert len({base, *others}) == 13


def test_quantization_settings_name_what_stays_bf16_and_refuse_unknowns():
    """The ignored scope holds the first convolution and whole named blocks; typos get a clear error."""
    import openvino as ov
    import openvino.opset13 as ops

    x = ops.parameter([1, 3, 9, 16, 16], ov.Type.f32, name="x")
    names = ["__module.net.Conv3d_1a_7x7.conv/aten::_convolution/Convolution",
             "__module.net.Mixed_5c.Branch_0.Conv3d_0a_1x1.conv/aten::_convolution/Convolution"]
    y = x
    for name in names:
        w = ops.constant(np.ones((3, 3, 1, 1, 1), np.float32))
        y = ops.convolution(y, w, [1, 1, 1], [0, 0, 0], [0, 0, 0], [1, 1, 1])
        y.set_friendly_name(name)
    model = ov.Model([y], [x], "tiny")
    scope = ovb.ignored_scope(model, ovb.QuantizationSettings(keep_first_conv=True, bf16_blocks=("Mixed_5c",)))
    assert scope.names == names[:1]
    assert any(re.match(p, names[1]) for p in scope.patterns)
    assert ovb.ignored_scope(model, ovb.QuantizationSettings(keep_first_conv=False)) is None
    with pytest.raises(ValueError, match="no I3D block.*Mixed_5x"):
        ovb.ignored_scope(model, ovb.QuantizationSettings(bf16_blocks=("Mixed_5x",)))
    with pytest.raises(ValueError, match="overflow_fix"):
        ovb.advanced_parameters(ovb.QuantizationSettings(overflow_fix="sometimes"))
    with pytest.raises(ValueError, match="input_range must be 'pixels' or 'calibrated'"):
        ovb.QuantizationSettings(input_range="pixel")


def test_pinned_input_quantizer_holds_every_pixel_exactly():
    """The input quantizer NNCF calibrated ([-0.97, 0.96] here, as measured on I3D) clips and rounds pixels;
    pinned, all 256 values p / 127.5 - 1 come out unchanged, and its absence or another bit width is an error."""
    import openvino as ov
    import openvino.opset13 as ops

    def quantizer_model(levels: int = 256, quantize: bool = True) -> Any:
        x = ops.parameter([256], ov.Type.f32, name="x")
        lo, hi = ops.constant(np.float32(-0.9673614)), ops.constant(np.float32(0.9598039))
        y = ops.fake_quantize(x, lo, hi, lo, hi, levels) if quantize else ops.relu(x)
        return ov.Model([ops.multiply(y, ops.constant(np.float32(1.0)))], [x], "q")

    pixels = (np.arange(256, dtype=np.float32) / np.float32(127.5) - 1).astype(np.float32)
    config = {"INFERENCE_PRECISION_HINT": "f32"}

    def run(model: Any) -> np.ndarray:
        return ov.Core().compile_model(model, "CPU", config)({0: pixels})[0]

    model = quantizer_model()
    assert np.abs(run(model) - pixels).max() > 0.03  # calibrated: the extremes clipped
    ovb.pin_input_quantizer(model)
    np.testing.assert_allclose(run(model), pixels, rtol=0, atol=1e-6)
    with pytest.raises(RuntimeError, match="no quantizer on the model input"):
        ovb.pin_input_quantizer(quantizer_model(quantize=False))
    with pytest.raises(RuntimeError, match="255 levels"):
        ovb.pin_input_quantizer(quantizer_model(levels=255))


def test_plain_max_pools_keep_the_windows():
    """I3D's pools (ceil mode between stages, padded stride 1 in the branches) as opset-1 MaxPools give the
    torch numbers exactly; a pool whose indices are used is left alone."""
    import openvino as ov

    from damvad.i3d import SameMaxPool3d

    pools = torch.nn.Sequential(SameMaxPool3d((1, 3, 3), (1, 2, 2)), SameMaxPool3d((3, 3, 3), (1, 1, 1)),
                                SameMaxPool3d((3, 3, 3), (2, 2, 2)), SameMaxPool3d((2, 2, 2), (2, 2, 2)))
    x = torch.randn(1, 4, 8, 24, 24)  # even sizes, as in I3D: every pool takes max_pool3d's own padding
    model = ov.convert_model(pools, example_input=x, input=[tuple(x.shape)])
    assert ovb.plain_max_pools(model) == 4
    assert {op.get_type_info().version_id for op in model.get_ordered_ops() if op.get_type_name() == "MaxPool"} \
        == {"opset1"}
    got = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})({0: x.numpy()})[0]
    np.testing.assert_array_equal(got, pools(x).numpy())

    indices = ov.convert_model(torch.nn.MaxPool3d(2, return_indices=True), example_input=x)
    assert ovb.plain_max_pools(indices) == 0


def test_advanced_parameters_carry_the_settings():
    """Each setting reaches NNCF: bias correction off, the overflow fix, the range estimator, SmoothQuant."""
    from nncf.quantization.advanced_parameters import OverflowFix
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet as Ranges

    shipped = ovb.advanced_parameters(ovb.QuantizationSettings(overflow_fix="disable"))
    assert shipped.disable_bias_correction and shipped.overflow_fix == OverflowFix.DISABLE
    assert shipped.activations_range_estimator_params == Ranges.MEAN_MINMAX
    other = ovb.advanced_parameters(ovb.QuantizationSettings(bias_correction=True, overflow_fix="enable",
                                                             activation_range="minmax", smooth_quant_conv=0.25))
    assert not other.disable_bias_correction and other.overflow_fix == OverflowFix.ENABLE
    assert other.activations_range_estimator_params == Ranges.MINMAX
    assert other.smooth_quant_alphas.convolution == 0.25
    with pytest.raises(ValueError, match="preset must be 'performance' or 'mixed'"):
        ovb.QuantizationSettings(preset="fast")
    with pytest.raises(ValueError, match="activation_range must be"):
        ovb.QuantizationSettings(activation_range="max")


@pytest.mark.slow
def test_shipped_models_have_plain_pools_and_a_pinned_input(ov_backends):
    """What convert_i3d and quantize_i3d apply to I3D itself: no padded copy and no two-output MaxPool before
    any pool (so the int8 path runs through them), and the int8 input quantizer on the pixel grid."""
    import openvino as ov

    fp32 = ov.Core().read_model(str(ov_backends("fp32").folder / "model.xml"))
    pools = [op for op in fp32.get_ordered_ops() if op.get_type_name() == "MaxPool"]
    assert len(pools) == 13 and {op.get_type_info().version_id for op in pools} == {"opset1"}
    assert not any(op.input_value(0).get_node().get_type_name() == "Pad" for op in pools)
    int8 = ov.Core().read_model(str(ov_backends("int8").folder / "model.xml"))
    quantizer = next(iter(int8.get_parameters()[0].output(0).get_target_inputs())).get_node()
    assert quantizer.get_type_name() == "FakeQuantize" and quantizer.get_attributes()["levels"] == 256
    ranges = [float(quantizer.input_value(i).get_node().get_data()) for i in range(1, 5)]
    assert ranges == [-1.0, 1.0, -1.0, 1.0]


def test_overflow_fix_auto_follows_the_cpu(monkeypatch):
    """The shipped int8 turns NNCF's overflow fix off only where VNNI dot products cannot saturate; the
    resolved value (not "auto") is what the cache key and the provenance record; explicit values are kept."""
    for has_vnni, expected in ((True, "disable"), (False, "first_layer")):
        monkeypatch.setattr(ovb, "cpu_has_vnni", lambda v=has_vnni: v)
        assert ovb.QuantizationSettings().overflow_fix == expected
        assert ovb.QuantizationSettings(overflow_fix="enable").overflow_fix == "enable"
    assert ovb.QuantizationSettings().bias_correction is False  # measured: bias correction costs accuracy

def test_cache_entry_is_atomic(tmp_path):
    """A folder appears complete or not at all; a second writer keeps the first one's entry."""
    import openvino as ov
    import openvino.opset13 as ops

    x = ops.parameter([1, 4], ov.Type.f32, name="x")
    model = ov.Model([ops.relu(x)], [x], "tiny")
    final = tmp_path / "entry"
    ovb.write_entry(final, model, {"n": 1})
    assert sorted(p.name for p in final.iterdir()) == ["meta.json", "model.bin", "model.xml"]
    ovb.write_entry(final, model, {"n": 2})  # lost the race: no error, first entry kept
    assert json.loads((final / "meta.json").read_text()) == {"n": 1}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_processes_needing_one_missing_entry_build_it_once(tmp_path, monkeypatch):
    """Two builders of one cache entry at once (here two threads, each with its own lock file handle, as two
    processes have): the second waits for the first and reads its entry instead of converting again."""
    import threading
    import time
    from types import SimpleNamespace

    built = []

    def slow_convert(net, num_frames, batch):
        built.append(threading.get_ident())
        time.sleep(0.5)
        return "ir"

    def fake_write(final, ov_model, meta):
        final.mkdir(parents=True, exist_ok=True)
        for name in ("model.xml", "model.bin"):
            (final / name).write_text(ov_model)
        (final / "meta.json").write_text(json.dumps(meta))

    monkeypatch.setattr(ovb, "model_cache_root", lambda: tmp_path)
    monkeypatch.setattr(ovb, "convert_i3d", slow_convert)
    monkeypatch.setattr(ovb, "write_entry", fake_write)
    monkeypatch.setattr(ovb, "_versions", lambda: {})
    model = SimpleNamespace(weights_sha256="ab" * 32)
    results: list = []
    workers = [threading.Thread(target=lambda: results.append(ovb.cached_model_dir("fp32", model=model)))
               for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert len(results) == 2 and results[0] == results[1]
    assert len(built) == 1, "the entry was built twice"
    assert (results[0][0] / "model.xml").read_text() == "ir"
