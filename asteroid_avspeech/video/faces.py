"""Face detection on keyframes and tracking of every face through a clip.

MTCNN costs tens of milliseconds per frame on a CPU, and running it on every frame (as an
earlier implementation did) dominates data preparation. :class:`FaceTracker` detects only on
every ``detect_every``-th frame (and the last one), links the detections of consecutive
keyframes into tracks (overlap, then centre distance), and fills the frames in between by linear
interpolation of the boxes and the five landmarks. A frame is marked present (``mask`` True) only
when it lies between two consecutive keyframes where its face was detected: a face that leaves
the picture is never invented.

Landmark order (MTCNN): left eye, right eye, nose, left mouth corner, right mouth corner, as
``(x, y)`` pixels of the frame.
"""
import logging
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from facenet_pytorch import MTCNN

logger = logging.getLogger(__name__)

Frames = Union[np.ndarray, Iterable[np.ndarray]]


@dataclass
class Detections:
    """Faces found in one frame.

    Attributes:
        boxes: ``(faces, 4)`` float32 ``x1, y1, x2, y2`` pixels.
        probs: ``(faces,)`` float32 detection confidences.
        landmarks: ``(faces, 5, 2)`` float32 ``(x, y)`` pixels.
    """

    boxes: np.ndarray
    probs: np.ndarray
    landmarks: np.ndarray

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))


class FaceDetector:
    """Batched MTCNN (facenet-pytorch, bundled weights: works offline) returning plain arrays.

    Args:
        min_confidence: detections below this MTCNN probability are discarded.
        min_face_size: smallest face searched, in pixels of the (possibly downscaled) frame.
        max_side: frames whose longer side exceeds this are downscaled before detection (MTCNN
            cost grows with the area); coordinates are returned in original pixels.
        batch_size: frames per MTCNN call.
        device: torch device.
        channels_last: keep MTCNN's weights channels-last, so its convolutions and poolings run on
            the NHWC frames it is given without layout conversions: the same detections, 1.3-1.5x
            faster on a 2-core AVX2 EPYC (``benchmark.detector_layouts``, README Performance).
    """

    def __init__(
        self,
        min_confidence: float = 0.9,
        min_face_size: int = 20,
        max_side: int = 640,
        batch_size: int = 16,
        device: Union[str, torch.device] = "cpu",
        channels_last: bool = True,
    ):
        self.min_confidence = min_confidence
        self.max_side = max_side
        self.batch_size = batch_size
        self.mtcnn = MTCNN(keep_all=True, min_face_size=min_face_size, device=device)
        if channels_last:
            self.mtcnn = self.mtcnn.to(memory_format=torch.channels_last)

    def __call__(self, frames: np.ndarray) -> List[Detections]:
        """Detect faces in uint8 RGB ``frames`` ``(n, height, width, 3)``: one Detections per frame."""
        if len(frames) == 0:
            return []
        height, width = frames.shape[1:3]
        scale = min(1.0, self.max_side / max(height, width))
        results = []
        for start in range(0, len(frames), self.batch_size):
            batch = frames[start : start + self.batch_size]
            if scale < 1.0:
                size = (round(width * scale), round(height * scale))
                batch = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in batch])
            boxes, probs, points = self.mtcnn.detect(np.ascontiguousarray(batch), landmarks=True)
            results.extend(self._to_detections(b, p, l, scale) for b, p, l in zip(boxes, probs, points))
        return results

    def _to_detections(self, boxes, probs, points, scale: float) -> Detections:
        if boxes is None:
            return Detections.empty()
        # facenet-pytorch returns object-dtype arrays: make them float.
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4) / scale
        probs = np.asarray(probs, dtype=np.float32).reshape(-1)
        points = np.asarray(points, dtype=np.float32).reshape(-1, 5, 2) / scale
        keep = probs >= self.min_confidence
        return Detections(boxes[keep], probs[keep], points[keep])


@dataclass
class FaceTrack:
    """One face followed through a clip.

    Attributes:
        boxes: ``(frames, 4)`` float32 ``x1, y1, x2, y2`` pixels (zeros where absent).
        landmarks: ``(frames, 5, 2)`` float32 pixels (zeros where absent).
        mask: ``(frames,)`` bool, True where the face is detected or interpolated.
    """

    boxes: np.ndarray
    landmarks: np.ndarray
    mask: np.ndarray

    @property
    def first_frame(self) -> int:
        """Index of the first frame where the face is present."""
        return int(np.argmax(self.mask))

    @property
    def face_ratio(self) -> float:
        """Fraction of frames where the face is present."""
        return float(self.mask.mean()) if len(self.mask) else 0.0

    def first_centre(self) -> np.ndarray:
        """``(2,)`` centre of the box at the first present frame."""
        box = self.boxes[self.first_frame]
        return (box[:2] + box[2:]) / 2


