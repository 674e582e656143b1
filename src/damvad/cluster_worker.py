"""A Ray worker of ``damvad extract --engine ray``: one loaded I3D, one video at a time (see damvad.cluster).

Kept apart from the driver's code: this is what runs on every node, imported there by Ray.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from damvad import __version__
from damvad.extract import ExtractorSpec, FeatureFn, extract_to_store
from damvad.store import FeatureStore
from damvad.video import VideoError, VideoInfo


def torch_device_feature_fn(model: Any, precision: str, device: str) -> FeatureFn:
    """I3D on a torch device (a GPU worker's path): BN folded, channels_last_3d, eager, fp32 or bf16.

    The CPU path is :class:`damvad.i3d.FastI3D`; this one exists because FastI3D's compiled graph is
    built for the CPU. Without a GPU here it is tested on ``device="cpu"`` against FastI3D.
    """
    import torch

    from damvad.i3d import build_runner

    runner = build_runner(model, precision, compile=False).to(device)

    def features(x: Any) -> Any:
        with torch.inference_mode():
            staged = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last_3d)
            feats, _ = runner(staged)
        return feats.float().cpu()

    return features


def _materialise_weights(data: bytes, filename: str, sha256: str) -> Path:
    """The checkpoint as a file on this node (``<cache>/cluster/<sha>/<name>``), written once, sha-checked."""
    from damvad.utils import atomic_write_bytes, cache_dir, sha256_bytes, sha256_file

    target = cache_dir() / "cluster" / sha256[:16] / filename
    if target.exists() and sha256_file(target) == sha256:
        return target
    got = sha256_bytes(data)
    if got != sha256:
        raise RuntimeError(f"weights received with sha256 {got}, expected {sha256}")
    atomic_write_bytes(target, data)
    return target


class FeatureWorker:
    """One Ray actor: one loaded I3D, one video at a time, written through the feature store.

    Runs with ``max_concurrency=2`` so that :meth:`progress` answers while :meth:`extract` works.
    """

    def __init__(self, setup: dict[str, Any], weights: bytes) -> None:
        import torch

        from damvad.i3d import load_i3d

        self._frames = 0
        host = socket.gethostname()
        if setup["damvad_version"] != __version__:
            raise RuntimeError(
                f"{host}: damvad {__version__} installed, the driver runs {setup['damvad_version']}; "
                "install the same version on every node"
            )
        out = Path(setup["out_dir"])
        if not (out / setup["marker"]).exists():
            raise RuntimeError(
                f"{host}: does not see the driver's features folder {out} (marker file missing); "
                "--out must be a folder every node sees at the same path (a shared filesystem)"
            )
        if setup.get("probe_video") and not Path(setup["probe_video"]).exists():
            raise RuntimeError(
                f"{host}: does not see the videos (no {setup['probe_video']}); "
                "the videos must be on a filesystem every node sees at the same path"
            )
        threads = max(1, int(setup["num_cpus"]))
        torch.set_num_threads(threads)
        self.store = FeatureStore(out)
        self.spec = ExtractorSpec(**setup["spec"])
        model = load_i3d(_materialise_weights(weights, setup["weights_name"], self.spec.weights_sha256))
        if model.weights_sha256 != self.spec.weights_sha256:
            raise RuntimeError(f"{host}: loaded weights {model.weights_sha256}, expected {self.spec.weights_sha256}")
        device = "cpu"
        if setup["num_gpus"]:
            if not torch.cuda.is_available():
                raise RuntimeError(f"{host}: Ray gave this worker a GPU but torch sees no CUDA device")
            device = "cuda"
        t0 = time.perf_counter()
        if device == "cpu":  # the local extraction's backend (torch or OpenVINO), warmed up before any video
            from damvad.backends import build_backend

            fn = build_backend(setup.get("backend"), self.spec.precision, model=model,
                               compile=setup["compile"], calibration=setup.get("calibration"), progress=False)
            if hasattr(fn, "warmup"):
                fn.warmup(self.spec.snippet_len)
            self.feature_fn: FeatureFn = fn
            if hasattr(fn, "info"):
                self.spec.backend_info = fn.info()
        else:
            self.feature_fn = torch_device_feature_fn(model, self.spec.precision, device)
        self.info = {
            "host": host,
            "pid": os.getpid(),
            "device": device,
            "threads": threads,
            "warmup_s": round(time.perf_counter() - t0, 2),
        }

    def describe(self) -> dict[str, Any]:
        return self.info

    def progress(self) -> int:
        """Frames done of the video in flight."""
        return self._frames

    def _count(self, frames: int) -> None:
        self._frames += frames

    def extract(self, name: str, path: str, info: VideoInfo | None) -> dict[str, Any]:
        """Extract and store one video; a bad video comes back as its error, anything else raises."""
        self._frames = 0
        try:
            row = extract_to_store(
                self.store, name, Path(path), self.feature_fn, self.spec, on_frames=self._count, info=info
            )
        except VideoError as exc:
            return {"name": name, "error": exc.cause}
        return {"name": name, "frames": int(row["frames"]), "warning": row.get("warning")}
