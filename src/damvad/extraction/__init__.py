"""I3D feature extraction: videos in, one ``.npy`` + manifest row per video out, resumable.

The rooms, top to bottom: :mod:`~damvad.extraction.engine` (``extract(cfg)``: the local engine, or Ray),
:mod:`~damvad.extraction.plan` (which videos, which are done: the resume check; what identifies their
features and the one record of what made them), :mod:`~damvad.extraction.local` (one video at a time) and
:mod:`~damvad.extraction.batched` (several videos packed into full batches: the GPU path),
:mod:`~damvad.extraction.ray_driver` / :mod:`~damvad.extraction.ray_worker` /
:mod:`~damvad.extraction.ray_connect` (a Ray cluster), :mod:`~damvad.extraction.backend` (the I3D a stage
runs) and :mod:`~damvad.extraction.calibration` (int8's calibration data). Every path runs I3D through one
typed interface (:class:`damvad.backends.I3DBackend`, :func:`damvad.backends.run_batch`) on the inputs
:mod:`damvad.video` decodes and preprocesses.
"""

from damvad.extraction.backend import open_backend
from damvad.extraction.engine import extract
from damvad.extraction.plan import ExtractorSpec, ExtractReport

__all__ = ["ExtractReport", "ExtractorSpec", "extract", "open_backend"]
