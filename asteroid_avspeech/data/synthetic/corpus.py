"""The generated corpus: speakers (a face + a voice each), clip jobs, parallel resumable generation.

The output is laid out exactly like an AVSpeech download (:mod:`asteroid_avspeech.data.layout`),
plus the exact reference wav and a metadata JSON per clip. Every clip is a pure function of
``(seed, speaker, clip index)`` and the configuration, so runs are deterministic, order-free
and resumable: a clip is finished when its mp4, wav and meta exist (meta is written last).
"""
import hashlib
import json
import logging
from concurrent.futures import as_completed
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
from tqdm import tqdm

from ...io_utils import atomic_path
from ...parallel import worker_pool
from .. import layout
from .faces import aligned_face, check_face_names, default_cache_dir, face_names, parents
from .media import write_mp4, write_wav
from .render import random_head_motion, render_frames
from .sentences import random_sentence
from .tts import Espeak, Speech, Voice, voices_by_name
from .visemes import viseme_track

log = logging.getLogger(__name__)
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class CorpusConfig:
    """Clip format. ``max_lead`` is the longest silence (s) before speech starts."""

    seconds: float = 3.0
    sample_rate: int = 16000
    fps: int = 25
    size: int = 256
    max_lead: float = 0.4
    max_sentences: int = 3
    cache_dir: str = field(default_factory=lambda: str(default_cache_dir()))

    @property
    def n_samples(self) -> int:
        return int(round(self.seconds * self.sample_rate))

    @property
    def n_frames(self) -> int:
        return int(round(self.seconds * self.fps))


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: a face identity and a voice, filmed in one synthetic 'YouTube video'."""

    index: int
    youtube_id: str
    face: str
    voice: Voice


@dataclass(frozen=True)
class ClipJob:
    """Segment ``clip_index`` (``[start, end]`` seconds) of ``speaker``."""

    speaker: Speaker
    clip_index: int
    start: float
    end: float
    seed: int

    @property
    def clip_id(self) -> str:
        return layout.make_clip_id(self.speaker.youtube_id, self.start, self.end)


def synthetic_youtube_id(seed: int, index: int, face: str, voice: str) -> str:
    """An 11-character id (letters and digits) that changes with the seed, face or voice."""
    number = int.from_bytes(hashlib.sha256(f"{seed}:{index}:{face}:{voice}".encode()).digest(), "big")
    chars = []
    for _ in range(11):
        number, rest = divmod(number, len(_BASE62))
        chars.append(_BASE62[rest])
    return "".join(chars)


def plan_speakers(
    n_speakers: int,
    seed: int,
    faces: Optional[Sequence[str]] = None,
    voices: Optional[Sequence[str]] = None,
) -> List[Speaker]:
    """Give every speaker a distinct face and a distinct voice.

    With the default pools, faces are drawn from the real photos first (seeded order), then
    from blends; voices in seeded order. Explicit ``faces``/``voices`` are used in the given order.
    """
    rng = np.random.default_rng([seed, 0x5EED])
    if faces is None:
        bases, blends = face_names(include_blends=False), face_names()[len(face_names(False)) :]
        face_pool = [bases[i] for i in rng.permutation(len(bases))] + [blends[i] for i in rng.permutation(len(blends))]
    else:
        check_face_names(list(faces))
        face_pool = list(dict.fromkeys(faces))
    voice_pool = voices_by_name(None if voices is None else list(dict.fromkeys(voices)))
    if voices is None:
        voice_pool = [voice_pool[i] for i in rng.permutation(len(voice_pool))]
    for what, pool, option in (("faces", face_pool, "--faces"), ("voices", voice_pool, "--voices")):
        if len(pool) < n_speakers:
            raise ValueError(
                f"--n-speakers {n_speakers} needs {n_speakers} distinct {what} but the pool has {len(pool)}: "
                f"lower --n-speakers or give more names to {option} (see --list)"
            )
    return [
        Speaker(i, synthetic_youtube_id(seed, i, face_pool[i], voice_pool[i].name), face_pool[i], voice_pool[i])
        for i in range(n_speakers)
    ]


def plan_clips(speakers: Sequence[Speaker], clips_per_speaker: int, seed: int, seconds: float) -> List[ClipJob]:
    """Consecutive segments ``[j * seconds, (j + 1) * seconds]`` of each speaker's video."""
    return [
        ClipJob(spk, j, round(j * seconds, 3), round((j + 1) * seconds, 3), seed)
        for spk in speakers
        for j in range(clips_per_speaker)
    ]


