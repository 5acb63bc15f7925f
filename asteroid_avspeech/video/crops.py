"""Mouth and face crops from tracked landmarks: the ONE definition used by training and inference.

A lip crop is a grayscale ``size x size`` square centred on the middle of the mouth corners,
rotated so that the eye line is horizontal, whose side is ``scale`` times the larger of the eye
distance and the mouth width (so the crop follows the face size, not the frame size). A face
crop is the ``160 x 160`` RGB square FaceNet (InceptionResnetV1) takes; it is standardised with
:func:`standardize_faces` (``(x - 127.5) / 128``) only at embedding time, so it is stored as
uint8. Frames without a face give all-zero crops.
"""
from typing import TYPE_CHECKING, Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

if TYPE_CHECKING:
    from .faces import FaceTrack

LEFT_EYE, RIGHT_EYE, NOSE, MOUTH_LEFT, MOUTH_RIGHT = range(5)
FACE_SIZE = 160
#: Default side of the lip crops (conf.yml ``visual.lip_size``): enough for the generated mouths.
LIP_SIZE = 16


def _warp(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Apply the affine ``matrix`` ``(2, 3)`` to get a ``size x size`` crop, without aliasing.

    A strong reduction is first done by area averaging of the whole image (bilinear warping alone
    would skip pixels), then the remaining warp is bilinear; outside pixels repeat the border.
    """
    zoom = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if zoom < 0.5:
        height, width = image.shape[:2]
        small = (max(1, round(width * 2 * zoom)), max(1, round(height * 2 * zoom)))
        image = cv2.resize(image, small, interpolation=cv2.INTER_AREA)
        matrix = matrix.copy()
        matrix[:, 0] *= width / small[0]
        matrix[:, 1] *= height / small[1]
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def mouth_centre(landmarks: np.ndarray) -> np.ndarray:
    """Middle of the two mouth corners: ``(..., 5, 2)`` landmarks -> ``(..., 2)`` pixels."""
    return (landmarks[..., MOUTH_LEFT, :] + landmarks[..., MOUTH_RIGHT, :]) / 2


def lip_transform(landmarks: np.ndarray, size: int, scale: float = 1.3) -> np.ndarray:
    """Affine map ``(2, 3)`` from frame pixels to the levelled ``size x size`` mouth crop.

    Args:
        landmarks: ``(5, 2)`` MTCNN landmarks of one face, pixels.
        size: side of the crop, pixels.
        scale: crop side in units of ``max(eye distance, mouth width)``.
    """
    eyes = landmarks[RIGHT_EYE] - landmarks[LEFT_EYE]
    mouth_width = np.linalg.norm(landmarks[MOUTH_RIGHT] - landmarks[MOUTH_LEFT])
    side = scale * max(float(np.linalg.norm(eyes)), float(mouth_width), 1.0)
    angle = np.degrees(np.arctan2(eyes[1], eyes[0]))
    cx, cy = mouth_centre(landmarks)
    matrix = cv2.getRotationMatrix2D((float(cx), float(cy)), float(angle), size / side)
    matrix[:, 2] += (size / 2 - cx, size / 2 - cy)
    return matrix


def lip_crop(frame: np.ndarray, landmarks: np.ndarray, size: int, scale: float = 1.3) -> np.ndarray:
    """Grayscale levelled mouth crop of one RGB frame ``(height, width, 3)`` -> uint8 ``(size, size)``."""
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    matrix = lip_transform(landmarks, size, scale)
    return _warp(gray, matrix, size)


def lip_crops(
    frames: np.ndarray, landmarks: np.ndarray, mask: np.ndarray, size: int, scale: float = 1.3
) -> np.ndarray:
    """Mouth crops of a clip.

    Args:
        frames: uint8 RGB ``(frames, height, width, 3)``.
        landmarks: ``(frames, 5, 2)`` pixels.
        mask: ``(frames,)`` bool, False where there is no face.
        size: crop side ``S``.
        scale: see :func:`lip_transform`.

    Returns:
        uint8 ``(frames, S, S)``, zeros where ``mask`` is False.
    """
    out = np.zeros((len(frames), size, size), np.uint8)
    for i in np.flatnonzero(mask):
        out[i] = lip_crop(frames[i], landmarks[i], size, scale)
    return out


def face_crop(frame: np.ndarray, box: np.ndarray, size: int = FACE_SIZE, margin: float = 0.1) -> np.ndarray:
    """Square RGB face crop around an MTCNN box -> uint8 ``(size, size, 3)``.

    The square's side is ``(1 + margin)`` times the longer box side (FaceNet was trained on
    MTCNN boxes with a small margin); parts outside the frame repeat the border pixels.
    """
    centre = (box[:2] + box[2:]) / 2
    side = max(float(box[2] - box[0]), float(box[3] - box[1]), 1.0) * (1 + margin)
    zoom = size / side
    matrix = np.array(
        [[zoom, 0, size / 2 - zoom * centre[0]], [0, zoom, size / 2 - zoom * centre[1]]], np.float64
    )
    return _warp(frame, matrix, size)


def face_crops(
    frames: np.ndarray, boxes: np.ndarray, mask: np.ndarray, size: int = FACE_SIZE, margin: float = 0.1
) -> np.ndarray:
    """Face crops of a clip: ``(frames, H, W, 3)``, boxes ``(frames, 4)`` -> uint8 ``(frames, size, size, 3)``.

    Zeros where ``mask`` is False.
    """
    out = np.zeros((len(frames), size, size, 3), np.uint8)
    for i in np.flatnonzero(mask):
        out[i] = face_crop(frames[i], boxes[i], size, margin)
    return out


def standardize_faces(faces: np.ndarray) -> torch.Tensor:
    """FaceNet input: uint8 ``(n, 160, 160, 3)`` -> float32 ``(n, 3, 160, 160)`` as ``(x - 127.5) / 128``."""
    x = torch.from_numpy(np.ascontiguousarray(faces)).permute(0, 3, 1, 2).float()
    return (x - 127.5) / 128.0



def crop_tracks(
    chunks: Iterable[np.ndarray],
    tracks: Sequence["FaceTrack"],
    lip_size: int,
    lip_scale: float = 1.3,
    with_faces: bool = False,
) -> List[Tuple[np.ndarray, Optional[np.ndarray]]]:
    """Lip (and face) crops of several tracks in one pass over the frames of a clip.

    Args:
        chunks: uint8 RGB frame chunks ``(chunk, height, width, 3)`` in order, covering the
            same frames as the tracks (e.g. a second pass of ``iter_frame_chunks``).
        tracks: tracks of that clip (``FaceTrack`` from :mod:`asteroid_avspeech.video.faces`).
        lip_size: lip crop side ``S``.
        lip_scale: see :func:`lip_transform`.
        with_faces: also make ``160 x 160`` face crops.

    Returns:
        One ``(lips, faces)`` per track: uint8 ``(frames, S, S)`` and uint8
        ``(frames, 160, 160, 3)`` (None unless ``with_faces``); zeros where the face is absent.
    """
    lips = [[] for _ in tracks]
    faces = [[] for _ in tracks]
    start = 0
    for chunk in chunks:
        stop = start + len(chunk)
        for t, track in enumerate(tracks):
            mask = track.mask[start:stop]
            lips[t].append(lip_crops(chunk, track.landmarks[start:stop], mask, lip_size, lip_scale))
            if with_faces:
                faces[t].append(face_crops(chunk, track.boxes[start:stop], mask))
        start = stop
    empty_lips, empty_faces = (0, lip_size, lip_size), (0, FACE_SIZE, FACE_SIZE, 3)
    return [
        (_concat(lips[t], empty_lips), _concat(faces[t], empty_faces) if with_faces else None)
        for t in range(len(tracks))
    ]


def _concat(parts: List[np.ndarray], empty_shape: Tuple[int, ...]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(empty_shape, np.uint8)
