"""What the annotation parsers share: the row they return and the line-level readers that name
the file and line of every problem."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from damvad.datasets.errors import AnnotationError
from damvad.datasets.intervals import Interval


@dataclass(frozen=True)
class AnnotationRow:
    """One video as an annotation file describes it (intervals in the damvad convention)."""

    name: str
    label: int
    category: str
    frames: int | None = None
    intervals: tuple[Interval, ...] | None = None  # None: no frame-level labels in this file
    line: int = 0


def text_lines(text: str) -> Iterable[tuple[int, list[str]]]:
    """(1-based line number, whitespace-split fields) of each non-blank, non-comment line."""
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield lineno, line.split()


def csv_rows(text: str) -> Iterable[tuple[int, list[str]]]:
    """(1-based line number, stripped cells) of each non-blank, non-comment CSV row."""
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        yield lineno, cells


def parse_int(value: str, source: str, lineno: int, what: str, *, positive: bool = False) -> int:
    try:
        number = int(value)
    except ValueError:
        raise AnnotationError(f"{source}:{lineno}: {what} {value!r} is not an integer") from None
    if positive and number <= 0:
        raise AnnotationError(f"{source}:{lineno}: {what} {number} must be positive")
    return number


def video_stem(name: str) -> str:
    """A video's name without folders or ``.mp4``: the key of its features."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return base[:-4] if base.lower().endswith(".mp4") else base


def check_unique(rows: Sequence[AnnotationRow], source: str) -> None:
    seen: dict[str, int] = {}
    for row in rows:
        if row.name in seen:
            raise AnnotationError(
                f"{source}:{row.line}: video {row.name!r} is listed twice (first on line {seen[row.name]})"
            )
        seen[row.name] = row.line
