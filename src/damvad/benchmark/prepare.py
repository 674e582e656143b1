"""A benchmark's videos and features, made once and cached under a key of everything that changes them.

Videos: ``<cache>/benchmarks/<name>/data`` (the generator refuses to reuse a folder made with other
settings). Features: ``<cache>/benchmarks/<name>/features-<key>``, where the key hashes the generator's
recorded parameters (its version, seeds, codec), the I3D weights' sha256, the crops, the precision, the
snippet length and the feature format, so a change of any of them extracts into a new folder and an
experiment never mixes features. Both steps resume where a killed run stopped, and can be run in parts
(``splits``: e.g. train and dev while settings are decided, test once they are written down).

``test_seed`` draws another test split with the same recipe (and another set of test-only cameras) into
``<cache>/benchmarks/<name>/test-seed-<N>/``: anyone can check a table on a draw nobody tuned on; the
training videos, and so the trained runs, stay those of the benchmark.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
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
    splits: tuple[str, ...] = ("train", "dev", "test")  # those generated and extracted
    test_seed: int | None = None  # another draw of the test split (this root holds only it)


def feature_key(name: str, crops: str, precision: str, weights_sha256: str, snippet_len: int = 64,
                test_seed: int | None = None) -> tuple[str, dict]:
    """(short hash, the fields it hashes) for a benchmark's features."""
    fields = {
        "benchmark": name,
        "generator": SynthParams(**generator_params(name, test_seed)).as_dict(),
        "weights_sha256": weights_sha256,
        "crops": crops,
        "precision": precision,
        "snippet_len": snippet_len,
        "feature_format": FEATURE_FORMAT,
    }
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]
    return digest, fields


def generator_params(name: str, test_seed: int | None = None) -> dict[str, Any]:
    """The benchmark's generator parameters, with ``test_seed`` when it draws another test split."""
    params = benchmark_params(name)
    if test_seed is not None and test_seed != params["seed"]:
        params["test_seed"] = int(test_seed)
    return params


def benchmark_root(name: str, root: str | Path | None = None, test_seed: int | None = None) -> Path:
    base = Path(root) if root else cache_dir() / "benchmarks" / name
    return base / f"test-seed-{test_seed}" if "test_seed" in generator_params(name, test_seed) else base


def prepare(name: str, root: str | Path | None = None, crops: str = "center", precision: str = "bf16",
            progress: bool = True, feature_fn: Any = None, weights_sha256: str | None = None,
            backend: str = "torch", splits: Sequence[str] | None = None, test_seed: int | None = None,
            workers: int | None = None) -> PreparedBenchmark:
    """Generate (or reuse) the videos and extract (or reuse) the features of benchmark ``name``.

    ``splits``: only these (default all; with ``test_seed``, only ``test`` exists). ``workers``: processes
    rendering videos (default one per CPU).

    ``backend`` is the I3D backend of a fresh extraction (the published results used torch); like the
    feature store, the key does not tell backends of the same precision apart (their features agree to
    ~1e-6 in fp32, cosine 0.9999 in bf16), but ``key.json`` records it. ``feature_fn`` / ``weights_sha256``
    replace I3D (tests use a cheap stand-in; the key records it)."""
    from damvad.datasets import SPLITS
    from damvad.extract import extract
    from damvad.synth import generate_dataset
    from damvad.utils import atomic_write_json
    from damvad.weights import CKPT_SHA256

    params = generator_params(name, test_seed)
    alt = "test_seed" in params
    wanted = tuple(splits) if splits else (("test",) if alt else SPLITS)
    if alt and wanted != ("test",):
        raise ValueError(f"{name}: test_seed={test_seed} draws another test split only (splits {list(wanted)})")
    base = benchmark_root(name, root, test_seed)
    data = generate_dataset(base / "data", progress=progress, splits=wanted, workers=workers, **params)
    sha = weights_sha256 or CKPT_SHA256
    key, fields = feature_key(name, crops, precision, sha, test_seed=test_seed)
    features = base / f"features-{key}"
    inputs = [data / s for s in wanted if (data / s).is_dir()] if splits or alt else [data]
    report = extract(inputs, features, crops=crops, precision=precision, progress=progress, feature_fn=feature_fn,
                     weights_sha256=sha, backend=backend)
    if not report.ok:
        raise RuntimeError(f"{name}: feature extraction failed for {len(report.failed)} video(s):\n"
                           + report.summary())
    used = backend if feature_fn is None else "stand-in"
    atomic_write_json(features / "key.json", {"key": key, **fields, "backend": used})
    return PreparedBenchmark(name, data, features, key, fields, wanted, params.get("test_seed"))
