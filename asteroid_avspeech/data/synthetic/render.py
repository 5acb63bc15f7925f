"""Talking-face frames: a mouth opened by a displacement field, slight head motion, lighting flicker.

The mouth is animated in the aligned canvas (:class:`~.faces.AlignedFace`) inside a region
around the mouth only: lips part along the line between the mouth corners, the jaw drops below
it, lip width scales around the mouth centre, and the gap is painted as a dark mouth interior
with a band of upper teeth. Each frame is then warped to the output frame by a small, smooth
random similarity transform (head motion) and multiplied by a drifting lighting gain.
"""
from dataclasses import dataclass

import cv2
import numpy as np

from .faces import AlignedFace

_INTERIOR_RGB = np.array([45.0, 18.0, 20.0], np.float32)
_TEETH_RGB = np.array([205.0, 198.0, 185.0], np.float32)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


@dataclass
class HeadMotion:
    """Per-frame head pose and lighting, each of shape ``(n_frames,)``.

    ``angle`` in degrees, ``scale`` a zoom factor, ``tx``/``ty`` in output pixels, ``gain`` a
    brightness factor and ``tilt`` a left-right lighting slope (gain change across the frame).
    """

    angle: np.ndarray
    scale: np.ndarray
    tx: np.ndarray
    ty: np.ndarray
    gain: np.ndarray
    tilt: np.ndarray


def random_head_motion(
    rng: np.random.Generator,
    n_frames: int,
    fps: float = 25.0,
    max_angle: float = 2.0,
    max_shift: float = 4.0,
    max_zoom: float = 0.02,
    max_flicker: float = 0.06,
) -> HeadMotion:
    """Smooth random motion: each parameter is a sum of two slow sinusoids (0.1-0.7 Hz)."""
    t = np.arange(n_frames) / fps

    def wave(amplitude: float) -> np.ndarray:
        freqs, phases = rng.uniform(0.1, 0.7, 2), rng.uniform(0, 2 * np.pi, 2)
        weights = rng.uniform(0.3, 1.0, 2)
        w = (weights[:, None] * np.sin(2 * np.pi * freqs[:, None] * t + phases[:, None])).sum(0)
        return amplitude * w / weights.sum()

    base_gain = rng.uniform(0.9, 1.1)
    return HeadMotion(
        angle=wave(max_angle),
        scale=1.0 + wave(max_zoom),
        tx=wave(max_shift),
        ty=wave(max_shift),
        gain=base_gain * (1.0 + wave(max_flicker)),
        tilt=wave(max_flicker),
    )


