"""Decode the frames and the audio of a clip with PyAV, at a fixed frame rate and sample rate.

Frames come out as uint8 RGB ``(frames, height, width, 3)`` re-timed to ``fps`` by nearest
frame (a 30 fps upload gives the same number of frames per second as a 25 fps one), audio as
float32 mono ``(time,)`` at ``sample_rate`` trimmed or zero-padded to an exact length (AAC pads
about 8 ms at the end). Every failure to read a file raises :class:`VideoReadError`, which names
the file and the reason, so that a corpus loop can log a skip instead of crashing deep in FFmpeg.
"""
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Tuple

import av
import numpy as np

from ..audio import first_non_finite, fit_length

logger = logging.getLogger(__name__)

DEFAULT_FPS = 25.0
DEFAULT_SAMPLE_RATE = 16000


class VideoReadError(RuntimeError):
    """A media file could not be read: missing, corrupt, truncated, or without the needed stream."""

    def __init__(self, path: Path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"Cannot read {self.path}: {reason}")


@dataclass
class Clip:
    """Decoded content of one media file.

    Attributes:
        frames: uint8 RGB frames ``(frames, height, width, 3)`` at ``fps``.
        fps: frame rate of ``frames`` (the requested one, not the file's).
        audio: float32 mono samples ``(time,)`` at ``sample_rate``.
        sample_rate: sample rate of ``audio``.
    """

    frames: np.ndarray
    fps: float
    audio: np.ndarray
    sample_rate: int


def _open(path: Path) -> "av.container.InputContainer":
    path = Path(path)
    if not path.is_file():
        raise VideoReadError(path, "file does not exist")
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise VideoReadError(path, f"not a readable media file ({err})") from err


def video_size(path: Path) -> Tuple[int, int]:
    """``(width, height)`` of the video stream of ``path``.

    Raises:
        VideoReadError: missing or unreadable file, or no video stream.
    """
    with _open(path) as container:
        if not container.streams.video:
            raise VideoReadError(path, "no video stream (an audio-only file has no face to follow; "
                                       "use `asteroid-infer MODEL --files` on a wav of it)")
        stream = container.streams.video[0]
        return stream.width, stream.height


def duration_seconds(path: Path) -> Optional[float]:
    """Duration of ``path`` in seconds from its header (None if the header does not say)."""
    with _open(path) as container:
        return container.duration / av.time_base if container.duration else None


def iter_frame_chunks(
    path: Path, fps: float = DEFAULT_FPS, chunk_frames: int = 250
) -> Iterator[np.ndarray]:
    """Yield the frames of ``path`` re-timed to ``fps``, ``chunk_frames`` at a time.

    Memory stays bounded by one chunk whatever the length of the file. Output frame ``i`` is the
    source frame whose presentation time is nearest to ``i / fps`` (times counted from the first
    frame), so a file already at ``fps`` comes out unchanged.

    Args:
        path: media file with a video stream.
        fps: output frame rate.
        chunk_frames: number of frames per yielded chunk (the last one may be shorter).

    Yields:
        uint8 arrays ``(chunk, height, width, 3)``.

    Raises:
        VideoReadError: missing or corrupt file, no video stream, or no decodable frame.
    """
    path = Path(path)
    buffer = []
    n_out = 0
    for image in _retimed_frames(path, fps):
        buffer.append(image)
        n_out += 1
        if len(buffer) == chunk_frames:
            yield np.stack(buffer)
            buffer = []
    if buffer:
        yield np.stack(buffer)
    if n_out == 0:
        raise VideoReadError(path, "no decodable video frame")


