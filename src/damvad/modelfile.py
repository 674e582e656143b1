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


def read_model_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no model file (train one with `damvad train`)")
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
