"""Progress on stderr that suits where it goes: a terminal gets lines redrawn in place, a log gets whole lines.

A bar or status line redrawn with carriage returns is right on a terminal and wrong in a log file, journald or
``docker logs``: there every redraw lands on one line that only ends with the job, and a camera scored for days
never ends it. Off a terminal, :func:`progress_bar` redraws at most every ``LOG_INTERVAL`` seconds, each redraw a
line of its own (:class:`LogLines`), and :class:`StatusLine` writes a whole line every ``LOG_INTERVAL`` seconds.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

LOG_INTERVAL = 60.0  # seconds between progress updates when stderr is not a terminal
TTY_INTERVAL = 1.0  # seconds between a status line's redraws on a terminal


def on_terminal(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default: stderr) is a terminal; False for anything that cannot say."""
    stream = stream or sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class LogLines:
    """A text stream for tqdm off a terminal: each redraw (tqdm starts it with a carriage return) becomes a
    whole line, trailing padding stripped; empty redraws are dropped."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> int:
        for line in text.replace("\n", "\r").split("\r"):
            if line.strip():
                self.stream.write(line.rstrip() + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False


def progress_bar(iterable: Any = None, **kwargs: Any) -> Any:
    """A tqdm bar (same arguments) that redraws at tqdm's pace on a terminal; elsewhere every ``LOG_INTERVAL``
    seconds (unless ``mininterval`` is given), each redraw a whole line."""
    from tqdm import tqdm

    if not on_terminal(kwargs.get("file")):
        kwargs.setdefault("mininterval", LOG_INTERVAL)
        kwargs["file"] = LogLines(kwargs.get("file") or sys.stderr)
    return tqdm(iterable, **kwargs)


class StatusLine:
    """One source's status (detection: frames, rate, latency, score): a line rewritten in place every
    ``TTY_INTERVAL`` seconds on a terminal, a whole line every ``LOG_INTERVAL`` seconds elsewhere.
    The caller asks :meth:`due` before it builds the text (``start`` and ``now``: one monotonic clock)."""

    def __init__(self, start: float, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = on_terminal(self.stream)
        self.every = TTY_INTERVAL if self.tty else LOG_INTERVAL
        self.last = start  # seconds, on the clock the caller passes to due() and show()
        self.shown = False

    def due(self, now: float) -> bool:
        """Whether a line is due at ``now``: ``every`` seconds after the start or the last line shown."""
        return now - self.last > self.every

    def show(self, text: str, now: float) -> None:
        self.stream.write(f"\r{text}   " if self.tty else f"{text}\n")
        self.stream.flush()
        self.last, self.shown = now, True

    def end(self) -> None:
        """Ends a line rewritten in place, if one was shown (a log's lines are already whole)."""
        if self.tty and self.shown:
            self.stream.write("\n")
            self.stream.flush()
        self.shown = False
