"""The UCSD Ped2 benchmark runner on stand-in features (no decoding, no I3D): splits x rows x seeds, the
change detector, results.json / table.md, and resuming a killed run (the real run: README, Results)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from damvad.benchmark import ped2 as ped2_mod
from damvad.benchmark.ped2 import Ped2Config, run_ped2
from damvad.snippets import snippet_ranges
from damvad.store import FeatureStore
from featuretools import synthetic_record


def _stand_in_features(cfg, dataset, progress=True, feature_fn=None, weights_sha256=None) -> Path:
    """Every Ped2 video's features as extract would store them: noise, anomalous snippets shifted."""
    root = Path(cfg.features)
    store = FeatureStore(root)
    rng = np.random.default_rng(0)
    for item in dataset.items:
        ranges = snippet_ranges(item.num_frames, 64, cfg.stride)
        maps = rng.normal(0.4, 0.25, size=(len(ranges), 1, 7, 1024)).astype(np.float32)
        for k, (a, b) in enumerate(ranges):
            if any(a < e and s < b for s, e in dataset.intervals.get(item.name, ())):
                maps[k, :, :, :64] += 1.5
        store.save(maps, synthetic_record(item.name, f"{item.name}", maps, item.num_frames, stride=cfg.stride))
    return root


@pytest.fixture()
def config(tmp_path, monkeypatch):
    monkeypatch.setattr(ped2_mod, "prepare_features", _stand_in_features)
    return Ped2Config(features=str(tmp_path / "features"), out=str(tmp_path / "out"), splits=[0, 1],
                      variants=["mlp", "dist"], stride=32,
                      train={"iterations": 4, "eval_every": 2, "checkpoint_every": 2, "model": {"hidden": 8}})


def test_every_split_row_and_seed_is_run_summarised_and_a_killed_benchmark_resumes(config):
    first = run_ped2(config, progress=False)
    out = Path(config.out)
    saved = json.loads((out / "results.json").read_text())
    assert saved["splits"] == [0, 1] and set(saved["summary"]) == {"change", "mlp", "dist"}
    for row in ("change", "mlp", "dist"):
        stat = saved["summary"][row]["online"]["frame_auc"]
        assert stat["n"] == 2 and set(stat["per_split"]) == {"0", "1"} and 0 <= stat["mean"] <= 1
    run = saved["runs"]["dist"]["1"]["0"]
    assert len(run["train_videos"]) == 10 and run["config"]["iterations"] == 4 and run["seconds"] > 0
    assert saved["timing"]["run_seconds_mean"] > 0
    table = (out / "table.md").read_text()
    assert "| GCN-Anomaly (Zhong et al., CVPR 2019), published | | 93.2 |" in table
    assert "snippets every 32 frames" in table and "`dist`" in table
    # the precision the features were made in, from their records, not the config's (bf16 asked for here)
    assert config.precision == "bf16" and saved["features"]["precision"] == "fp32"
    assert "I3D fp32 center crop" in table and "bf16" not in table
    assert "One training seed per split" in table  # a one-seed table says it cannot rank rows
    assert first["paths"]["table"] == str(out / "table.md")

    kept = {p: p.stat().st_mtime_ns for p in out.glob("*/split*/seed*/ped2.json") if "dist/split1" not in str(p)}
    killed = out / "dist" / "split1" / "seed0"
    (killed / "ped2.json").unlink()  # killed after its last checkpoint, before it was scored
    (killed / "model.pt").unlink()
    again = run_ped2(config, progress=False)
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # finished runs were not redone
    assert (killed / "ped2.json").is_file()
    assert again["summary"]["dist"] == first["summary"]["dist"]  # resumed to the same numbers
