"""The real pipeline on a real surveillance clip (../shared/media/vtest.avi: 795 frames, 768x576, 10 fps).

Skipped with a reason when the clip is absent (a fresh clone without ../shared); CI has it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from backendtools import needs_cpu_bf16
from damvad.cli import main
from damvad.store import FeatureStore
from damvad.video import iter_frames, iter_snippets, snippet_to_input

VTEST = Path(__file__).resolve().parents[2] / "shared" / "media" / "vtest.avi"
pytestmark = pytest.mark.skipif(not VTEST.exists(), reason=f"{VTEST} not present (the shared media folder)")


@pytest.fixture(scope="module")
def snippets():
    return list(iter_snippets(iter_frames(VTEST)))


def test_extract_cli_on_vtest(tmp_path, i3d_model, capsys):
    out = tmp_path / "feats"
    assert main(["extract", str(VTEST), "--out", str(out), "--quiet"]) == 0
    store = FeatureStore(out)
    video = store.load("vtest")
    record, feats = video.record, video.maps
    assert record.frames == 795 and record.num_snippets == 13 and record.fps == 10.0
    assert record.snippet_ranges[-1] == (768, 795)
    assert record.weights_sha256 == i3d_model.weights_sha256
    assert feats.shape == (13, 1, 7, 1024) and np.isfinite(feats).all() and feats.min() >= 0  # ReLU'd maps
    assert "795" in (out / "manifest.csv").read_text()
    # a rerun skips the finished video
    assert main(["extract", str(VTEST), "--out", str(out), "--quiet"]) == 0
    assert "skipped 1" in capsys.readouterr().out


@needs_cpu_bf16
def test_top_class_stable_across_crops_and_precisions(snippets, i3d_model):
    """Pedestrians are no Kinetics action and the corner crops see other parts of the street, so a crop may
    disagree (snippet 6: fp32 crops 227/156/227/92/227). The snippet's class (top-1 of the crop-averaged
    logits) must agree across precisions and be the top-1 of most crops in both; each crop's fp32 top-1
    must be in its bf16 top 3 (near-ties flip under bf16 rounding)."""
    from damvad.backends.torch import FastI3D

    fp32 = FastI3D(i3d_model, precision="fp32", compile=True, batch_size=1)
    bf16 = FastI3D(i3d_model, precision="bf16", compile=True, batch_size=1)
    for index in (0, 6):  # full snippets (the padded last one is mostly a frozen frame)
        x = torch.from_numpy(snippet_to_input(snippets[index].frames, "5"))
        l32, l16 = fp32.logits(x), bf16.logits(x)
        top = int(l32.mean(0).argmax())
        assert int(l16.mean(0).argmax()) == top, f"snippet {index}: class differs between fp32 and bf16"
        for logits in (l32, l16):
            per_crop = logits.argmax(dim=1).tolist()
            assert per_crop.count(top) >= 3, f"snippet {index}: class {top} is top-1 of few crops {per_crop}"
        for crop in range(5):
            assert int(l32[crop].argmax()) in l16[crop].topk(3).indices.tolist()
        f32, f16 = fp32(x), bf16(x)
        cos = torch.nn.functional.cosine_similarity(f32.flatten(1), f16.flatten(1)).min()
        assert cos > 0.999
