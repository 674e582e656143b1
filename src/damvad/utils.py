"""Small I/O helpers shared by every edge of the package: atomic writes, cache dir, hashes."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import platform
import re
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

CACHE_ENV = "DAMVAD_CACHE"


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask: a container's or ``taskset``'s limit, not the
    machine's count), read at run time; thread pools and worker counts are sized from it."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def cache_dir() -> Path:
    """Where downloaded weights live; ``$DAMVAD_CACHE`` moves it (default ``~/.cache/damvad``)."""
    root = os.environ.get(CACHE_ENV)
    if root:
        path = Path(root).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
        path = Path(base) / "damvad"
    path.mkdir(parents=True, exist_ok=True)
    return path


def shared_media(name: str) -> Path | None:
    """``shared/media/<name>`` beside a source checkout (``<repo>/../shared/media``: footage the tests and
    built-in defaults use when present), or None."""
    for parent in Path(__file__).resolve().parents[1:5]:
        candidate = parent / "shared" / "media" / name
        if candidate.exists():
            return candidate
    return None


def hash_ends(digest: Any, path: str | os.PathLike, size: int, sample: int) -> None:
    """Add a file of ``size`` bytes to ``digest`` by its first and last ``sample`` bytes (all of it when it is
    short): a cheap identity of a file where a changed one differs, without reading a large one whole."""
    with open(path, "rb") as fh:
        digest.update(fh.read(sample))
        if size > sample:
            fh.seek(max(sample, size - sample))
            digest.update(fh.read(sample))


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"
_TEMP = re.compile(r"^\..*\.(\d+)@([A-Za-z0-9-]+)\.[^.]*\.tmp$")


def _temp_file(path: Path) -> tuple[int, str]:
    """A temporary file beside ``path``, named ``.NAME.PID@HOST.XXXXXXXX.tmp``: hidden from readers and
    resumers, and marked with its writer so that a cleanup never deletes a write still in progress."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}@{_HOST}.", suffix=".tmp", dir=path.parent)


def _publish(tmp: str, path: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a result file is as readable as any other
    os.replace(tmp, path)


_SHORT_WRITE = re.compile(r"^(\d+) requested and (\d+) written$")  # numpy's words for a write cut short
FULL_BELOW = 1 << 20  # bytes free under which a write cut short is put down to a full disk


def _named(exc: OSError, path: Path) -> OSError:
    """The same OS error with the file it was writing named (a full disk says which file did not fit).

    numpy's ``tofile`` reports a write cut short as "N requested and M written", without an errno: it
    becomes ENOSPC when the disk holding ``path`` is full (checked before the partial file is removed),
    else an EIO that says what happened (a quota, a network filesystem)."""
    short = _SHORT_WRITE.match(str(exc)) if exc.errno is None else None
    if short is not None:
        detail = f"{short.group(1)} items requested, {short.group(2)} written"
        if _free_bytes(path.parent) < FULL_BELOW:
            return OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} ({detail})", str(path))
        return OSError(errno.EIO, f"write cut short ({detail}): over a disk quota, or a network filesystem "
                                  "that failed?", str(path))
    if exc.filename is not None or exc.errno is None:
        return exc
    return type(exc)(exc.errno, exc.strerror or os.strerror(exc.errno), str(path))


