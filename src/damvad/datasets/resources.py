"""The annotation files damvad ships, in ``damvad/data/annotations/<dataset>/``.

Read through :mod:`importlib.resources`, so they work from an installed wheel as well as from a
source tree (pyproject's package-data ships ``data/**/*``).
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from damvad.datasets.errors import DatasetError

if TYPE_CHECKING:  # importlib.resources.abc is 3.11+; importlib.abc.Traversable on 3.10
    from importlib.resources.abc import Traversable


def resource(dataset: str, *parts: str) -> Traversable:
    """A shipped file or folder of ``dataset`` (it may not exist: opening it says so)."""
    res = resources.files("damvad") / "data" / "annotations" / dataset
    for part in parts:  # one segment at a time: Traversable.joinpath takes one argument on 3.10
        res = res / part
    return res


def resource_label(dataset: str, *parts: str) -> str:
    """A readable name for a shipped file, used in error messages."""
    return "damvad/data/annotations/" + "/".join((dataset, *parts))


def read_resource_text(dataset: str, filename: str) -> str:
    """Text of a shipped annotation file (works from an installed package)."""
    res = resource(dataset, filename)
    try:
        return res.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise DatasetError(
            f"{resource_label(dataset, filename)}: shipped annotation file is missing"
        ) from exc
