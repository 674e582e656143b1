"""DAM head: every equation recomputed in numpy (loops, a hand-written LSTM) from the module's weights."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from damvad.model import (
    VARIANTS,
    DAMConfig,
    DAMModel,
    ManyToOneLSTM,
    build_model,
    count_parameters,
    dissimilarity,
)

SMALL = dict(feature_dim=12, hidden=10, mlp_hidden=5, temporal=4)


# ----------------------------------------------------------------------------- numpy references
def np_dissimilarity(a: np.ndarray, b: np.ndarray, kind: str, cov_norm: str = "paper"):
    """Loops over j and k for a single (t, n) pair, as written in the paper / the released code."""
    t, n = a.shape
    d_t, d_n = np.zeros(t), np.zeros(n)
    if kind == "dist":
        for j in range(t):
            for k in range(n):
                d_t[j] += abs(a[j, k] - b[j, k])
                d_n[k] += abs(a[j, k] - b[j, k])
        return d_t, d_n
    for k in range(n):  # per channel, across t
        ma, mb = sum(a[j, k] for j in range(t)) / t, sum(b[j, k] for j in range(t)) / t
        s = sum((a[j, k] - ma) * (b[j, k] - mb) for j in range(t))
        d_n[k] = s / t if cov_norm == "paper" else max(s / n, 0.0)
    for j in range(t):  # per step, across n
        ma, mb = sum(a[j, k] for k in range(n)) / n, sum(b[j, k] for k in range(n)) / n
        s = sum((a[j, k] - ma) * (b[j, k] - mb) for k in range(n))
        d_t[j] = s / n if cov_norm == "paper" else max(s / t, 0.0)
    return d_t, d_n


def np_sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def np_lstm_last(x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, b: np.ndarray, gate: str = "sigmoid"):
    """Textbook LSTM over the rows of x (t, in), h0 = c0 = 0; gate order i, f, g, o."""
    sig = np_sigmoid if gate == "sigmoid" else (lambda z: np.clip(0.2 * z + 0.5, 0.0, 1.0))
    hsz = w_hh.shape[1]
    h, c = np.zeros(hsz), np.zeros(hsz)
    for row in x:
        z = w_ih @ row + w_hh @ h + b
        i, f, g, o = z[:hsz], z[hsz : 2 * hsz], z[2 * hsz : 3 * hsz], z[3 * hsz :]
        c = sig(f) * c + sig(i) * np.tanh(g)
        h = sig(o) * np.tanh(c)
    return h


def np_weights(model: DAMModel) -> dict[str, np.ndarray]:
    return {k: v.detach().double().numpy() for k, v in model.state_dict().items()}


def np_forward_pair(model: DAMModel, a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray | None]:
    """The head's equations for one clip a with predecessor b, in float64 numpy."""
    c = model.config
    w = np_weights(model)
    out: dict[str, np.ndarray | None] = {}
    if c.variant == "mlp":
        f = a.mean(axis=0)
    else:
        f = np_lstm_last(a, w["encoder.weight_ih"], w["encoder.weight_hh"], w["encoder.bias"], c.gate_activation)
    out["encoded"] = f
    if c.dissimilarity_kind is not None:
        d_t, d_n = np_dissimilarity(a, b, c.dissimilarity_kind, c.cov_norm)
        d_nt = np.zeros((len(d_t), len(d_n)))
        for j in range(len(d_t)):
            for k in range(len(d_n)):
                d_nt[j, k] = d_t[j] * d_n[k] * c.dnt_scale  # declared option; 1.0 in the paper
        h = np_lstm_last(d_nt, w["dam_lstm.weight_ih"], w["dam_lstm.weight_hh"], w["dam_lstm.bias"],
                         c.gate_activation)
        channel = np.exp(h - h.max()) / np.exp(h - h.max()).sum()
        f = f * (c.channel_gain * channel) + f  # channel_gain: declared option; 1.0 in the paper
        out.update(dissimilarity_map=d_nt, dam_hidden=h, channel_attention=channel)
    out["modulated"] = f
    z = np.maximum(w["mlp.1.weight"] @ f + w["mlp.1.bias"], 0.0)
    d = np_sigmoid(w["mlp.3.weight"] @ z + w["mlp.3.bias"])[0]
    out["score"] = d
    if c.uses_clip_attention:
        clip_a = np_sigmoid(w["clip_fc.weight"] @ np.tanh(out["dam_hidden"]) + w["clip_fc.bias"])[0]
        out["clip_attention"] = clip_a
        out["weighted"] = d * clip_a + d
    else:
        out["weighted"] = d
    return out


