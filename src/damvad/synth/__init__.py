"""Synthetic surveillance videos with frame-exact anomalies, for the demo and for tests.

Why it exists: a newcomer without UCF-Crime/ShanghaiTech on disk must still be able to run the whole
pipeline (I3D features -> weakly-supervised DAM training -> frame-level evaluation), and tests need
small videos whose ground truth is known exactly.

The scene is a plaza in front of buildings seen by a fixed, elevated camera (pinhole, 4 m high; the
geometry depends only on the frame height, so any size works). Articulated people walk along paths,
stop, walk in pairs or stop to chat. Anomalous videos add one or two events (running, a fight, a fall,
an explosion, a collision between two runners, a vehicle speeding through the plaza).

Honesty rules the generator keeps (tested in ``tests/test_synth.py``):

* normal and anomalous videos come from the same scene, lighting, crowd and noise distributions;
* the crowd, the background and the sensor noise use random streams that do not depend on the events,
  so a video with events differs from the same video without them only near the event's actors;
* the people of an event walk in (and away) like everybody else; only the event itself is abnormal;
* nothing global changes at an event's onset (the explosion is a local fireball with smoke, and its
  bystanders run away).

Conventions: ``size`` is ``(width, height)``; frames are ``H x W x 3`` uint8 RGB; frame indices are
0-based and event intervals are ``[start_frame, end_frame)`` (end exclusive). Events are placed in the
central part of the image so that the centre 224 x 224 crop used by I3D sees them.
"""

from __future__ import annotations

from damvad.synth.dataset import generate_dataset, load_ground_truth
from damvad.synth.render import render_frames, synthetic_stream
from damvad.synth.specs import EVENT_KINDS, SYNTH_FORMAT, EventSpec, VideoSpec, make_video_spec, min_anomalous_frames
from damvad.video import write_video

__all__ = [
    "EVENT_KINDS",
    "SYNTH_FORMAT",
    "EventSpec",
    "VideoSpec",
    "make_video_spec",
    "min_anomalous_frames",
    "render_frames",
    "synthetic_stream",
    "write_video",
    "generate_dataset",
    "load_ground_truth",
]
