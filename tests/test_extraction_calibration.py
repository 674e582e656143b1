"""damvad.extraction.calibration: int8's calibration data, from the user's videos or the built-in set."""

from __future__ import annotations


def test_calibration_videos_may_be_folders_of_frames(tmp_path):
    from damvad.extraction.calibration import calibration_key, calibration_snippets
    from damvad.framefolder import folder_sha256
    from videotools import write_frame_folder

    folder = write_frame_folder(tmp_path / "cams" / "cam1", 64)
    key = calibration_key([tmp_path / "cams"])
    assert key["videos"] == [folder_sha256(folder)] and key["synthetic"] == 0
    snippets, provenance = calibration_snippets([tmp_path / "cams"], per_video=1)
    assert len(snippets) == 1 and snippets[0].shape == (1, 3, 64, 224, 224)
    assert provenance["videos"] == [{"name": "cam1", "sha256": folder_sha256(folder)}]
    write_frame_folder(folder, 64, seed=1)  # other frames: another calibration set
    assert calibration_key([tmp_path / "cams"]) != key
