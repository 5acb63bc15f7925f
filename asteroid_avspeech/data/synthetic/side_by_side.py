"""A two-face demo video: two corpus speakers side by side, their voices mixed into one soundtrack.

Each side plays one or more clips of one speaker in sequence. The left half of every frame is
speaker A, the right half speaker B (so face 1 = A, face 2 = B in
the separator's face order); the soundtrack is ``mix`` of the two reference wavs at a chosen
level difference (:mod:`asteroid_avspeech.data.mixing`), and the scaled clean voices are kept
next to the video to score each face's track::

    <out>.mp4          H.264 + AAC, the mixture as soundtrack
    <out>_ref1.wav     clean voice of the left face (16-bit, as mixed)
    <out>_ref2.wav     clean voice of the right face
    <out>.json         the clip ids of each side, gains and level difference
"""
import json
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import soundfile as sf

from ...audio import fit_length
from ...io_utils import atomic_path
from ...video.decode import read_frames
from .. import layout
from ..mixing import mix, rms, source_gains
from .media import write_mp4, write_wav

INT16_MAX = 32767


def make_side_by_side(
    corpus: Path,
    clip_ids: Sequence[Sequence[str]],
    out: Path,
    seconds: Optional[float] = None,
    level_db: float = 0.0,
    ref_db: float = -25.0,
    fps: int = 25,
    sample_rate: int = 16000,
) -> Dict[str, object]:
    """Write the demo video of two sides (clips of the generated corpus) to ``<out>.mp4``.

    Args:
        corpus: generated corpus (its mp4 clips and exact reference wavs).
        clip_ids: the clips of the left side and those of the right side (played in order).
        out: output path without extension.
        seconds: cut both sides to this length (default: the shorter side).
        level_db: level of the right voice relative to the left one (dB).
        ref_db: level of the left voice (dBFS) before the common peak rescale.
        fps: video frame rate of the corpus.
        sample_rate: audio sample rate of the corpus.

    Returns:
        The metadata written to ``<out>.json``.

    Raises:
        ValueError: not two sides, or sides of different frame heights.
    """
    if len(clip_ids) != 2:
        raise ValueError(f"make_side_by_side takes two sides, got {len(clip_ids)}")
    corpus, out = Path(corpus), Path(out)
    frames, voices = [], []
    for side in clip_ids:
        n = [round(sf.info(str(layout.reference_wav_path(corpus, c))).duration * fps) for c in side]
        frames.append(np.concatenate([fit_length(read_frames(layout.clip_path(corpus, c), fps), k)
                                      for c, k in zip(side, n)]))
        voices.append(np.concatenate([fit_length(sf.read(str(layout.reference_wav_path(corpus, c)),
                                                          dtype="float32")[0], round(k / fps * sample_rate))
                                      for c, k in zip(side, n)]))
    if frames[0].shape[1] != frames[1].shape[1]:
        raise ValueError(f"sides {list(clip_ids)} have different frame heights: cannot put them side by side")
    n_frames = min(len(f) for f in frames)
    if seconds is not None:
        n_frames = min(n_frames, round(seconds * fps))
    n_samples = round(n_frames / fps * sample_rate)
    video = np.concatenate([f[:n_frames] for f in frames], axis=2)
    sources = np.stack([fit_length(v, n_samples) for v in voices])
    gains = source_gains(rms(sources), np.array([0.0, level_db]), ref_db)
    mixture, scaled, _, scale = mix(sources, gains)
    to_int16 = lambda x: np.round(np.clip(x, -1, 1) * INT16_MAX).astype(np.int16)  # noqa: E731
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(clips=[list(side) for side in clip_ids], level_db=level_db, gains=gains.tolist(), scale=scale,
                fps=fps, sample_rate=sample_rate, n_samples=n_samples,
                refs=[f"{out.name}_ref{k}.wav" for k in (1, 2)])
    with atomic_path(out.with_suffix(".mp4")) as tmp:
        write_mp4(tmp, video, to_int16(mixture), fps=fps, sample_rate=sample_rate)
    for k, voice in enumerate(scaled, 1):
        with atomic_path(Path(f"{out}_ref{k}.wav")) as tmp:
            write_wav(tmp, to_int16(voice), sample_rate)
    with atomic_path(out.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(meta, indent=1))
    return meta