def _retimed_frames(path: Path, fps: float) -> Iterator[np.ndarray]:
    """Nearest-frame resampling of the video stream of ``path`` to ``fps`` (one frame at a time)."""
    with _open(path) as container:
        if not container.streams.video:
            raise VideoReadError(path, "no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        src_fps = float(stream.average_rate or stream.guessed_rate or fps)
        if abs(src_fps - fps) > 1e-3:
            logger.info("%s: %.3f fps re-timed to %.3f fps (nearest frame)", path, src_fps, fps)
        prev_image, prev_time, t0 = None, 0.0, None
        i_out = 0
        try:
            for k, frame in enumerate(container.decode(stream)):
                time = frame.time if frame.time is not None else k / src_fps
                if t0 is None:
                    t0 = time
                time -= t0
                if prev_image is not None:
                    # Output times closer to the previous frame than to this one get the previous.
                    while i_out / fps < (prev_time + time) / 2:
                        yield prev_image
                        i_out += 1
                prev_image, prev_time = frame.to_ndarray(format="rgb24"), time
        except av.error.FFmpegError as err:
            raise VideoReadError(path, f"video stream is corrupt or truncated ({err})") from err
        if prev_image is not None:
            while i_out / fps < prev_time + 0.5 / src_fps:
                yield prev_image
                i_out += 1


def read_frames(path: Path, fps: float = DEFAULT_FPS) -> np.ndarray:
    """All frames of ``path`` re-timed to ``fps``: uint8 ``(frames, height, width, 3)``.

    See :func:`iter_frame_chunks` for the re-timing and the errors.
    """
    return np.concatenate(list(iter_frame_chunks(path, fps)))


def iter_audio_blocks(path: Path, sample_rate: int = DEFAULT_SAMPLE_RATE) -> Iterator[np.ndarray]:
    """Mono float32 audio of ``path`` at ``sample_rate``, one decoded block ``(n,)`` at a time.

    Channels are averaged; another rate is resampled by FFmpeg's streaming resampler (swr,
    band-limited); both are logged once. Memory: one decoded block at a time.

    Raises:
        VideoReadError: no audio stream, corrupt stream, or no decodable sample.
    """
    path = Path(path)
    with _open(path) as container:
        if not container.streams.audio:
            raise VideoReadError(path, "no audio stream")
        stream = container.streams.audio[0]
        rate, channels = stream.rate, stream.channels
        if rate != sample_rate or channels != 1:
            logger.info("%s: audio mixed down from %d channel(s) to mono and resampled from %d Hz "
                        "to %d Hz", path, channels, rate, sample_rate)
        resampler = av.AudioResampler(format="fltp", rate=sample_rate)

        def resampled() -> Iterator[av.AudioFrame]:
            for frame in container.decode(stream):
                yield from resampler.resample(frame)
            yield from resampler.resample(None)  # what the resampler still holds

        n_out = 0
        try:
            for out in resampled():
                block = out.to_ndarray().mean(axis=0).astype(np.float32)
                bad = first_non_finite(block)
                if bad is not None:
                    raise VideoReadError(path, f"NaN or infinite audio sample at {(n_out + bad) / sample_rate:.2f} s "
                                               "(a corrupt soundtrack: re-encode it)")
                n_out += len(block)
                yield block
        except av.error.FFmpegError as err:
            raise VideoReadError(path, f"audio stream is corrupt or truncated ({err})") from err
    if n_out == 0:
        raise VideoReadError(path, "no decodable audio sample")


def read_audio(
    path: Path, sample_rate: int = DEFAULT_SAMPLE_RATE, n_samples: Optional[int] = None
) -> np.ndarray:
    """Audio of ``path`` as float32 mono ``(time,)`` at ``sample_rate`` (see :func:`iter_audio_blocks`).

    With ``n_samples`` the result is trimmed or zero-padded to exactly that length.

    Raises:
        VideoReadError: missing or corrupt file, no audio stream, or no decodable sample.
    """
    audio = np.concatenate(list(iter_audio_blocks(path, sample_rate)))
    return audio if n_samples is None else fit_length(audio, n_samples)


def read_clip(
    path: Path,
    fps: float = DEFAULT_FPS,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    duration: Optional[float] = None,
) -> Clip:
    """Frames and audio of ``path`` (both required).

    Args:
        path: media file with a video and an audio stream.
        fps: output frame rate.
        sample_rate: output sample rate.
        duration: if given (seconds), audio has exactly ``round(duration * sample_rate)`` samples.

    Raises:
        VideoReadError: as :func:`read_frames` and :func:`read_audio`.
    """
    n_samples = None if duration is None else round(duration * sample_rate)
    audio = read_audio(path, sample_rate, n_samples)
    return Clip(frames=read_frames(path, fps), fps=fps, audio=audio, sample_rate=sample_rate)

