"""The worked examples in egs/ run as documented (tiny random model, 1 s two-face clip)."""
import subprocess
import sys
from pathlib import Path

from video_fixtures import two_face_clip, video_dir  # noqa: F401  (pytest fixtures)

EGS = Path(__file__).resolve().parents[1] / "egs"


def _run(*args) -> str:
    proc = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_separate_video_example(package, two_face_clip, tmp_path):
    out = _run(EGS / "separate_video" / "separate_video.py", package, two_face_clip, tmp_path)
    assert "face 1: frames 0-24" in out and "face 2:" in out
    assert {"two_faces_est1.wav", "two_faces_est2.mp4", "two_faces_faces.json"} <= {p.name for p in tmp_path.iterdir()}


def test_load_model_example(package):
    out = _run(EGS / "load_model" / "load_model.py", package)
    assert "estimates (1, 2, 32000)" in out
    assert "without faces: (1, 2, 32000); warning: LookingToListen: no faces given" in out
