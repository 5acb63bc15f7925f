"""Phoneme -> viseme: a mouth openness (0 closed .. 1 wide open) and lip width factor per video frame."""
from typing import Dict, Sequence, Tuple

import numpy as np
from scipy.ndimage import gaussian_filter1d

SILENCE = (0.03, 1.0)
# Targets per espeak-ng mnemonic (stress/length marks are stripped before lookup).
_TARGETS: Dict[str, Tuple[float, float]] = {}
for _phones, _target in (
    ("p b m", (0.0, 1.0)),
    ("f v", (0.12, 1.0)),
    ("w W", (0.15, 0.72)),
    ("S Z tS dZ", (0.25, 0.85)),
    ("r R", (0.35, 0.85)),
    ("T D", (0.22, 1.0)),
    ("t d n l s z ts dz j", (0.2, 1.0)),
    ("k g N x", (0.3, 1.0)),
    ("h", (0.45, 1.0)),
    ("a A aa { a# &", (1.0, 1.0)),
    ("aI aU", (0.9, 1.0)),
    ("E eI e e@", (0.6, 1.08)),
    ("I i y", (0.3, 1.12)),
    ("O 0 ao oI o o@", (0.75, 0.8)),
    ("oU @U", (0.5, 0.72)),
    ("u U", (0.3, 0.68)),
    ("@ V ah 3 8", (0.45, 1.0)),
):
    for _p in _phones.split():
        _TARGETS[_p] = _target


def phone_target(phone: str) -> Tuple[float, float]:
    """(openness, width) of an espeak-ng phoneme mnemonic such as ``aI``, ``@2``, ``r-`` or ``_:``.

    Stress and length marks (digits, ``:``, ``-``, ``~``, ``#``) are stripped; unknown phones
    fall back on their first letter, pauses and language switches on silence.
    """
    if not phone or phone.startswith(("_", "(")):
        return SILENCE
    core = phone.rstrip("0123456789:-~#!")
    for key in (phone, core, core[:2], core[:1]):
        if key in _TARGETS:
            return _TARGETS[key]
    return (0.45, 1.0) if core[:1].lower() in "aeiou@" else (0.2, 1.0)


def viseme_track(
    phones: Sequence[Tuple[float, float, str]],
    n_frames: int,
    fps: float = 25.0,
    sigma_frames: float = 0.6,
) -> np.ndarray:
    """Mouth shape per video frame from phone timings.

    Each phone holds its target over its interval (closures on p/b/m are therefore kept
    closed for their whole duration), sampled at 4 points per frame, averaged over the frame,
    then Gaussian-smoothed over time.

    Args:
        phones: ``(start_s, end_s, phone)`` in seconds of the clip.
        n_frames: number of video frames.
        fps: video frame rate.
        sigma_frames: smoothing width in frames.

    Returns:
        float32 array of shape ``(n_frames, 2)``: openness in [0, 1] and width factor.
    """
    sub = 4
    t = (np.arange(n_frames * sub) + 0.5) / (fps * sub)
    track = np.tile(np.asarray(SILENCE, np.float64), (len(t), 1))
    for start, end, phone in phones:
        track[(t >= start) & (t < end)] = phone_target(phone)
    track = track.reshape(n_frames, sub, 2).mean(axis=1)
    if sigma_frames > 0:
        track = gaussian_filter1d(track, sigma_frames, axis=0, mode="nearest")
    return track.astype(np.float32)
