"""The feature contract: what a DAM head's scores depend on besides its weights.

A DAM head only means something on features like the ones it was trained (and its threshold calibrated)
on. Four fields change the features themselves -- the I3D weights, the crops averaged, the snippet
length and the stride between snippets (which changes what consecutive clips are, and so what the DAM
compares) -- and a difference in any of them is refused (:class:`ContractError`, naming both sides). Two
change them only by rounding -- the precision and the backend I3D ran with -- and a difference is allowed
and reported (a warning; ``tests/test_contract.py`` measures the effect of fp32 vs bf16 on scores).

The model file's card (:class:`damvad.modelfile.ModelCard`) records the contract of its training
features; ``calibrate`` records the contract of the features its threshold was set on; ``evaluate``,
``calibrate`` and ``detect`` check theirs against it and take their defaults from it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from damvad.frames import normalize_crops
from damvad.snippets import SNIPPET_LEN

if TYPE_CHECKING:
    from damvad.store import FeatureRecord

log = logging.getLogger(__name__)

FEATURE_FIELDS = ("weights_sha256", "crops", "snippet_len", "stride")  # a difference changes the features: refused
ROUNDING_FIELDS = ("precision", "backend")  # a difference changes them by rounding only: reported
UNKNOWN = ""


class ContractError(ValueError):
    """Features that differ from the ones a model was trained or calibrated on."""


@dataclass(frozen=True)
class FeatureContract:
    """How a set of I3D snippet features was made (one value per field; ``""``: not recorded)."""

    weights_sha256: str = UNKNOWN
    crops: str = "center"  # center | 5 | 10, as ``damvad extract --crops``
    snippet_len: int = SNIPPET_LEN
    precision: str = UNKNOWN  # fp32 | bf16 | int8 (several, comma-separated, when a folder mixes them)
    backend: str = UNKNOWN  # torch | openvino (idem)
    stride: int = SNIPPET_LEN  # frames between snippet starts; contracts recorded before strides: 64

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "feature contract") -> FeatureContract:
        """The contract a file records; a damaged value is a ContractError naming ``where`` (the file)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known and v is not None}
        try:
            if "crops" in values:
                values["crops"] = normalize_crops(values["crops"])
            for key in ("snippet_len", "stride"):
                if key in values:
                    values[key] = int(values[key])
        except (TypeError, ValueError) as exc:
            raise ContractError(f"{where}: damaged feature contract ({exc}); train or calibrate the model "
                                "again, or restore the file") from exc
        return cls(**values)

    def describe(self) -> str:
        return ", ".join(f"{k} {_short(getattr(self, k)) or '?'}" for k in FEATURE_FIELDS + ROUNDING_FIELDS)


def _short(value: Any) -> str:
    text = str(value)
    return text[:12] + "..." if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else text


def contract_of_record(record: FeatureRecord) -> FeatureContract:
    """The contract of one video's feature-store record (as written by ``damvad extract``)."""
    return FeatureContract(weights_sha256=record.weights_sha256, crops=record.crop_setting,
                           snippet_len=record.snippet_len, stride=record.stride, precision=record.precision,
                           backend=record.backend)


def contract_of_records(records: Iterable[FeatureRecord], where: str = "features") -> FeatureContract:
    """One contract for many videos' records: they must agree on the feature fields (a folder mixing I3D
    weights or crops would silently mix two feature spaces); mixed precisions/backends are listed."""
    contracts = [contract_of_record(r) for r in records]
    if not contracts:
        raise ValueError(f"{where}: no videos to take the feature contract from")
    for name in FEATURE_FIELDS:
        values = Counter(getattr(c, name) for c in contracts)
        if len(values) > 1:
            shown = "; ".join(f"{_short(v) or '?'} ({n} videos)" for v, n in values.most_common(4))
            raise ContractError(f"{where}: the videos' features disagree on {name}: {shown}; extract them again "
                                "with one setting (damvad extract --overwrite)")
    mixed = {name: ",".join(sorted({getattr(c, name) for c in contracts})) for name in ROUNDING_FIELDS}
    return FeatureContract(**{**contracts[0].to_dict(), **mixed})


def check_contract(expected: FeatureContract, actual: FeatureContract, expected_what: str,
                   actual_what: str) -> list[str]:
    """Refuse a difference in the feature fields; return (and log) one warning per rounding difference.

    A field not recorded on either side (``""``, e.g. a custom feature function's weights) is not compared."""
    refused = [f"{name}: {_short(getattr(expected, name))} ({expected_what}) vs {_short(getattr(actual, name))} "
               f"({actual_what})" for name in FEATURE_FIELDS if _differ(getattr(expected, name), getattr(actual, name))]
    if refused:
        raise ContractError(f"features differ from the ones the model expects, which changes its scores: "
                            f"{'; '.join(refused)}. Use features made like the model's "
                            f"({expected.describe()}), or retrain on these.")
    warnings = [f"{name} {getattr(actual, name)} ({actual_what}) differs from {getattr(expected, name)} "
                f"({expected_what}): scores differ slightly (rounding; see README, feature contract)"
                for name in ROUNDING_FIELDS if _differ(getattr(expected, name), getattr(actual, name))]
    for text in warnings:
        log.warning("%s", text)
    return warnings


def _differ(a: Any, b: Any) -> bool:
    return a != UNKNOWN and b != UNKNOWN and a != b


def contract_backend(expected: FeatureContract | None, backend: str | None,
                     precision: str | None) -> tuple[str | None, str | None]:
    """The backend and precision to build on the CPU: those given, else the training features' (when the model
    records a single one that fits and this CPU runs it natively: not bf16 without bf16 units), else ``None``
    (the backend's default; the contract check then reports the difference)."""
    from damvad.backends import cpu_runs_natively
    from damvad.choices import CPU_PRECISIONS, DEFAULT_BACKEND

    if expected is None:
        return backend, precision
    single = {k: v for k, v in (("backend", expected.backend), ("precision", expected.precision))
              if v and "," not in v}
    backend = backend if backend is not None else single.get("backend")
    if precision is None and single.get("precision"):
        candidate, name = single["precision"], str(backend or DEFAULT_BACKEND).lower()
        if candidate in CPU_PRECISIONS.get(name, ()) and cpu_runs_natively(name, candidate):
            precision = candidate
    return backend, precision