@dataclass
class _Keyed:
    """A track under construction: its detections, keyed by keyframe index."""

    boxes: Dict[int, np.ndarray] = field(default_factory=dict)
    landmarks: Dict[int, np.ndarray] = field(default_factory=dict)
    last: int = -1


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box ``(4,)`` with ``boxes`` ``(n, 4)``."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-6)


class FaceTracker:
    """Detect faces on keyframes and track them through a clip.

    Args:
        detect_every: run the detector on every ``detect_every``-th frame (1 = every frame).
        detector: a :class:`FaceDetector` (one is built with defaults if None).
        iou_threshold: a detection continues a track if its box overlaps the track's last box
            at least this much ...
        max_shift: ... or if its centre is within ``max_shift`` box widths of the last centre.
        max_gap_keyframes: a track not detected on this many consecutive keyframes ends; a face
            found again later starts a new track. Frames of a gap are never marked present.
        max_size_jump: a keyframe detection whose box size differs from the mean of its two
            neighbours' by more than this factor, while the neighbours agree within it, is an
            MTCNN glitch (e.g. a box swallowing the hair): it is replaced by their interpolation.
    """

    def __init__(
        self,
        detect_every: int = 10,
        detector: Optional[FaceDetector] = None,
        iou_threshold: float = 0.3,
        max_shift: float = 0.5,
        max_gap_keyframes: int = 2,
        max_size_jump: float = 1.25,
    ):
        if detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {detect_every}")
        self.detect_every = detect_every
        self.detector = detector if detector is not None else FaceDetector()
        self.iou_threshold = iou_threshold
        self.max_shift = max_shift
        self.max_gap_keyframes = max_gap_keyframes
        self.max_size_jump = max_size_jump

    def track_all(self, frames: Frames) -> List[FaceTrack]:
        """Every face of a clip, one track each, ordered by first appearance then left to right.

        Args:
            frames: uint8 RGB ``(frames, height, width, 3)``, or an iterable of such chunks
                (e.g. :func:`~asteroid_avspeech.video.decode.iter_frame_chunks`): only the
                current chunk is held in memory.

        Returns:
            Tracks covering all frames of the clip (faces appearing mid-clip included).
        """
        tracks, _ = self._run(frames)
        return tracks

    def track_hinted(self, frames: Frames, hint: Tuple[float, float]) -> Optional[FaceTrack]:
        """The track of the face at ``hint`` (AVSpeech's normalised ``(x, y)`` face centre).

        Returns None when no face is found at all. See :func:`select_track` for the choice.
        """
        tracks, size = self._run(frames)
        return select_track(tracks, hint, size)

    def _run(self, frames: Frames) -> Tuple[List[FaceTrack], Tuple[int, int]]:
        chunks = [frames] if isinstance(frames, np.ndarray) else frames
        keyframes: List[int] = []
        building: List[_Keyed] = []
        n_frames, size, last_frame = 0, (0, 0), None
        for chunk in chunks:
            size = (chunk.shape[2], chunk.shape[1])
            offset = n_frames
            local = [j for j in range(len(chunk)) if (offset + j) % self.detect_every == 0]
            for j, dets in zip(local, self.detector(chunk[local])):
                self._associate(building, keyframes, offset + j, dets)
            n_frames += len(chunk)
            last_frame = chunk[-1].copy() if len(chunk) else last_frame
        if n_frames and (n_frames - 1) % self.detect_every != 0:
            # The last frame is always a keyframe, so the end of the clip is covered too.
            self._associate(building, keyframes, n_frames - 1, self.detector(last_frame[None])[0])
        for track in building:
            self._repair_glitches(track, keyframes)
        tracks = [self._fill(t, keyframes, n_frames) for t in building]
        tracks = [t for t in tracks if t.mask.any()]
        tracks.sort(key=lambda t: (t.first_frame, t.first_centre()[0]))
        return tracks, size

    def _associate(self, building: List[_Keyed], keyframes: List[int], frame: int, dets: Detections) -> None:
        """Greedy matching of the detections of ``frame`` to the live tracks (nearest first)."""
        keyframes.append(frame)
        n_key = len(keyframes) - 1
        live = [t for t in building if n_key - t.last <= self.max_gap_keyframes]
        pairs = []
        centres = (dets.boxes[:, :2] + dets.boxes[:, 2:]) / 2
        for t, track in enumerate(live):
            box = track.boxes[track.last]
            width = box[2] - box[0]
            ious = _iou(box, dets.boxes)
            dists = np.linalg.norm(centres - (box[:2] + box[2:]) / 2, axis=1)
            for d in range(len(dets.boxes)):
                if ious[d] >= self.iou_threshold or dists[d] <= self.max_shift * width:
                    pairs.append((dists[d], t, d))
        used_tracks, used_dets = set(), set()
        for _, t, d in sorted(pairs):
            if t in used_tracks or d in used_dets:
                continue
            used_tracks.add(t)
            used_dets.add(d)
            self._add(live[t], n_key, dets, d)
        for d in range(len(dets.boxes)):
            if d not in used_dets:
                track = _Keyed()
                building.append(track)
                self._add(track, n_key, dets, d)

    @staticmethod
    def _add(track: _Keyed, n_key: int, dets: Detections, d: int) -> None:
        track.boxes[n_key] = dets.boxes[d]
        track.landmarks[n_key] = dets.landmarks[d]
        track.last = n_key

    def _repair_glitches(self, track: _Keyed, keyframes: Sequence[int]) -> None:
        """Replace isolated box-size outliers by the interpolation of their neighbour keyframes."""
        def log_size(k: int) -> float:
            box = track.boxes[k]
            return 0.5 * float(np.log(max((box[2] - box[0]) * (box[3] - box[1]), 1e-6)))

        limit = np.log(self.max_size_jump)
        glitches = [
            k for k in track.boxes
            if k - 1 in track.boxes and k + 1 in track.boxes
            and abs(log_size(k - 1) - log_size(k + 1)) < limit
            and abs(log_size(k) - (log_size(k - 1) + log_size(k + 1)) / 2) > limit
        ]
        for k in glitches:
            w = (keyframes[k] - keyframes[k - 1]) / (keyframes[k + 1] - keyframes[k - 1])
            track.boxes[k] = (1 - w) * track.boxes[k - 1] + w * track.boxes[k + 1]
            track.landmarks[k] = (1 - w) * track.landmarks[k - 1] + w * track.landmarks[k + 1]

    @staticmethod
    def _fill(track: _Keyed, keyframes: Sequence[int], n_frames: int) -> FaceTrack:
        """Dense arrays: detections on keyframes, linear interpolation between consecutive ones."""
        boxes = np.zeros((n_frames, 4), np.float32)
        landmarks = np.zeros((n_frames, 5, 2), np.float32)
        mask = np.zeros(n_frames, bool)
        for k, frame in enumerate(keyframes):
            if k not in track.boxes:
                continue
            boxes[frame], landmarks[frame], mask[frame] = track.boxes[k], track.landmarks[k], True
            if k + 1 in track.boxes:
                nxt = keyframes[k + 1]
                w = (np.arange(frame, nxt + 1) - frame)[:, None] / max(nxt - frame, 1)
                boxes[frame : nxt + 1] = (1 - w) * track.boxes[k] + w * track.boxes[k + 1]
                w = w[:, :, None]
                landmarks[frame : nxt + 1] = (1 - w) * track.landmarks[k] + w * track.landmarks[k + 1]
                mask[frame : nxt + 1] = True
        return FaceTrack(boxes=boxes, landmarks=landmarks, mask=mask)


