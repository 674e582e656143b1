"""Benchmark datasets and users' own video collections: splits, video labels, frame ground truth.

``get_dataset`` accepts a registered name (the built-in ``ucf-crime``, ``shanghaitech``,
``xd-violence``, ``ucsd-ped2``, each with its shipped annotations and its own module), a folder of videos
(:mod:`~damvad.datasets.folder`), or a CSV file listing them (:mod:`~damvad.datasets.csv_list`);
see :mod:`~damvad.datasets.registry` to add your own. Rooms:

* :mod:`~damvad.datasets.base`: ``Dataset``, ``VideoItem``, splits and the frame-count tolerance;
* :mod:`~damvad.datasets.intervals`: the one frame-interval convention and masks;
* :mod:`~damvad.datasets.ucf_crime`, :mod:`~damvad.datasets.shanghaitech`,
  :mod:`~damvad.datasets.xd_violence`, :mod:`~damvad.datasets.ucsd_ped2`: each benchmark's annotation
  parsers and builder (Ped2 also its weakly-supervised splits);
* :mod:`~damvad.datasets.checks`: does a feature folder fit a dataset; the summary table.
"""

from __future__ import annotations

# The built-in benchmarks and file kinds register themselves when imported, in this (listing) order.
# isort: off
from damvad.datasets import ucf_crime, shanghaitech, xd_violence, ucsd_ped2, csv_list  # noqa: F401
# isort: on
from damvad.datasets.base import FRAME_TOLERANCE, SPLITS, Dataset, FrameSource, VideoItem
from damvad.datasets.checks import check_features, dataset_summary, missing_videos
from damvad.datasets.errors import AnnotationError, DatasetError
from damvad.datasets.intervals import Interval, intervals_to_mask
from damvad.datasets.registry import (
    dataset_names,
    get_dataset,
    register_dataset,
    register_file_kind,
    unregister_dataset,
)
from damvad.datasets.shanghaitech import SHANGHAITECH
from damvad.datasets.ucf_crime import UCF_CRIME
from damvad.datasets.ucsd_ped2 import UCSD_PED2
from damvad.datasets.xd_violence import XD_VIOLENCE
from damvad.video import VIDEO_EXTENSIONS  # one list: a video extract takes is one a folder dataset lists

BUILTIN_DATASETS = (UCF_CRIME, SHANGHAITECH, XD_VIOLENCE, UCSD_PED2)

__all__ = [
    "BUILTIN_DATASETS",
    "FRAME_TOLERANCE",
    "SHANGHAITECH",
    "SPLITS",
    "UCF_CRIME",
    "UCSD_PED2",
    "VIDEO_EXTENSIONS",
    "XD_VIOLENCE",
    "AnnotationError",
    "Dataset",
    "DatasetError",
    "FrameSource",
    "Interval",
    "VideoItem",
    "check_features",
    "dataset_names",
    "dataset_summary",
    "missing_videos",
    "get_dataset",
    "intervals_to_mask",
    "register_dataset",
    "register_file_kind",
    "unregister_dataset",
]
