"""Stage 1: the exact-length 16 kHz mono 16-bit wav of every corpus clip.

Each clip's audio is decoded from its mp4 with PyAV (any codec, rate and channel layout),
downmixed to mono, resampled, trimmed to exactly ``round((end - start) * sample_rate)`` samples
(AAC decoders add padding) and written as 16-bit PCM. Silent, too short, corrupt or audio-less
clips are dropped with a reason in ``dropped.csv``; kept clips are listed in ``clips.csv``
(``path`` relative to the data root, e.g. ``audio/<clip_id>.wav``).
"""
import csv
import logging
import math
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import soundfile as sf
from tqdm import tqdm

from ..audio import fit_length, rms_db
from ..io_utils import atomic_path
from ..parallel import worker_pool
from ..video.decode import VideoReadError, read_audio
from . import layout
from .download import read_avspeech_csv

logger = logging.getLogger(__name__)

CLIPS_COLUMNS = ("clip_id", "youtube_id", "n_samples", "rms_db", "path")
DROPPED_COLUMNS = ("clip_id", "reason")


class ClipDropped(Exception):
    """A clip that cannot be used; the message is the reason written to ``dropped.csv``."""


def fit_clip_length(audio: np.ndarray, n_samples: int, max_short: float = 0.1) -> np.ndarray:
    """Trim ``audio`` ``(time,)`` to exactly ``n_samples``, zero-padding a small shortfall.

    Raises:
        ClipDropped: ``audio`` is shorter than ``(1 - max_short) * n_samples``.
    """
    if len(audio) < (1 - max_short) * n_samples:
        raise ClipDropped(f"audio too short: {len(audio)} samples, expected {n_samples}")
    return fit_length(audio, n_samples)


def write_wav(path: Path, audio: np.ndarray, sample_rate: int = 16000) -> None:
    """Write ``audio`` ``(time,)`` in [-1, 1] as 16-bit PCM wav, atomically (clipping, never wrapping)."""
    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")


def prepare_clip(
    mp4: Path,
    wav: Path,
    n_samples: int,
    sample_rate: int = 16000,
    min_rms_db: float = -50.0,
    max_short: float = 0.1,
) -> float:
    """Decode, fit and write the wav of one clip; returns its level in dBFS.

    A ``wav`` that already has ``n_samples`` samples is reused (resume).

    Raises:
        ClipDropped: missing/corrupt/audio-less mp4, too short, or quieter than ``min_rms_db``.
    """
    if wav.exists() and sf.info(str(wav)).frames == n_samples:
        audio, _ = sf.read(str(wav), dtype="float32")
        return rms_db(audio)
    if not mp4.exists():
        raise ClipDropped("missing mp4 (download failed or not run)")
    try:
        audio = read_audio(mp4, sample_rate)
    except VideoReadError as err:
        raise ClipDropped(err.reason) from None
    audio = fit_clip_length(audio, n_samples, max_short)
    level = rms_db(audio)
    if level < min_rms_db:
        raise ClipDropped(f"silent: {level:.1f} dBFS < {min_rms_db} dBFS")
    write_wav(wav, audio, sample_rate)
    return level


def audio_dir(data: Path) -> Path:
    """Stage-1 output directory of data root ``data``."""
    return Path(data) / "audio"


def wav_path(data: Path, clip_id: str) -> Path:
    """Path of the stage-1 wav of ``clip_id``."""
    return audio_dir(data) / f"{clip_id}.wav"


def _prepare_job(job: Tuple) -> Tuple[str, Optional[float], Optional[str]]:
    clip_id, mp4, wav, n_samples, sample_rate, min_rms_db, max_short = job
    try:
        return clip_id, prepare_clip(mp4, wav, n_samples, sample_rate, min_rms_db, max_short), None
    except ClipDropped as err:
        return clip_id, None, str(err)


def extract_corpus_audio(
    corpus: Path,
    data: Optional[Path] = None,
    workers: int = 1,
    sample_rate: int = 16000,
    min_rms_db: float = -50.0,
    max_short: float = 0.1,
) -> Dict[str, object]:
    """Stage 1 on every clip of ``corpus``: writes ``<data>/audio/{<clip_id>.wav,clips.csv,dropped.csv}``.

    Args:
        corpus: corpus root (CSV + mp4s, see :mod:`~asteroid_avspeech.data.layout`).
        data: data root for the outputs (default: ``corpus``).
        workers: parallel processes (1: in this process).
        min_rms_db: clips quieter than this (dBFS) are dropped as silent.
        max_short: clips shorter than ``(1 - max_short)`` of their CSV duration are dropped.

    Returns:
        summary: ``total``, ``kept``, ``dropped`` and ``dropped_by_reason`` (reason kind -> count).
    """
    corpus = Path(corpus)
    out = audio_dir(data if data is not None else corpus)
    rows, _ = read_avspeech_csv(layout.csv_path(corpus), min_duration=0.0, max_duration=math.inf)
    jobs = [
        (
            r.clip_id,
            layout.clip_path(corpus, r.clip_id),
            out / f"{r.clip_id}.wav",
            round(r.duration * sample_rate),
            sample_rate,
            min_rms_db,
            max_short,
        )
        for r in rows
    ]
    out.mkdir(parents=True, exist_ok=True)
    if workers > 1:
        with worker_pool(workers) as pool:
            results = list(tqdm(pool.map(_prepare_job, jobs, chunksize=4), total=len(jobs), desc="audio", unit="clip"))
    else:
        results = [_prepare_job(job) for job in tqdm(jobs, desc="audio", unit="clip")]
    kept: List[List[str]] = []
    dropped: List[List[str]] = []
    for (clip_id, _, wav, n_samples, *_), (_, level, reason) in zip(jobs, results):
        if reason is None:
            path = wav.relative_to(out.parent).as_posix()
            kept.append([clip_id, layout.youtube_id_of(clip_id), str(n_samples), f"{level:.2f}", path])
        else:
            logger.info("dropped %s: %s", clip_id, reason)
            dropped.append([clip_id, reason])
            if wav.exists():
                wav.unlink()
    _write_csv(out / "clips.csv", CLIPS_COLUMNS, kept)
    _write_csv(out / "dropped.csv", DROPPED_COLUMNS, dropped)
    by_reason = Counter(reason.split(":")[0] for _, reason in dropped)
    summary = dict(total=len(jobs), kept=len(kept), dropped=len(dropped), dropped_by_reason=dict(by_reason))
    logger.info("stage 1: %s", summary)
    return summary


def _write_csv(path: Path, header: Tuple[str, ...], rows: List[List[str]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
