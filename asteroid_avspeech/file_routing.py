"""Route asteroid's ``separate`` calls on our models: videos to the video pipeline, sound files
and waveforms to a path that handles what users' files hold.

``model.separate("clip.mp4")`` (:class:`VideoSeparationMixin`) and ``asteroid-infer MODEL
--files clip.mp4`` (:func:`install_asteroid_file_hook`) write one track per face with
:func:`asteroid_avspeech.separate.write_video_separation`. A sound file (``--files mix.wav``) goes
to :func:`separate_sound_file` (any length, in overlapping windows) and a waveform to
:func:`separate_waveform`, which differ from
asteroid's ``file_separate`` / ``torch_separate`` where those fail on ordinary input (see their
docstrings). Other models go to asteroid unchanged. This module is imported with the models, so it
stays light: the video pipeline (MTCNN, PyAV, OpenCV) is imported only when a video is separated.
"""
import contextlib
import functools
import os
import warnings
from pathlib import Path
from typing import Iterator, Optional, Tuple, Union

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from .audio import first_non_finite, fit_length, resample as resample_audio, to_mono
from .io_utils import atomic_path
from .streaming import BlockWindow, ChunkSettings, iter_blended_windows

PathLike = Union[str, os.PathLike]

#: Files routed to the video path (any other file is read as a sound file).
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".flv")


def is_video_path(value: object) -> bool:
    """True for a path (str or PathLike) with a video extension (:data:`VIDEO_EXTENSIONS`)."""
    return isinstance(value, (str, os.PathLike)) and Path(value).suffix.lower() in VIDEO_EXTENSIONS


def _keeps_existing(first_output: Path, force_overwrite: bool) -> bool:
    """asteroid's rule: an existing ``<stem>_est1.wav`` is kept, with a warning, unless ``force_overwrite``."""
    if first_output.is_file() and not force_overwrite:
        warnings.warn(f"File {first_output} already exists, pass `force_overwrite=True` to overwrite it", UserWarning)
        return True
    return False


def separate_video_file(model, filename: PathLike, output_dir: Optional[PathLike] = None,
                        force_overwrite: bool = False, resample: bool = False, **kwargs) -> None:
    """asteroid's ``file_separate`` contract for a video: ``<stem>_est<k>.wav`` per face.

    As asteroid, an existing ``<stem>_est1.wav`` is kept (with a warning) unless
    ``force_overwrite``. The soundtrack is always resampled to the model's rate (``resample``
    is accepted for compatibility). ``kwargs`` are :func:`write_video_separation` options.
    """
    from .separate import output_paths, write_video_separation

    if _keeps_existing(output_paths(filename, output_dir, 1)["wav1"], force_overwrite):
        return
    write_video_separation(model, filename, output_dir, force_overwrite=True, **kwargs)


def separate_waveform(model, wav: Union[np.ndarray, torch.Tensor], **kwargs) -> Union[np.ndarray, torch.Tensor]:
    """asteroid's ``torch_separate`` / ``numpy_separate`` for our models: ``model.forward_wav`` on the
    model's device, the result back on the input's device (numpy for numpy).

    asteroid then rescales the estimates by ``|wav|.sum() / |estimates|.sum()``, which is NaN for a
    silent input (0 / 0) and written out as full-scale noise; ``forward_wav`` already gives each
    voice its level in the mixture (:func:`~asteroid_avspeech.models.looking_to_listen.scale_to_mixture`),
    and silence in gives silence out.

    Args:
        wav: ``(time,)``, ``(batch, time)`` or ``(batch, 1, time)``.
        kwargs: passed to ``forward_wav`` (``visual=``).

    Returns:
        ``(batch, n_src, time)``, of the input's type.
    """
    tensor = torch.from_numpy(wav) if isinstance(wav, np.ndarray) else wav
    device = next(model.parameters()).device
    estimates = model.forward_wav(tensor.to(device), **kwargs).to(tensor.device)
    return estimates.numpy() if isinstance(wav, np.ndarray) else estimates


