"""Training from video-level labels on synthetic features; resume equals an uninterrupted run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from damvad.evaluate import EvalConfig, evaluate
from damvad.modelfile import load_model
from damvad.train import TrainConfig, holdout_split, train
from featuretools import make_feature_dataset, train_killed_after


def _cfg(data, feats, out, **kw):
    base = dict(dataset=str(data), features=str(feats), out=str(out), variant="dist",
                model={"hidden": 32, "mlp_hidden": 16}, iterations=120, eval_every=40,
                checkpoint_every=40, batch_anomalous=4, batch_normal=4, val_fraction=0.25, lr=3e-3)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_feature_dataset(tmp_path_factory.mktemp("synth"), n_train=24, n_test=12)


def test_holdout_is_stratified_and_disjoint():
    labels = np.array([0] * 10 + [1] * 6)
    tr, va = holdout_split(labels, 0.25, seed=0)
    assert set(tr).isdisjoint(va) and len(tr) + len(va) == 16
    assert labels[va].sum() == 2 and (labels[va] == 0).sum() == 2  # round(0.25*6), round(0.25*10)


def test_a_configs_holdout_is_its_fraction_and_split_seed():
    """TrainConfig.holdout: the split every user of a config reads (its runs, an ensemble's held-out AUC, a
    benchmark's calibration videos); another split_seed holds out other videos."""
    labels = np.array([0] * 10 + [1] * 6)
    cfg = TrainConfig(val_fraction=0.25, split_seed=3)
    tr, va = cfg.holdout(labels)
    ref_tr, ref_va = holdout_split(labels, 0.25, seed=3)
    assert np.array_equal(tr, ref_tr) and np.array_equal(va, ref_va)
    assert not np.array_equal(TrainConfig(val_fraction=0.25, split_seed=4).holdout(labels)[1], va)


@pytest.mark.parametrize("variant", ["dist", "mlp"])
def test_training_on_shifted_clips_reaches_high_frame_auc(synth, tmp_path, variant):
    data, feats = synth
    summary = train(_cfg(data, feats, tmp_path / variant, variant=variant), progress=False)
    run = summary["runs"][0]
    assert run["selection"] == "average" and run["iteration"] == 120 and run["val_video_auc"] >= 0.9
    assert run["rule"]["selection"] == "average" and run["averaged_steps"] == 60
    report = evaluate(EvalConfig(dataset=str(data), features=str(feats), runs=[str(tmp_path / variant)],
                                 timelines=2), progress=False)
    offline = report["runs"][f"{variant}/seed0"]["protocols"]["offline"]
    online = report["runs"][f"{variant}/seed0"]["protocols"]["online"]
    assert offline["frame_auc"] > 0.9 and online["frame_auc"] > 0.9
    assert (tmp_path / variant / "eval" / "roc.png").exists() and len(report["timelines"]) == 2
    assert (tmp_path / variant / "seed0" / "config.yaml").exists()
    model, card = load_model(tmp_path / variant / "seed0" / "model.pt")
    assert card.provenance.features_manifest_sha256 and card.provenance.damvad_version


def test_resumed_run_equals_uninterrupted(synth, tmp_path, monkeypatch):
    data, feats = synth
    full = _cfg(data, feats, tmp_path / "full", iterations=60, eval_every=20, checkpoint_every=20)
    train(full, progress=False)
    # a run "killed" after 30 iterations: its last checkpoint is at 20; then resumed to 60
    part = _cfg(data, feats, tmp_path / "part", iterations=60, eval_every=20, checkpoint_every=20)
    train_killed_after(part, 30, monkeypatch)
    with pytest.raises(FileExistsError):
        train(part, progress=False)
    train(part, resume=True, progress=False)
    a = torch.load(tmp_path / "full" / "seed0" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "part" / "seed0" / "model.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_several_seeds_report_mean_and_std(synth, tmp_path):
    data, feats = synth
    summary = train(_cfg(data, feats, tmp_path / "seeds", iterations=40, eval_every=20, seeds=[0, 1],
                         variant="mlp"), progress=False)
    assert len(summary["runs"]) == 2 and "val_video_auc_std" in summary


def test_selection_ties_go_to_the_later_model(synth, tmp_path, monkeypatch):
    import damvad.train as tr

    monkeypatch.setattr(tr.Trainer, "validate", lambda self: 1.0)  # a saturated held-out AUC
    summary = train(_cfg(synth[0], synth[1], tmp_path / "tie", variant="mlp", iterations=30, eval_every=10,
                         checkpoint_every=10, selection="val_auc"), progress=False)
    assert summary["runs"][0]["iteration"] == 30


def test_average_keeps_the_mean_of_the_budgets_tail(synth, tmp_path, monkeypatch):
    """selection=average: model.pt holds the mean of the weights after each of the steps 11..20 of 20."""
    import damvad.train as tr

    seen: list[dict[str, torch.Tensor]] = []
    original = tr.Trainer.train_step

    def recording_step(self):
        out = original(self)
        seen.append({k: v.detach().clone() for k, v in self.model.state_dict().items()})
        return out

    monkeypatch.setattr(tr.Trainer, "train_step", recording_step)
    summary = train(_cfg(synth[0], synth[1], tmp_path / "avg", variant="mlp", iterations=20, eval_every=10,
                         checkpoint_every=10, average_from=0.5), progress=False)
    run = summary["runs"][0]
    assert (run["selection"], run["averaged_from"], run["averaged_steps"]) == ("average", 11, 10)
    kept = torch.load(tmp_path / "avg" / "seed0" / "model.pt", weights_only=True)
    assert kept["train"]["rule"] == run["rule"] and kept["train"]["rule"]["average_from"] == 0.5
    for k, v in kept["state_dict"].items():
        torch.testing.assert_close(v, torch.stack([s[k] for s in seen[10:]]).mean(0), rtol=1e-6, atol=1e-7)


def test_the_default_rule_keeps_a_trained_model_where_a_small_held_out_set_would_not(synth, tmp_path, monkeypatch):
    """Two held-out videos of each class give a noisy AUC that peaks by chance early: selecting on it
    (the former default) keeps the model of step 10 of 60. The default trains the whole budget and keeps
    its tail average; selecting on so few videos is still possible, and warned about."""
    import damvad.train as tr

    def noisy_validation():
        noise = iter([1.0, 0.5, 0.75, 0.25, 0.5, 0.75, 0.5])  # one value per evaluation (and the final one)
        monkeypatch.setattr(tr.Trainer, "validate", lambda self: next(noise))

    kw = dict(variant="mlp", iterations=60, eval_every=10, checkpoint_every=10, val_fraction=0.2)
    noisy_validation()
    run = train(_cfg(synth[0], synth[1], tmp_path / "default", **kw), progress=False)["runs"][0]
    assert run["selection"] == "average" and run["iteration"] == 60 and run["averaged_from"] == 31
    assert "warning" not in run
    noisy_validation()
    run = train(_cfg(synth[0], synth[1], tmp_path / "val", selection="val_auc", **kw), progress=False)["runs"][0]
    assert run["selection"] == "val_auc" and run["iteration"] == 10  # an untrained model wins
    assert "unreliable" in run["warning"] and run["rule"]["held_out_videos"] == 4


def test_resume_with_another_config_keeps_the_run_as_it_was(synth, tmp_path):
    data, feats = synth
    cfg = _cfg(data, feats, tmp_path / "run", variant="mlp", iterations=4, eval_every=2, checkpoint_every=2)
    train(cfg, progress=False)
    saved = (tmp_path / "run" / "config.yaml").read_text()
    with pytest.raises(ValueError, match="started with another config"):
        train(_cfg(data, feats, tmp_path / "run", variant="mlp", iterations=4, eval_every=2, checkpoint_every=2,
                   lr=0.5), resume=True, progress=False)
    assert (tmp_path / "run" / "config.yaml").read_text() == saved


def test_gradient_norms_are_taken_only_on_the_steps_the_history_records(synth, tmp_path, monkeypatch):
    """diagnostics=True: the gradient norms in each history row are those of the step just before it, and no
    other step pays for them (the training loop is the hot path)."""
    import damvad.train as tr

    taken: list[dict[str, float]] = []
    original = tr.grad_norms

    def counting(model):
        taken.append(original(model))
        return taken[-1]

    monkeypatch.setattr(tr, "grad_norms", counting)
    train(_cfg(synth[0], synth[1], tmp_path / "diag", variant="mlp", iterations=25, eval_every=10,
               checkpoint_every=10, diagnostics=True), progress=False)
    rows = json.loads((tmp_path / "diag" / "seed0" / "history.json").read_text())
    assert [r["iteration"] for r in rows] == [10, 20, 25] and len(taken) == 3
    for row, norms in zip(rows, taken, strict=True):
        assert row["grad_mlp"] == norms["grad_mlp"]


def _pin_output_logit(monkeypatch, logit: float) -> None:
    """Every model built from here on starts with an MLP output layer that gives every clip this logit."""
    import damvad.train as tr

    original = tr.DAMModel.reset_parameters

    def pinned(self, init="keras"):
        original(self, init)
        with torch.no_grad():
            self.mlp[3].weight.zero_()
            self.mlp[3].bias.fill_(logit)

    monkeypatch.setattr(tr.DAMModel, "reset_parameters", pinned)


def test_a_collapsed_run_is_warned_about_and_recorded(synth, tmp_path, monkeypatch):
    """A head that scores every clip the same (a saturated sigmoid: no gradient, no recovery) is found, warned
    about in result.json and recorded in model.pt; a healthy run has neither."""
    cfg = dict(variant="mlp", iterations=20, eval_every=10, checkpoint_every=10)
    healthy = train(_cfg(synth[0], synth[1], tmp_path / "healthy", **cfg), progress=False)["runs"][0]
    assert "collapsed_at" not in healthy and "warning" not in healthy
    _pin_output_logit(monkeypatch, -100.0)  # far into the sigmoid's flat tail
    run = train(_cfg(synth[0], synth[1], tmp_path / "collapsed", **cfg), progress=False)["runs"][0]
    assert run["collapsed_at"] == 1 and "collapsed at iteration 1" in run["warning"]
    assert "average 10 steps after it" in run["warning"]
    kept = torch.load(tmp_path / "collapsed" / "seed0" / "model.pt", weights_only=True)
    assert kept["train"]["collapsed_at"] == 1
    last = train(_cfg(synth[0], synth[1], tmp_path / "last", selection="last", **cfg), progress=False)["runs"][0]
    assert last["collapsed_at"] == 1 and "the kept weights are the collapsed ones" in last["warning"]
    # killed after its checkpoint at 10 and resumed: the collapse keeps its first iteration (not 11)
    train_killed_after(_cfg(synth[0], synth[1], tmp_path / "resumed", **cfg), 12, monkeypatch)
    resumed = train(_cfg(synth[0], synth[1], tmp_path / "resumed", **cfg), resume=True, progress=False)["runs"][0]
    assert resumed["collapsed_at"] == 1


def test_the_logit_wall_is_off_by_default_and_acts_on_a_head_past_it(synth, tmp_path, monkeypatch):
    """logit_penalty=0 (the paper's loss) adds nothing; > 0 adds the wall's term for a head whose logits sit past
    logit_bound (recorded in the history's regularization column), and the run's config.yaml keeps the setting."""
    _pin_output_logit(monkeypatch, -10.0)  # four past the default bound of 6
    cfg = dict(variant="mlp", iterations=10, eval_every=1, checkpoint_every=10)
    train(_cfg(synth[0], synth[1], tmp_path / "plain", **cfg), progress=False)
    train(_cfg(synth[0], synth[1], tmp_path / "walled", logit_penalty=0.5, **cfg), progress=False)
    history = {name: json.loads((tmp_path / name / "seed0" / "history.json").read_text())
               for name in ("plain", "walled")}
    wall = {name: [row["regularization"] for row in rows] for name, rows in history.items()}
    assert wall["plain"] == [0.0] * 10
    # step 1: 0.5 * (10 - 6)^2 = 8 exactly; the wall's gradient then pulls the head's logits back towards -6
    assert wall["walled"][0] == pytest.approx(8.0, rel=1e-4) and wall["walled"][-1] < wall["walled"][0] / 4
    saved = yaml.safe_load((tmp_path / "walled" / "seed0" / "config.yaml").read_text())
    assert saved["logit_penalty"] == 0.5 and saved["logit_bound"] == 6.0


def test_heads_train_apart_and_score_as_their_mean(synth, tmp_path, monkeypatch):
    """heads=2: head k is the single-head run of seed head_seed(seed, k), the model file holds both, and every
    score is their mean; a run killed in its second head resumes there and ends as an uninterrupted one."""
    from damvad.model import HeadEnsemble
    from damvad.scoring import score_clips
    from damvad.train import head_seed

    data, feats = synth
    kw = dict(iterations=40, eval_every=20, checkpoint_every=20, variant="lstm")
    for k in range(2):
        train(_cfg(data, feats, tmp_path / f"single{k}", seeds=[head_seed(3, k)], **kw), progress=False)
    ensemble = _cfg(data, feats, tmp_path / "ens", seeds=[3], heads=2, **kw)
    train_killed_after(ensemble, 40 + 25, monkeypatch)  # head 0 done, head 1 killed after its checkpoint at 20
    assert (tmp_path / "ens" / "seed3" / "head0" / "model.pt").is_file()
    assert not (tmp_path / "ens" / "seed3" / "model.pt").exists()
    summary = train(ensemble, resume=True, progress=False)
    run = summary["runs"][0]
    assert run["seed"] == 3 and [h["seed"] for h in run["heads"]] == [3, head_seed(3, 1)] != [3, 4]
    assert 0 <= run["val_video_auc"] <= 1 and "val_video_auc_mean" in summary

    model, card = load_model(tmp_path / "ens" / "seed3" / "model.pt")
    assert isinstance(model, HeadEnsemble) and len(model.members) == 2
    assert card.train.extra["heads"][1]["seed"] == head_seed(3, 1) and card.provenance.seed == 3
    heads = [load_model(tmp_path / f"single{k}" / f"seed{head_seed(3, k)}" / "model.pt")[0] for k in range(2)]
    for member, alone in zip(model.members, heads, strict=True):  # each head is its seed's own run, bit for bit
        for (name, a), b in zip(member.state_dict().items(), alone.state_dict().values(), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    clips = torch.randn(5, 1, 7, 1024) + torch.linspace(0, 2, 5)[:, None, None, None]
    got = score_clips(model, clips)[0]
    want = np.mean([score_clips(h, clips)[0] for h in heads], axis=0)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert not np.allclose(score_clips(heads[0], clips)[0], score_clips(heads[1], clips)[0])  # the seeds differ
