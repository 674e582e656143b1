"""``damvad export``: I3D and a trained DAM head as ONNX and OpenVINO IR, for other runtimes and devices.

What is written (``out/``): ``i3d.onnx`` and ``i3d.xml/.bin`` (fp32, BN folded), optionally
``i3d-int8.xml/.bin`` (the NNCF-quantized model of the openvino backend), ``dam_head.onnx`` and
``dam_head.xml/.bin`` (one streaming step of a trained head), plus ``INPUT_SPECS.md`` and ``specs.json``:
the table of :data:`SPECS` (shapes, layouts, value ranges, frame-rate assumptions) that anyone feeding these
files from TensorRT, a Jetson, an Intel GPU or NPU must respect. ONNX comes from torch's TorchScript-based
exporter (opset 17; no extra dependency), IR from ``openvino.convert_model``; the tests run the ONNX files
in onnxruntime and compare them with eager torch.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from damvad.utils import atomic_write_json, atomic_write_text

OPSET = 17

I3D_SPECS: list[dict[str, str]] = [
    {"file": "i3d.onnx, i3d.xml (+ i3d-int8.xml)", "tensor": "video (input)", "shape": "(1, 3, 64, 224, 224)",
     "dtype": "float32", "layout": "NCDHW: batch, RGB channels, time, height, width",
     "values": "RGB pixels / 127.5 - 1, in [-1, 1]",
     "notes": "64 consecutive decoded frames at the video's own rate (no resampling; damvad snippets are 64 "
              "frames at any fps: ~2.6 s at 25 fps); shorter side resized to 256 (bilinear), then a "
              "224 x 224 crop (centre, or 5/10 crops averaged at the score level); i3d-int8 rounds its input "
              "to that pixel grid (256 levels over [-1, 1]), so 8-bit pixels pass exactly"},
    {"file": "i3d.*", "tensor": "features (output)", "shape": "(1, 7, 1024)", "dtype": "float32",
     "layout": "batch, time steps (ceil(64/8) - 1), channels", "values": ">= 0 (ReLU, average-pooled)",
     "notes": "Mixed_5c average-pooled (2, 7, 7), stride 1: the DAM's snippet map"},
    {"file": "i3d.*", "tensor": "logits (output)", "shape": "(1, 400)", "dtype": "float32",
     "layout": "batch, Kinetics-400 classes", "values": "unnormalised logits",
     "notes": "per-step logits averaged over time (a sanity check; the DAM does not use them)"},
]
HEAD_SPECS: list[dict[str, str]] = [
    {"file": "dam_head.onnx, dam_head.xml", "tensor": "current (input)", "shape": "(1, 7, 1024)",
     "dtype": "float32", "layout": "batch, t, n", "values": "an I3D features output (>= 0)",
     "notes": "the clip map being scored: one snippet, or k snippets max-pooled (snippets_per_clip)"},
    {"file": "dam_head.*", "tensor": "previous (input)", "shape": "(1, 7, 1024)", "dtype": "float32",
     "layout": "batch, t, n", "values": "the previous clip's map; zeros before a stream's first clip",
     "notes": "the only state a stream carries: feed back the last `current`"},
    {"file": "dam_head.*", "tensor": "score (output)", "shape": "(1,)", "dtype": "float32",
     "layout": "batch", "values": "D in [0, 1]", "notes": "the anomaly score of the clip (alert above the "
                                                          "calibrated threshold stored in model.pt)"},
    {"file": "dam_head.*", "tensor": "weighted (output)", "shape": "(1,)", "dtype": "float32", "layout": "batch",
     "values": "wD = D * Clip_A + D in [0, 2]", "notes": "equals score for variants without Clip_A"},
]


def specs_markdown(specs: list[dict[str, str]]) -> str:
    cols = ["file", "tensor", "shape", "dtype", "layout", "values", "notes"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(row[c] for c in cols) + " |" for row in specs]
    return "\n".join(lines) + "\n"


def head_step_module(head: Any) -> Any:
    """One streaming step of a DAM head as a module: (current, previous) -> (score, weighted)."""
    import torch

    class DAMStep(torch.nn.Module):
        def __init__(self, net: Any) -> None:
            super().__init__()
            self.net = net

        def forward(self, current: torch.Tensor, previous: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = self.net.score_pairs(current, previous)
            if self.net.config.dissimilarity_kind is None:
                # mlp / lstm never read `previous`, and the exporters drop an unread input; a zero-weighted
                # read keeps every variant's file the same interface (HEAD_SPECS), so one client runs any
                zero = 0.0 * previous.sum(dim=(1, 2))
                return out["score"] + zero, out["weighted"] + zero
            return out["score"], out["weighted"]

    return DAMStep(head).eval()


def export_onnx(module: Any, example: tuple[Any, ...], path: Path, inputs: list[str], outputs: list[str]) -> Path:
    """torch -> ONNX (TorchScript exporter, static shapes), written atomically."""
    import torch

    tmp = path.with_name(f".{path.name}.tmp")
    with torch.no_grad():
        torch.onnx.export(module, example, str(tmp), input_names=inputs, output_names=outputs, opset_version=OPSET,
                          dynamo=False, do_constant_folding=True)
    tmp.replace(path)
    return path


def export_ir(module: Any, example: tuple[Any, ...], path: Path, inputs: list[str], outputs: list[str]) -> Path:
    """torch -> OpenVINO IR (xml + bin) with named tensors."""
    import openvino as ov
    import torch

    with torch.no_grad():
        model = ov.convert_model(module, example_input=example, input=[tuple(x.shape) for x in example])
    for port, name in zip(model.inputs, inputs, strict=True):
        port.get_tensor().set_names({name})
    for port, name in zip(model.outputs, outputs, strict=True):
        port.get_tensor().set_names({name})
    ov.save_model(model, str(path), compress_to_fp16=False)
    return path


def export_all(
    out: str | Path,
    model_path: str | Path | None = None,
    formats: list[str] | tuple[str, ...] = ("onnx", "openvino"),
    int8: bool = False,
    checkpoint: str | Path | None = None,
    calibration: Any = None,
    calibration_data: Any = None,
) -> list[Path]:
    """Write the files listed in the module docstring into ``out``; returns their paths. ``int8``: also the
    quantized I3D, calibrated on ``calibration`` (videos) by ``calibration_data``
    (:class:`~damvad.backends.openvino_ir.CalibrationData`) when it is not cached yet."""
    import torch

    from damvad.i3d import load_i3d, traceable_i3d

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    i3d = traceable_i3d(load_i3d(checkpoint))
    video = (torch.zeros(1, 3, 64, 224, 224),)
    if "onnx" in formats:
        written.append(export_onnx(i3d, video, out / "i3d.onnx", ["video"], ["features", "logits"]))
    if "openvino" in formats:
        written.append(export_ir(i3d, video, out / "i3d.xml", ["video"], ["features", "logits"]))
    if int8:
        from damvad.backends.openvino import OpenVINOBackend

        backend = OpenVINOBackend("int8", checkpoint=checkpoint, calibration=calibration,
                                  calibration_data=calibration_data, progress=True)
        for suffix in (".xml", ".bin"):
            shutil.copyfile(backend.folder / f"model{suffix}", out / f"i3d-int8{suffix}")
        atomic_write_json(out / "i3d-int8.json", backend.meta)
        written.append(out / "i3d-int8.xml")
    specs = list(I3D_SPECS)
    meta: dict[str, Any] = {"i3d_weights_sha256": i3d.net.weights_sha256}
    if model_path is not None:
        from damvad.modelfile import load_model

        head, head_meta = load_model(model_path)
        step = head_step_module(head)
        pair = (torch.zeros(1, 7, 1024), torch.zeros(1, 7, 1024))
        if "onnx" in formats:
            written.append(export_onnx(step, pair, out / "dam_head.onnx", ["current", "previous"],
                                       ["score", "weighted"]))
        if "openvino" in formats:
            written.append(export_ir(step, pair, out / "dam_head.xml", ["current", "previous"],
                                     ["score", "weighted"]))
        specs += HEAD_SPECS
        meta["dam_head"] = {"model": head_meta.path, "config": head.config.to_dict(),
                            "threshold": head_meta.threshold.to_dict() if head_meta.threshold is not None else None}
    text = ("# Input specs of the exported models\n\nWritten by `damvad export`. Frame-rate assumption: none "
            "inside the models; a snippet is 64 consecutive frames of the video at its own rate, and scores "
            "map back to those frames.\n\n" + specs_markdown(specs))
    atomic_write_text(out / "INPUT_SPECS.md", text)
    atomic_write_json(out / "specs.json", {"tensors": specs, **meta})
    written += [out / "INPUT_SPECS.md", out / "specs.json"]
    return written + [p.with_suffix(".bin") for p in written if p.suffix == ".xml"]