def separate_sound_file(model, filename: PathLike, output_dir: Optional[PathLike] = None,
                        force_overwrite: bool = False, resample: bool = False,
                        chunks: ChunkSettings = ChunkSettings(), progress: bool = True, **kwargs) -> None:
    """asteroid's ``file_separate`` contract for a sound file: ``<stem>_est<k>.wav`` per output, at
    the file's sample rate, an existing ``<stem>_est1.wav`` kept (with a warning) unless
    ``force_overwrite``.

    Unlike asteroid's (which fails on each of these with a traceback or writes garbage): any
    sample rate is resampled to the model's and the estimates back (``resample`` is accepted for
    compatibility, as on the video path), channels are averaged (asteroid would keep the first),
    ``output_dir`` is created, a silent file gives silent tracks (:func:`separate_waveform`), and
    the 16-bit tracks (clipped to full scale) are written under temporary names and renamed at the
    end. Each conversion is noted in a warning. Files of any length are separated in the windows
    of ``chunks`` (:func:`iter_sound_separation`): memory stays bounded by one window.

    Args:
        chunks: window and overlap of the model runs.
        progress: a progress bar (seconds of audio) for files longer than one window.
        kwargs: passed to ``forward_wav``; with ``visual=`` (faces for the whole file, already in
            memory) the file is separated in one run.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a readable sound file, holds no samples, or holds NaN or
            infinite samples.
    """
    from .separate import output_paths

    path = Path(filename)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    names = output_paths(path, output_dir, model.n_src)
    if _keeps_existing(names["wav1"], force_overwrite):
        return
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as err:
        raise ValueError(f"{path}: not a readable sound file ({err}); videos are recognised by their extension: "
                         f"{', '.join(VIDEO_EXTENSIONS)}") from err
    if not info.frames:
        raise ValueError(f"{path}: the file holds no samples")
    if info.channels > 1:
        warnings.warn(f"{path}: {info.channels} channels mixed down to mono", UserWarning)
    rate, model_rate = info.samplerate, int(model.sample_rate)
    if rate != model_rate:
        warnings.warn(f"{path}: resampled from {rate} Hz to the model's {model_rate} Hz (the tracks are written "
                      f"at {rate} Hz)", UserWarning)
    if kwargs.get("visual") is not None:
        chunks = ChunkSettings(chunk_seconds=info.frames / rate + 1.0)
    window, hop = chunks.window_hop(rate)
    blocks = _finite_blocks(path, rate, (to_mono(block.T) for block in
                                         sf.blocks(str(path), blocksize=hop, dtype="float32", always_2d=True)))
    with contextlib.ExitStack() as outputs:
        tmps = [outputs.enter_context(atomic_path(names[f"wav{k}"])) for k in range(1, model.n_src + 1)]
        with contextlib.ExitStack() as files, tqdm(total=info.frames / rate, unit="s", desc=f"separating {path.name}",
                                                   disable=not progress or info.frames <= window) as bar:
            writers = [files.enter_context(sf.SoundFile(str(tmp), "w", rate, 1, "PCM_16")) for tmp in tmps]
            for piece in iter_sound_separation(model, blocks, rate, chunks, **kwargs):
                for writer, row in zip(writers, piece):
                    writer.write(np.clip(row, -1.0, 1.0))
                bar.update(piece.shape[1] / rate)