def clip_files(corpus: Path, clip_id: str) -> List[Path]:
    """The files of one clip, in writing order (the meta JSON, written last, marks it finished)."""
    return [layout.reference_wav_path(corpus, clip_id), layout.clip_path(corpus, clip_id), layout.meta_path(corpus, clip_id)]


def is_done(corpus: Path, clip_id: str) -> bool:
    """A clip is finished when its wav, mp4 and meta all exist."""
    return all(p.exists() for p in clip_files(corpus, clip_id))


def _speech_for_clip(espeak: Espeak, voice: Voice, rng: np.random.Generator, budget: float, max_sentences: int) -> Speech:
    """Sentences spoken by ``voice``, cut at a word boundary so that they last at most ``budget`` s."""
    text = random_sentence(rng)
    speech = espeak.synthesize(text, voice)
    for _ in range(max_sentences - 1):
        if len(speech.samples) >= budget * speech.sample_rate:
            break
        text = f"{text} {random_sentence(rng)}"
        speech = espeak.synthesize(text, voice)
    if len(speech.samples) <= budget * speech.sample_rate:
        return speech
    fitting = [w for w in speech.words[1:] if w[0] <= budget]
    cut_s, cut_char = (fitting[-1][0], fitting[-1][1]) if fitting else (budget, len(text))
    n = int(cut_s * speech.sample_rate)
    samples = speech.samples[:n].astype(np.float64)
    fade = min(n, int(0.01 * speech.sample_rate))
    samples[n - fade :] *= np.linspace(1, 0, fade)
    phones = [(s, min(e, cut_s), p) for s, e, p in speech.phones if s < cut_s]
    words = [w for w in speech.words if w[0] < cut_s]
    return Speech(text[:cut_char].rstrip(" ,"), speech.sample_rate, samples.astype(np.int16), phones, words)


@lru_cache(maxsize=1)
def _process_espeak(sample_rate: int) -> Espeak:
    """One espeak-ng instance per process (the library keeps global state)."""
    return Espeak(sample_rate)


def generate_clip(job: ClipJob, corpus: Path, cfg: CorpusConfig) -> Dict:
    """Synthesise, render and write one clip (wav, then mp4, then meta). Returns its meta dict.

    On any error the files of this clip are removed, so no partial clip is left behind.
    """
    corpus = Path(corpus)
    spk, clip_id = job.speaker, job.clip_id
    rng = np.random.default_rng([job.seed, spk.index, job.clip_index])
    lead = float(rng.uniform(0.05, cfg.max_lead))
    speech = _speech_for_clip(_process_espeak(cfg.sample_rate), spk.voice, rng, cfg.seconds - lead - 0.05, cfg.max_sentences)
    offset = int(round(lead * cfg.sample_rate))
    samples = np.zeros(cfg.n_samples, np.int16)
    body = speech.samples[: cfg.n_samples - offset]
    samples[offset : offset + len(body)] = body
    phones = [(round(s + lead, 4), round(e + lead, 4), p) for s, e, p in speech.phones]
    track = viseme_track(phones, cfg.n_frames, cfg.fps)
    motion = random_head_motion(rng, cfg.n_frames, cfg.fps)
    face = aligned_face(spk.face, Path(cfg.cache_dir), cfg.size)
    frames, matrices = render_frames(face, track, motion, cfg.size)
    landmarks = np.einsum("fij,kj->fki", matrices[:, :, :2], face.landmarks) + matrices[:, None, :, 2]
    centre = (landmarks[0, :2].mean(0) + landmarks[0, 3:].mean(0)) / 2 / cfg.size
    meta = {
        "clip_id": clip_id,
        "youtube_id": spk.youtube_id,
        "speaker": f"syn{spk.index:04d}",
        "face_id": spk.face,
        "face_parents": parents(spk.face),
        "voice_id": spk.voice.name,
        "voice": asdict(spk.voice),
        "text": speech.text,
        "seed": job.seed,
        "start": job.start,
        "end": job.end,
        "sample_rate": cfg.sample_rate,
        "fps": cfg.fps,
        "size": cfg.size,
        "lead_silence": round(lead, 4),
        "x": round(float(centre[0]), 6),
        "y": round(float(centre[1]), 6),
        "phones": phones,
        "viseme_track": np.round(track, 4).tolist(),
        "head_motion": {k: np.round(v, 4).tolist() for k, v in asdict(motion).items()},
        "landmarks": np.round(landmarks, 2).tolist(),
    }
    wav_file, mp4_file, meta_file = clip_files(corpus, clip_id)
    try:
        with atomic_path(wav_file) as tmp:
            write_wav(tmp, samples, cfg.sample_rate)
        with atomic_path(mp4_file) as tmp:
            write_mp4(tmp, frames, samples, cfg.fps, cfg.sample_rate)
        with atomic_path(meta_file) as tmp:
            tmp.write_text(json.dumps(meta))
    except BaseException as err:
        for path in (wav_file, mp4_file, meta_file):
            path.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise RuntimeError(
                f"Writing clip {clip_id} into {corpus} failed ({err}); free disk space or choose another --out, "
                "then rerun: finished clips are kept"
            ) from err
        raise
    return meta


