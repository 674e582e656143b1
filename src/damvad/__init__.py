"""damvad: weakly-supervised video anomaly detection with the Dissimilarity Attention Module.

The heavy pieces (I3D, torch models) are imported lazily so that ``import damvad`` stays cheap
for the command-line tool and for code that only reads feature files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from damvad.i3d import InceptionI3d


def load_i3d(*args: Any, **kwargs: Any) -> InceptionI3d:
    """Pretrained Kinetics-400 I3D in eval mode on CPU, fp32 (see :func:`damvad.i3d.load_i3d`)."""
    from damvad.i3d import load_i3d as _load

    return _load(*args, **kwargs)


__all__ = ["__version__", "load_i3d"]
