"""UCSD Ped2 (Mahadevan et al., CVPR 2010): real walkway footage as folders of frames, and the
weakly-supervised protocol the field reports on it.

Shipped: ``videos.csv`` (``name,folder,frames,start,end``): UCSD's own names (``Train001``..``Train016``,
``Test001``..``Test012``), each video's folder of frames under the dataset root, its frame count and,
for the test videos, the anomalous interval (0-based, end exclusive; 1,648 of the 2,010 test frames).

``ucsd-ped2`` (registered) is UCSD's own split: 16 normal training videos, 12 test videos each with an
anomalous interval (the split of methods that train on normal videos only). The frames are found under
``$DAMVAD_UCSD_PED2``, else a checkout's ``../shared/media/ucsd-ped2`` (or the ``root`` given to
:func:`ucsd_ped2`); when found they give each video its path, and must agree with the shipped frame counts
and (``testing/annotations.csv``) intervals. The frame rate, 10 frames/s, is not in the files: :data:`FPS`.

**Weakly-supervised protocol** (:func:`weak_split`): Zhong et al., "Graph Convolutional Label Noise
Cleaner", CVPR 2019 (GCN-Anomaly, 93.2 frame AUC), after He et al., "An anomaly-introduced learning method
for abnormal event detection", Multimedia Tools and Applications 2018: the 28 videos are re-split at random
so that training holds anomalous videos (video labels only). The rule, as Tian et al. (RTFM, ICCV 2021)
state it: "randomly selecting 6 anomaly videos and 4 normal videos into the train set, with the remaining
as test set. We report the mean results over 10 times of this process." Left open by the papers, and chosen
here: the random draw (no split list was published: github.com/jx-zhong-for-academic-purpose/
GCN-Anomaly-Detection/issues/28, github.com/tianyu0207/RTFM/issues/70): ``numpy.random.default_rng(seed)``
draws 6 of the 12 anomalous and 4 of the 16 normal videos, uniformly without replacement, for split seeds
0-9; each split is scored by the frame AUC over its 18 test videos' frames concatenated, and splits are
averaged (mean +- std over splits).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from damvad.datasets.base import Dataset, VideoItem
from damvad.datasets.errors import AnnotationError, DatasetError
from damvad.datasets.folder import parse_interval_csv
from damvad.datasets.parsing import csv_rows, parse_int
from damvad.datasets.registry import register_dataset
from damvad.datasets.resources import read_resource_text, resource_label

UCSD_PED2 = "ucsd-ped2"
FPS = 10.0  # UCSD Ped2's frame rate (the files do not say)
ROOT_ENV = "DAMVAD_UCSD_PED2"
WEAK_TRAIN_ANOMALOUS, WEAK_TRAIN_NORMAL = 6, 4  # a weakly-supervised training split (module docstring)
PROTOCOL = ("Zhong et al., CVPR 2019 (GCN-Anomaly), after He et al., MTAP 2018: 6 anomalous + 4 normal videos "
            "drawn at random for training, the other 18 for testing; frame AUC per split, mean over splits")


@dataclass(frozen=True)
class Ped2Video:
    name: str
    folder: str  # relative to the dataset root
    frames: int
    interval: tuple[int, int] | None  # anomalous frames [start, end) of a test video


def parse_videos(text: str, source: str) -> list[Ped2Video]:
    """The rows of ``videos.csv``; an AnnotationError naming the line of any problem."""
    out: list[Ped2Video] = []
    for lineno, cells in csv_rows(text):
        if cells == ["name", "folder", "frames", "start", "end"]:
            continue
        if len(cells) != 5:
            raise AnnotationError(f"{source}:{lineno}: expected name,folder,frames,start,end; got {len(cells)} fields")
        name, folder, frames, start, end = cells
        interval = None
        if start or end:
            interval = (parse_int(start, source, lineno, "start"), parse_int(end, source, lineno, "end"))
            if not 0 <= interval[0] < interval[1] <= int(frames):
                raise AnnotationError(f"{source}:{lineno}: interval [{start}, {end}) is not inside {frames} frames")
        out.append(Ped2Video(name, folder, parse_int(frames, source, lineno, "frames", positive=True), interval))
    if not out:
        raise AnnotationError(f"{source}: no videos")
    return out


def default_root() -> Path | None:
    """Where UCSD Ped2's frames are: ``$DAMVAD_UCSD_PED2``, else a checkout's ``../shared/media/ucsd-ped2``."""
    from damvad.utils import shared_media

    env = os.environ.get(ROOT_ENV)
    return Path(env) if env else shared_media(UCSD_PED2)


def _check_root(root: Path, videos: list[Ped2Video]) -> None:
    """The frames under ``root`` agree with the shipped counts and intervals, or a DatasetError says how."""
    from damvad.framefolder import frame_files
    from damvad.video import VideoError

    for video in videos:
        try:
            found = len(frame_files(root / video.folder))
        except VideoError as exc:
            raise DatasetError(f"{UCSD_PED2}: {video.name}: {exc}") from exc
        if found != video.frames:
            raise DatasetError(f"{UCSD_PED2}: {root / video.folder} holds {found} frames, {video.name} has "
                               f"{video.frames}: not the UCSD Ped2 copy damvad knows")
    ann = root / "testing" / "annotations.csv"
    if ann.is_file():
        given = parse_interval_csv(ann.read_text(encoding="utf-8-sig"), str(ann))
        shipped = {Path(v.folder).name: ((v.interval,) if v.interval else ()) for v in videos
                   if v.folder.startswith("testing/")}
        if given != shipped:
            raise AnnotationError(f"{ann}: its intervals differ from the shipped ones "
                                  f"({resource_label(UCSD_PED2, 'videos.csv')})")


def ucsd_ped2(root: str | Path | None = None) -> Dataset:
    """UCSD's own split (module docstring); videos get paths when the frames are found (``root``, else
    :func:`default_root`)."""
    label = resource_label(UCSD_PED2, "videos.csv")
    videos = parse_videos(read_resource_text(UCSD_PED2, "videos.csv"), label)
    where = Path(root) if root is not None else default_root()
    if where is not None:
        if not where.is_dir():
            raise DatasetError(f"{UCSD_PED2}: {where}: no such folder (the UCSD Ped2 frames)")
        _check_root(where, videos)
    items, intervals = [], {}
    for v in videos:
        test = v.interval is not None
        items.append(VideoItem(v.name, int(test), "test" if test else "train", "Anomaly" if test else "Normal",
                               v.frames, where / v.folder if where is not None else None))
        if test:
            intervals[v.name] = (v.interval,)
    return Dataset(UCSD_PED2, "UCSD Ped2 (real walkway footage, 10 frames/s), UCSD's own split: normal training "
                   "videos, anomalous test videos", items, intervals=intervals, root=where)


def weak_split(dataset: Dataset, seed: int, anomalous: int = WEAK_TRAIN_ANOMALOUS,
               normal: int = WEAK_TRAIN_NORMAL) -> Dataset:
    """The weakly-supervised split ``seed`` of UCSD Ped2 (module docstring): ``anomalous`` anomalous and
    ``normal`` normal videos for training (video labels only: their intervals are dropped), the rest to test."""
    pools = {label: sorted(it.name for it in dataset.items if it.label == label) for label in (0, 1)}
    rng = np.random.default_rng(seed)
    chosen = set(rng.choice(pools[1], size=anomalous, replace=False).tolist())
    chosen |= set(rng.choice(pools[0], size=normal, replace=False).tolist())
    items = [VideoItem(it.name, it.label, "train" if it.name in chosen else "test", it.category, it.num_frames,
                       it.path) for it in dataset.items]
    intervals = {n: iv for n, iv in dataset.intervals.items() if n not in chosen}
    return Dataset(f"{dataset.name}-split{seed}", f"{dataset.name}, weakly-supervised split {seed}: {PROTOCOL}",
                   items, intervals=intervals, root=dataset.root)


register_dataset(UCSD_PED2, ucsd_ped2, aliases=("ped2", "ucsdped2"))