def _check_writable(corpus: Path) -> None:
    try:
        corpus.mkdir(parents=True, exist_ok=True)
        with atomic_path(corpus / ".write_test") as tmp:
            tmp.write_bytes(b"ok")
        (corpus / ".write_test").unlink()
    except OSError as err:
        raise RuntimeError(f"Output folder {corpus} is not writable ({err}): choose another --out") from err


def write_csv(corpus: Path, jobs: Sequence[ClipJob]) -> Path:
    """Rewrite ``avspeech.csv`` (``youtube_id,start,end,x,y``, no header) from the clips' meta files."""
    rows = []
    for job in sorted(jobs, key=lambda j: (j.speaker.youtube_id, j.start)):
        meta = json.loads(layout.meta_path(corpus, job.clip_id).read_text())
        rows.append(f"{job.speaker.youtube_id},{job.start:.3f},{job.end:.3f},{meta['x']:.6f},{meta['y']:.6f}\n")
    path = layout.csv_path(corpus)
    with atomic_path(path) as tmp:
        tmp.write_text("".join(rows))
    return path


def generate_corpus(
    corpus: Path,
    n_speakers: int,
    clips_per_speaker: int,
    seed: int = 0,
    cfg: CorpusConfig = CorpusConfig(),
    faces: Optional[Sequence[str]] = None,
    voices: Optional[Sequence[str]] = None,
    workers: int = 1,
) -> List[ClipJob]:
    """Generate (or complete) a corpus in ``corpus``; finished clips are not redone.

    Returns:
        The clip jobs of the corpus, in CSV order.
    """
    corpus = Path(corpus)
    speakers = plan_speakers(n_speakers, seed, faces, voices)
    jobs = plan_clips(speakers, clips_per_speaker, seed, cfg.seconds)
    _process_espeak(cfg.sample_rate)  # fail early, in this process, if espeak-ng is missing
    for spk in speakers:  # fail early on missing photos (and fetch them once, not once per worker)
        aligned_face(spk.face, Path(cfg.cache_dir), cfg.size)
    _check_writable(corpus)
    for stale in (p for sub in ("clips", "wav", "meta") for p in (corpus / sub).rglob(".*.tmp*")):
        stale.unlink()  # temporary files of an interrupted (killed) run
    todo = [j for j in jobs if not is_done(corpus, j.clip_id)]
    log.info("%d speakers, %d clips: %d to generate, %d already done", len(speakers), len(jobs), len(todo), len(jobs) - len(todo))
    bar = tqdm(total=len(todo), desc="clips", unit="clip")
    if workers <= 1 or len(todo) <= 1:
        for job in todo:
            generate_clip(job, corpus, cfg)
            bar.update()
    else:
        with worker_pool(workers) as pool:
            futures = [pool.submit(generate_clip, job, corpus, cfg) for job in todo]
            try:
                for future in as_completed(futures):
                    future.result()
                    bar.update()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    bar.close()
    write_csv(corpus, jobs)
    return jobs
