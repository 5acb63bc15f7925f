"""Download AVSpeech segments: validated CSV rows -> 25 fps H.264 + 16 kHz AAC mp4 per segment.

Only the segment ``[start, end]`` of each video is fetched (yt-dlp ``--download-sections``), then
re-encoded with ffmpeg into the corpus layout of :mod:`asteroid_avspeech.data.layout`.

Safety rules: every CSV value is validated before it can reach a command line (YouTube ids must
match :data:`~asteroid_avspeech.data.layout.YOUTUBE_ID_RE`, times and positions must be floats),
commands are argument lists (never a shell) and ``--`` precedes the URL. Unavailable videos are
logged to a failure CSV and never stop the run; finished clips are skipped on rerun.
"""
import csv
import hashlib
import logging
import math
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

from tqdm import tqdm

from ..io_utils import atomic_path
from . import layout

logger = logging.getLogger(__name__)

FAILURE_COLUMNS = ("youtube_id", "start", "end", "reason")
DEFAULT_FORMAT = "bv*[height<=720]+ba/b[height<=720]/b"


@dataclass(frozen=True)
class AVSpeechRow:
    """One validated AVSpeech CSV row: segment ``[start, end]`` seconds, face centre ``(x, y)``."""

    youtube_id: str
    start: float
    end: float
    x: float
    y: float

    @property
    def clip_id(self) -> str:
        return layout.make_clip_id(self.youtube_id, self.start, self.end)

    @property
    def duration(self) -> float:
        return self.end - self.start

    def csv_fields(self) -> List[str]:
        """The row as CSV text fields, with every decimal of the times kept."""
        return [self.youtube_id, format_seconds(self.start), format_seconds(self.end), repr(self.x), repr(self.y)]


def format_seconds(value: float) -> str:
    """Shortest exact decimal text of a time in seconds (``12.345678`` stays ``12.345678``)."""
    return repr(float(value))


def validate_row(fields: Sequence[str], min_duration: float = 1.0, max_duration: float = 12.0) -> AVSpeechRow:
    """Turn the text fields of one CSV row into an :class:`AVSpeechRow`.

    Raises:
        ValueError: with a short reason if the row is malformed (wrong field count, bad id,
            non-finite or non-numeric values, ``start >= end``, duration outside
            ``[min_duration, max_duration]`` seconds, face centre outside ``[0, 1]``).
    """
    if len(fields) != len(layout.CSV_COLUMNS):
        raise ValueError(f"expected {len(layout.CSV_COLUMNS)} fields, got {len(fields)}")
    youtube_id = fields[0].strip()
    if not layout.is_youtube_id(youtube_id):
        raise ValueError(f"invalid YouTube id {youtube_id!r}")
    try:
        start, end, x, y = (float(v) for v in fields[1:])
    except ValueError:
        raise ValueError(f"non-numeric value in {list(fields[1:])!r}") from None
    if not all(math.isfinite(v) for v in (start, end, x, y)):
        raise ValueError("non-finite value")
    if not 0 <= start < end:
        raise ValueError(f"need 0 <= start < end, got start={start} end={end}")
    if not min_duration <= end - start <= max_duration:
        raise ValueError(f"duration {end - start:.3f} s outside [{min_duration}, {max_duration}] s")
    if not (0 <= x <= 1 and 0 <= y <= 1):
        raise ValueError(f"face centre ({x}, {y}) outside [0, 1]")
    return AVSpeechRow(youtube_id, start, end, x, y)


def read_avspeech_csv(
    path: Path, min_duration: float = 1.0, max_duration: float = 12.0
) -> Tuple[List[AVSpeechRow], int]:
    """Read and validate an AVSpeech CSV (``youtube_id,start,end,x,y``, no header).

    Malformed rows are skipped with a warning naming the line number; duplicate segments
    (same clip id) are kept once.

    Returns:
        ``(rows, n_skipped)``: the valid unique rows in file order and the count of malformed rows.
    """
    rows: List[AVSpeechRow] = []
    seen: Set[str] = set()
    n_skipped = n_duplicates = 0
    with open(path, newline="") as f:
        for line_no, fields in enumerate(csv.reader(f), start=1):
            if not fields or all(not v.strip() for v in fields):
                continue
            try:
                row = validate_row(fields, min_duration, max_duration)
            except ValueError as err:
                logger.warning("%s line %d skipped: %s", path, line_no, err)
                n_skipped += 1
                continue
            if row.clip_id in seen:
                n_duplicates += 1
                continue
            seen.add(row.clip_id)
            rows.append(row)
    if n_duplicates:
        logger.info("%s: %d duplicate rows kept once", path, n_duplicates)
    return rows, n_skipped


