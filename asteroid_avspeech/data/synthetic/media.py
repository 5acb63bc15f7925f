"""Writing one generated clip: H.264 + AAC mp4 (PyAV, bundled FFmpeg) and the exact 16 kHz wav."""
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile as sf


def write_wav(path: Path, samples: np.ndarray, sample_rate: int = 16000) -> None:
    """Write mono int16 ``samples`` of shape ``(time,)`` as 16-bit PCM wav."""
    sf.write(str(path), samples, sample_rate, subtype="PCM_16", format="WAV")


def write_mp4(
    path: Path,
    frames: np.ndarray,
    samples: np.ndarray,
    fps: int = 25,
    sample_rate: int = 16000,
    crf: int = 23,
    audio_bitrate: int = 64000,
) -> None:
    """Encode uint8 RGB ``frames`` ``(n_frames, height, width, 3)`` and int16 ``samples`` ``(time,)``.

    One encoder thread per clip: parallelism comes from clip-level worker processes.
    """
    with av.open(str(path), mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height = frames.shape[2], frames.shape[1]
        video.pix_fmt = "yuv420p"
        video.options = {"crf": str(crf), "preset": "veryfast"}
        video.codec_context.thread_count = 1
        audio = container.add_stream("aac", rate=sample_rate)
        audio.layout = "mono"
        audio.bit_rate = audio_bitrate
        for frame in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(video.encode())
        chunk = 1024
        for start in range(0, len(samples), chunk):
            frame = av.AudioFrame.from_ndarray(samples[None, start : start + chunk], format="s16", layout="mono")
            frame.sample_rate = sample_rate
            frame.pts = start
            frame.time_base = Fraction(1, sample_rate)
            container.mux(audio.encode(frame))
        container.mux(audio.encode())
