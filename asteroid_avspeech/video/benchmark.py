"""Keyframe tracking vs MTCNN on every frame: speed and landmark agreement on the same clips.

Each clip goes through what stage 2 does to it (decode, track the hinted face, crop the lips)
twice: with detection every ``detect_every`` frames, and with detection on every frame. The
reference for accuracy is the every-frame detection; the error is the distance between the
mouth centres of the two tracks on the frames where both have the face.
"""
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from .crops import LIP_SIZE, crop_tracks, mouth_centre
from .decode import DEFAULT_FPS, iter_frame_chunks
from .faces import FaceDetector, FaceTrack, FaceTracker


@dataclass
class TrackingBenchmark:
    """Result of :func:`benchmark_tracking` (errors in pixels).

    Times are CPU seconds of this process, the best of the repeats: on a shared machine they
    measure the work done, where wall-clock times would also measure the other processes.
    Pin ``torch.set_num_threads(1)`` for stable numbers (idle OpenMP threads spin and count).
    """

    n_clips: int
    n_frames: int
    detect_every: int
    seconds_tracked: float
    seconds_every_frame: float
    speedup: float
    mouth_error_mean_px: float
    mouth_error_max_px: float
    face_ratio_tracked: float
    face_ratio_every_frame: float

    def as_dict(self) -> Dict[str, float]:
        return asdict(self)


def _stage2(path: Path, hint: Tuple[float, float], tracker: FaceTracker, lip_size: int, fps: float):
    track = tracker.track_hinted(iter_frame_chunks(path, fps), hint)
    if track is not None:
        crop_tracks(iter_frame_chunks(path, fps), [track], lip_size)
    return track


def benchmark_tracking(
    clips: Sequence[Tuple[Path, Tuple[float, float]]],
    detect_every: int = 10,
    lip_size: int = LIP_SIZE,
    fps: float = DEFAULT_FPS,
    detector: Optional[FaceDetector] = None,
    repeats: int = 1,
) -> TrackingBenchmark:
    """Time and compare keyframe tracking against every-frame detection.

    Args:
        clips: ``(mp4 path, normalised (x, y) face hint)`` pairs.
        detect_every: keyframe interval of the tracked run.
        lip_size: lip crop side (crops are part of the timed work).
        fps: frame rate the clips are decoded at.
        detector: shared MTCNN wrapper (one is built if None).
        repeats: each run is timed this many times (interleaved); the fastest counts.

    Returns:
        Wall times of both runs, speedup, and mouth-centre error statistics.
    """
    detector = detector or FaceDetector()
    tracked = FaceTracker(detect_every=detect_every, detector=detector)
    every = FaceTracker(detect_every=1, detector=detector)
    # Warm-up: the first MTCNN call pays one-off allocation costs.
    _stage2(clips[0][0], clips[0][1], tracked, lip_size, fps)

    tracks: Dict[str, list] = {}
    seconds = {"tracked": float("inf"), "every": float("inf")}
    for _ in range(repeats):  # interleaved, best of ``repeats``: robust to a busy machine
        for name, tracker in (("tracked", tracked), ("every", every)):
            start = time.process_time()
            tracks[name] = [_stage2(path, hint, tracker, lip_size, fps) for path, hint in clips]
            seconds[name] = min(seconds[name], time.process_time() - start)

    errors, n_frames = [], 0
    ratios = {"tracked": [], "every": []}
    for a, b in zip(tracks["tracked"], tracks["every"]):
        for name, t in (("tracked", a), ("every", b)):
            ratios[name].append(t.face_ratio if t is not None else 0.0)
        if a is None or b is None:
            continue
        n_frames += len(a.mask)
        errors.append(_mouth_errors(a, b))
    errors = np.concatenate(errors) if errors else np.full(1, np.nan)
    return TrackingBenchmark(
        n_clips=len(clips),
        n_frames=n_frames,
        detect_every=detect_every,
        seconds_tracked=seconds["tracked"],
        seconds_every_frame=seconds["every"],
        speedup=seconds["every"] / max(seconds["tracked"], 1e-9),
        mouth_error_mean_px=float(np.mean(errors)),
        mouth_error_max_px=float(np.max(errors)),
        face_ratio_tracked=float(np.mean(ratios["tracked"])),
        face_ratio_every_frame=float(np.mean(ratios["every"])),
    )


def _mouth_errors(a: FaceTrack, b: FaceTrack) -> np.ndarray:
    """Per-frame mouth-centre distances (pixels) where both tracks have the face."""
    both = a.mask & b.mask
    return np.linalg.norm(mouth_centre(a.landmarks[both]) - mouth_centre(b.landmarks[both]), axis=-1)