def write_avspeech_csv(path: Path, rows: Iterable[AVSpeechRow]) -> None:
    """Write rows in the official format (no header), atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        for row in rows:
            writer.writerow(row.csv_fields())


def shard_of(youtube_id: str, n_shards: int) -> int:
    """Deterministic shard of a video (same on every machine and Python run)."""
    return int(hashlib.sha1(youtube_id.encode()).hexdigest(), 16) % n_shards


def default_yt_dlp() -> str:
    """The ``yt-dlp`` next to the running Python (virtual env) or else on ``PATH``."""
    beside = Path(sys.executable).parent / "yt-dlp"
    if beside.exists():
        return str(beside)
    found = shutil.which("yt-dlp")
    if found is None:
        raise FileNotFoundError("yt-dlp not found: `pip install yt-dlp` or pass --yt-dlp PATH")
    return found


def default_ffmpeg() -> str:
    """``ffmpeg`` on ``PATH``, else the one bundled with imageio-ffmpeg."""
    found = shutil.which("ffmpeg")
    if found is not None:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        raise FileNotFoundError("ffmpeg not found: install it or pass --ffmpeg PATH") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass
class Downloader:
    """Fetch one AVSpeech segment and re-encode it into ``corpus``.

    Args:
        corpus: corpus root (see :mod:`~asteroid_avspeech.data.layout`).
        yt_dlp: yt-dlp executable.
        ffmpeg: ffmpeg executable (also handed to yt-dlp for the section cut).
        fps: output video frame rate.
        sample_rate: output audio sample rate (mono AAC).
        video_format: yt-dlp format selector (limits the download resolution).
        timeout: seconds allowed for each external command.
    """

    corpus: Path
    yt_dlp: str
    ffmpeg: str
    fps: int = 25
    sample_rate: int = 16000
    video_format: str = DEFAULT_FORMAT
    timeout: float = 600.0

    def raw_dir(self, row: AVSpeechRow) -> Path:
        """Where the raw section of ``row`` is kept until its re-encode succeeds."""
        return Path(self.corpus) / "raw" / row.clip_id

    def yt_dlp_command(self, row: AVSpeechRow, out_dir: Path) -> List[str]:
        """yt-dlp argument list fetching only ``[start, end]`` of ``row`` (exact float times)."""
        return [
            self.yt_dlp, "--quiet", "--no-warnings", "--no-progress", "--no-playlist",
            "--ffmpeg-location", self.ffmpeg,
            "-f", self.video_format, "--merge-output-format", "mkv",
            "--download-sections", f"*{format_seconds(row.start)}-{format_seconds(row.end)}",
            "--force-keyframes-at-cuts",
            "-o", str(out_dir / "raw.%(ext)s"),
            "--", f"https://www.youtube.com/watch?v={row.youtube_id}",
        ]  # fmt: skip

    def ffmpeg_command(self, raw: Path, out: Path, duration: float) -> List[str]:
        """ffmpeg argument list re-encoding ``raw`` to constant-rate H.264 + mono AAC ``out``."""
        return [
            self.ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-i", str(raw), "-t", format_seconds(duration),
            "-map", "0:v:0", "-map", "0:a:0?",
            "-vf", f"fps={self.fps}", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
            "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "96k", "-ar", str(self.sample_rate), "-ac", "1",
            "-movflags", "+faststart", str(out),
        ]  # fmt: skip

    def _run(self, command: List[str]) -> Optional[str]:
        """Run ``command``; None on success, else a one-line reason."""
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired:
            return f"{Path(command[0]).name} timed out after {self.timeout:.0f} s"
        except OSError as err:
            return f"cannot run {command[0]}: {err}"
        if proc.returncode == 0:
            return None
        lines = [line.strip() for line in (proc.stderr or proc.stdout or "").splitlines() if line.strip()]
        return f"{Path(command[0]).name} exit {proc.returncode}: " + (lines[-1] if lines else "no message")

    def __call__(self, row: AVSpeechRow) -> Optional[str]:
        """Download and re-encode ``row``; None on success, else the failure reason.

        The raw section is deleted only after a successful re-encode; a failed re-encode
        keeps it under ``<corpus>/raw/<clip_id>/`` and a rerun re-encodes it without download.
        """
        out = layout.clip_path(self.corpus, row.clip_id)
        raw_dir = self.raw_dir(row)
        raws = _raw_files(raw_dir)
        if not raws:
            raw_dir.mkdir(parents=True, exist_ok=True)
            reason = self._run(self.yt_dlp_command(row, raw_dir))
            raws = _raw_files(raw_dir)
            if reason is None and not raws:
                reason = "yt-dlp succeeded but wrote no file"
            if reason is not None:
                shutil.rmtree(raw_dir, ignore_errors=True)
                return reason
        try:
            with atomic_path(out) as tmp:
                reason = self._run(self.ffmpeg_command(raws[0], tmp, row.duration))
                if reason is not None:
                    raise _ReencodeError(reason)
        except _ReencodeError as err:
            return f"re-encode failed (raw kept in {raw_dir}): {err}"
        shutil.rmtree(raw_dir, ignore_errors=True)
        return None


class _ReencodeError(RuntimeError):
    pass


def _raw_files(raw_dir: Path) -> List[Path]:
    """Finished raw downloads in ``raw_dir`` (partial ``.part`` files excluded)."""
    if not raw_dir.is_dir():
        return []
    return sorted(p for p in raw_dir.glob("raw.*") if p.is_file() and not p.name.endswith((".part", ".ytdl")))


def failures_path(corpus: Path, shard: int = 0, n_shards: int = 1) -> Path:
    """Failure log of one shard (shards running at once never share a file)."""
    name = "failures.csv" if n_shards == 1 else f"failures.shard{shard}of{n_shards}.csv"
    return Path(corpus) / name


def read_failures(path: Path) -> Set[str]:
    """Clip ids listed in a failure log (empty if the log does not exist)."""
    if not Path(path).exists():
        return set()
    failed = set()
    with open(path, newline="") as f:
        for rec in csv.DictReader(f):
            try:
                failed.add(layout.make_clip_id(rec["youtube_id"], float(rec["start"]), float(rec["end"])))
            except (ValueError, KeyError, TypeError):
                continue
    return failed


def download_corpus(
    csv_in: Path,
    corpus: Path,
    yt_dlp: Optional[str] = None,
    ffmpeg: Optional[str] = None,
    workers: int = 4,
    shard: int = 0,
    n_shards: int = 1,
    limit: Optional[int] = None,
    retry_failed: bool = False,
    min_duration: float = 1.0,
    max_duration: float = 12.0,
    fps: int = 25,
    sample_rate: int = 16000,
    video_format: str = DEFAULT_FORMAT,
    timeout: float = 600.0,
) -> Dict[str, int]:
    """Download the segments of an AVSpeech CSV into ``corpus`` (resumable, shardable).

    Every shard writes the same corpus CSV (all valid rows, atomically), so shards may run at
    once on one corpus directory. Clips whose mp4 exists are skipped; clips in this shard's
    failure log are skipped unless ``retry_failed``.

    Args:
        csv_in: official AVSpeech CSV (``youtube_id,start,end,x,y``, no header).
        corpus: output corpus root.
        limit: keep only the first ``limit`` valid rows (a small subset), before sharding.
        shard, n_shards: process only rows whose video hashes to ``shard`` (0-based).

    Returns:
        counts: ``valid, malformed, in_shard, existing, skipped_failed, downloaded, failed``.
    """
    if not 0 <= shard < n_shards:
        raise ValueError(f"need 0 <= shard < n_shards, got shard={shard} n_shards={n_shards}")
    corpus = Path(corpus)
    rows, n_malformed = read_avspeech_csv(csv_in, min_duration, max_duration)
    if limit is not None:
        rows = rows[:limit]
    write_avspeech_csv(layout.csv_path(corpus), rows)
    mine = [r for r in rows if shard_of(r.youtube_id, n_shards) == shard]
    log_path = failures_path(corpus, shard, n_shards)
    failed_before = set() if retry_failed else read_failures(log_path)
    existing = {r.clip_id for r in mine if layout.clip_path(corpus, r.clip_id).exists()}
    skipped = {r.clip_id for r in mine if r.clip_id in failed_before} - existing
    todo = [r for r in mine if r.clip_id not in existing and r.clip_id not in skipped]
    logger.info(
        "%d valid rows (%d malformed); shard %d/%d: %d rows, %d done, %d failed before, %d to fetch",
        len(rows), n_malformed, shard, n_shards, len(mine), len(existing), len(skipped), len(todo),
    )  # fmt: skip
    fetch = Downloader(
        corpus, yt_dlp or default_yt_dlp(), ffmpeg or default_ffmpeg(), fps, sample_rate, video_format, timeout
    )
    n_failed = 0
    new_log = not log_path.exists()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", newline="") as log, ThreadPoolExecutor(max(1, workers)) as pool:
        writer = csv.writer(log)
        if new_log:
            writer.writerow(FAILURE_COLUMNS)
        for row, reason in tqdm(zip(todo, pool.map(fetch, todo)), total=len(todo), desc="download", unit="clip"):
            if reason is not None:
                n_failed += 1
                logger.warning("%s failed: %s", row.clip_id, reason)
                writer.writerow([row.youtube_id, format_seconds(row.start), format_seconds(row.end), reason])
                log.flush()
    return dict(
        valid=len(rows), malformed=n_malformed, in_shard=len(mine), existing=len(existing),
        skipped_failed=len(skipped), downloaded=len(todo) - n_failed, failed=n_failed,
    )  # fmt: skip
