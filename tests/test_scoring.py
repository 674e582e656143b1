"""damvad.scoring, the one scoring path: whole videos (offline / online protocols) and streams, checked
against clips pooled and scored by hand with the model's own forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from damvad.model import build_model
from damvad.scoring import StreamScorer, VideoScores, model_device, score_clips, score_video
from damvad.snippets import owned_frame_ranges, snippet_ranges

T, N = 7, 32  # small clip maps: the scoring path does not depend on I3D's 1024 channels


def _model(variant: str = "dist", seed: int = 0):
    torch.manual_seed(seed)
    return build_model(variant, hidden=16, mlp_hidden=8, feature_dim=N, temporal=T).eval()


def _maps(snippets: int, crops: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.3, 0.5, size=(snippets, crops, T, N)).astype(np.float32)


def _by_hand(model, maps: np.ndarray, groups: list[tuple[int, int]]) -> dict[str, np.ndarray]:
    """Max-pool each [start, end) group of snippets, score every crop as its own video, average over crops."""
    pooled = np.stack([maps[a:b].max(axis=0) for a, b in groups])  # (K, crops, t, n)
    with torch.no_grad():
        out = model(torch.from_numpy(pooled).transpose(0, 1).contiguous())  # crops as the batch
    return {k: None if v is None else v.mean(dim=0).numpy().astype(np.float64) for k, v in out.items()
            if k in ("score", "weighted", "clip_attention")}


@pytest.mark.parametrize("variant", ["dist", "mlp"])
@pytest.mark.parametrize("snippets", [23, 5])  # more snippets than the 16 clips, and fewer
def test_offline_scores_are_the_pooled_clips_scored_and_averaged_over_crops(variant, snippets):
    model, maps = _model(variant), _maps(snippets, crops=3)
    frames = snippets * 64 - 20  # the last snippet is partial
    vs = score_video(model, maps, frames, "offline", num_clips=16)
    if snippets >= 16:  # the paper's partition: clip i covers snippets [(i*S)//C, ((i+1)*S)//C)
        groups = [(i * snippets // 16, (i + 1) * snippets // 16) for i in range(16)]
    else:  # fewer snippets than clips: clip i is snippet min(i, S-1), the last one repeated
        groups = [(min(i, snippets - 1), min(i, snippets - 1) + 1) for i in range(16)]
    ref = _by_hand(model, maps, groups)
    assert vs.score.shape == (16,) and vs.score.dtype == np.float64
    np.testing.assert_allclose(vs.score, ref["score"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(vs.weighted, ref["weighted"], rtol=1e-5, atol=1e-6)
    if variant == "dist":
        np.testing.assert_allclose(vs.clip_attention, ref["clip_attention"], rtol=1e-5, atol=1e-6)
    else:  # no Clip_A: wD is D
        assert vs.clip_attention is None
        np.testing.assert_array_equal(vs.weighted, vs.score)
    expected_ranges = [[a * 64, min(b * 64, frames)] for a, b in groups]
    assert vs.frame_ranges.tolist() == expected_ranges
    assert vs.values("D") is vs.score and vs.values("wD") is vs.weighted


@pytest.mark.parametrize("k", [1, 3])
def test_online_scores_equal_a_stream_of_snippets(k):
    """Causal groups of k snippets, pooled and scored by hand, equal score_video's online protocol and a
    StreamScorer fed one snippet at a time (the partial last group scored by flush)."""
    model, maps = _model("dist"), _maps(11, crops=2)
    frames = 11 * 64 - 9
    vs = score_video(model, maps, frames, "online", snippets_per_clip=k)
    groups = [(j, min(j + k, 11)) for j in range(0, 11, k)]
    ref = _by_hand(model, maps, groups)
    np.testing.assert_allclose(vs.score, ref["score"], rtol=1e-5, atol=1e-6)
    assert vs.frame_ranges.tolist() == [[a * 64, min(b * 64, frames)] for a, b in groups]

    scorer = StreamScorer(model, crops=2, snippets_per_clip=k)
    results = [scorer.push(maps[s], s * 64, min((s + 1) * 64, frames)) for s in range(11)]
    streamed = [r for r in results if r is not None]
    last = scorer.flush()
    if 11 % k:
        assert last is not None
        streamed.append(last)
    else:
        assert last is None
    assert [r.index for r in streamed] == list(range(len(groups)))
    assert [[r.start_frame, r.end_frame] for r in streamed] == vs.frame_ranges.tolist()
    np.testing.assert_allclose([r.score for r in streamed], vs.score, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose([r.weighted for r in streamed], vs.weighted, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose([r.clip_attention for r in streamed], vs.clip_attention, rtol=1e-5, atol=1e-6)
    # reset starts a new stream: the same snippets give the same first score again
    scorer.reset()
    again = next(r for s in range(11) if (r := scorer.push(maps[s], 0, 1)) is not None)
    assert again.index == 0 and again.score == pytest.approx(streamed[0].score, rel=1e-6)


@pytest.mark.parametrize("k", [1, 2])
def test_overlapping_snippets_are_scored_alike_offline_online_and_streamed_without_look_ahead(k):
    """Snippets every 16 frames: each score goes to the frames since the previous clip ended, the same rule
    offline, online and streamed; a stream cut short scores its frames as the whole video does."""
    frames, stride = 300, 16
    ranges = snippet_ranges(frames, 64, stride)  # 15 full snippets and [236, 300)
    model, maps = _model("dist"), _maps(len(ranges), crops=1)
    vs = score_video(model, maps, frames, "online", snippets_per_clip=k, stride=stride)
    groups = [(j, min(j + k, len(ranges))) for j in range(0, len(ranges), k)]
    np.testing.assert_allclose(vs.score, _by_hand(model, maps, groups)["score"], rtol=1e-5, atol=1e-6)
    assert vs.frame_ranges.tolist() == owned_frame_ranges(ranges, np.array(groups)).tolist()
    assert np.all(vs.frame_ranges[1:, 0] == vs.frame_ranges[:-1, 1])

    scorer = StreamScorer(model, crops=1, snippets_per_clip=k)
    streamed = [r for s, (a, b) in enumerate(ranges) if (r := scorer.push(maps[s], int(a), int(b))) is not None]
    if (last := scorer.flush()) is not None:
        streamed.append(last)
    assert [[r.start_frame, r.end_frame] for r in streamed] == vs.frame_ranges.tolist()
    np.testing.assert_allclose([r.score for r in streamed], vs.score, rtol=1e-5, atol=1e-6)

    # no look-ahead: the first 8 snippets end at frame 176; that much of the stream scores those frames alike
    cut = score_video(model, maps[:8], 176, "online", snippets_per_clip=k, stride=stride)
    np.testing.assert_allclose(cut.per_frame(), vs.per_frame()[:176], rtol=1e-6)

    offline = score_video(model, maps, frames, "offline", num_clips=4, stride=stride)
    bounds = [(i * len(ranges) // 4, (i + 1) * len(ranges) // 4) for i in range(4)]
    np.testing.assert_allclose(offline.score, _by_hand(model, maps, bounds)["score"], rtol=1e-5, atol=1e-6)
    assert offline.frame_ranges.tolist() == [[0, 112], [112, 176], [176, 240], [240, 300]]
    assert offline.per_frame().shape == (frames,)


def test_crops_are_scored_as_separate_streams_then_averaged():
    model, maps = _model("cov"), _maps(9, crops=3)
    both = score_video(model, maps, 9 * 64, "online")
    each = [score_video(model, maps[:, c], 9 * 64, "online").score for c in range(3)]  # (S, t, n): one crop
    np.testing.assert_allclose(both.score, np.mean(each, axis=0), rtol=1e-5, atol=1e-6)


def test_score_clips_restores_the_training_mode_and_reads_read_only_maps():
    model = _model("lstm").train()
    clips = torch.from_numpy(_maps(4, crops=1))  # (K, crops, t, n)
    score, weighted, att = score_clips(model, clips)
    assert model.training and score.shape == (4,) and att is None
    assert np.all((score >= 0) & (score <= 1))
    frozen = _maps(4, crops=1)
    frozen.setflags(write=False)  # as a memory-mapped feature file
    np.testing.assert_allclose(score_video(model, frozen, 256, "online").score, score, rtol=1e-6)
    assert model_device(model) == torch.device("cpu") and model_device(torch.nn.ReLU()) == torch.device("cpu")


def test_per_frame_views_cover_every_frame_by_hand():
    """per_frame spreads each clip's score over exactly the frames it covers, to the video's last frame (the
    last snippet here is a partial one of 13 frames), Clip_A likewise; a variant without Clip_A has none."""
    vs = score_video(_model("dist"), _maps(5, crops=1), 269, "offline", num_clips=3)
    expected = np.full(269, np.nan)
    for (start, end), value in zip(vs.frame_ranges, vs.score, strict=True):
        expected[start:end] = value
    assert vs.frame_ranges[-1, 1] == 269 and not np.isnan(expected).any()
    np.testing.assert_array_equal(vs.per_frame("D"), expected)
    assert vs.per_frame("wD").shape == (269,)
    assert vs.clip_attention is not None and vs.per_frame("attention").shape == (269,)
    without = score_video(_model("mlp"), _maps(5, crops=1), 269, "offline", num_clips=3)
    with pytest.raises(ValueError, match="no clip attention"):
        without.per_frame("attention")


def test_bad_maps_and_settings_are_clear_errors():
    model, maps = _model(), _maps(4, crops=1)
    bad = maps.copy()
    bad[2, 0, 3, 5] = np.nan
    with pytest.raises(ValueError, match="non-finite values .* in snippet 2"):
        score_video(model, bad, 256)
    with pytest.raises(ValueError, match="no snippets"):
        score_video(model, maps[:0], 0)
    with pytest.raises(ValueError, match=r"expected \(snippets, crops, t, n\) maps"):
        score_video(model, maps[0, 0], 64)
    with pytest.raises(ValueError, match="protocol must be"):
        score_video(model, maps, 256, "live")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="score must be 'D' or 'wD'"):
        VideoScores(np.zeros((1, 2)), np.zeros(1), np.zeros(1), None, 1).values("A")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="snippets_per_clip must be positive"):
        StreamScorer(model, snippets_per_clip=0)
    with pytest.raises(ValueError, match="has 1 crops, the scorer was built for 2"):
        StreamScorer(model, crops=2).push(maps[0], 0, 64)
