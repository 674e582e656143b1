"""The two errors of damvad.datasets: a dataset that cannot be used, and a malformed annotation file."""

from __future__ import annotations


class DatasetError(ValueError):
    """A dataset, annotation or feature folder that cannot be used as it is (the message says why)."""


class AnnotationError(DatasetError):
    """A malformed annotation file; the message names the file and the line."""
