"""The inputs of the bad-input table (tests/test_bad_input.py): each made the first time a case asks for it
(``{i.NAME}`` in a command line), and the checks a case can name after its exit code and message."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import shutil
import socket
import threading
import time
from functools import cached_property
from pathlib import Path

import numpy as np
import pytest
import torch

from damvad.contract import FeatureContract
from damvad.model import build_model
from damvad.modelfile import ModelCard, read_model_card, save_model_file
from damvad.store import FeatureStore
from featuretools import make_feature_dataset
from videotools import VFR_TIMES, write_vfr_video, write_video


class Evil:
    """Unpickling this runs a shell command; a safe loader must refuse it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class Inputs:
    """Bad (and good) inputs, each made the first time a case asks for it (``monkeypatch``: for the ones that
    are a state of the machine, such as a full disk; ``cleanups``: run after the case)."""

    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch):
        self.tmp = tmp
        self.marker = tmp / "PWNED"
        self.monkeypatch = monkeypatch
        self.cleanups: list = []

    def _write(self, name: str, text: str) -> Path:
        path = self.tmp / name
        path.write_text(text)
        return path

    @cached_property
    def yaml_malformed(self) -> Path:
        return self._write("malformed.yaml", "iterations: [1, 2\nlr: 0.1\n")

    @cached_property
    def yaml_python_tag(self) -> Path:
        return self._write("tag.yaml", f"iterations: !!python/object/apply:os.system ['touch {self.marker}']\n")

    @cached_property
    def yaml_twenty(self) -> Path:
        return self._write("twenty.yaml", "iterations: twenty\n")

    @cached_property
    def _dataset(self) -> tuple[Path, Path]:
        return make_feature_dataset(self.tmp / "ds", n_train=8, n_test=4)

    @property
    def data(self) -> Path:
        return self._dataset[0]

    @property
    def feats(self) -> Path:
        return self._dataset[1]

    @cached_property
    def run(self) -> Path:
        return self.tmp / "run"

    def _run_with_checkpoint(self, name: str, data: bytes) -> Path:
        run = self.tmp / name
        (run / "seed0").mkdir(parents=True)
        (run / "seed0" / "checkpoint.pt").write_bytes(data)
        return run

    @cached_property
    def run_hostile(self) -> Path:
        path = self.tmp / "evil.pt"
        torch.save({"iteration": 1, "model": Evil(self.marker)}, path)
        return self._run_with_checkpoint("run_hostile", path.read_bytes())

    @cached_property
    def run_truncated(self) -> Path:
        path = self.tmp / "good.pt"
        torch.save({"iteration": 1, "model": {"w": torch.zeros(1000)}}, path)
        data = path.read_bytes()
        return self._run_with_checkpoint("run_truncated", data[: len(data) // 2])

    @cached_property
    def i3d_hostile(self) -> Path:
        path = self.tmp / "i3d_evil.pkl"
        path.write_bytes(pickle.dumps(Evil(self.marker), protocol=2))
        return path

    @cached_property
    def i3d_hostile_zip(self) -> Path:
        path = self.tmp / "i3d_evil.pt"
        torch.save({"Conv3d_1a_7x7.conv.weight": Evil(self.marker)}, path)
        return path

    @cached_property
    def videos(self) -> Path:
        root = self.tmp / "videos"
        root.mkdir()
        write_video(root / "good.mp4", 70, seed=1)
        (root / "bad.mp4").write_bytes(b"\x00not a video" * 50)
        return root

    @cached_property
    def old_results(self) -> Path:
        return self._write("results.csv", "results of yesterday\n")

    def _model(self, path: Path, **meta) -> Path:
        torch.manual_seed(0)
        card = ModelCard(held_out_videos=("train_norm_000",), **meta)
        return save_model_file(path, build_model("dist", hidden=16, mlp_hidden=8), card)

    @cached_property
    def model(self) -> Path:
        return self._model(self.tmp / "model.pt")

    @cached_property
    def run_one_seed(self) -> Path:
        self._model(self.tmp / "run1" / "seed0" / "model.pt")
        return self.tmp / "run1"

    @cached_property
    def run_two_seeds(self) -> Path:
        for seed in (0, 1):
            self._model(self.tmp / "run2" / f"seed{seed}" / "model.pt")
        return self.tmp / "run2"

    @cached_property
    def model_bad_crops(self) -> Path:
        return self._model(self.tmp / "bad_crops.pt", features=FeatureContract(crops="7"))  # written as is

    @cached_property
    def csv_missing(self) -> Path:
        return self._write("list.csv", f"path,label\n{self.videos}/good.mp4,normal\ngone.mp4,anomalous\n")

    @cached_property
    def disk_full(self) -> Path:
        """A features folder whose disk fills up in the middle of the first array: numpy's write is cut short."""
        def save(fh, arr, **kwargs):
            fh.write(b"\x93NUMPY" + bytes(13280))
            raise OSError("14336 requested and 13280 written")  # numpy's words, no errno

        full = os.statvfs_result((4096, 4096, 1000, 0, 0, 1000, 0, 0, 0, 255))  # no block free
        self.monkeypatch.setattr(np, "save", save)
        self.monkeypatch.setattr(os, "statvfs", lambda path: full)
        return self.tmp / "full"

    @cached_property
    def silent_address(self) -> str:
        """HOST:PORT of a server that accepts connections and never says a word (a wrong service, a firewall)."""
        pytest.importorskip("ray", reason="needs the cluster extra: pip install -e '.[cluster]'")
        server = socket.create_server(("127.0.0.1", 0))
        held: list[socket.socket] = []

        def accept() -> None:
            with contextlib.suppress(OSError):
                while True:
                    held.append(server.accept()[0])

        threading.Thread(target=accept, daemon=True).start()
        self.cleanups += [server.close, lambda: [c.close() for c in held]]
        self._before = (set(threading.enumerate()), time.monotonic())
        return f"127.0.0.1:{server.getsockname()[1]}"

    @cached_property
    def vfr_video(self) -> Path:
        return write_vfr_video(self.tmp / "vfr.mp4")

    @cached_property
    def raw_h264(self) -> Path:
        """A raw H.264 stream (as some cameras send): frames without timestamps, 25 fps declared."""
        import av

        path = self.tmp / "raw.h264"
        try:
            with av.open(str(path), "w", format="h264") as container:
                stream = container.add_stream("libx264", rate=25)
                stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
                base = np.random.default_rng(0).integers(0, 255, size=(64, 96, 3), dtype=np.uint8)
                for i in range(100):
                    frame = av.VideoFrame.from_ndarray(np.roll(base, 3 * i, axis=1), format="rgb24")
                    for packet in stream.encode(frame):
                        container.mux(packet)
                for packet in stream.encode():
                    container.mux(packet)
        except (av.error.FFmpegError, ValueError) as exc:  # a PyAV build without libx264
            pytest.skip(f"no H.264 encoder: {exc}")
        return path

    def _edited_features(self, name: str, video: str, edit) -> Path:
        feats = self.tmp / name
        shutil.copytree(self.feats, feats)
        store = FeatureStore(feats)
        arr, record = np.load(store.npy_path(video)), store.record(video)
        store.save(arr, edit(arr, record) or record)
        return feats

    @cached_property
    def feats_nan_test(self) -> Path:
        return self._edited_features("feats_nan_test", "test_anom_001",
                                     lambda a, r: a.__setitem__((2, 0, 3, 5), np.nan))

    @cached_property
    def feats_nan_held_out(self) -> Path:
        return self._edited_features("feats_nan_held", "train_norm_000", lambda a, r: a.__setitem__(0, np.inf))

    @cached_property
    def feats_inconsistent(self) -> Path:
        def shift_frames(arr, record):  # same snippet count, so only the ranges can tell
            return dataclasses.replace(record, frames=record.snippet_ranges[-1][0] + 1)

        return self._edited_features("feats_inconsistent", "test_norm_000", shift_frames)

    @cached_property
    def avi_truncated(self) -> Path:
        full = write_video(self.tmp / "full.avi", 200, seed=2)
        data = full.read_bytes()
        path = self.tmp / "cut.avi"
        path.write_bytes(data[: len(data) // 3])
        return path

    @cached_property
    def mp4_truncated(self) -> Path:
        full = write_faststart_mp4(self.tmp / "full.mp4", 243)
        data = full.read_bytes()
        path = self.tmp / "cut.mp4"
        path.write_bytes(data[: len(data) // 2])
        return path

    # ------------------------------------------------------------------ checks named by the table
    def no_run_folder(self, out: str) -> None:
        assert not self.run.exists(), "a refused config must not leave a run folder behind"

    def nothing_executed(self, out: str) -> None:
        assert not self.marker.exists(), "a hostile file ran code"
        assert "weights_only=False" not in self._err, "never advise loading an untrusted file unsafely"

    def good_video_scored(self, out: str) -> None:
        rows = (self.tmp / "rows.csv").read_text().splitlines()
        assert len(rows) == 3 and rows[1].startswith(f"{self.videos}/good.mp4,0,0,64")

    def old_results_kept(self, out: str) -> None:
        assert self.old_results.read_text() == "results of yesterday\n"
        assert [p.name for p in self.tmp.glob(".results.csv*")] == []

    def threshold_stored_in_the_seed(self, out: str) -> None:
        seed = self.run_one_seed / "seed0" / "model.pt"
        assert f"stored in {seed}" in out and read_model_card(seed).threshold is not None

    def nothing_exported(self, out: str) -> None:
        assert not (self.tmp / "exported").exists(), "refused before any export work"

    def summary_printed(self, out: str) -> None:
        assert "train" in out and "2" in out, "the listed videos are still described"

    def no_space_named(self, out: str) -> None:
        assert f"No space left on device (14336 items requested, 13280 written): '{self.disk_full}/good.npy'" in out
        assert not list(self.disk_full.glob(".*.tmp")), "the partial file is removed"

    def nothing_left_running(self, out: str) -> None:
        import ray

        threads, start = self._before
        assert time.monotonic() - start < 60, "the deadline (2 s) must end the attempt"
        assert not ray.is_initialized()
        assert set(threading.enumerate()) <= threads, "threads left running"
        children = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _parent(p) == os.getpid()]
        assert not children, f"processes left running: {children}"

    def _times(self) -> list[tuple[int, int, float, float]]:
        lines = (self.tmp / "times.csv").read_text().splitlines()[1:]
        return [(int(c[2]), int(c[3]), float(c[4]), float(c[5])) for c in (line.split(",") for line in lines)]

    def vfr_times(self, out: str) -> None:
        rows = self._times()
        assert [r[:2] for r in rows] == [(0, 64), (64, 128), (128, 130)], "frame numbers do not change"
        assert rows[1][2] == pytest.approx(VFR_TIMES[64]) and rows[0][3] == pytest.approx(VFR_TIMES[64])
        assert rows[1][3] == pytest.approx(VFR_TIMES[128]) and rows[2][2] == pytest.approx(VFR_TIMES[128])

    def declared_rate_times(self, out: str) -> None:
        assert [r[2:] for r in self._times()] == [(0, pytest.approx(2.56)), (pytest.approx(2.56), pytest.approx(4))]


def _parent(proc: Path) -> int:
    try:
        stat = (proc / "stat").read_text()
    except OSError:
        return -1
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state ppid
    return int(fields[1]) if fields[0] not in ("Z", "X") else -1



def write_faststart_mp4(path: Path, num_frames: int) -> Path:
    """An MP4 with its index first (as streamed files are): a truncated copy still opens and decodes."""
    import av

    base = np.random.default_rng(0).integers(0, 255, size=(64, 96, 3), dtype=np.uint8)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for i in range(num_frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.roll(base, 3 * i, axis=1), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
