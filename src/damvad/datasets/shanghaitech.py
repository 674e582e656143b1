"""ShanghaiTech in the weakly-supervised split of Zhong et al. (CVPR 2019).

Shipped files: ``train.csv`` (``name,label``), ``test.csv`` (``name,label,frames``; frames -1 for
anomalous videos) and ``test_frame_mask/NAME.npy``, the per-frame 0/1 labels of each anomalous
video, whose length is the video's frame count.
"""

from __future__ import annotations

import numpy as np

from damvad.datasets.base import Dataset, VideoItem
from damvad.datasets.errors import AnnotationError, DatasetError
from damvad.datasets.intervals import validate_mask
from damvad.datasets.parsing import AnnotationRow, check_unique, csv_rows, parse_int
from damvad.datasets.registry import register_dataset
from damvad.datasets.resources import read_resource_text, resource, resource_label

SHANGHAITECH = "shanghaitech"


def _label01(value: str, source: str, lineno: int) -> int:
    if value not in ("0", "1"):
        raise AnnotationError(f"{source}:{lineno}: label {value!r} must be 0 (normal) or 1 (anomalous)")
    return int(value)


def parse_shanghaitech_train(text: str, source: str = "shanghaitech/train.csv") -> list[AnnotationRow]:
    """``name,label`` rows."""
    rows = []
    for lineno, cells in csv_rows(text):
        if len(cells) != 2:
            raise AnnotationError(f"{source}:{lineno}: expected 2 fields (name,label), got {len(cells)}")
        label = _label01(cells[1], source, lineno)
        rows.append(AnnotationRow(cells[0], label, "Anomaly" if label else "Normal", None, None, lineno))
    check_unique(rows, source)
    return rows


def parse_shanghaitech_test(text: str, source: str = "shanghaitech/test.csv") -> list[AnnotationRow]:
    """``name,label,frames`` rows; frames is -1 for anomalous videos (their mask gives the length)."""
    rows = []
    for lineno, cells in csv_rows(text):
        if len(cells) != 3:
            raise AnnotationError(
                f"{source}:{lineno}: expected 3 fields (name,label,frames), got {len(cells)}"
            )
        label = _label01(cells[1], source, lineno)
        frames = parse_int(cells[2], source, lineno, "frame count")
        if label == 0 and frames <= 0:
            raise AnnotationError(
                f"{source}:{lineno}: normal video {cells[0]!r} needs a positive frame count"
            )
        if label == 1 and frames != -1 and frames <= 0:
            raise AnnotationError(f"{source}:{lineno}: frame count {frames} must be positive or -1")
        rows.append(
            AnnotationRow(
                cells[0],
                label,
                "Anomaly" if label else "Normal",
                frames if frames > 0 else None,
                () if label == 0 else None,
                lineno,
            )
        )
    check_unique(rows, source)
    return rows


def load_shanghaitech_mask(name: str) -> np.ndarray:
    """The per-frame boolean labels of a ShanghaiTech anomalous video (its length = the frame count)."""
    label = resource_label(SHANGHAITECH, "test_frame_mask", f"{name}.npy")
    res = resource(SHANGHAITECH, "test_frame_mask", f"{name}.npy")
    try:
        with res.open("rb") as fh:
            mask = np.load(fh, allow_pickle=False)
    except FileNotFoundError as exc:
        raise DatasetError(f"{label}: no frame mask for ShanghaiTech video {name!r}") from exc
    except ValueError as exc:
        raise AnnotationError(f"{label}: unreadable frame mask ({exc})") from exc
    return validate_mask(mask, label)


def build_shanghaitech() -> Dataset:
    train = parse_shanghaitech_train(
        read_resource_text(SHANGHAITECH, "train.csv"), resource_label(SHANGHAITECH, "train.csv")
    )
    test_label = resource_label(SHANGHAITECH, "test.csv")
    test = parse_shanghaitech_test(read_resource_text(SHANGHAITECH, "test.csv"), test_label)
    items = [VideoItem(r.name, r.label, "train", r.category, None) for r in train]
    masks = {}
    for r in test:
        frames = r.frames
        if r.label == 1:
            # The mask is the ground truth and its length the frame count. Masks of anomalous
            # *training* videos are shipped too but deliberately unused: training sees video labels only.
            mask = load_shanghaitech_mask(r.name)
            if frames is not None and frames != mask.size:
                raise AnnotationError(
                    f"{test_label}:{r.line}: {r.name!r} says {frames} frames, its mask has {mask.size}"
                )
            frames = int(mask.size)
            mask.flags.writeable = False  # shared by every caller of the cached dataset
            masks[r.name] = mask
        items.append(VideoItem(r.name, r.label, "test", r.category, frames))
    return Dataset(
        SHANGHAITECH,
        "ShanghaiTech, weakly-supervised split of Zhong et al. (CVPR 2019); "
        "anomalous test videos labelled by per-frame masks",
        items,
        masks=masks,
    )


register_dataset(SHANGHAITECH, build_shanghaitech, aliases=("shanghai", "sht"))
