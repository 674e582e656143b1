"""A dataset: videos by split, their video labels, and the frame ground truth the annotations carry.

Frame-count tolerance: ground truth is built for the frame count the features were extracted
from. When the annotation knows its own count (UCF-Crime file, ShanghaiTech mask, normal
ShanghaiTech videos) and the two differ by more than ``FRAME_TOLERANCE`` frames, or, when it does
not (XD-Violence, user datasets), an interval ends more than ``FRAME_TOLERANCE`` frames past the
video's end, this is an error: the features were almost surely made from a different file or
frame rate. Within the tolerance (decoders disagree by a frame or two at the end of a stream)
intervals are clipped to the count and a mask shorter than the count is extended with its last
label.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from damvad.datasets.errors import DatasetError
from damvad.datasets.intervals import Interval, intervals_to_mask

SPLITS = ("train", "dev", "test")  # dev: frame labels for decisions, never for training or reporting
# A quarter of a 64-frame snippet: covers decoders that disagree on the last frames of a stream,
# catches a different file or frame rate (a 25 vs 30 fps re-encode moves a 1-minute video by 300).
FRAME_TOLERANCE = 16


class FrameSource(Protocol):
    """Anything that knows a video's decoded frame count (a :class:`damvad.store.FeatureStore`)."""

    def frames(self, name: str) -> int: ...

    def __contains__(self, name: str) -> bool: ...


@dataclass(frozen=True)
class VideoItem:
    """One video of a dataset: ``name`` is the file stem, the key of its features."""

    name: str
    label: int  # 0 normal, 1 anomalous
    split: str  # "train", "dev" or "test"
    category: str
    num_frames: int | None = None  # None when the annotation files do not say
    path: Path | None = None  # user datasets only


@dataclass
class Dataset:
    """Videos by split plus whatever frame-level ground truth the annotations carry.

    Ground truth is either ``intervals`` (damvad convention, see :mod:`damvad.datasets.intervals`) or
    a per-frame ``masks`` entry (ShanghaiTech), whose length is the video's own frame count.
    """

    name: str
    description: str
    items: list[VideoItem]
    intervals: dict[str, tuple[Interval, ...]] = field(default_factory=dict)  # damvad convention
    masks: dict[str, np.ndarray] = field(default_factory=dict)  # name -> per-frame bool labels
    root: Path | None = None

    def __post_init__(self) -> None:
        self._by_name: dict[str, VideoItem] = {}
        for item in self.items:
            if item.name in self._by_name:
                other = self._by_name[item.name]
                where = f"{other.path} and {item.path}" if item.path or other.path else "twice"
                raise DatasetError(f"{self.name}: duplicate video name {item.name!r} ({where})")
            if item.split not in SPLITS:
                raise DatasetError(f"{self.name}: video {item.name!r} has unknown split {item.split!r}")
            self._by_name[item.name] = item

    # ------------------------------------------------------------------ lookup
    @property
    def splits(self) -> tuple[str, ...]:
        """The splits that hold at least one video, in train/test order."""
        present = {item.split for item in self.items}
        return tuple(s for s in SPLITS if s in present)

    def videos(self, split: str | None = None) -> list[VideoItem]:
        """Videos of ``split`` (all videos when None), in annotation-file order."""
        if split is None:
            return list(self.items)
        if split not in SPLITS:
            raise DatasetError(f"{self.name}: unknown split {split!r} (expected one of {', '.join(SPLITS)})")
        return [item for item in self.items if item.split == split]

    def video(self, name: str) -> VideoItem:
        try:
            return self._by_name[name]
        except KeyError:
            raise DatasetError(f"{self.name}: no video named {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __len__(self) -> int:
        return len(self.items)

    def video_labels(self, split: str | None = None) -> dict[str, int]:
        return {item.name: item.label for item in self.videos(split)}

    # ------------------------------------------------------------------ ground truth
    def _has_frame_labels(self, item: VideoItem) -> bool:
        return item.label == 0 or item.name in self.intervals or item.name in self.masks

    def has_frame_labels(self, split: str) -> bool:
        """True when every video of a non-empty ``split`` has frame labels (normal ones trivially)."""
        items = self.videos(split)
        return bool(items) and all(self._has_frame_labels(item) for item in items)

    def ground_truth(
        self, name: str, num_frames: int | None = None, tolerance: int = FRAME_TOLERANCE
    ) -> np.ndarray:
        """Frame labels (bool, length ``num_frames``) of one video; see the module note on tolerance.

        ``num_frames`` is the decoded count the features cover (``FeatureStore.frames(name)``); when
        None the annotation's own count is used, which XD-Violence and user datasets do not have.
        """
        item = self.video(name)
        if not self._has_frame_labels(item):
            raise DatasetError(
                f"{self.name}: anomalous {item.split} video {name!r} has no frame-level annotation"
            )
        own: int | None = item.num_frames
        mask = self.masks.get(name)
        if mask is not None:
            own = int(mask.size)
        if num_frames is None:
            if own is None:
                raise DatasetError(
                    f"{self.name}: video {name!r}: the annotations do not give its frame count; pass "
                    "num_frames (the feature store's frame count for this video)"
                )
            num_frames = own
        num_frames = int(num_frames)
        if num_frames <= 0:
            raise DatasetError(f"{self.name}: video {name!r}: num_frames must be positive, got {num_frames}")
        if own is not None and abs(own - num_frames) > tolerance:
            raise DatasetError(
                f"{self.name}: video {name!r}: the annotation has {own} frames but the features cover "
                f"{num_frames} (more than {tolerance} apart): features from a different file or frame "
                "rate? (raise the tolerance only if you know the decoders disagree)"
            )
        if mask is not None:
            if mask.size >= num_frames:
                return mask[:num_frames].copy()
            return np.concatenate([mask, np.full(num_frames - mask.size, mask[-1], dtype=bool)])
        intervals = self.intervals.get(name, ())
        # Without a count of its own, an interval ending well past the video is the mismatch signal.
        if own is None and intervals and intervals[-1][1] > num_frames + tolerance:
            raise DatasetError(
                f"{self.name}: video {name!r}: an anomalous interval ends at frame {intervals[-1][1]} "
                f"but the video has {num_frames} frames (more than {tolerance} past its end)"
            )
        return intervals_to_mask(intervals, num_frames)

    def ground_truths(
        self, split: str = "test", store: FrameSource | None = None, tolerance: int = FRAME_TOLERANCE,
        names: Collection[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Frame labels of every video of ``split`` (or of ``names`` among them); frame counts from ``store``."""
        out = {}
        for item in self.videos(split):
            if names is not None and item.name not in names:
                continue
            n = None
            if store is not None:
                if item.name not in store:
                    raise DatasetError(f"{self.name}: no features for {split} video {item.name!r} in {store}")
                n = store.frames(item.name)
            out[item.name] = self.ground_truth(item.name, n, tolerance)
        return out


def check_unique_paths(items: list[VideoItem], source: Path) -> None:
    """User datasets: two files with one stem would share one feature file."""
    seen: dict[str, VideoItem] = {}
    for item in items:
        if item.name in seen:
            raise DatasetError(
                f"{source}: two videos share the name {item.name!r} "
                f"({seen[item.name].path} and {item.path}); names are file stems and key the features, "
                "so they must be unique"
            )
        seen[item.name] = item
