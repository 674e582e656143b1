"""Ranking loss and regularisers against loop-based numpy computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from damvad.losses import logit_wall, ranking_loss, regularization
from damvad.model import build_model


def np_ranking(a: np.ndarray, n: np.ndarray, l1: float, l2: float, pairing: str, reduction: str):
    """Eq. 7 with explicit loops over videos, pairs and clips."""
    hinges = []  # one entry per (anomalous, normal) pair considered
    per_anom = []
    for i in range(len(a)):
        partners = range(len(n)) if pairing == "all_pairs" else [i]
        terms = [max(0.0, 1.0 - max(a[i]) + max(n[j])) for j in partners]
        hinges += terms
        per_anom.append(sum(terms) / len(terms))
    smooth_v = [sum((a[v][i] - a[v][i + 1]) ** 2 for i in range(len(a[v]) - 1)) for v in range(len(a))]
    sparse_v = [sum(a[v]) for v in range(len(a))]
    if reduction == "mean":
        hinge = sum(hinges) / len(hinges)
        smooth, sparse = sum(smooth_v) / len(a), sum(sparse_v) / len(a)
    else:  # released TF objective: mean over normal videos of the sum over anomalous ones
        hinge = sum(per_anom)
        smooth, sparse = sum(smooth_v), sum(sparse_v)
    return hinge + l1 * smooth + l2 * sparse, hinge, smooth, sparse


@pytest.mark.parametrize("pairing", ["all_pairs", "paired"])
@pytest.mark.parametrize("reduction", ["mean", "released"])
def test_ranking_loss_matches_numpy(pairing: str, reduction: str) -> None:
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 2, size=(4, 6))
    n = rng.uniform(0, 1.2, size=(4, 6))
    l1, l2 = 0.3, 0.05  # large lambdas so every term matters in the total
    got = ranking_loss(torch.from_numpy(a), torch.from_numpy(n), l1, l2, pairing, reduction)  # type: ignore[arg-type]
    ref = np_ranking(a, n, l1, l2, pairing, reduction)
    for value, expected in zip((got.total, got.hinge, got.smooth, got.sparse), ref, strict=True):
        np.testing.assert_allclose(value.item(), expected, rtol=1e-12)
    pair_hinge = 1 - a.max(axis=1)[:, None] + n.max(axis=1)[None, :]
    assert (pair_hinge > 0).any() and (pair_hinge < 0).any()  # both sides of the margin are exercised


def test_released_all_pairs_is_batch_times_mean() -> None:
    rng = np.random.default_rng(1)
    a, n = torch.from_numpy(rng.uniform(0, 2, (5, 8))), torch.from_numpy(rng.uniform(0, 2, (3, 8)))
    mean = ranking_loss(a, n, reduction="mean")
    released = ranking_loss(a, n, reduction="released")
    torch.testing.assert_close(released.hinge, 5 * mean.hinge)
    torch.testing.assert_close(released.sparse, 5 * mean.sparse)


def test_hinge_zero_when_separated_by_margin() -> None:
    a = torch.tensor([[0.1, 1.6, 0.2], [1.9, 0.0, 0.3]], requires_grad=True)
    n = torch.tensor([[0.6, 0.1, 0.0], [0.2, 0.5, 0.55]], requires_grad=True)  # max_n <= max_a - 1
    out = ranking_loss(a, n)
    assert out.hinge.item() == 0.0
    out.hinge.backward()
    assert torch.count_nonzero(n.grad) == 0
    # Just inside the margin: positive hinge, gradient on the normal bag's max only.
    n2 = torch.tensor([[0.7, 0.1, 0.0], [0.2, 0.5, 0.55]], requires_grad=True)
    out2 = ranking_loss(a.detach(), n2, pairing="paired")
    np.testing.assert_allclose(out2.hinge.item(), (1 - 1.6 + 0.7) / 2, rtol=1e-6)
    out2.hinge.backward()
    np.testing.assert_allclose(n2.grad.numpy(), [[0.5, 0, 0], [0, 0, 0]])


def test_gradients_flow_to_scores_and_model() -> None:
    torch.manual_seed(0)
    model = build_model("cov", feature_dim=8, hidden=6, mlp_hidden=4, temporal=3).train()
    out_a = model(torch.rand(2, 5, 3, 8) + 1.0)
    out_n = model(torch.rand(2, 5, 3, 8))
    loss = ranking_loss(out_a["weighted"], out_n["weighted"], pairing="paired")
    total = loss.total + regularization(model, out_a) + regularization(model, out_n)
    total.backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert torch.count_nonzero(grads["clip_fc.weight"]) > 0 and torch.count_nonzero(grads["mlp.1.weight"]) > 0


def test_smoothness_never_crosses_videos() -> None:
    a = torch.tensor([[0.2, 0.2, 0.2], [1.5, 1.5, 1.5]])  # constant within each video
    assert ranking_loss(a, torch.zeros(1, 3)).smooth.item() == 0.0
    flattened = ((a.reshape(-1)[1:] - a.reshape(-1)[:-1]) ** 2).sum()
    assert flattened.item() > 1.0  # what the paper's N = T x batch flattening would have added


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="paired"):
        ranking_loss(torch.rand(3, 4), torch.rand(2, 4), pairing="paired")
    with pytest.raises(ValueError, match=r"weighted_norm.*\(videos, clips\)"):
        ranking_loss(torch.rand(3, 4), torch.rand(4))
    with pytest.raises(ValueError, match="reduction"):
        ranking_loss(torch.rand(3, 4), torch.rand(3, 4), reduction="sum")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ranking_loss(np.zeros((2, 2)), torch.rand(2, 2))  # type: ignore[arg-type]


@pytest.mark.parametrize("variant", ["dist", "dist-channel", "lstm", "mlp"])
def test_regularization_matches_numpy(variant: str) -> None:
    torch.manual_seed(1)
    model = build_model(variant, feature_dim=8, hidden=6, mlp_hidden=4, temporal=3).eval()
    outputs = model(torch.rand(3, 4, 3, 8))
    wl2, al2 = 1e-3, 0.01
    got = regularization(model, outputs, weight_l2=wl2, activity_l2=al2).item()
    w1 = model.mlp[1].weight.detach().numpy().astype(np.float64)
    w2 = model.mlp[3].weight.detach().numpy().astype(np.float64)
    expected = wl2 * (sum(x * x for x in w1.ravel()) + sum(x * x for x in w2.ravel()))
    if outputs["dam_hidden"] is not None:
        h = outputs["dam_hidden"].detach().numpy().astype(np.float64).reshape(-1, 6)
        expected += al2 * sum(sum(x * x for x in row) for row in h) / len(h)
    if outputs["clip_attention"] is not None:
        c = outputs["clip_attention"].detach().numpy().astype(np.float64).ravel()
        expected += al2 * sum(x * x for x in c) / len(c)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # Biases are excluded: changing one leaves the weight term unchanged.
    with torch.no_grad():
        model.mlp[1].bias.add_(5.0)
    no_act = {"dam_hidden": None, "clip_attention": None}
    np.testing.assert_allclose(regularization(model, no_act, wl2, al2).item(),
                               wl2 * (np.sum(w1**2) + np.sum(w2**2)), rtol=1e-5)


def test_logit_wall_is_zero_inside_the_bound_and_pulls_saturated_logits_back():
    """relu(|z| - bound)^2 averaged over clips, against a loop; its gradient is nonzero exactly where the sigmoid's
    is vanishing (|z| past the bound), and points back towards the bound."""
    z = torch.tensor([[-40.0, -6.5, -2.0, 0.0], [3.0, 5.99, 7.0, 30.0]], requires_grad=True)
    bound = 6.0
    flat = [float(v) for v in z.detach().reshape(-1)]
    expected = sum(max(0.0, abs(v) - bound) ** 2 for v in flat) / len(flat)
    wall = logit_wall(z, bound)
    assert float(wall.detach()) == pytest.approx(expected, rel=1e-6)
    wall.backward()
    grad = z.grad.reshape(-1).tolist()
    for v, g in zip(flat, grad, strict=True):
        if abs(v) <= bound:
            assert g == 0.0
        else:  # d/dz = 2 sign(z) (|z| - bound) / N: descent moves z towards the bound
            assert g == pytest.approx(2 * np.sign(v) * (abs(v) - bound) / len(flat), rel=1e-6)
    assert float(torch.sigmoid(torch.tensor(-40.0)) * (1 - torch.sigmoid(torch.tensor(-40.0)))) < 1e-16
    assert float(logit_wall(torch.zeros(3, 5))) == 0.0