def select_track(
    tracks: Sequence[FaceTrack], hint: Tuple[float, float], frame_size: Tuple[int, int]
) -> Optional[FaceTrack]:
    """The track of the face at ``hint``, judged at each track's first present frame.

    A track whose box contains the hint wins (the nearest centre among several); if none does,
    (e.g. the hint lies between two faces) the nearest centre wins, and the choice is logged.

    Args:
        tracks: candidate tracks.
        hint: AVSpeech's ``(x, y)`` face centre, normalised to [0, 1] by the frame size.
        frame_size: ``(width, height)`` of the frames, in pixels.

    Returns:
        The chosen track, or None if ``tracks`` is empty.
    """
    if not tracks:
        return None
    point = np.array([hint[0] * frame_size[0], hint[1] * frame_size[1]], np.float32)
    dists = [float(np.linalg.norm(t.first_centre() - point)) for t in tracks]
    contains = []
    for t in tracks:
        x1, y1, x2, y2 = t.boxes[t.first_frame]
        contains.append(bool(x1 <= point[0] <= x2 and y1 <= point[1] <= y2))
    order = sorted(range(len(tracks)), key=lambda i: (not contains[i], dists[i]))
    best = order[0]
    if len(tracks) > 1 and not contains[best]:
        logger.info(
            "Face hint (%.3f, %.3f) lies in no face box; took the nearest of %d faces (%.1f px away)",
            hint[0], hint[1], len(tracks), dists[best],
        )
    return tracks[best]
