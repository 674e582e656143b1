"""damvad.extraction.plan: the resume check every engine shares (a replaced, another or a moved source; a
write in progress elsewhere), and the one record of what produced a video's rows."""

from __future__ import annotations

import shutil
import subprocess
import sys

from damvad.backends import FunctionBackend
from damvad.extract import extract
from damvad.extraction.plan import ExtractorSpec
from damvad.store import FeatureStore
from videotools import fake_features, write_video


def test_replaced_source_is_extracted_again(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    write_video(videos / "clip.mp4", 40, seed=1)  # a download cut short
    out = tmp_path / "feats"
    assert extract([videos], out, feature_fn=fake_features, progress=False).ok
    write_video(videos / "clip.mp4", 150, seed=1)  # ... and later completed
    report = extract([videos], out, feature_fn=fake_features, progress=False)
    assert report.ok and "changed" in report.redone["clip"] and "REDONE clip" in report.summary()
    assert FeatureStore(out).record("clip").frames == 150


def test_other_source_with_the_same_name_is_refused(tmp_path):
    for sub, frames in (("a", 40), ("b", 90)):
        (tmp_path / sub).mkdir()
        write_video(tmp_path / sub / "clip.mp4", frames, seed=frames)
    out = tmp_path / "feats"
    assert extract([tmp_path / "a"], out, feature_fn=fake_features, progress=False).ok
    before = (out / "clip.npy").read_bytes()
    report = extract([tmp_path / "b"], out, feature_fn=fake_features, progress=False)
    text = report.summary()
    assert not report.ok and "FAILED clip" in text and f"{tmp_path / 'a' / 'clip.mp4'}" in text
    assert "--overwrite" in text and (out / "clip.npy").read_bytes() == before
    assert extract([tmp_path / "b"], out, feature_fn=fake_features, progress=False, overwrite=True).ok
    assert FeatureStore(out).record("clip").frames == 90


def test_moved_source_with_the_same_content_stays_done(tmp_path):
    (tmp_path / "a").mkdir()
    write_video(tmp_path / "a" / "clip.mp4", 40)
    out = tmp_path / "feats"
    assert extract([tmp_path / "a"], out, feature_fn=fake_features, progress=False).ok
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # new path, new mtime, same bytes
    assert extract([tmp_path / "b"], out, feature_fn=fake_features, progress=False).skipped == ["clip"]


WRITER = """
import sys
from damvad.utils import atomic_open
with atomic_open(sys.argv[1], "wb") as fh:
    fh.write(b"first half ")
    print("writing", flush=True)
    sys.stdin.readline()
    fh.write(b"second half")
"""


def test_second_extract_keeps_the_write_another_process_has_in_progress(tmp_path):
    out = tmp_path / "feats"
    out.mkdir()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(out / "other.npy")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline() == "writing\n"
        write_video(tmp_path / "clip.mp4", 20)
        assert extract([tmp_path / "clip.mp4"], out, feature_fn=fake_features, progress=False).ok
        writer.stdin.write("\n")
        writer.stdin.flush()
        assert writer.wait(30) == 0, "the other process's temporary file was deleted under it"
    finally:
        writer.kill()
    assert (out / "other.npy").read_bytes() == b"first half second half"


def test_rows_record_the_backend_that_ran_not_the_one_planned():
    planned = ExtractorSpec(crops="5", precision="int8", backend="openvino", device="cpu", stride=16)
    ran = planned.produced_by(FunctionBackend(fake_features, name="torch", precision="fp16", weights_sha256="w",
                                              device="cuda:0"))
    assert (ran.backend, ran.precision, ran.weights_sha256, ran.device) == ("torch", "fp16", "w", "cuda:0")
    assert (ran.crops, ran.stride) == ("5", 16) and ran.backend_info == {}  # what to extract is unchanged