def _finite_blocks(path: Path, rate: int, blocks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """``blocks`` passed on; a NaN or infinite sample raises :class:`ValueError` naming the file and time."""
    done = 0
    for block in blocks:
        bad = first_non_finite(block)
        if bad is not None:
            raise ValueError(f"{path}: NaN or infinite sample at {(done + bad) / rate:.2f} s (a corrupt float "
                             "file: fix or re-export it); no track written")
        done += len(block)
        yield block


def iter_sound_separation(model, blocks: Iterator[np.ndarray], rate: int, chunks: ChunkSettings = ChunkSettings(),
                          **kwargs) -> Iterator[np.ndarray]:
    """Separate a mono stream window by window; yield each finished piece as soon as it is final.

    Each window is resampled to the model's rate, separated (:func:`separate_waveform`), its
    estimates resampled back and blended
    (:func:`~asteroid_avspeech.streaming.iter_blended_windows`). Without faces the model's output
    order is arbitrary in each window, so each window's outputs are first put in the order that
    continues the previous window's (:func:`~asteroid_avspeech.streaming.best_order` on the overlap).

    Args:
        blocks: mono float32 blocks ``(n,)`` at ``rate`` Hz.
        chunks: window and overlap.
        kwargs: passed to ``forward_wav`` for every window (faces for the whole stream only fit a
            single window: see :func:`separate_sound_file`).

    Yields:
        ``(n_src, n)`` float32 pieces at ``rate`` Hz that tile the stream.
    """
    window, hop = chunks.window_hop(rate)
    model_rate = int(model.sample_rate)

    def separate(start: int, wav: np.ndarray) -> np.ndarray:
        estimate = separate_waveform(model, resample_audio(wav, rate, model_rate)[None], **kwargs)[0]
        return fit_length(resample_audio(estimate, model_rate, rate).T, len(wav)).T

    for _, piece in iter_blended_windows(BlockWindow(blocks), model.n_src, window, hop, separate, align_order=True):
        yield piece


class VideoSeparationMixin:
    """Gives an audio-visual ``BaseModel`` a ``separate`` that also takes videos.

    ``model.separate("clip.mp4", output_dir=...)`` writes one track per face
    (:func:`~asteroid_avspeech.separate.write_video_separation`); a tensor or array goes to
    :func:`separate_waveform`, a sound file through ``asteroid``'s ``separate`` to
    :func:`separate_sound_file` (``visual=`` is passed on to ``forward_wav``). Without
    ``visual`` the model separates audio-only and says so in one warning per model.

    Defining a subclass installs :func:`install_asteroid_file_hook`, so that
    ``asteroid-infer MODEL --files clip.mp4`` reaches the video path too.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        install_asteroid_file_hook()

    def separate(self, wav, *args, **kwargs):
        """Separate a video path (one track per face), a waveform or, as asteroid, a sound file."""
        if is_video_path(wav):
            return separate_video_file(self, wav, *args, **kwargs)
        if kwargs.get("visual") is None:
            self.warn_audio_only()
        if isinstance(wav, (np.ndarray, torch.Tensor)):
            return separate_waveform(self, wav, **kwargs)
        return super().separate(wav, *args, **kwargs)

    def warn_audio_only(self) -> None:
        """Warn, once per model, that an input without faces is separated audio-only."""
        if getattr(self, "_warned_audio_only", False):
            return
        self._warned_audio_only = True
        warnings.warn(
            f"{type(self).__name__}: no faces given (plain audio input): separating audio-only. "
            "The output order is arbitrary (not tied to a speaker) and quality is lower than with "
            "faces (stage 5's probe_no_faces_si_sdr measures it); give a video (asteroid-avspeech "
            "separate clip.mp4) for one voice per face, or use a model trained with --use_visual false.",
            UserWarning,
            stacklevel=3,
        )


def install_asteroid_file_hook() -> None:
    """Route ``asteroid.separate.file_separate`` for our models: a video to :func:`separate_video_file`,
    a sound file to :func:`separate_sound_file` (with the audio-only warning).

    ``asteroid-infer`` calls ``asteroid.separate.separate(model, filename)``, which reads every
    file with soundfile (no video): the model never sees the file name, so no method of the
    model can take the video path. With ``--ola-window`` the model comes wrapped in asteroid's
    ``LambdaOverlapAdd``; our model is then taken out of it and its window and hop become the
    ``chunks`` of our own windowed separation (:func:`unwrap_overlap_add`). The wrapper changes
    nothing for other models; asteroid's files are not modified. Idempotent.
    """
    import asteroid.separate as asteroid_separate

    original = asteroid_separate.file_separate
    if getattr(original, "routes_videos", False):
        return

    @functools.wraps(original)
    def file_separate(model, filename, *args, **kwargs):
        ours, chunks = unwrap_overlap_add(model)
        if ours is None:
            return original(model, filename, *args, **kwargs)
        if chunks is not None:
            kwargs["chunks"] = chunks
        if is_video_path(filename):
            return separate_video_file(ours, filename, *args, **kwargs)
        if kwargs.get("visual") is None:
            ours.warn_audio_only()
        return separate_sound_file(ours, filename, *args, **kwargs)

    file_separate.routes_videos = True
    asteroid_separate.file_separate = file_separate


def unwrap_overlap_add(model) -> Tuple[Optional[VideoSeparationMixin], Optional[ChunkSettings]]:
    """``(our model, None)`` for one of our models; ``(our model, its window and overlap)`` for our
    model in ``asteroid.dsp.LambdaOverlapAdd`` (``asteroid-infer --ola-window``); ``(None, None)``
    for anything else.

    asteroid's overlap-add would run our model's ``forward`` (the network's own level) on each
    window of asteroid's ``file_separate``, which fails on another sample rate or a missing output
    folder, rescales silence to NaN and cannot read a video; our windowed paths do what it does
    (windows cross-faded, each window's outputs put in the previous one's order) on top.
    """
    if isinstance(model, VideoSeparationMixin):
        return model, None
    inner = getattr(model, "nnet", None)
    if isinstance(inner, VideoSeparationMixin) and hasattr(model, "window_size"):
        rate = float(inner.sample_rate)
        return inner, ChunkSettings(model.window_size / rate, (model.window_size - model.hop_size) / rate)
    return None, None
