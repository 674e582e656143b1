"""A benchmark's videos and features, made once and cached under a key of everything that changes them.

Videos: ``<cache>/benchmarks/<name>/data`` (the generator refuses to reuse a folder made with other
settings). Features: ``<cache>/benchmarks/<name>/features-<key>``, where the key hashes the generator's
recorded parameters (its version, seeds, codec), the I3D weights' sha256, the crops, the precision, the
snippet length and the feature format, so a change of any of them extracts into a new folder and an
experiment never mixes features. Both steps resume where a killed run stopped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from damvad.synth.benchmark import benchmark_params
from damvad.synth.dataset import SynthParams
from damvad.utils import cache_dir

FEATURE_FORMAT = 1  # bump when extraction changes what it writes for the same video


@dataclass(frozen=True)
class PreparedBenchmark:
    name: str
    data: Path
    features: Path
    key: str
    key_fields: dict[str, Any]


def feature_key(name: str, crops: str, precision: str, weights_sha256: str, snippet_len: int = 64) -> tuple[str, dict]:
    """(short hash, the fields it hashes) for a benchmark's features."""
    fields = {
        "benchmark": name,
        "generator": SynthParams(**benchmark_params(name)).as_dict(),
        "weights_sha256": weights_sha256,
        "crops": crops,
        "precision": precision,
        "snippet_len": snippet_len,
        "feature_format": FEATURE_FORMAT,
    }
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]
    return digest, fields


def benchmark_root(name: str, root: str | Path | None = None) -> Path:
    return Path(root) if root else cache_dir() / "benchmarks" / name


def prepare(name: str, root: str | Path | None = None, crops: str = "center", precision: str = "bf16",
            progress: bool = True, feature_fn: Any = None, weights_sha256: str | None = None,
            backend: str = "torch") -> PreparedBenchmark:
    """Generate (or reuse) the videos and extract (or reuse) the features of benchmark ``name``.

    ``backend`` is the I3D backend of a fresh extraction (the published results used torch); like the
    feature store, the key does not tell backends of the same precision apart (their features agree to
    ~1e-6 in fp32, cosine 0.9999 in bf16), but ``key.json`` records it. ``feature_fn`` / ``weights_sha256``
    replace I3D (tests use a cheap stand-in; the key records it)."""
    from damvad.extract import extract
    from damvad.synth import generate_dataset
    from damvad.utils import atomic_write_json
    from damvad.weights import CKPT_SHA256

    base = benchmark_root(name, root)
    data = generate_dataset(base / "data", progress=progress, **benchmark_params(name))
    sha = weights_sha256 or CKPT_SHA256
    key, fields = feature_key(name, crops, precision, sha)
    features = base / f"features-{key}"
    report = extract([data], features, crops=crops, precision=precision, progress=progress, feature_fn=feature_fn,
                     weights_sha256=sha, backend=backend)
    if not report.ok:
        raise RuntimeError(f"{name}: feature extraction failed for {len(report.failed)} video(s):\n"
                           + report.summary())
    used = backend if feature_fn is None else "stand-in"
    atomic_write_json(features / "key.json", {"key": key, **fields, "backend": used})
    return PreparedBenchmark(name, data, features, key, fields)