# ----------------------------------------------------------------------------- dissimilarity
@pytest.mark.parametrize("kind,norm", [("dist", "paper"), ("cov", "paper"), ("cov", "released")])
def test_dissimilarity_matches_loops_with_leading_dims(kind: str, norm: str) -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 3, 5, 6))
    b = a * 0.5 + rng.standard_normal((2, 3, 5, 6))  # correlated, so cov has both signs
    d_t, d_n = dissimilarity(torch.from_numpy(a), torch.from_numpy(b), kind, norm)  # type: ignore[arg-type]
    assert d_t.shape == (2, 3, 5) and d_n.shape == (2, 3, 6)
    for i in range(2):
        for j in range(3):
            rt, rn = np_dissimilarity(a[i, j], b[i, j], kind, norm)
            np.testing.assert_allclose(d_t[i, j].numpy(), rt, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(d_n[i, j].numpy(), rn, rtol=1e-12, atol=1e-12)


def test_cov_released_is_rescaled_clamped_paper() -> None:
    rng = np.random.default_rng(1)
    a, b = torch.from_numpy(rng.standard_normal((4, 7, 32))), torch.from_numpy(rng.standard_normal((4, 7, 32)))
    pt, pn = dissimilarity(a, b, "cov", "paper")
    rt, rn = dissimilarity(a, b, "cov", "released")
    assert (pt < 0).any() and (pn < 0).any()  # the clamp matters on random data
    torch.testing.assert_close(rt, (pt * 32 / 7).clamp(min=0))
    torch.testing.assert_close(rn, (pn * 7 / 32).clamp(min=0))


def test_dissimilarity_rejects_mismatch_and_unknown_kind() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        dissimilarity(torch.zeros(7, 8), torch.zeros(7, 9), "dist")
    with pytest.raises(ValueError, match="kind"):
        dissimilarity(torch.zeros(7, 8), torch.zeros(7, 8), "cosine")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- LSTM
@pytest.mark.parametrize("gate", ["sigmoid", "hard_sigmoid"])
def test_lstm_matches_numpy(gate: str) -> None:
    torch.manual_seed(0)
    lstm = ManyToOneLSTM(6, 5, gate).double()
    lstm.reset_parameters("torch")
    x = torch.randn(3, 4, 6, dtype=torch.float64)
    got = lstm(x).detach().numpy()
    w = {k: v.detach().numpy() for k, v in lstm.state_dict().items()}
    for i in range(3):
        ref = np_lstm_last(x[i].numpy(), w["weight_ih"], w["weight_hh"], w["bias"], gate)
        np.testing.assert_allclose(got[i], ref, rtol=1e-12, atol=1e-12)


def test_lstm_sigmoid_gates_match_torch_lstm() -> None:
    """Independent check of the gate layout: torch.nn.LSTM with the same weights (one bias zeroed)."""
    torch.manual_seed(1)
    ours = ManyToOneLSTM(6, 5)
    ref = torch.nn.LSTM(6, 5, batch_first=True)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(ours.weight_ih)
        ref.weight_hh_l0.copy_(ours.weight_hh)
        ref.bias_ih_l0.copy_(ours.bias)
        ref.bias_hh_l0.zero_()
    x = torch.randn(2, 7, 6)
    torch.testing.assert_close(ours(x), ref(x)[1][0][0], rtol=1e-6, atol=1e-6)


def test_keras_init() -> None:
    torch.manual_seed(2)
    lstm = ManyToOneLSTM(8, 6)
    lstm.reset_parameters("keras")
    b = lstm.bias.detach()
    assert torch.all(b[6:12] == 1) and torch.all(b[:6] == 0) and torch.all(b[12:] == 0)
    w = lstm.weight_hh.detach().double()
    torch.testing.assert_close(w.T @ w, torch.eye(6, dtype=torch.float64), rtol=0, atol=1e-5)
    limit = (6 / (8 + 24)) ** 0.5  # glorot uniform on a (8 -> 4*6) kernel
    assert lstm.weight_ih.abs().max() <= limit


# ----------------------------------------------------------------------------- full forward
@pytest.mark.parametrize(
    "variant,norm",
    [("dist", "paper"), ("cov", "paper"), ("cov", "released"), ("dist-channel", "paper"),
     ("cov-channel", "released"), ("lstm", "paper"), ("mlp", "paper")],
)
def test_forward_matches_numpy(variant: str, norm: str) -> None:
    torch.manual_seed(3)
    model = build_model(variant, cov_norm=norm, **SMALL).double().eval()
    rng = np.random.default_rng(4)
    clips = np.abs(rng.standard_normal((2, 3, 4, 12)))  # non-negative, like post-ReLU I3D maps
    out = model(torch.from_numpy(clips), return_intermediates=True)
    keys = ["score", "weighted", "encoded", "modulated"]
    if variant not in ("mlp", "lstm"):
        keys += ["dissimilarity_map", "dam_hidden", "channel_attention"]
    if variant in ("dist", "cov"):
        keys += ["clip_attention"]
    for name in ("clip_attention", "channel_attention", "dam_hidden", "dissimilarity_map"):
        if name not in keys:
            assert out[name] is None, name
    for b in range(2):
        for i in range(3):
            prev = clips[b, i - 1] if i > 0 else np.zeros_like(clips[b, 0])
            ref = np_forward_pair(model, clips[b, i], prev)
            for k in keys:
                np.testing.assert_allclose(out[k][b, i].detach().numpy(), ref[k], rtol=1e-10, atol=1e-12,
                                           err_msg=f"{variant}/{norm}: {k} at video {b} clip {i}")
    if variant in ("dist", "cov"):
        w = out["weighted"]
        assert torch.all((w >= 0) & (w <= 2))


@pytest.mark.parametrize("variant", ["dist", "cov-channel"])
def test_declared_scales_match_numpy(variant: str) -> None:
    torch.manual_seed(5)
    model = build_model(variant, dnt_scale=0.03, channel_gain=12.0, **SMALL).double().eval()
    clips = np.abs(np.random.default_rng(6).standard_normal((1, 3, 4, 12)))
    out = model(torch.from_numpy(clips), return_intermediates=True)
    for i in range(3):
        prev = clips[0, i - 1] if i > 0 else np.zeros_like(clips[0, 0])
        ref = np_forward_pair(model, clips[0, i], prev)
        for k in ("dissimilarity_map", "channel_attention", "modulated", "score", "weighted"):
            np.testing.assert_allclose(out[k][0, i].detach().numpy(), ref[k], rtol=1e-10, atol=1e-12, err_msg=k)
    plain = build_model(variant, **SMALL).double().eval()
    plain.load_state_dict(model.state_dict())
    assert not torch.allclose(plain(torch.from_numpy(clips))["score"], out["score"])  # the options do act
    with pytest.raises(ValueError, match="dnt_scale"):
        build_model(variant, dnt_scale=0.0)


def test_hard_sigmoid_variant_matches_numpy() -> None:
    torch.manual_seed(5)
    model = build_model("dist", gate_activation="hard_sigmoid", **SMALL).double().eval()
    clips = np.random.default_rng(6).standard_normal((1, 2, 4, 12)) * 0.3
    out = model(torch.from_numpy(clips))
    ref = np_forward_pair(model, clips[0, 1], clips[0, 0])
    np.testing.assert_allclose(out["weighted"][0, 1].item(), ref["weighted"], rtol=1e-10)


def test_clip_depends_only_on_itself_and_its_predecessor() -> None:
    torch.manual_seed(7)
    model = build_model("cov", **SMALL).eval()
    clips = torch.rand(1, 5, 4, 12)
    base = model(clips)["weighted"]
    changed = clips.clone()
    changed[0, 1] += torch.rand(4, 12)
    new = model(changed)["weighted"]
    assert torch.equal(new[0, 0], base[0, 0]) and torch.equal(new[0, 3:], base[0, 3:])
    assert not torch.allclose(new[0, 1:3], base[0, 1:3])


def test_first_clip_uses_zeros_and_pieces_continue() -> None:
    torch.manual_seed(8)
    model = build_model("dist", **SMALL).eval()
    clips = torch.rand(2, 6, 4, 12)
    whole = model(clips)
    first = model.score_pairs(clips[:, 0], torch.zeros(2, 4, 12))
    torch.testing.assert_close(whole["weighted"][:, 0], first["weighted"], rtol=1e-6, atol=0)
    second_half = model(clips[:, 3:], previous=clips[:, 2])
    torch.testing.assert_close(second_half["weighted"], whole["weighted"][:, 3:], rtol=1e-6, atol=0)


@pytest.mark.parametrize(
    "variant,batch,num_clips", [(v, 2, 5) for v in VARIANTS] + [("dist", 1, 20), ("cov", 1, 20)]
)
def test_streaming_equals_whole_video(variant: str, batch: int, num_clips: int) -> None:
    """Full-size fp32 heads: step-by-step outputs equal whole-video outputs to fp32 rounding.

    BLAS picks its kernel by the number of rows, so one clip and a whole video round differently;
    Dist-DAM's large D_nt amplifies that to ~1e-5 relative (row_block padding makes it bit-exact)."""
    torch.manual_seed(9)
    model = build_model(variant, init="torch").eval()  # torch init: skips the 4096 x 1024 QR
    clips = torch.rand(batch, num_clips, 7, 1024) * 2
    with torch.no_grad():
        whole = model(clips)
        state = model.init_state(batch=batch)
        assert torch.equal(state.previous, torch.zeros(batch, 7, 1024))
        steps = []
        for i in range(num_clips):
            out, state = model.step(clips[:, i], state)
            steps.append(out)
    assert state.clips_seen == num_clips
    for key, value in whole.items():
        if value is None:
            assert all(s[key] is None for s in steps), key
            continue
        stacked = torch.stack([s[key] for s in steps], dim=1)
        # scores to 2e-5 relative; h and Channel_A, fed D_nt ~ 1e3, to 2e-3 absolute
        tight = key in ("score", "weighted", "clip_attention")
        torch.testing.assert_close(stacked, value, rtol=2e-5 if tight else 1e-3, atol=1e-7 if tight else 2e-3)


def test_row_padding_does_not_change_results() -> None:
    """The zero rows score_pairs pads the batch with must not leak into the real rows."""
    torch.manual_seed(14)
    model = build_model("dist", **SMALL).double().eval()
    clips = torch.rand(3, 7, 4, 12, dtype=torch.float64)
    model.row_block = 8
    padded = model(clips, return_intermediates=True)
    model.row_block = 1
    plain = model(clips, return_intermediates=True)
    assert padded.keys() == plain.keys()
    for key, value in plain.items():
        if value is not None:
            assert padded[key].shape == value.shape, key
            torch.testing.assert_close(padded[key], value, rtol=1e-12, atol=1e-12)


def test_step_rejects_mismatched_state() -> None:
    model = build_model("mlp", **SMALL)
    with pytest.raises(ValueError, match="stream state"):
        model.step(torch.zeros(1, 4, 12), model.init_state(batch=2))


def test_input_validation_messages() -> None:
    model = build_model("dist", **SMALL)
    with pytest.raises(ValueError, match=r"\(B, C, t, n\).*n = 12"):
        model(torch.zeros(2, 3, 4, 11))
    with pytest.raises(ValueError, match=r"\(N, t, n\)"):
        model.score_pairs(torch.zeros(3, 12), torch.zeros(3, 12))
    with pytest.raises(ValueError, match="previous"):
        model(torch.zeros(2, 3, 4, 12), previous=torch.zeros(1, 4, 12))


def test_numpy_and_float16_inputs_are_accepted() -> None:
    torch.manual_seed(10)
    model = build_model("cov", **SMALL).eval()
    clips = np.random.default_rng(11).random((1, 3, 4, 12)).astype(np.float16)
    got = model(clips)["weighted"]
    ref = model(torch.from_numpy(clips.astype(np.float32)))["weighted"]
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, ref, rtol=0, atol=0)