def _free_bytes(folder: Path) -> int:
    """Bytes an unprivileged writer may still use in ``folder``'s filesystem (0 when it cannot be told)."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):  # no statvfs on Windows
        return 0
    return st.f_bavail * st.f_frsize


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[BinaryIO]:
    """Write to a temporary file in the same folder and rename it into place on success.

    A killed process leaves either the old file or no file, never a half-written one (plus a temporary
    file that :func:`remove_stale_temps` deletes once its writer is gone). An OS error (a full disk...)
    names ``path``.
    """
    path = Path(path)
    fd, tmp = _temp_file(path)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        _publish(tmp, path)
    except BaseException as exc:
        named = _named(exc, path) if isinstance(exc, OSError) else None  # (a full disk is seen before the unlink)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if named is not None:
            raise named from exc
        raise


def remove_stale_temps(folder: str | os.PathLike, max_age: float = 86400.0) -> list[Path]:
    """Delete the temporary files that killed writers left in ``folder``. A write of a live process on this
    host is left alone; one of another host sharing the folder (whose process cannot be checked from here),
    or with an older name, only once it has not changed for ``max_age`` seconds."""
    removed = []
    now = time.time()
    for tmp in Path(folder).glob(".*.tmp"):
        match = _TEMP.match(tmp.name)
        try:
            if match is not None and match.group(2) == _HOST:
                stale = not _process_alive(int(match.group(1)))
            else:
                stale = now - tmp.stat().st_mtime > max_age
            if stale:
                tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:
            pass
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


class _TextOutput:
    """A text file opened only once something is written to it; rows go to it as they come (the caller
    flushes). Subclasses say how it opens (:meth:`_open`) and what closing it means. ``fresh``: what is written
    starts a new file (so a CSV header is due)."""

    fresh = True

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._fh: Any = None

    def _open(self) -> Any:
        raise NotImplementedError

    def write(self, text: str) -> int:
        try:
            if self._fh is None:
                self._fh = self._open()
            return self._fh.write(text)
        except OSError as exc:
            raise _named(exc, self.path) from exc

    def flush(self) -> None:
        if self._fh is not None:
            self._fh.flush()

    @property
    def written(self) -> bool:
        return self._fh is not None

    def close(self) -> bool:
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AtomicTextOutput(_TextOutput):
    """A text file that replaces ``path`` only once something has been written to it.

    Rows go to a temporary file as they come (flushed, so it can be followed while a stream runs);
    :meth:`close` renames it into place, or, when nothing was written, removes it and leaves any older
    file at ``path`` untouched. Rows already written are results: they are published even when the run
    stops on an error, Ctrl-C or SIGTERM (a kill -9 leaves the old file and a temporary file).
    """

    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        self._tmp = ""

    def _open(self) -> Any:
        fd, self._tmp = _temp_file(self.path)
        return os.fdopen(fd, "w", encoding="utf-8", newline="")

    def close(self) -> bool:
        """Publish what was written; False (and the old file kept) when nothing was."""
        if self._fh is None:
            return False
        fh, self._fh = self._fh, None
        try:
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            _publish(self._tmp, self.path)
        except OSError as exc:
            fh.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)
            raise _named(exc, self.path) from exc
        return True


class AppendTextOutput(_TextOutput):
    """A text file that rows are appended to as they come (a log: followed while it grows, kept across runs),
    created only once something is written; ``fresh``: it was absent or empty before. A last line cut short (a
    run killed mid-write, a power cut) is ended first, so the new rows start on lines of their own."""

    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        self.fresh = not (self.path.exists() and self.path.stat().st_size > 0)

    def _open(self) -> Any:
        cut = False
        if not self.fresh:
            with open(self.path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                cut = fh.read(1) != b"\n"
        fh = open(self.path, "a", encoding="utf-8", newline="")  # noqa: SIM115 - closed in close()
        if cut:
            fh.write("\n")
        return fh

    def close(self) -> bool:
        """Close the file; False when nothing was written (and no file made)."""
        if self._fh is None:
            return False
        fh, self._fh = self._fh, None
        fh.close()
        return True


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    with atomic_open(path, "wb") as fh:
        np.save(fh, array, allow_pickle=False)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def provenance() -> dict[str, str]:
    """What every output records so a number can be traced to the code that made it."""
    import torch

    from damvad import __version__

    return {
        "damvad_version": __version__,
        "torch_version": str(torch.__version__),
        "numpy_version": np.__version__,
        "python": platform.python_version(),
    }


class Terminated(KeyboardInterrupt):
    """SIGTERM (``docker stop``, ``systemctl stop``, ``kill``), raised where Ctrl-C would be, so that the same
    clean-up runs: rows published, open alerts closed, finished work kept."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread (elsewhere: nothing changes,
    Python delivers signals to the main thread only); the previous handler is restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: Any) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class LoadError(ValueError):
    """A file that cannot be loaded as what it should be; the message names the file and says why."""


def load_torch_file(path: str | os.PathLike, what: str) -> Any:
    """``torch.load(weights_only=True)``: tensors and plain data only, never code.

    Every failure is a :class:`LoadError` that names the file and ``what`` it should have been ("a training
    checkpoint"), and that never repeats torch's hint to reload a refused file unsafely.
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file ({what} expected)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise LoadError(
            f"{path}: refused as {what}: it holds Python objects other than tensors and plain data "
            f"({_load_reason(exc)}); damvad never unpickles those. Is the file from a source you trust?"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError) as exc:
        raise LoadError(f"{path}: not readable as {what}: truncated or corrupt ({_load_reason(exc)})") from exc


def _load_reason(exc: BaseException) -> str:
    """The informative line of torch's error message (its advice about ``weights_only`` left out)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("Weights only load failed", "Check the documentation"))]
    text = (useful or lines or [type(exc).__name__])[0]
    return text.split(". This is an internal")[0].rstrip(".") or type(exc).__name__