class MouthAnimator:
    """Opens and widens the mouth of one aligned face.

    Args:
        face: the aligned face; its landmarks 3 and 4 are the mouth corners.
        max_gap: lip gap at openness 1, as a fraction of the mouth width.
    """

    def __init__(self, face: AlignedFace, max_gap: float = 0.5):
        self.face = face
        left, right = face.landmarks[3], face.landmarks[4]
        self.centre = (left + right) / 2
        self.width = float(np.linalg.norm(right - left))
        self.max_gap = max_gap
        half = self.width / 2
        cx, cy = self.centre
        self.x0, self.x1 = int(cx - 2.6 * half), int(np.ceil(cx + 2.6 * half))
        self.y0, self.y1 = int(cy - 1.4 * half), int(np.ceil(cy + 3.4 * half))
        ys, xs = np.mgrid[self.y0 : self.y1, self.x0 : self.x1].astype(np.float32)
        self.xs, self.ys = xs, ys
        self.u, self.v = (xs - cx) / half, (ys - cy) / half  # mouth-relative coordinates
        # Jaw moves as a block below the lip line, fading at the cheeks and below the chin.
        self.jaw = (1 - _smoothstep((np.abs(self.u) - 1.2) / 1.2)) * (1 - _smoothstep((self.v - 2.4) / 0.9))
        self.upper = 1 - _smoothstep(-self.v / 1.1)  # upper lip region, fading towards the nose
        self.near_mouth = (1 - _smoothstep((np.abs(self.u) - 0.6) / 1.6)) * (1 - _smoothstep((np.abs(self.v) - 0.4) / 0.9))

    def render(self, canvas: np.ndarray, openness: float, width: float) -> None:
        """Draw the mouth shape ``(openness, width)`` into ``canvas`` (an aligned canvas copy), in place."""
        half = self.width / 2
        k = 1 + (width - 1) * self.near_mouth  # lip width factor, local
        src_u = self.u / k
        gap = openness * self.max_gap * self.width  # px
        lens = np.clip(1 - src_u**2, 0, 1) ** 0.7  # opening profile along the lips
        lip_open = np.where(np.abs(src_u) < 1.0, lens, 0.0)
        below = self.v >= 0
        lower_env = np.where(self.v < 0.5, lip_open + (self.jaw - lip_open) * _smoothstep(self.v / 0.5), self.jaw)
        down = 0.7 * gap * np.where(below, lower_env, 0.0)
        up = 0.3 * gap * np.where(below, 0.0, lip_open * self.upper)
        map_x = (self.centre[0] + src_u * half).astype(np.float32)
        map_y = (self.ys - down + up).astype(np.float32)
        roi = canvas[self.y0 : self.y1, self.x0 : self.x1]
        warped = cv2.remap(canvas, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT).astype(np.float32)
        # The gap spans [top, bottom] at each column; alpha is its exact coverage of each pixel row.
        local_gap = gap * lip_open
        top, bottom = self.centre[1] - 0.3 * local_gap, self.centre[1] + 0.7 * local_gap
        alpha = np.clip(np.minimum(bottom, self.ys + 0.5) - np.maximum(top, self.ys - 0.5), 0, 1)[..., None]
        teeth_h = np.minimum(0.12 * self.width, 0.4 * local_gap)
        teeth = ((self.ys - top) < teeth_h) * np.clip(1.5 - np.abs(src_u) * 1.5, 0, 1) * min(1.0, openness / 0.3)
        shade = lip_open * 0.6 + 0.4
        inside = _INTERIOR_RGB * shade[..., None] * (1 - teeth[..., None]) + _TEETH_RGB * teeth[..., None]
        roi[:] = np.clip(warped * (1 - alpha) + inside * alpha, 0, 255).astype(np.uint8)


def pose_matrix(face: AlignedFace, size: int, angle: float, scale: float, tx: float, ty: float) -> np.ndarray:
    """2x3 affine matrix from canvas pixels to output pixels (rotation and zoom about the nose)."""
    nose = face.landmarks[2]
    matrix = cv2.getRotationMatrix2D((float(nose[0]), float(nose[1])), angle, scale)
    matrix[:, 2] += np.array([tx - face.margin, ty - face.margin])
    return matrix


def render_frames(face: AlignedFace, track: np.ndarray, motion: HeadMotion, size: int = 256) -> tuple:
    """Render a talking face.

    Args:
        face: aligned face canvas.
        track: viseme track of shape ``(n_frames, 2)`` (openness, width).
        motion: head motion and lighting, one value per frame.
        size: output frame size (px).

    Returns:
        ``(frames, matrices)``: uint8 RGB frames ``(n_frames, size, size, 3)`` and the canvas ->
        frame affine matrices ``(n_frames, 2, 3)``.
    """
    animator = MouthAnimator(face)
    n_frames = len(track)
    frames = np.empty((n_frames, size, size, 3), np.uint8)
    matrices = np.empty((n_frames, 2, 3), np.float64)
    ramp = (np.arange(size, dtype=np.float32) / size - 0.5)[None, :, None]
    for i in range(n_frames):
        canvas = face.image.copy()
        animator.render(canvas, float(track[i, 0]), float(track[i, 1]))
        matrices[i] = pose_matrix(face, size, motion.angle[i], motion.scale[i], motion.tx[i], motion.ty[i])
        frame = cv2.warpAffine(canvas, matrices[i], (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        light = motion.gain[i] * (1 + motion.tilt[i] * 2 * ramp)
        frames[i] = np.clip(frame * light, 0, 255).astype(np.uint8)
    return frames, matrices
