"""Route asteroid's ``separate`` calls on a video file to the video pipeline.

``model.separate("clip.mp4")`` (:class:`VideoSeparationMixin`) and ``asteroid-infer MODEL
--files clip.mp4`` (:func:`install_asteroid_file_hook`) write one track per face with
:func:`asteroid_avspeech.separate.write_video_separation`; everything else goes to asteroid
unchanged. This module is imported with the models, so it stays light: the video pipeline
(MTCNN, PyAV, OpenCV) is imported only when a video is separated.
"""
import functools
import os
import warnings
from pathlib import Path
from typing import Optional, Union

PathLike = Union[str, os.PathLike]

#: Files routed to the video path (any other input goes to asteroid's ``separate``).
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".flv")


def is_video_path(value: object) -> bool:
    """True for a path (str or PathLike) with a video extension (:data:`VIDEO_EXTENSIONS`)."""
    return isinstance(value, (str, os.PathLike)) and Path(value).suffix.lower() in VIDEO_EXTENSIONS


def separate_file(model, filename: PathLike, output_dir: Optional[PathLike] = None,
                  force_overwrite: bool = False, resample: bool = False, **kwargs) -> None:
    """asteroid's ``file_separate`` contract for a video: ``<stem>_est<k>.wav`` per face.

    As asteroid, an existing ``<stem>_est1.wav`` is kept (with a warning) unless
    ``force_overwrite``. The soundtrack is always resampled to the model's rate (``resample``
    is accepted for compatibility). ``kwargs`` are :func:`write_video_separation` options.
    """
    from .separate import output_paths, write_video_separation

    first = output_paths(filename, output_dir, 1)["wav1"]
    if first.is_file() and not force_overwrite:
        warnings.warn(f"File {first} already exists, pass `force_overwrite=True` to overwrite it", UserWarning)
        return
    write_video_separation(model, filename, output_dir, force_overwrite=True, **kwargs)


class VideoSeparationMixin:
    """Gives an audio-visual ``BaseModel`` a ``separate`` that also takes videos.

    ``model.separate("clip.mp4", output_dir=...)`` writes one track per face
    (:func:`~asteroid_avspeech.separate.write_video_separation`); anything else goes to ``asteroid``'s ``separate``
    (tensors, arrays, audio files; ``visual=`` is passed on to ``forward_wav``). Without
    ``visual`` the model separates audio-only and says so in one warning per model.

    Defining a subclass installs :func:`install_asteroid_file_hook`, so that
    ``asteroid-infer MODEL --files clip.mp4`` reaches the video path too.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        install_asteroid_file_hook()

    def separate(self, wav, *args, **kwargs):
        """Separate a video path (one track per face) or, as asteroid, a waveform or sound file."""
        if is_video_path(wav):
            return separate_file(self, wav, *args, **kwargs)
        if kwargs.get("visual") is None:
            self.warn_audio_only()
        return super().separate(wav, *args, **kwargs)

    def warn_audio_only(self) -> None:
        """Warn, once per model, that an input without faces is separated audio-only."""
        if getattr(self, "_warned_audio_only", False):
            return
        self._warned_audio_only = True
        warnings.warn(
            f"{type(self).__name__}: no faces given (plain audio input): separating audio-only. "
            "The output order is arbitrary (not tied to a speaker) and quality is lower than "
            "with faces; give a video (asteroid-avspeech separate clip.mp4) for one voice per face.",
            UserWarning,
            stacklevel=3,
        )


def install_asteroid_file_hook() -> None:
    """Route ``asteroid.separate.file_separate`` of a video to :func:`separate_file` for our models.

    ``asteroid-infer`` calls ``asteroid.separate.separate(model, filename)``, which reads every
    file with soundfile (no video): the model never sees the file name, so no method of the
    model can take the video path. The wrapper changes nothing for other models or for audio
    files (it only adds the audio-only warning for ours); asteroid's files are not modified.
    Idempotent.
    """
    import asteroid.separate as asteroid_separate

    original = asteroid_separate.file_separate
    if getattr(original, "routes_videos", False):
        return

    @functools.wraps(original)
    def file_separate(model, filename, *args, **kwargs):
        if isinstance(model, VideoSeparationMixin):
            if is_video_path(filename):
                return separate_file(model, filename, *args, **kwargs)
            if kwargs.get("visual") is None:
                model.warn_audio_only()
        return original(model, filename, *args, **kwargs)

    file_separate.routes_videos = True
    asteroid_separate.file_separate = file_separate