# ----------------------------------------------------------------------------- config and sizes
def test_config_validation_and_round_trip() -> None:
    with pytest.raises(ValueError, match="unknown DAM variant"):
        DAMConfig(variant="attention")
    with pytest.raises(ValueError, match="dropout"):
        DAMConfig(dropout=1.0)
    with pytest.raises(ValueError, match="cov_norm"):
        DAMConfig(cov_norm="keras")
    with pytest.raises(ValueError, match="hidden"):
        DAMConfig(hidden=0)
    with pytest.raises(ValueError, match="unknown DAMConfig field"):
        DAMConfig.from_dict({"variant": "dist", "lr": 1e-4})
    cfg = DAMConfig(variant="cov", cov_norm="released", **SMALL)
    assert DAMConfig.from_dict(cfg.to_dict()) == cfg
    torch.manual_seed(12)
    m1 = DAMModel(cfg)
    m2 = DAMModel(DAMConfig.from_dict(dataclasses.asdict(cfg)))
    m2.load_state_dict(m1.state_dict())
    x = torch.rand(1, 2, 4, 12)
    torch.testing.assert_close(m1.eval()(x)["weighted"], m2.eval()(x)["weighted"], rtol=0, atol=0)


def test_parameter_counts_by_hand() -> None:
    n, h, m = 1024, 1024, 96
    lstm = 4 * h * (n + h) + 4 * h  # Keras layout: one bias
    mlp = h * m + m + m + 1
    expected = {
        "mlp": n * m + m + m + 1,
        "lstm": lstm + mlp,
        "dist-channel": 2 * lstm + mlp,
        "cov-channel": 2 * lstm + mlp,
        "dist": 2 * lstm + mlp + h + 1,
        "cov": 2 * lstm + mlp + h + 1,
    }
    for variant, count in expected.items():
        with torch.device("meta"):  # shapes only: no memory, no initialisation cost
            assert count_parameters(build_model(variant, init="torch")) == count, variant
    # Paper: 29 M in all with I3D's ~12.3 M.
    assert 16.5e6 < expected["dist"] < 17.0e6


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(13)
    model = build_model("dist", **SMALL).train()
    out = model(torch.rand(3, 4, 4, 12))
    out["weighted"].sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.count_nonzero(p.grad) > 0, name


