"""``asteroid-avspeech separate`` and ``asteroid-infer`` on videos and wavs (subprocess)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asteroid_avspeech.cli import main
from video_fixtures import two_face_clip, video_dir  # noqa: F401  (pytest fixtures)



def test_separate_one_face_with_remux(package, two_face_clip, tmp_path, capsys):
    rc = main(["separate", str(two_face_clip), "--model", str(package), "-o", str(tmp_path),
               "--face", "2", "--remux", "-q", "--chunk-seconds", "0.6", "--overlap-seconds", "0.2"])
    assert rc == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "two_faces_est2.mp4", "two_faces_est2.wav", "two_faces_faces.json"]
    assert "face 2:" in capsys.readouterr().out
    sidecar = json.loads((tmp_path / "two_faces_faces.json").read_text())
    assert sidecar["chunks"]["chunk_seconds"] == 0.6 and sidecar["faces"][0]["output"] is None


@pytest.mark.parametrize("content", [b"\x00" * 64, None])
def test_model_that_is_not_ours_fails_clearly(content, two_face_clip, tmp_path, caplog):
    bad = tmp_path / "other.pth"
    if content is None:
        torch.save({"model_name": "ConvTasNet", "state_dict": {}, "model_args": {}}, bad)
    else:
        bad.write_bytes(content)
    out = tmp_path / "out"
    assert main(["separate", str(two_face_clip), "--model", str(bad), "-o", str(out), "-q"]) == 1
    assert str(bad) in caplog.text and not out.exists()


def test_bad_point_is_rejected_by_the_parser(package, two_face_clip):
    with pytest.raises(SystemExit):
        main(["separate", str(two_face_clip), "--model", str(package), "--point", "300,20"])


@pytest.mark.parametrize("options", [[], ["--ola-window", "8000", "--ola-window-type", "hann"]])
def test_asteroid_infer_on_a_video_and_a_wav(options, package, two_face_clip, tmp_path):
    """A fresh process finds our model (autoload hook), writes one wav per face for the video,
    and separates the plain wav audio-only with a single warning: a stereo 8 kHz wav, into an output
    folder that does not exist yet (asteroid's own file_separate fails on each of the three). With
    ``--ola-window`` (asteroid's LambdaOverlapAdd around the model; its default window type "hanning" fails
    with today's scipy) both take our windowed paths."""
    wav = tmp_path / "mix.wav"
    sf.write(str(wav), (0.1 * np.random.default_rng(0).standard_normal((8000, 2))).astype(np.float32), 8000)
    out = tmp_path / "out"
    infer = Path(sys.executable).with_name("asteroid-infer")
    proc = subprocess.run([str(infer), str(package), "--files", str(wav), str(two_face_clip), "-o", str(out), *options],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONWARNINGS": "default"})
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "mix_est1.wav", "mix_est2.wav", "two_faces_est1.wav", "two_faces_est2.wav", "two_faces_faces.json"]
    assert proc.stderr.count("no faces given") == 1
    assert "2 channels mixed down to mono" in proc.stderr and "resampled from 8000 Hz" in proc.stderr
    estimate, rate = sf.read(str(out / "mix_est1.wav"))
    assert rate == 8000 and len(estimate) == 8000  # the input's rate and length
    chunks = json.loads((out / "two_faces_faces.json").read_text())["chunks"]
    assert (chunks["chunk_seconds"], chunks["overlap_seconds"]) == ((0.5, 0.25) if options else (8.0, 1.0))


def test_separate_a_sound_file_audio_only(package, tmp_path, capsys, caplog):
    """A wav is separated audio-only (one track per output, at its own rate); video-only options and
    existing outputs are refused with a message naming the file, and nothing is written then."""
    wav = tmp_path / "mix.wav"
    sf.write(str(wav), (0.1 * np.random.default_rng(0).standard_normal(12000)).astype(np.float32), 8000)
    out = tmp_path / "out"
    assert main(["separate", str(wav), "--model", str(package), "-o", str(out), "--face", "1", "-q"]) == 1
    assert f"{wav}: a sound file has no faces" in caplog.text and "--face only apply to videos" in caplog.text
    assert not out.exists()
    with pytest.warns(UserWarning, match="no faces given"):
        assert main(["separate", str(wav), "--model", str(package), "-o", str(out), "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["mix_est1.wav", "mix_est2.wav"]
    estimate, rate = sf.read(str(out / "mix_est2.wav"))
    assert rate == 8000 and len(estimate) == 12000 and np.abs(estimate).max() > 0
    assert "audio-only: output order arbitrary" in capsys.readouterr().out
    caplog.clear()
    assert main(["separate", str(wav), "--model", str(package), "-o", str(out), "-q"]) == 1
    assert "outputs already exist" in caplog.text and "--force" in caplog.text
