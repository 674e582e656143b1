"""The trained-model file: weights plus everything needed to use them honestly, as typed records.

What a file carries besides the weights is a :class:`ModelCard`: the feature contract of its training
features (:class:`damvad.contract.FeatureContract`), its clip protocol (:class:`ClipProtocol`), the
calibrated threshold (:class:`Threshold`), how training chose the kept weights (:class:`TrainResult`, its
``rule``) and the provenance (:class:`Provenance`). One writer (:func:`save_model_file`) and one reader
(:func:`read_model_card`, :func:`load_model`) turn it into the stored plain data and back: a dict of
tensors, strings and numbers written atomically with ``torch.save`` and read with
``torch.load(weights_only=True)``, so loading a model file never executes code.

Format 2 (this one) stores the clip count once (``contract.clips``); a format 1 file (damvad before the
typed card) is migrated on reading: its top-level ``num_clips``, and for files older still the feature
contract its training provenance implies, with the warning they always gave.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from damvad import __version__
from damvad.choices import NUM_CLIPS, SNIPPETS_PER_CLIP
from damvad.contract import UNKNOWN, FeatureContract
from damvad.model import ClipScorer, DAMConfig, DAMModel, HeadEnsemble
from damvad.snippets import SNIPPET_LEN
from damvad.utils import LoadError, atomic_write_bytes, load_torch_file

log = logging.getLogger(__name__)

FORMAT = "damvad.model/2"
FORMAT_1 = "damvad.model/1"  # read and migrated (top-level num_clips; the oldest have no contract)
MODEL_NAME = "model.pt"  # the model file inside a seed folder


def _known(cls: type, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the keys that are fields of ``cls``, the others): a newer damvad's keys are kept, not dropped."""
    names = {f.name for f in fields(cls)} - {"extra"}
    return {k: v for k, v in data.items() if k in names}, {k: v for k, v in data.items() if k not in names}


def _plain(record: Any) -> dict[str, Any]:
    """A record as stored: its fields (``extra`` merged back in), tuples as lists."""
    out: dict[str, Any] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if f.name == "extra":
            out.update(value)
        else:
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


class _Extensible:
    """A record read from stored data: its fields, and in ``extra`` the keys this damvad does not know."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        known, extra = _known(cls, data)
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass(frozen=True)
class ClipProtocol:
    """How a model cuts videos into clips: C clips per video in training (the offline protocol), and
    clips of k snippets online (what ``detect`` scores, unless a threshold was calibrated for another k)."""

    train_protocol: str = "offline"
    num_clips: int = NUM_CLIPS
    protocol: str = "online"
    snippets_per_clip: int = SNIPPETS_PER_CLIP

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClipProtocol:
        known, _ = _known(cls, data)
        return cls(**{k: (int(v) if k in ("num_clips", "snippets_per_clip") else str(v)) for k, v in known.items()})

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass(frozen=True)
class CalibrationFeatures:
    """The features a threshold was set on: their folder, manifest hash and contract."""

    root: str
    manifest_sha256: str | None
    contract: FeatureContract

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> CalibrationFeatures:
        return cls(str(data.get("root", "")), data.get("manifest_sha256"),
                   FeatureContract.from_dict(data.get("contract") or {}, where))

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "manifest_sha256": self.manifest_sha256, "contract": self.contract.to_dict()}


@dataclass(frozen=True)
class Threshold:
    """An alert threshold and its definition: the score that ``far_target`` of normal frames reach
    (per frame, as ``evaluate`` counts false alarms), on what it was set, for which clips."""

    value: float
    far_target: float | None = None
    far_on_calibration_frames: float | None = None
    far_definition: str = ""
    score: str = "D"
    protocol: str = "online"
    snippets_per_clip: int = SNIPPETS_PER_CLIP
    calibrated_on: str = ""
    num_videos: int = 0
    num_frames: int = 0
    features: CalibrationFeatures | None = None
    warnings: tuple[str, ...] = ()
    device: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "threshold") -> Threshold:
        known, extra = _known(cls, data)
        if "features" in known:
            known["features"] = CalibrationFeatures.from_dict(known["features"], where) if known["features"] else None
        known["warnings"] = tuple(known.get("warnings") or ())
        known["snippets_per_clip"] = int(known.get("snippets_per_clip") or SNIPPETS_PER_CLIP)
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        out = _plain(self)
        out["features"] = self.features.to_dict() if self.features is not None else None
        return out


@dataclass(frozen=True)
class SelectionRule(_Extensible):
    """The rule that chose a run's kept weights, and its inputs (written by ``damvad.train``)."""

    selection: str  # the rule applied: average | last | val_auc
    configured: str = ""  # the rule asked for (val_auc falls back to average without held-out videos of both classes)
    iterations: int = 0
    held_out_videos: int = 0
    training_videos: int = 0
    average_from: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainResult:
    """One seed's training: what was kept (``selection``, ``iteration`` and its measures), by which
    ``rule``, on which devices."""

    seed: int
    variant: str
    selection: str
    iteration: int
    parameters: int = 0
    iterations: int = 0
    seconds: float = 0.0
    device: str = ""
    devices: tuple[str, ...] = ()  # every device the run trained on, in order (a resumed run may move)
    val_video_auc: float | None = None
    rule: SelectionRule | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # the rule's own measures (averaged_steps, reason...)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainResult:
        known, extra = _known(cls, data)
        known["devices"] = tuple(known.get("devices") or ())
        if known.get("rule") is not None:
            known["rule"] = SelectionRule.from_dict(known["rule"])
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        out = _plain(self)
        out["rule"] = self.rule.to_dict() if self.rule is not None else None
        return out


