"""Diagnostics of a DAM head, against hand-written references."""

from __future__ import annotations

import math

import numpy as np
import torch

from damvad.diagnostics import gate_saturation, grad_norms, head_stats
from damvad.model import build_model


def test_gate_saturation_counts_gates_near_their_bounds():
    h = 3
    z = torch.zeros(2, 4 * h)
    z[0, 0] = 10.0  # input gate saturated (sigmoid > 0.99)
    z[0, h] = -5.0  # forget gate saturated
    z[1, 2 * h] = 3.0  # candidate (tanh) saturated: tanh(3) = 0.995
    z[1, 3 * h] = 4.0  # output gate not saturated: sigmoid(4) = 0.982
    assert gate_saturation(z) == 3 / 24


def test_head_stats_of_a_uniform_channel_attention():
    torch.manual_seed(0)
    model = build_model("dist", hidden=16, feature_dim=32, temporal=3)
    clips = torch.rand(2, 5, 3, 32)
    stats = head_stats(model, clips)
    with torch.no_grad():
        out = model.eval()(clips, return_intermediates=True)
    a = out["channel_attention"].numpy()
    ent = -(a * np.log(a)).sum(-1) / math.log(16)
    assert abs(stats["channel_entropy"] - ent.mean()) < 1e-6
    # h lies in (-1, 1), so softmax over 16 channels cannot peak much: at most e^2 / (e^2 + 15) * 16
    assert 1.0 <= stats["channel_peak"] <= 16 * math.e**2 / (math.e**2 + 15)
    clip = out["clip_attention"].numpy()
    assert abs(stats["clip_att_within"] - clip.std(axis=1, ddof=1).mean()) < 1e-6
    f_star, f = out["modulated"].numpy(), out["encoded"].numpy()
    assert abs(stats["modulation"] - np.abs(f_star - f).mean() / np.abs(f).mean()) < 1e-5
    assert 0 <= stats["encoder_saturated"] <= 1 and 0 <= stats["dam_saturated"] <= 1
    dnt = out["dissimilarity_map"].abs().numpy()
    assert abs(stats["dnt_median"] - np.median(dnt)) / np.median(dnt) < 1e-3


def test_grad_norms_per_module():
    model = build_model("cov", hidden=8, feature_dim=16, temporal=2)
    model(torch.rand(1, 3, 2, 16))["weighted"].sum().backward()
    norms = grad_norms(model)
    assert set(norms) == {"grad_encoder", "grad_dam_lstm", "grad_clip_fc", "grad_mlp"}
    ref = math.sqrt(sum(float((p.grad**2).sum()) for p in model.mlp.parameters()))
    assert abs(norms["grad_mlp"] - ref) < 1e-6 and norms["grad_encoder"] > 0


def test_diagnosis_of_a_benchmark_takes_its_tables_settings(tmp_path):
    """Without --config, `damvad benchmark diagnose synth-ucf-v2` diagnoses the table's runs: its 256-unit head,
    budget and rule on its int8 features (DiagnoseConfig's own defaults are the paper's 1024 units on bf16
    features: ~10x slower, another feature store); overrides still win, and a config file replaces the table."""
    from damvad.benchmark.diagnose import DiagnoseConfig, load_diagnose_config

    cfg = load_diagnose_config("synth-ucf-v2")
    assert (cfg.precision, cfg.backend, cfg.crops) == ("int8", "openvino", "center")
    assert cfg.train["model"] == {"hidden": 256} and cfg.train["iterations"] == 1000
    assert cfg.train["selection"] == "average"
    over = load_diagnose_config("synth-ucf-v2", overrides=["train.iterations=50", "precision=bf16"])
    assert over.train["iterations"] == 50 and over.train["model"] == {"hidden": 256} and over.precision == "bf16"
    own = tmp_path / "diagnose.yaml"
    own.write_text("benchmark: synth-ucf-v2\nvariants: [mlp]\n")
    from_file = load_diagnose_config("synth-ucf-v2", str(own))
    assert from_file.train == {} and from_file.precision == DiagnoseConfig().precision and from_file.variants == ["mlp"]
    assert load_diagnose_config("synth-demo-v3").train == {}  # no table config shipped: DiagnoseConfig's defaults
