"""Waveform basics shared by every stage: channel mixing, resampling, exact lengths, levels, sanity.

Arrays are float32 ``(time,)`` (mono) or ``(channels, time)``; functions are pure.
"""
import functools
from pathlib import Path
from typing import Optional

import numpy as np
import soundfile as sf


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average the channels of ``audio`` ``(channels, time)`` into ``(time,)``."""
    return np.asarray(audio, dtype=np.float32).mean(axis=0)


@functools.lru_cache(maxsize=32)
def _resampler(orig_rate: int, sample_rate: int):
    """torchaudio's resampler between two rates, its sinc kernel built once and reused (half the
    cost per 2 s source). A float32 kernel gives exactly ``torchaudio.functional.resample``."""
    import torch
    import torchaudio.transforms as T

    return T.Resample(orig_rate, sample_rate, dtype=torch.float32)


def resample(audio: np.ndarray, orig_rate: int, sample_rate: int) -> np.ndarray:
    """Band-limited resampling (torchaudio) of ``audio`` ``(..., time)`` to ``sample_rate`` Hz, float32."""
    audio = np.asarray(audio, dtype=np.float32)
    if orig_rate == sample_rate:
        return audio
    import torch

    return _resampler(int(orig_rate), int(sample_rate))(torch.from_numpy(np.ascontiguousarray(audio))).numpy()


def change_speed(audio: np.ndarray, speed: float, sample_rate: int) -> np.ndarray:
    """Play ``audio`` ``(time,)`` ``speed`` times faster, tempo and pitch together (Kaldi's
    speed perturbation): ``(round(time / speed),)`` samples, resampled with :func:`resample`."""
    return resample(audio, round(sample_rate * speed), sample_rate)


def first_non_finite(audio: np.ndarray) -> Optional[int]:
    """Index of the first NaN or infinite sample of ``audio`` ``(time,)``; None when all are finite.

    Such samples (a corrupt float file) would turn every output sample of the STFT-based model
    into NaN, written out as full-scale noise: readers check their blocks with this and refuse them.
    """
    bad = ~np.isfinite(audio)
    return int(np.argmax(bad)) if bad.any() else None


def fit_length(array: np.ndarray, length: int) -> np.ndarray:
    """Trim or zero-pad ``array`` along its first axis to exactly ``length`` items."""
    if len(array) >= length:
        return array[:length]
    pad = np.zeros((length - len(array),) + array.shape[1:], dtype=array.dtype)
    return np.concatenate([array, pad])


def load_audio(path: Path, sample_rate: int = 16000) -> np.ndarray:
    """Mono float32 audio ``(time,)`` at ``sample_rate`` of a sound file (wav, flac, ...)."""
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return resample(to_mono(audio.T), rate, sample_rate)


def rms_db(audio: np.ndarray, eps: float = 1e-10) -> float:
    """Root-mean-square level of ``audio`` in dB relative to full scale (amplitude 1)."""
    return float(20 * np.log10(np.sqrt(np.mean(np.square(audio, dtype=np.float64))) + eps))
