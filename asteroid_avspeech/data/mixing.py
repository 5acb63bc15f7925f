"""Mixing rules (pure functions): source gains from a relative-SNR range, exact sums, common rescale.

Every source is brought to a reference level ``ref_db`` (dBFS) plus a relative level: the first
source (the target) gets 0 dB, every other source a level drawn uniformly in ``snr_range`` dB,
so each interferer's level relative to the target lies in ``snr_range``. Noise follows the
paper's ``0.3 x noise`` rule applied to noise brought to the same reference level (about 10.5 dB
below the target), so the SNR does not depend on how loud a noise file happens to be.

The mixture is the exact sum of the returned scaled parts (no averaging as ffmpeg ``amix``
does); one common ``scale`` keeps every part and the mixture within ``peak``::

    mixture = scale * (sum_i gain_i * s_i + noise_gain * noise)
"""
from typing import Optional, Sequence, Tuple

import numpy as np

MIN_RMS = 1e-4  # -80 dBFS: floor for the level of (nearly) silent crops, avoids huge gains


def rms(audio: np.ndarray) -> np.ndarray:
    """Root mean square over the last axis: ``(..., time)`` -> ``(...)`` (float64)."""
    return np.sqrt(np.mean(np.square(np.asarray(audio, dtype=np.float64)), axis=-1))


def db_to_gain(db: np.ndarray) -> np.ndarray:
    """Amplitude factor of a level in dB."""
    return np.power(10.0, np.asarray(db, dtype=np.float64) / 20.0)


def draw_relative_levels(rng: np.random.Generator, n_src: int, snr_range: Sequence[float]) -> np.ndarray:
    """Levels in dB ``(n_src,)`` relative to the target: 0 for the first, ``U(snr_range)`` for the others."""
    low, high = snr_range
    if low > high:
        raise ValueError(f"snr_range must be (low, high) with low <= high, got {tuple(snr_range)}")
    return np.concatenate([[0.0], rng.uniform(low, high, size=n_src - 1)])


def source_gains(
    sources_rms: np.ndarray, levels_db: np.ndarray, ref_db: float = -25.0, min_rms: float = MIN_RMS
) -> np.ndarray:
    """Gains ``(n_src,)`` bringing sources of level ``sources_rms`` to ``ref_db + levels_db`` dBFS."""
    return db_to_gain(ref_db + np.asarray(levels_db)) / np.maximum(np.asarray(sources_rms, np.float64), min_rms)


def noise_gain(noise_rms: float, ref_db: float = -25.0, noise_factor: float = 0.3, min_rms: float = MIN_RMS) -> float:
    """Gain of a noise of level ``noise_rms``: ``noise_factor`` times the reference level."""
    return float(noise_factor * db_to_gain(ref_db) / max(float(noise_rms), min_rms))


def mix(
    sources: np.ndarray,
    gains: np.ndarray,
    noise: Optional[np.ndarray] = None,
    noise_gain: float = 0.0,
    scale: Optional[float] = None,
    peak: float = 0.99,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Mix ``sources`` ``(n_src, time)`` with ``gains`` ``(n_src,)`` and optional ``noise`` ``(time,)``.

    Args:
        scale: common rescale; None computes ``min(1, peak / max|part or mixture|)``. Pass the
            recorded value to replay a manifest exactly.

    Returns:
        ``(mixture (time,), scaled_sources (n_src, time), scaled_noise (time,), scale)``, float32
        arrays with ``mixture == scaled_sources.sum(0) + scaled_noise`` exactly.
    """
    parts = np.asarray(sources, dtype=np.float64) * np.asarray(gains, dtype=np.float64)[:, None]
    if noise is None:
        noise_part = np.zeros(parts.shape[-1])
    else:
        noise_part = np.asarray(noise, dtype=np.float64) * noise_gain
    if scale is None:
        loudest = max(np.abs(parts.sum(0) + noise_part).max(), np.abs(parts).max(), np.abs(noise_part).max())
        scale = min(1.0, peak / loudest) if loudest > 0 else 1.0
    scaled_sources = (parts * scale).astype(np.float32)
    scaled_noise = (noise_part * scale).astype(np.float32)
    return scaled_sources.sum(axis=0) + scaled_noise, scaled_sources, scaled_noise, float(scale)


def loop_to_length(audio: np.ndarray, length: int, offset: int = 0) -> np.ndarray:
    """``length`` samples of ``audio`` ``(time,)`` from ``offset``, wrapping around (noise looping)."""
    if len(audio) == 0:
        raise ValueError("cannot loop an empty signal")
    return np.take(audio, np.arange(offset, offset + length), mode="wrap")
