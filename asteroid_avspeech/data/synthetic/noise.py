"""Noise material for the +noise conditions: coloured noise, mains hum and synthetic babble.

Babble mixes 4-8 voices of :data:`~.tts.BABBLE_VOICES` (never a corpus speaker's voice).
Ambient samples of the Debian package ``sonic-pi-samples`` (CC0) are added when installed.
Every file is 16 kHz mono int16 at a fixed RMS level; ``noise.csv`` lists them.
"""
import csv
import logging
from math import gcd
from pathlib import Path
from typing import List, Optional

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from ...io_utils import atomic_path
from .media import write_wav
from .sentences import random_sentence
from .tts import BABBLE_VOICES, Espeak

log = logging.getLogger(__name__)
SONIC_PI_SAMPLES = Path("/usr/share/sonic-pi/etc/samples")


def coloured_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise of shape ``(n,)`` with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1]
    return np.fft.irfft(spectrum / f ** (exponent / 2), n)


def hum(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Mains hum (50 or 60 Hz and decaying harmonics) with a little hiss, shape ``(n,)``."""
    t = np.arange(n) / sample_rate
    f0 = rng.choice([50.0, 60.0]) * rng.uniform(0.995, 1.005)
    x = sum(rng.uniform(0.3, 1.0) / k * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) for k in range(1, 8))
    return x + 0.02 * rng.standard_normal(n)


def babble(rng: np.random.Generator, n: int, espeak: Espeak, n_voices: int) -> np.ndarray:
    """Sum of ``n_voices`` babble voices, each speaking random sentences over the whole length."""
    out = np.zeros(n)
    for i in rng.choice(len(BABBLE_VOICES), n_voices, replace=False):
        track, pos = np.zeros(n), int(rng.integers(0, espeak.sample_rate))
        while pos < n:
            speech = espeak.synthesize(random_sentence(rng), BABBLE_VOICES[i]).samples.astype(np.float64)
            speech = speech[: n - pos]
            track[pos : pos + len(speech)] = speech
            pos += len(speech) + int(rng.integers(0, espeak.sample_rate // 4))
        out += track / (np.sqrt(np.mean(track**2)) + 1e-9)
    return out


def _sonic_pi(sample_rate: int, n: int) -> List[np.ndarray]:
    clips = []
    for path in sorted(SONIC_PI_SAMPLES.glob("ambi_*.flac")):
        audio, rate = sf.read(str(path), always_2d=True)
        g = gcd(sample_rate, rate)
        clips.append(resample_poly(audio.mean(1), sample_rate // g, rate // g)[:n])
    return clips


def generate_noise(
    out: Path,
    files_per_kind: int = 4,
    seconds: float = 10.0,
    seed: int = 0,
    sample_rate: int = 16000,
    rms_dbfs: float = -25.0,
    kinds: Optional[List[str]] = None,
) -> Path:
    """Write noise wavs into ``out`` and the list ``out/noise.csv`` (``file,kind,seconds``).

    Args:
        kinds: subset of ``white, pink, brown, hum, babble`` (default all), plus ``sonic_pi``
            files when that package is installed.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n = int(round(seconds * sample_rate))
    kinds = kinds or ["white", "pink", "brown", "hum", "babble"]
    espeak = Espeak(sample_rate) if "babble" in kinds else None
    signals = []
    for k, kind in enumerate(kinds):
        for i in range(files_per_kind):
            rng = np.random.default_rng([seed, k, i])
            if kind in ("white", "pink", "brown"):
                x = coloured_noise(rng, n, {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind])
            elif kind == "hum":
                x = hum(rng, n, sample_rate)
            elif kind == "babble":
                x = babble(rng, n, espeak, int(rng.integers(4, 9)))
            else:
                raise ValueError(f"Unknown noise kind {kind!r}: use white, pink, brown, hum or babble")
            signals.append((f"{kind}_{i:02d}.wav", kind, x))
    signals += [(f"sonic_pi_{i:02d}.wav", "sonic_pi", x) for i, x in enumerate(_sonic_pi(sample_rate, n))]
    rows = []
    for name, kind, x in signals:
        x = x * (10 ** (rms_dbfs / 20) * 32768 / (np.sqrt(np.mean(x**2)) + 1e-9))
        with atomic_path(out / name) as tmp:
            write_wav(tmp, np.clip(np.round(x), -32768, 32767).astype(np.int16), sample_rate)
        rows.append((name, kind, f"{len(x) / sample_rate:.3f}"))
    with atomic_path(out / "noise.csv") as tmp:
        with open(tmp, "w", newline="") as f:
            csv.writer(f).writerows([("file", "kind", "seconds"), *rows])
    log.info("Wrote %d noise files to %s", len(rows), out)
    return out / "noise.csv"