def test_an_ensemble_scores_the_mean_of_its_heads_whole_and_streamed() -> None:
    """HeadEnsemble: D, wD and Clip_A are the heads' means, the per-head pieces None; a stream equals the whole
    video, as for one head; heads of different configs are refused."""
    from damvad.model import HeadEnsemble

    torch.manual_seed(21)
    heads = [build_model("dist", **SMALL).double().eval() for _ in range(3)]
    ensemble = HeadEnsemble(heads).eval()
    clips = torch.rand(2, 6, 4, 12, dtype=torch.float64)
    with torch.no_grad():
        whole = ensemble(clips)
        alone = [h(clips) for h in heads]
        state, steps = ensemble.init_state(batch=2), []
        for i in range(6):
            out, state = ensemble.step(clips[:, i], state)
            steps.append(out)
    for key in ("score", "weighted", "clip_attention"):
        torch.testing.assert_close(whole[key], torch.stack([a[key] for a in alone]).mean(0), rtol=1e-12, atol=0)
        torch.testing.assert_close(torch.stack([s[key] for s in steps], dim=1), whole[key], rtol=1e-12, atol=1e-15)
    assert whole["logit"] is None and whole["dam_hidden"] is None
    with pytest.raises(ValueError, match="share one config"):
        HeadEnsemble([build_model("dist", **SMALL), build_model("cov", **SMALL)])
    with pytest.raises(ValueError, match="at least 2"):
        HeadEnsemble(heads[:1])
