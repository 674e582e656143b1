"""How ``get_dataset`` finds a dataset: a registered name (or alias), a folder, or a registered file kind.

The built-in benchmarks register themselves when :mod:`damvad.datasets` is imported (one module
each); a user's own benchmark or list format registers the same way::

    from damvad.datasets import register_dataset
    register_dataset("my-cams", build_my_cams, aliases=("cams",))   # build_my_cams() -> Dataset

Names and aliases match ignoring case, ``-``, ``_`` and spaces (``UCF_Crime`` is ``ucf-crime``).
A registered name wins over a same-named folder: write ``./ucf`` for the folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from damvad.datasets.base import Dataset
from damvad.datasets.errors import DatasetError
from damvad.datasets.folder import load_folder_dataset

DatasetBuilder = Callable[[], Dataset]
FileLoader = Callable[[Path], Dataset]

_BUILDERS: dict[str, DatasetBuilder] = {}  # name -> builder, in registration order
_KEYS: dict[str, str] = {}  # normalised name or alias -> name
_BUILT: dict[str, Dataset] = {}  # built once per process: the shipped files do not change
_FILE_KINDS: dict[str, tuple[FileLoader, str]] = {}  # ".csv" -> (loader, what such a file holds)


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "").replace("_", "").replace(" ", "")


def register_dataset(name: str, builder: DatasetBuilder, aliases: Iterable[str] = ()) -> None:
    """Make ``get_dataset(name)`` (or any alias) return ``builder()``, built on first use and kept.

    A name or alias already taken by another dataset is refused: unregister that one first.
    """
    keys = [_key(name), *(_key(a) for a in aliases)]
    if not all(keys):
        raise ValueError(f"dataset name {name!r} and its aliases {list(aliases)!r} must not be empty")
    if name in _BUILDERS:
        raise ValueError(f"dataset {name!r} is already registered")
    for key in keys:
        if key in _KEYS:
            raise ValueError(f"dataset name or alias {key!r} of {name!r} already means {_KEYS[key]!r}")
    _BUILDERS[name] = builder
    _KEYS.update(dict.fromkeys(keys, name))


def unregister_dataset(name: str) -> None:
    """Forget a registered dataset, its aliases and its built copy."""
    if name not in _BUILDERS:
        raise ValueError(f"dataset {name!r} is not registered")
    del _BUILDERS[name]
    _BUILT.pop(name, None)
    for key in [k for k, v in _KEYS.items() if v == name]:
        del _KEYS[key]


def register_file_kind(suffix: str, loader: FileLoader, description: str) -> None:
    """Read dataset files ending in ``suffix`` with ``loader``; ``description`` completes "a dataset
    file must be ..." in the error for a file of no registered kind."""
    suffix = suffix.lower()
    if not suffix.startswith(".") or suffix in _FILE_KINDS:
        raise ValueError(f"file kind {suffix!r}: need a new suffix starting with '.'")
    _FILE_KINDS[suffix] = (loader, description)


def dataset_names() -> tuple[str, ...]:
    """The registered dataset names, built-in benchmarks first."""
    return tuple(_BUILDERS)


def resolve_name(name: str) -> str | None:
    """The registered name that ``name`` means (itself or an alias), or None."""
    return _KEYS.get(_key(name))


def get_dataset(name_or_path: str | Path) -> Dataset:
    """A registered benchmark by name, a dataset folder, or a file of a registered kind (``.csv``)."""
    if isinstance(name_or_path, str):
        name = resolve_name(name_or_path)
        if name is not None:
            if name not in _BUILT:
                _BUILT[name] = _BUILDERS[name]()
            return _BUILT[name]
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return load_folder_dataset(path)
    if path.is_file():
        kind = _FILE_KINDS.get(path.suffix.lower())
        if kind is None:
            raise DatasetError(
                f"{path}: a dataset file must be {' or '.join(d for _, d in _FILE_KINDS.values())}"
            )
        return kind[0](path)
    files = " or ".join(s[1:].upper() for s in _FILE_KINDS)
    raise DatasetError(
        f"unknown dataset {str(name_or_path)!r}: not one of {', '.join(_BUILDERS)}, "
        f"and no such folder or {files} file"
    )