@dataclass(frozen=True)
class Provenance(_Extensible):
    """Where a model came from: the code, the training data (dataset, features), the seed and device."""

    damvad_version: str = ""
    torch_version: str = ""
    numpy_version: str = ""
    python: str = ""
    dataset: str = ""
    dataset_source: str = ""  # what get_dataset() was given: calibrate and evaluate default to it
    features: str = ""
    features_manifest_sha256: str | None = None
    i3d_weights_sha256: str = ""
    feature_crops: int = 1
    feature_precision: str = ""
    snippet_len: int = SNIPPET_LEN
    seed: int | None = None
    device: str = ""
    device_name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # more device facts, the training feature contract...


@dataclass(frozen=True)
class ModelCard:
    """What a model file carries besides the weights: how to use them honestly."""

    features: FeatureContract | None = None  # None: an old file that recorded none (not checked, warned)
    clips: ClipProtocol = ClipProtocol()
    threshold: Threshold | None = None
    train: TrainResult | None = None
    provenance: Provenance | None = None
    held_out_videos: tuple[str, ...] = ()  # training videos held out of this run (calibrate's default set)
    path: str = ""  # the file it was read from ("" for a card not yet written)
    damvad_version: str = __version__  # the damvad that wrote it

    @property
    def snippets_per_clip(self) -> int:
        """The online clip length the threshold was calibrated for (else the protocol's)."""
        if self.threshold is not None:
            return self.threshold.snippets_per_clip
        return self.clips.snippets_per_clip

    def to_payload(self) -> dict[str, Any]:
        """The stored form (format 2), weights and model config aside."""
        return {
            "format": FORMAT,
            "damvad_version": __version__,
            "contract": {"features": self.features.to_dict() if self.features is not None else None,
                         "clips": self.clips.to_dict()},
            "train": self.train.to_dict() if self.train is not None else None,
            "provenance": self.provenance.to_dict() if self.provenance is not None else None,
            "threshold": self.threshold.to_dict() if self.threshold is not None else None,
            "held_out_videos": list(self.held_out_videos),
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any], where: str, *, warn: bool = True) -> ModelCard:
        """The card of a stored payload, format 1 migrated (see the module docstring); ``warn``: say when the
        feature contract is missing (once per use of a file, not again when it is rewritten)."""
        contract = payload.get("contract") or {}
        clips = contract.get("clips") or {"num_clips": payload.get("num_clips", NUM_CLIPS)}
        threshold, train, prov = payload.get("threshold"), payload.get("train"), payload.get("provenance")
        return cls(
            features=_features_of(payload, where, warn), clips=ClipProtocol.from_dict(clips),
            threshold=Threshold.from_dict(threshold, where) if threshold else None,
            train=TrainResult.from_dict(train) if train else None,
            provenance=Provenance.from_dict(prov) if prov else None,
            held_out_videos=tuple(payload.get("held_out_videos") or ()), path=where,
            damvad_version=str(payload.get("damvad_version") or ""),
        )


