"""On-disk layout of a corpus of AVSpeech clips, shared by the downloader and the generator.

A corpus directory looks exactly like a (partial) AVSpeech download::

    <corpus>/
      avspeech.csv                       # youtube_id,start,end,x,y  (no header, official format)
      clips/<youtube_id>/<clip_id>.mp4   # 25 fps video + audio of one segment
      meta/<clip_id>.json                # generated corpus only: speaker, face, voice, text, phones
      wav/<clip_id>.wav                  # generated corpus only: the exact 16 kHz speech

A ``clip_id`` names one segment of one YouTube video; AVSpeech has several segments per video,
and one video shows one speaker, so the YouTube id is the speaker key for split making.
"""
import re
from pathlib import Path

YOUTUBE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{11}$")
CSV_COLUMNS = ("youtube_id", "start", "end", "x", "y")


def is_youtube_id(value: str) -> bool:
    """True if ``value`` is a syntactically valid 11-character YouTube id."""
    return bool(YOUTUBE_ID_RE.match(value))


def make_clip_id(youtube_id: str, start: float, end: float) -> str:
    """Name of the segment ``[start, end]`` (seconds) of ``youtube_id``, in milliseconds.

    Milliseconds keep the fractional start/end that AVSpeech rows carry (an earlier
    implementation dropped them) while staying a safe file name.
    """
    if not is_youtube_id(youtube_id):
        raise ValueError(f"Not a YouTube id: {youtube_id!r}")
    return f"{youtube_id}_{round(start * 1000):08d}_{round(end * 1000):08d}"


def youtube_id_of(clip_id: str) -> str:
    """The YouTube id (speaker key) a ``clip_id`` belongs to."""
    return clip_id[:11]


def clip_path(corpus: Path, clip_id: str) -> Path:
    """Path of the mp4 of ``clip_id`` inside ``corpus``."""
    return Path(corpus) / "clips" / youtube_id_of(clip_id) / f"{clip_id}.mp4"


def meta_path(corpus: Path, clip_id: str) -> Path:
    """Path of the per-clip metadata JSON (generated corpus only)."""
    return Path(corpus) / "meta" / f"{clip_id}.json"


def reference_wav_path(corpus: Path, clip_id: str) -> Path:
    """Path of the exact 16 kHz reference speech (generated corpus only)."""
    return Path(corpus) / "wav" / f"{clip_id}.wav"


def csv_path(corpus: Path) -> Path:
    """Path of the corpus CSV (``youtube_id,start,end,x,y``, no header)."""
    return Path(corpus) / "avspeech.csv"
