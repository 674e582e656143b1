"""Atomic writes: all or nothing, and as readable as an ordinary file."""

from __future__ import annotations

import os
import stat

import pytest

from damvad.utils import atomic_open, atomic_write_text


def test_atomic_write_is_readable_like_any_file(tmp_path):
    old = os.umask(0o022)
    try:
        path = tmp_path / "out.txt"
        atomic_write_text(path, "hello")
    finally:
        os.umask(old)
    assert path.read_text() == "hello"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "keep.txt"
    atomic_write_text(path, "old")
    with pytest.raises(RuntimeError):
        with atomic_open(path, "wb") as fh:
            fh.write(b"half")
            raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_stale_temporaries_of_dead_writers_go_and_live_ones_stay(tmp_path):
    import subprocess
    import sys

    from damvad.utils import _HOST, remove_stale_temps

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    names = {
        "dead": f".a.npy.{int(dead.stdout)}@{_HOST}.x1.tmp",
        "live": f".b.npy.{os.getpid()}@{_HOST}.x2.tmp",
        "other_host_young": ".c.npy.1@elsewhere.x3.tmp",
        "other_host_old": ".d.npy.1@elsewhere.x4.tmp",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"")
    os.utime(tmp_path / names["other_host_old"], (0, 0))
    removed = {p.name for p in remove_stale_temps(tmp_path)}
    assert removed == {names["dead"], names["other_host_old"]}


def test_atomic_text_output_replaces_a_file_only_once_written(tmp_path):
    from damvad.utils import AtomicTextOutput

    path = tmp_path / "rows.csv"
    path.write_text("old\n")
    with AtomicTextOutput(path):
        pass
    assert path.read_text() == "old\n"
    with AtomicTextOutput(path) as out:
        out.write("new\n")
        assert path.read_text() == "old\n"  # until it is closed
    assert path.read_text() == "new\n" and [p.name for p in tmp_path.iterdir()] == ["rows.csv"]