def _features_of(payload: dict[str, Any], where: str, warn: bool = True) -> FeatureContract | None:
    """The feature contract a payload records; for a file written before contracts were recorded, the one its
    training provenance implies (warned), or None when nothing is known (warned)."""
    recorded = (payload.get("contract") or {}).get("features")
    if recorded:
        return FeatureContract.from_dict(recorded, where)
    prov = payload.get("provenance") or {}
    if prov.get("i3d_weights_sha256") or prov.get("feature_crops"):
        if warn:
            log.warning("%s: written before damvad recorded the feature contract; using the one its training "
                        "provenance implies (weights, crops, snippet length, precision; backend unknown)", where)
        return FeatureContract.from_dict({"weights_sha256": str(prov.get("i3d_weights_sha256") or UNKNOWN),
                                          "crops": prov.get("feature_crops") or 1,
                                          "snippet_len": prov.get("snippet_len") or SNIPPET_LEN,
                                          "precision": str(prov.get("feature_precision") or UNKNOWN)}, where)
    if warn:
        log.warning("%s: no feature contract recorded (an old model file); features are not checked against the "
                    "training ones, and defaults apply (centre crop, the backend's precision)", where)
    return None


# ---------------------------------------------------------------------------------- writer and reader


def save_model_file(path: str | Path, model: ClipScorer, card: ModelCard | None = None) -> Path:
    """Write ``model`` (a head, or an ensemble of heads) and its card to ``path`` (atomically): the one writer of
    model files."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    heads = len(model.members) if isinstance(model, HeadEnsemble) else 1
    return _write(Path(path), model.config.to_dict(), state, card or ModelCard(), heads)


def _write(path: Path, model_config: dict[str, Any], state_dict: dict[str, torch.Tensor], card: ModelCard,
           heads: int = 1) -> Path:
    payload = {**card.to_payload(), "model_config": model_config, "state_dict": state_dict}
    if heads > 1:  # a file of one head stays as it always was
        payload["heads"] = heads
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())
    return path


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


def _read(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """(the file, its stored payload) of the model file ``path`` names (:func:`resolve_model_file`)."""
    real = resolve_model_file(path)
    payload = load_torch_file(real, "a damvad model file")
    if not isinstance(payload, dict) or payload.get("format") not in (FORMAT, FORMAT_1):
        raise ValueError(f"{real}: not a damvad model file (format {FORMAT} expected)")
    return real, payload


def read_model_card(path: str | Path) -> ModelCard:
    """The card of the model file ``path`` names, without building the model."""
    real, payload = _read(path)
    return ModelCard.from_payload(payload, str(real))


def load_model(path: str | Path, device: Any = "cpu") -> tuple[ClipScorer, ModelCard]:
    """The model in eval mode on ``device`` (``auto | cpu | cuda[:N]``) and its card (contract, threshold,
    provenance...). Files are read onto the CPU first, so a model trained on any device loads on any other."""
    from damvad.device import resolve_device

    target = resolve_device(device)
    real, payload = _read(path)
    card = ModelCard.from_payload(payload, str(real))
    try:
        config = DAMConfig.from_dict(payload["model_config"])
        heads = int(payload.get("heads", 1))
        model: ClipScorer = (HeadEnsemble([DAMModel(config) for _ in range(heads)]) if heads > 1
                             else DAMModel(config))
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise LoadError(f"{real}: damaged damvad model file ({type(exc).__name__}: {exc})") from exc
    model.eval()
    return model.to(target), card


def update_model_file(path: str | Path, **changes: Any) -> ModelCard:
    """Rewrite a model file with some card fields changed (e.g. ``threshold=``), atomically; a format 1
    file is written back as format 2. Returns the new card."""
    real, payload = _read(path)
    card = dataclasses.replace(ModelCard.from_payload(payload, str(real), warn=False), **changes)
    _write(real, payload["model_config"], payload["state_dict"], card, int(payload.get("heads", 1)))
    return card
