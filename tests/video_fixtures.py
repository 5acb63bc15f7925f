"""Small test videos made on the fly from real face photos (no download), written with PyAV.

Faces: ``skimage.data.astronaut()`` (Eileen Collins, frontal) and matplotlib's
``grace_hopper.jpg`` sample. Clips are 1 s or less so that MTCNN stays cheap.
Import the fixtures you need from this module into a test file.
"""
from fractions import Fraction
from pathlib import Path
from typing import Optional, Tuple

import av
import cv2
import matplotlib.cbook
import numpy as np
import pytest
from PIL import Image
from skimage import data

from asteroid_avspeech.data import layout

FPS = 25
SIDE = 256
# Face centre (x, y) and a window side around it, in pixels of the source photos.
ASTRONAUT_FACE = (224, 117, 200)
HOPPER_FACE = (265, 230, 400)


def write_mp4(
    path: Path,
    frames: np.ndarray,
    fps: float = FPS,
    audio: Optional[np.ndarray] = None,
    sample_rate: int = 16000,
) -> Path:
    """Write uint8 RGB ``frames`` ``(n, H, W, 3)`` as H.264 and float ``audio`` ``(channels, time)`` as AAC."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        video.width, video.height = frames.shape[2], frames.shape[1]
        video.pix_fmt = "yuv420p"
        video.options = {"crf": "16", "preset": "ultrafast"}
        if audio is not None:  # every stream must exist before the first packet is written
            layout_name = "mono" if audio.shape[0] == 1 else "stereo"
            sound = container.add_stream("aac", rate=sample_rate, layout=layout_name)
        for image in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode())
        if audio is not None:
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(audio, dtype=np.float32), format="fltp", layout=layout_name
            )
            frame.sample_rate = sample_rate
            frame.pts, frame.time_base = 0, Fraction(1, sample_rate)  # lets the muxer record AAC priming
            container.mux(sound.encode(frame))
            container.mux(sound.encode())
    return path


def tone(seconds: float, sample_rate: int = 16000, channels: int = 1) -> np.ndarray:
    """A 220 Hz tone ``(channels, time)`` float32."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return np.tile(0.3 * np.sin(2 * np.pi * 220 * t), (channels, 1)).astype(np.float32)


def _face_window(image: np.ndarray, face: Tuple[int, int, int], dx: float, dy: float, side: int) -> np.ndarray:
    """``side x side`` view of ``image`` centred on ``face`` shifted by (dx, dy) source pixels."""
    cx, cy, window = face
    zoom = side / window
    matrix = np.array([[zoom, 0, side / 2 - zoom * (cx + dx)], [0, zoom, side / 2 - zoom * (cy + dy)]])
    return cv2.warpAffine(image, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def moving_face(n_frames: int, face: str = "astronaut", side: int = SIDE) -> np.ndarray:
    """``(n, side, side, 3)`` frames of a face that drifts right and bobs (sub-pixel motion)."""
    image, box = (data.astronaut(), ASTRONAUT_FACE) if face == "astronaut" else (hopper(), HOPPER_FACE)
    t = np.arange(n_frames)
    dx = -1.5 * t + 3 * np.sin(2 * np.pi * t / 40)
    dy = 2 * np.sin(2 * np.pi * t / 55)
    return np.stack([_face_window(image, box, x, y, side) for x, y in zip(dx, dy)])


def hopper() -> np.ndarray:
    """Grace Hopper photo shipped with matplotlib, uint8 RGB."""
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(Image.open(f).convert("RGB"))


def noise_frames(n_frames: int, side: int = SIDE, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n_frames, side // 8, side // 8, 3), dtype=np.uint8)
    return np.stack([cv2.resize(f, (side, side), interpolation=cv2.INTER_NEAREST) for f in small])


def two_faces(n_frames: int) -> np.ndarray:
    """Astronaut on the left, Grace Hopper on the right: ``(n, 256, 512, 3)``."""
    return np.concatenate([moving_face(n_frames, "astronaut"), moving_face(n_frames, "hopper")], axis=2)


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="session")
def face_clip(video_dir) -> Path:
    """1 s, 25 fps, 256x256 moving astronaut face, mono 16 kHz AAC."""
    return write_mp4(video_dir / "face.mp4", moving_face(FPS), audio=tone(1.0))


@pytest.fixture(scope="session")
def two_face_clip(video_dir) -> Path:
    """1 s, 256x512, astronaut (left, centre x=0.25) and Grace Hopper (right, x=0.75)."""
    return write_mp4(video_dir / "two_faces.mp4", two_faces(FPS), audio=tone(1.0))


@pytest.fixture(scope="session")
def noise_clip(video_dir) -> Path:
    """1 s of coloured noise, no face."""
    return write_mp4(video_dir / "noise.mp4", noise_frames(FPS), audio=tone(1.0))


@pytest.fixture(scope="session")
def half_face_clip(video_dir) -> Path:
    """1 s: the face for 10 frames, then noise (the face leaves)."""
    frames = np.concatenate([moving_face(10), noise_frames(FPS - 10)])
    return write_mp4(video_dir / "half_face.mp4", frames, audio=tone(1.0))


@pytest.fixture(scope="session")
def truncated_clip(face_clip, video_dir) -> Path:
    """The face clip with its second half of bytes cut off (mp4 index lost)."""
    payload = face_clip.read_bytes()
    path = video_dir / "truncated.mp4"
    path.write_bytes(payload[: len(payload) // 2])
    return path


@pytest.fixture(scope="session")
def silent_clip(video_dir) -> Path:
    """Video without an audio stream."""
    return write_mp4(video_dir / "no_audio.mp4", moving_face(10))


@pytest.fixture(scope="session")
def clip_30fps(video_dir) -> Path:
    """1 s at 30 fps (30 frames), with audio."""
    return write_mp4(video_dir / "30fps.mp4", moving_face(30), fps=30, audio=tone(1.0))


@pytest.fixture(scope="session")
def stereo_44k_clip(video_dir) -> Path:
    """0.4 s, stereo 44.1 kHz AAC audio."""
    return write_mp4(video_dir / "stereo.mp4", moving_face(10), audio=tone(0.4, 44100, 2), sample_rate=44100)


@pytest.fixture(scope="session")
def spaced_clip(video_dir) -> Path:
    """A clip in a directory and with a name that contain spaces."""
    return write_mp4(video_dir / "my clips" / "a clip.mp4", moving_face(10), audio=tone(0.4))


def add_to_corpus(
    corpus: Path, youtube_id: str, source: Optional[Path], hint: Tuple[float, float], seconds: float = 1.0
) -> str:
    """Add a row to ``corpus/avspeech.csv`` and copy ``source`` to its clip path (None = missing file)."""
    clip_id = layout.make_clip_id(youtube_id, 0.0, seconds)
    if source is not None:
        target = layout.clip_path(corpus, clip_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(Path(source).read_bytes())
    with open(layout.csv_path(corpus), "a") as f:
        f.write(f"{youtube_id},0.000000,{seconds:.6f},{hint[0]:.6f},{hint[1]:.6f}\n")
    return clip_id


@pytest.fixture(scope="session")
def face_detector():
    """One MTCNN wrapper shared by all tests (bundled weights, offline)."""
    from asteroid_avspeech.video.faces import FaceDetector

    return FaceDetector()
