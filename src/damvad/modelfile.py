"""The trained-model file: weights plus everything needed to use them honestly.

A plain dict of tensors, strings and numbers written atomically with ``torch.save`` and read with
``torch.load(weights_only=True)``: loading a model file never executes code.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from damvad import __version__
from damvad.model import DAMConfig, DAMModel
from damvad.utils import LoadError, atomic_write_bytes, load_torch_file

FORMAT = "damvad.model/1"


def save_model_file(path: str | Path, model: DAMModel, meta: dict[str, Any]) -> Path:
    payload = {
        "format": FORMAT,
        "damvad_version": __version__,
        "model_config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        **meta,
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


MODEL_NAME = "model.pt"  # the model file inside a seed folder


def run_model_files(path: str | Path) -> list[Path]:
    """Every model file ``path`` stands for: the file itself, a seed folder's ``model.pt``, or a run folder's
    ``*/model.pt`` (one per seed, sorted). The one reading of "a model file or its run folder" that
    evaluate (every seed), calibrate, detect and export (one seed: :func:`resolve_model_file`) share."""
    path = Path(path)
    if path.is_file():
        return [path]
    if (path / MODEL_NAME).is_file():
        return [path / MODEL_NAME]
    if path.is_dir():
        found = sorted(path.glob(f"*/{MODEL_NAME}"))
        if found:
            return found
        raise FileNotFoundError(f"{path}: no {MODEL_NAME} in it or its seed folders (train one with `damvad train`)")
    raise FileNotFoundError(f"{path}: no model file (train one with `damvad train`)")


def resolve_model_file(path: str | Path) -> Path:
    """The one model file ``path`` names: the file, or the model of a run folder's only seed; a run folder with
    several seeds is an error that lists them (a command that uses one model must be told which)."""
    found = run_model_files(path)
    if len(found) > 1:
        seeds = ", ".join(str(p) for p in found)
        raise ValueError(f"{path}: a run folder with {len(found)} seeds ({seeds}); give one of them, e.g. "
                         f"{found[0]} (`damvad evaluate {path}` compares them on held-out or test videos)")
    return found[0]


def read_model_file(path: str | Path) -> dict[str, Any]:
    """The model file ``path`` names (:func:`resolve_model_file`) as a dict; ``path`` (key) is the file read."""
    path = resolve_model_file(path)
    payload = load_torch_file(path, "a damvad model file")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a damvad model file (format {FORMAT} expected)")
    payload["path"] = str(path)
    return payload


def load_model(path: str | Path, device: Any = "cpu") -> tuple[DAMModel, dict[str, Any]]:
    """The model in eval mode on ``device`` (``auto | cpu | cuda[:N]``) and the file's metadata (config,
    provenance, threshold...). Files are read onto the CPU first, so a model trained on any device loads
    on any other."""
    from damvad.device import resolve_device

    target = resolve_device(device)
    payload = read_model_file(path)
    try:
        model = DAMModel(DAMConfig.from_dict(payload["model_config"]))
        model.load_state_dict(payload.pop("state_dict"))
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise LoadError(f"{payload['path']}: damaged damvad model file ({type(exc).__name__}: {exc})") from exc
    model.eval()
    return model.to(target), payload


def update_model_file(path: str | Path, **fields: Any) -> None:
    """Rewrite a model file with some metadata changed (e.g. a calibrated threshold), atomically."""
    payload = read_model_file(path)
    real = Path(payload.pop("path"))
    payload.update(fields)
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(real, buf.getvalue())
